//! Tests of the OpenSSL provider, through its registry (the conformance `Fixture`) or, to
//! compare it with the Mbed Crypto provider, calling the handlers directly.
//!
//! First the shared conformance suite (`providers::conformance`), with this provider's entries
//! in its expectation table; then what only this provider does: keys at rest (no plaintext key
//! in the store file, swapped blobs refused), the KEK checks at start-up, concurrency, known
//! answers against RustCrypto, a comparison with the Mbed Crypto provider on the same requests,
//! and a throughput figure.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::can_do_crypto::CheckType;
use bulwark_interface::ops::*;
use bulwark_interface::secret::SecretBytes;
use bulwark_interface::status::ResponseStatus;
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, Hash, KeyAgreement, Mac, RawKeyAgreement, SignHash,
};
use psa_crypto::types::key::{Attributes, EccFamily, Type, UsageFlags};

use super::{OpenSslProvider, OPENSSL_UUID};
use crate::auth::Identity;
use crate::keystore::KeyStore;
use crate::providers::conformance::{
    self, attrs, cipher_encrypt, digest, ecdsa, encrypt_decrypt, flags, secp_r1_pair, sign_verify,
    status, Expectations, Keep, Load, Subject, Support,
};
use crate::providers::{serve, Handles, Provider, ProviderSettings, RequestContext, Resolve};

type Fixture = conformance::Fixture<OpenSslProvider>;

/// The provider name used throughout.
const NAME: &str = "openssl-provider";

/// A provider on `store` with its KEK in `dir`.
fn provider_in(dir: &Path, store: &KeyStore) -> Arc<OpenSslProvider> {
    Arc::new(
        OpenSslProvider::new(NAME.to_owned(), &dir.join("kek"), store).expect("provider starts"),
    )
}

/// The key id is the wrapped key: version 1, nonce, 32 bytes of scalar, tag.
fn wrapped_p256_key(key_id: &[u8]) {
    assert_eq!((key_id[0], key_id.len()), (1, 1 + 12 + 32 + 16));
}

impl Subject for OpenSslProvider {
    const EXPECTED: Expectations = Expectations {
        family: Family::OpenSsl,
        key_id: wrapped_p256_key,
        rsa_bits: &[1024, 2048, 4096],
        refused_size: ResponseStatus::PsaErrorInvalidArgument,
        p384: Support::Yes,
        rsa_pss: Support::Yes,
        oaep_sha256: Support::Yes,
        oaep_label: Support::Yes,
        private_key_import: Support::Yes,
        aes_keys: Support::Yes,
        // Unlike the Mbed Crypto provider, this one holds no DH keys (neither has FFDH).
        dh_keys: false,
        // Unlike the Mbed Crypto provider, this one says it generates HMAC keys (it does).
        can_do_bare_hmac_keys: true,
        // Algorithms this provider does not implement.
        deterministic_ecdsa: false,
        cbc_mac: false,
        load: Load {
            keys: 40,
            rounds: 80,
        },
    };

    fn make(store: &KeyStore) -> (Arc<Self>, Keep) {
        let dir = tempfile::tempdir().expect("temporary directory");
        (provider_in(dir.path(), store), Box::new(dir))
    }
}

conformance::conformance_tests!(OpenSslProvider);

#[test]
fn discard_has_nothing_to_remove() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let key_id = f.record("ecc").key_id;
    f.provider.discard(&key_id).expect("discarded");
    f.provider.discard(b"anything").expect("discarded");
    // The key lives in its store row: it still works until the row goes.
    f.try_sign("ecc", alg, &[0; 32]).expect("signed");
    f.destroy("ecc").expect("destroyed");
}

// ---------------------------------------------------------------------------------------------
// Provider identity and registration
// ---------------------------------------------------------------------------------------------

#[test]
fn info_and_registered_operations() {
    let f = Fixture::new();
    let provider = Arc::clone(&f.provider);
    let info = provider.info();
    assert_eq!(info.uuid.to_string(), OPENSSL_UUID);
    assert_eq!(
        uuid::Uuid::parse_str(OPENSSL_UUID).map(|u| u.get_version_num()),
        Ok(4)
    );
    assert_eq!(
        (info.vendor.as_str(), info.id),
        ("OpenSSL", ProviderId::MbedCrypto)
    );
    assert!(
        info.description.contains("OpenSSL 3"),
        "{}",
        info.description
    );
    assert_eq!(
        (info.version_maj, info.version_min, info.version_rev),
        (0, 1, 0)
    );
    assert_eq!(provider.name(), NAME);
    // What the table says the family serves (the spec's set is checked against the table in
    // the interface crate).
    assert_eq!(
        f.registered(),
        Opcode::ALL
            .iter()
            .copied()
            .filter(|o| o.is_served_by(Family::OpenSsl))
            .collect()
    );
}

// ---------------------------------------------------------------------------------------------
// Keys at rest
// ---------------------------------------------------------------------------------------------

/// A provider on a real key store file in a temporary directory.
struct OnDisk {
    dir: tempfile::TempDir,
}

impl OnDisk {
    fn new() -> Self {
        OnDisk {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("kim/keys.sqlite3")
    }

    fn kek(&self) -> PathBuf {
        self.dir
            .path()
            .join("kim")
            .join(crate::config::DEFAULT_KEK_FILE_NAME)
    }

    /// The store and a provider on it, as a fixture.
    fn open(&self) -> Fixture {
        let store = KeyStore::open(&self.db()).expect("store opens");
        let provider = Arc::new(
            OpenSslProvider::new(NAME.to_owned(), &self.kek(), &store).expect("provider starts"),
        );
        Fixture::from_parts(provider, store, Box::new(()), ProviderSettings::default())
    }

    /// The bytes of the database and its write-ahead log.
    fn store_bytes(&self) -> Vec<u8> {
        let mut bytes = std::fs::read(self.db()).expect("database file");
        let mut wal = self.db().into_os_string();
        wal.push("-wal");
        if let Ok(more) = std::fs::read(PathBuf::from(wal)) {
            bytes.extend(more);
        }
        bytes
    }
}

fn exportable(usage: UsageFlags) -> UsageFlags {
    let mut usage = usage;
    usage.set_export();
    usage
}

#[test]
fn the_store_file_holds_no_key_in_plaintext() {
    let disk = OnDisk::new();
    let f = disk.open();
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    f.generate(
        "rsa",
        attrs(Type::RsaKeyPair, 2048, v15, exportable(sign_verify())),
    );
    let alg = ecdsa(Hash::Sha256);
    f.generate(
        "ecc",
        attrs(secp_r1_pair(), 256, alg, exportable(sign_verify())),
    );
    let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    f.generate(
        "aes",
        attrs(Type::Aes, 256, gcm, exportable(encrypt_decrypt())),
    );
    let secrets: Vec<(&str, Vec<u8>)> = ["rsa", "ecc", "aes"]
        .into_iter()
        .map(|name| (name, f.try_export(name).expect("exported")))
        .collect();
    assert_eq!(secrets[1].1.len(), 32);
    assert_eq!(secrets[2].1.len(), 32);
    // The keys are really in the store (rows with their wrapped material).
    assert_eq!(f.store.list(AuthType::Direct, "app").len(), 3);
    let stored = disk.store_bytes();
    for (name, secret) in &secrets {
        for window in secret.windows(16) {
            assert!(
                !stored.windows(16).any(|candidate| candidate == window),
                "16 bytes of the {name} key appear in the key store file"
            );
        }
    }
    // RSA: the private exponent and primes, whole, are not there either.
    let rsa = ::openssl::rsa::Rsa::private_key_from_der(&secrets[0].1).expect("PKCS#1");
    for part in [rsa.d(), rsa.p().expect("p"), rsa.q().expect("q")] {
        let part = part.to_vec();
        assert!(!stored
            .windows(part.len())
            .any(|candidate| candidate == &part[..]));
    }
}

#[test]
fn a_blob_moved_to_another_key_is_refused() {
    let disk = OnDisk::new();
    let alg = ecdsa(Hash::Sha256);
    {
        let f = disk.open();
        f.generate("a", attrs(secp_r1_pair(), 256, alg, sign_verify()));
        f.generate("b", attrs(secp_r1_pair(), 256, alg, sign_verify()));
        f.generate(
            "c",
            attrs(secp_r1_pair(), 256, alg, exportable(sign_verify())),
        );
    }
    let db = rusqlite::Connection::open(disk.db()).expect("database");
    // Key b gets a's wrapped key; key d is b with the attributes of the exportable c.
    let changed = db
        .execute(
            "UPDATE key_info SET key_id = (SELECT key_id FROM key_info WHERE key_name = 'a') \
             WHERE key_name = 'b'",
            [],
        )
        .expect("swap");
    assert_eq!(changed, 1);
    let f = disk.open();
    f.generate("d", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    drop(f);
    db.execute(
        "UPDATE key_info SET attributes = (SELECT attributes FROM key_info WHERE key_name = 'c') \
         WHERE key_name = 'd'",
        [],
    )
    .expect("edit attributes");
    drop(db);

    let f = disk.open();
    let hash = [7; 32];
    assert_eq!(
        status(f.try_sign("b", alg, &hash)),
        ResponseStatus::PsaErrorDataCorrupt
    );
    assert_eq!(
        status(f.try_export("d")),
        ResponseStatus::PsaErrorDataCorrupt
    );
    assert_eq!(
        status(f.try_sign("d", alg, &hash)),
        ResponseStatus::PsaErrorDataCorrupt
    );
    let signature = f.try_sign("a", alg, &hash).expect("a still works");
    f.try_verify("a", alg, &hash, &signature).expect("verified");
    f.try_sign("c", alg, &hash).expect("c still works");
    // A corrupt key can still be destroyed.
    f.destroy("b").expect("destroyed");
}

#[test]
fn cached_keys_are_used_only_with_their_own_blob() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate(
        "k",
        attrs(secp_r1_pair(), 256, alg, exportable(sign_verify())),
    );
    let first = f.export_public("k");
    assert_eq!(f.provider.cache.len(), 1);
    f.destroy("k").expect("destroyed");
    assert_eq!(f.provider.cache.len(), 0, "evicted on destroy");
    // The same name again: a new key, not the cached one.
    f.generate(
        "k",
        attrs(secp_r1_pair(), 256, alg, exportable(sign_verify())),
    );
    assert_ne!(f.export_public("k"), first);
}

// ---------------------------------------------------------------------------------------------
// The KEK at start-up
// ---------------------------------------------------------------------------------------------

/// Builds a service as `bulwarkd` does; the error message if it fails.
fn build(dir: &Path) -> Result<(), String> {
    let config = crate::test_support::config_in(dir, "OpenSsl").expect("configuration");
    crate::builder::build(&config, &mut crate::builder::Resources::new())
        .map(drop)
        .map_err(|e| e.to_string())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("KEK file")
        .permissions()
        .mode()
        & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn the_kek_is_created_once_with_mode_0600() {
    let disk = OnDisk::new();
    build(disk.dir.path()).expect("first start");
    let kek = disk.kek();
    assert_eq!(mode(&kek), 0o600);
    let bytes = std::fs::read(&kek).expect("KEK");
    assert_eq!(bytes.len(), 32);
    build(disk.dir.path()).expect("second start");
    assert_eq!(std::fs::read(&kek).expect("KEK"), bytes, "never replaced");
    // No temporary file is left next to it.
    let names: Vec<String> = std::fs::read_dir(kek.parent().expect("directory"))
        .expect("directory")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.contains("kek"))
        .collect();
    assert_eq!(names, [crate::config::DEFAULT_KEK_FILE_NAME]);
}

#[test]
fn a_lost_or_wrong_kek_stops_the_start_with_a_clear_error() {
    let disk = OnDisk::new();
    build(disk.dir.path()).expect("first start");
    let kek = disk.kek();
    let original = std::fs::read(&kek).expect("KEK");
    {
        let f = disk.open();
        f.generate(
            "key",
            attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
        );
    }
    let shown = kek.display().to_string();

    // Lost: refused, and no new KEK is made.
    std::fs::remove_file(&kek).expect("remove");
    let error = build(disk.dir.path()).expect_err("refused");
    assert!(
        error.contains(&shown) && error.contains("missing"),
        "{error}"
    );
    assert!(error.contains("kek_path"), "{error}");
    assert!(!kek.exists(), "no new KEK replaces the lost one");

    // Wrong: another 32-byte key.
    std::fs::write(&kek, [0x5a; 32]).expect("write");
    set_mode(&kek, 0o600);
    let error = build(disk.dir.path()).expect_err("refused");
    assert!(
        error.contains(&shown) && error.contains("decrypts none"),
        "{error}"
    );

    // Not a KEK: wrong length.
    std::fs::write(&kek, [0x5a; 31]).expect("write");
    let error = build(disk.dir.path()).expect_err("refused");
    assert!(
        error.contains(&shown) && error.contains("32 bytes"),
        "{error}"
    );

    // The right one, readable by others: refused until fixed.
    std::fs::write(&kek, &original).expect("write");
    set_mode(&kek, 0o640);
    let error = build(disk.dir.path()).expect_err("refused");
    assert!(error.contains(&shown) && error.contains("0640"), "{error}");
    set_mode(&kek, 0o600);
    build(disk.dir.path()).expect("starts with the right KEK");
    let f = disk.open();
    f.try_sign("key", ecdsa(Hash::Sha256), &[1; 32])
        .expect("the key works");
}

#[test]
fn a_missing_kek_with_no_keys_is_simply_created() {
    let disk = OnDisk::new();
    {
        // Keys of another provider do not count.
        let store = KeyStore::open(&disk.db()).expect("store");
        let other = OpenSslProvider::new(
            "other".to_owned(),
            &disk.dir.path().join("other.kek"),
            &store,
        )
        .expect("provider");
        drop(other);
    }
    build(disk.dir.path()).expect("starts");
    assert_eq!(mode(&disk.kek()), 0o600);
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn eight_threads_use_many_keys_without_a_lock() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = KeyStore::open_in_memory().expect("store");
    let mut provider =
        OpenSslProvider::new(NAME.to_owned(), &dir.path().join("kek"), &store).expect("provider");
    // A small cache, so that keys are evicted and unwrapped again while in use.
    provider.cache = super::cache::KeyCache::new(4);
    let f = Fixture::from_parts(
        Arc::new(provider),
        store,
        Box::new(dir),
        ProviderSettings::default(),
    );
    let alg = ecdsa(Hash::Sha256);
    let pss = AsymmetricSignature::RsaPss {
        hash_alg: Hash::Sha256.into(),
    };
    let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    for i in 0..24 {
        f.generate(
            &format!("ec-{i}"),
            attrs(secp_r1_pair(), 256, alg, sign_verify()),
        );
        f.generate(
            &format!("aes-{i}"),
            attrs(Type::Aes, 128, gcm, encrypt_decrypt()),
        );
    }
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, pss, sign_verify()));
    std::thread::scope(|scope| {
        for thread in 0..8u8 {
            let f = &f;
            scope.spawn(move || {
                for round in 0..60u8 {
                    let i = usize::from(thread.wrapping_mul(5).wrapping_add(round)) % 24;
                    let hash = [thread ^ round; 32];
                    let name = format!("ec-{i}");
                    let signature = f.try_sign(&name, alg, &hash).expect("signed");
                    f.try_verify(&name, alg, &hash, &signature)
                        .expect("verified");
                    let nonce = vec![thread; 12];
                    let plaintext = vec![round; 40];
                    let ciphertext = f
                        .call::<PsaAeadEncrypt>(psa_aead_encrypt::Request {
                            key_name: format!("aes-{i}"),
                            alg: gcm,
                            nonce: nonce.clone(),
                            additional_data: vec![],
                            plaintext: SecretBytes::from(plaintext.clone()),
                        })
                        .expect("encrypted")
                        .ciphertext;
                    let decrypted = f
                        .call::<PsaAeadDecrypt>(psa_aead_decrypt::Request {
                            key_name: format!("aes-{i}"),
                            alg: gcm,
                            nonce,
                            additional_data: vec![],
                            ciphertext,
                        })
                        .expect("decrypted")
                        .plaintext;
                    assert_eq!(&decrypted[..], &plaintext[..]);
                    if round % 10 == 0 {
                        let signature = f.try_sign("rsa", pss, &hash).expect("RSA signed");
                        f.try_verify("rsa", pss, &hash, &signature)
                            .expect("RSA verified");
                    }
                }
            });
        }
    });
    assert!(f.provider.cache.len() <= 16, "the cache stays bounded");
}

// ---------------------------------------------------------------------------------------------
// Known answers against RustCrypto
// ---------------------------------------------------------------------------------------------

mod rust_crypto {
    //! What this provider makes, RustCrypto accepts, and the reverse; deterministic outputs are
    //! byte for byte the same.

    use super::*;

    fn import(f: &Fixture, name: &str, attributes: Attributes, data: &[u8]) {
        f.try_import(name, attributes, data).expect("imported");
    }

    fn sha256(data: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(data).to_vec()
    }

    #[test]
    fn ecdsa_p256_and_p384() {
        use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
        let f = Fixture::new();
        let mut rng = rand::thread_rng();

        // P-256: a RustCrypto key imported here.
        let secret = p256::ecdsa::SigningKey::random(&mut rng);
        let public = p256::ecdsa::VerifyingKey::from(&secret);
        let alg = ecdsa(Hash::Sha256);
        import(
            &f,
            "p256",
            attrs(secp_r1_pair(), 256, alg, sign_verify()),
            &secret.to_bytes(),
        );
        let point = public.to_encoded_point(false);
        assert_eq!(f.export_public("p256"), point.as_bytes());
        let hash = sha256(b"known answer");
        let ours = f.try_sign("p256", alg, &hash).expect("signed");
        let ours = p256::ecdsa::Signature::from_slice(&ours).expect("r || s");
        public
            .verify_prehash(&hash, &ours)
            .expect("RustCrypto verifies ours");
        let theirs: p256::ecdsa::Signature = secret.sign_prehash(&hash).expect("signed");
        f.try_verify("p256", alg, &hash, &theirs.to_bytes())
            .expect("we verify RustCrypto's");

        // P-384: a key generated here, exported.
        let alg = ecdsa(Hash::Sha384);
        let usage = exportable(sign_verify());
        f.generate("p384", attrs(secp_r1_pair(), 384, alg, usage));
        let secret = p384::ecdsa::SigningKey::from_slice(&f.try_export("p384").expect("exported"))
            .expect("P-384 scalar");
        let public = p384::ecdsa::VerifyingKey::from_sec1_bytes(&f.export_public("p384"))
            .expect("P-384 point");
        assert_eq!(p384::ecdsa::VerifyingKey::from(&secret), public);
        let hash = {
            use sha2::Digest;
            sha2::Sha384::digest(b"known answer").to_vec()
        };
        let ours = f.try_sign("p384", alg, &hash).expect("signed");
        let ours = p384::ecdsa::Signature::from_slice(&ours).expect("r || s");
        public
            .verify_prehash(&hash, &ours)
            .expect("RustCrypto verifies ours");
        let theirs: p384::ecdsa::Signature = secret.sign_prehash(&hash).expect("signed");
        f.try_verify("p384", alg, &hash, &theirs.to_bytes())
            .expect("we verify RustCrypto's");
    }

    #[test]
    fn rsa_signatures_and_encryption() {
        use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
        use rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};
        let f = Fixture::new();
        let mut rng = rand::thread_rng();
        let usage = flags(|u| {
            u.set_sign_hash()
                .set_verify_hash()
                .set_encrypt()
                .set_decrypt()
                .set_export();
        });
        let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha256.into(),
        };
        f.generate("v15", attrs(Type::RsaKeyPair, 1024, v15, usage));
        let private = rsa::RsaPrivateKey::from_pkcs1_der(&f.try_export("v15").expect("exported"))
            .expect("PKCS#1 RSAPrivateKey");
        let public = rsa::RsaPublicKey::from_pkcs1_der(&f.export_public("v15"))
            .expect("PKCS#1 RSAPublicKey");
        assert_eq!(private.to_public_key(), public);
        let hash = sha256(b"known answer");
        let ours = f.try_sign("v15", v15, &hash).expect("signed");
        let theirs = private
            .sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &hash)
            .expect("signed");
        assert_eq!(ours, theirs, "PKCS#1 v1.5 signatures are deterministic");
        f.try_verify("v15", v15, &hash, &theirs).expect("verified");

        // PSS with a key made by the rsa crate's own key, imported.
        let pss = AsymmetricSignature::RsaPss {
            hash_alg: Hash::Sha256.into(),
        };
        let der = f.try_export("v15").expect("exported");
        import(&f, "pss", attrs(Type::RsaKeyPair, 0, pss, usage), &der);
        let ours = f.try_sign("pss", pss, &hash).expect("signed");
        public
            .verify(Pss::new::<sha2::Sha256>(), &hash, &ours)
            .expect("RustCrypto verifies our PSS");
        let theirs = private
            .sign_with_rng(&mut rng, Pss::new::<sha2::Sha256>(), &hash)
            .expect("signed");
        f.try_verify("pss", pss, &hash, &theirs)
            .expect("we verify RustCrypto's PSS");

        // OAEP with a label, and PKCS#1 v1.5 encryption, both ways.
        let oaep = AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        };
        let v15_crypt = AsymmetricEncryption::RsaPkcs1v15Crypt;
        import(&f, "oaep", attrs(Type::RsaKeyPair, 1024, oaep, usage), &der);
        import(
            &f,
            "v15c",
            attrs(Type::RsaKeyPair, 1024, v15_crypt, usage),
            &der,
        );
        for (name, alg, label) in [
            ("oaep", oaep, Some(b"label".to_vec())),
            ("v15c", v15_crypt, None),
        ] {
            let theirs = match alg {
                AsymmetricEncryption::RsaOaep { .. } => public
                    .encrypt(
                        &mut rng,
                        Oaep::new_with_label::<sha2::Sha256, _>("label"),
                        b"secret",
                    )
                    .expect("encrypted"),
                AsymmetricEncryption::RsaPkcs1v15Crypt => public
                    .encrypt(&mut rng, Pkcs1v15Encrypt, b"secret")
                    .expect("encrypted"),
            };
            let plaintext = f
                .call::<PsaAsymmetricDecrypt>(psa_asymmetric_decrypt::Request {
                    key_name: name.into(),
                    alg,
                    ciphertext: theirs,
                    salt: label.clone(),
                })
                .expect("decrypted")
                .plaintext;
            assert_eq!(&plaintext[..], b"secret");
            let ours = f
                .call::<PsaAsymmetricEncrypt>(psa_asymmetric_encrypt::Request {
                    key_name: name.into(),
                    alg,
                    plaintext: SecretBytes::from(&b"secret"[..]),
                    salt: label,
                })
                .expect("encrypted")
                .ciphertext;
            let plaintext = match alg {
                AsymmetricEncryption::RsaOaep { .. } => {
                    private.decrypt(Oaep::new_with_label::<sha2::Sha256, _>("label"), &ours)
                }
                AsymmetricEncryption::RsaPkcs1v15Crypt => private.decrypt(Pkcs1v15Encrypt, &ours),
            }
            .expect("RustCrypto decrypts ours");
            assert_eq!(plaintext, b"secret");
        }
    }

    #[test]
    fn aead_matches_rustcrypto() {
        use aes_gcm::aead::{Aead as _, KeyInit, Payload};
        let f = Fixture::new();
        let key = [0x42; 32];
        let nonce = [0x24; 12];
        let payload = || Payload {
            msg: b"the plaintext",
            aad: b"the header",
        };
        let ours = |name: &str, alg: Aead, nonce: &[u8]| {
            f.call::<PsaAeadEncrypt>(psa_aead_encrypt::Request {
                key_name: name.into(),
                alg,
                nonce: nonce.to_vec(),
                additional_data: b"the header".to_vec(),
                plaintext: SecretBytes::from(&b"the plaintext"[..]),
            })
            .expect("encrypted")
            .ciphertext
        };
        let open = |name: &str, alg: Aead, nonce: &[u8], ciphertext: Vec<u8>| {
            f.call::<PsaAeadDecrypt>(psa_aead_decrypt::Request {
                key_name: name.into(),
                alg,
                nonce: nonce.to_vec(),
                additional_data: b"the header".to_vec(),
                ciphertext,
            })
            .expect("decrypted")
            .plaintext
            .to_vec()
        };

        let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
        import(
            &f,
            "gcm",
            attrs(Type::Aes, 256, gcm, encrypt_decrypt()),
            &key,
        );
        let theirs = aes_gcm::Aes256Gcm::new_from_slice(&key)
            .expect("key")
            .encrypt(&nonce.into(), payload())
            .expect("encrypted");
        assert_eq!(ours("gcm", gcm, &nonce), theirs);
        assert_eq!(open("gcm", gcm, &nonce, theirs), b"the plaintext");

        let ccm_alg = Aead::AeadWithShortenedTag {
            aead_alg: AeadWithDefaultLengthTag::Ccm,
            tag_length: 8,
        };
        import(
            &f,
            "ccm",
            attrs(Type::Aes, 128, ccm_alg, encrypt_decrypt()),
            &key[..16],
        );
        type Ccm = ccm::Ccm<aes::Aes128, ccm::consts::U8, ccm::consts::U13>;
        let ccm_nonce = [0x11; 13];
        let theirs = <Ccm as KeyInit>::new_from_slice(&key[..16])
            .expect("key")
            .encrypt(&ccm_nonce.into(), payload())
            .expect("encrypted");
        assert_eq!(ours("ccm", ccm_alg, &ccm_nonce), theirs);
        assert_eq!(open("ccm", ccm_alg, &ccm_nonce, theirs), b"the plaintext");

        let chacha = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Chacha20Poly1305);
        import(
            &f,
            "chacha",
            attrs(Type::Chacha20, 256, chacha, encrypt_decrypt()),
            &key,
        );
        let theirs = chacha20poly1305::ChaCha20Poly1305::new_from_slice(&key)
            .expect("key")
            .encrypt(&nonce.into(), payload())
            .expect("encrypted");
        assert_eq!(ours("chacha", chacha, &nonce), theirs);
        assert_eq!(open("chacha", chacha, &nonce, theirs), b"the plaintext");
    }

    #[test]
    fn macs_hashes_and_block_ciphers_match_rustcrypto() {
        use aes::cipher::{BlockEncrypt, KeyInit};
        use hmac::Mac as _;
        let f = Fixture::new();
        let key = [0x0b; 32];
        let mac_usage = flags(|u| {
            u.set_sign_message().set_verify_message();
        });
        let mac = |name: &str, alg: Mac| {
            f.call::<PsaMacCompute>(psa_mac_compute::Request {
                key_name: name.into(),
                alg,
                input: b"data to authenticate".to_vec(),
            })
            .expect("computed")
            .mac
        };
        let hmac = Mac::FullLength(FullLengthMac::Hmac {
            hash_alg: Hash::Sha256,
        });
        import(&f, "hmac", attrs(Type::Hmac, 0, hmac, mac_usage), &key);
        let mut theirs =
            <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).expect("key");
        theirs.update(b"data to authenticate");
        assert_eq!(mac("hmac", hmac), theirs.finalize().into_bytes().to_vec());

        let cmac = Mac::FullLength(FullLengthMac::Cmac);
        import(
            &f,
            "cmac",
            attrs(Type::Aes, 128, cmac, mac_usage),
            &key[..16],
        );
        let mut theirs =
            <cmac::Cmac<aes::Aes128> as cmac::Mac>::new_from_slice(&key[..16]).expect("key");
        cmac::Mac::update(&mut theirs, b"data to authenticate");
        assert_eq!(
            mac("cmac", cmac),
            cmac::Mac::finalize(theirs).into_bytes().to_vec()
        );

        {
            use sha2::Digest;
            for (alg, theirs) in [
                (Hash::Sha224, sha2::Sha224::digest(b"abc").to_vec()),
                (Hash::Sha256, sha2::Sha256::digest(b"abc").to_vec()),
                (Hash::Sha384, sha2::Sha384::digest(b"abc").to_vec()),
                (Hash::Sha512, sha2::Sha512::digest(b"abc").to_vec()),
                (Hash::Sha512_256, sha2::Sha512_256::digest(b"abc").to_vec()),
            ] {
                assert_eq!(digest(&f, alg, b"abc"), theirs, "{alg:?}");
            }
        }

        // ECB and CBC without padding, chained by hand on the AES block cipher.
        let block = aes::Aes128::new_from_slice(&key[..16]).expect("key");
        let encrypt_block = |input: [u8; 16]| {
            let mut block_data = aes::Block::from(input);
            block.encrypt_block(&mut block_data);
            <[u8; 16]>::from(block_data)
        };
        let plaintext = [0x61; 32];
        import(
            &f,
            "aes",
            attrs(Type::Aes, 128, Cipher::EcbNoPadding, encrypt_decrypt()),
            &key[..16],
        );
        let ecb = cipher_encrypt(&f, Cipher::EcbNoPadding, &plaintext);
        let first = encrypt_block([0x61; 16]);
        assert_eq!(ecb, [first, first].concat());
        f.destroy("aes").expect("destroyed");
        import(
            &f,
            "aes",
            attrs(Type::Aes, 128, Cipher::CbcNoPadding, encrypt_decrypt()),
            &key[..16],
        );
        let cbc = cipher_encrypt(&f, Cipher::CbcNoPadding, &plaintext);
        let (iv, data) = cbc.split_at(16);
        let mut chained = [0; 16];
        for (c, (p, v)) in chained.iter_mut().zip(plaintext.iter().zip(iv)) {
            *c = p ^ v;
        }
        let c1 = encrypt_block(chained);
        for (c, (p, v)) in chained.iter_mut().zip(plaintext[16..].iter().zip(&c1)) {
            *c = p ^ v;
        }
        let c2 = encrypt_block(chained);
        assert_eq!(data, [c1, c2].concat());
    }

    #[test]
    fn ecdh_matches_rustcrypto() {
        let f = Fixture::new();
        let mut rng = rand::thread_rng();
        let derive = flags(|u| {
            u.set_derive();
        });
        let alg = KeyAgreement::Raw(RawKeyAgreement::Ecdh);
        f.generate("ours", attrs(secp_r1_pair(), 256, alg, derive));
        let theirs = p256::SecretKey::random(&mut rng);
        let their_public = theirs.public_key();
        let ours_public =
            p256::PublicKey::from_sec1_bytes(&f.export_public("ours")).expect("P-256 point");
        let secret = f
            .call::<PsaRawKeyAgreement>(psa_raw_key_agreement::Request {
                alg: RawKeyAgreement::Ecdh,
                private_key_name: "ours".into(),
                peer_key: p256::EncodedPoint::from(their_public).as_bytes().to_vec(),
            })
            .expect("agreed")
            .shared_secret;
        let expected =
            p256::ecdh::diffie_hellman(theirs.to_nonzero_scalar(), ours_public.as_affine());
        assert_eq!(&secret[..], &expected.raw_secret_bytes()[..]);
    }
}

// ---------------------------------------------------------------------------------------------
// Same answers as the Mbed Crypto provider
// ---------------------------------------------------------------------------------------------

mod against_mbed {
    //! The same requests sent to both providers, on keys with the same material: the statuses
    //! must be the same, and so must every output that is not random (exports, hashes, MACs,
    //! PKCS#1 v1.5 signatures, AEAD ciphertexts, ECDH secrets); what one provider signs or
    //! encrypts, the other verifies or decrypts.
    //!
    //! Mbed TLS keeps keys in files in the working directory, which the Mbed provider's own
    //! tests set once for the whole test process; this test therefore runs in a child process
    //! of its own, in a temporary directory.

    use std::cell::RefCell;
    use std::process::Command;

    use super::*;
    use crate::providers::mbed::MbedProvider;

    const CHILD: &str = "BULWARK_OPENSSL_VS_MBED_CHILD";

    /// Both providers on one store, for one application.
    struct Pair {
        store: KeyStore,
        mbed: Arc<MbedProvider>,
        ossl: Arc<OpenSslProvider>,
        identity: Identity,
        settings: ProviderSettings,
        mismatches: RefCell<Vec<String>>,
        checks: RefCell<usize>,
        _dir: tempfile::TempDir,
    }

    type Outcome<T> = Result<T, ResponseStatus>;

    impl Pair {
        fn new() -> Pair {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = KeyStore::open_in_memory().expect("store");
            Pair {
                mbed: Arc::new(MbedProvider::new("mbed".to_owned()).expect("Mbed TLS starts")),
                ossl: provider_in(dir.path(), &store),
                store,
                identity: Identity {
                    name: "app".to_owned(),
                    auth_type: AuthType::Direct,
                    is_admin: false,
                },
                settings: ProviderSettings {
                    allow_deprecated: true,
                    ..ProviderSettings::default()
                },
                mismatches: RefCell::new(Vec::new()),
                checks: RefCell::new(0),
                _dir: dir,
            }
        }

        /// Sends `request` to both providers.
        fn both<O: Operation<Key: Resolve>>(
            &self,
            request: O::Request,
        ) -> (Outcome<O::Response>, Outcome<O::Response>)
        where
            MbedProvider: Handles<O>,
            OpenSslProvider: Handles<O>,
            O::Request: Clone,
        {
            let ctx = RequestContext::new(Some(&self.identity), &self.store, &self.settings);
            let mbed =
                serve::<O, MbedProvider>(&self.mbed, ProviderId::MbedCrypto, &ctx, request.clone())
                    .map_err(|e| ResponseStatus::from(&e));
            let ossl =
                serve::<O, OpenSslProvider>(&self.ossl, ProviderId::MbedCrypto, &ctx, request)
                    .map_err(|e| ResponseStatus::from(&e));
            (mbed, ossl)
        }

        /// One provider only.
        fn one<O: Operation<Key: Resolve>, P: Handles<O>>(
            &self,
            provider: &P,
            request: O::Request,
        ) -> Outcome<O::Response> {
            let ctx = RequestContext::new(Some(&self.identity), &self.store, &self.settings);
            serve::<O, P>(provider, ProviderId::MbedCrypto, &ctx, request)
                .map_err(|e| ResponseStatus::from(&e))
        }

        /// Records a mismatch unless the statuses agree; returns both responses.
        fn same<O: Operation<Key: Resolve>>(
            &self,
            what: &str,
            request: O::Request,
        ) -> (Option<O::Response>, Option<O::Response>)
        where
            MbedProvider: Handles<O>,
            OpenSslProvider: Handles<O>,
            O::Request: Clone,
        {
            let (mbed, ossl) = self.both::<O>(request);
            self.agree(what, mbed.as_ref().err(), ossl.as_ref().err());
            (mbed.ok(), ossl.ok())
        }

        fn agree<T: PartialEq + Debug>(&self, what: &str, mbed: T, ossl: T) {
            *self.checks.borrow_mut() += 1;
            if mbed != ossl {
                self.mismatches
                    .borrow_mut()
                    .push(format!("{what}: mbed {mbed:?}, openssl {ossl:?}"));
            }
        }

        fn generate(&self, name: &str, attributes: Attributes) {
            self.same::<PsaGenerateKey>(
                &format!("generate {name} {attributes:?}"),
                psa_generate_key::Request {
                    key_name: name.to_owned(),
                    attributes,
                },
            );
        }

        fn import(&self, name: &str, attributes: Attributes, data: &[u8]) -> bool {
            let (a, b) = self.same::<PsaImportKey>(
                &format!("import {name} {attributes:?} ({} bytes)", data.len()),
                psa_import_key::Request {
                    key_name: name.to_owned(),
                    attributes,
                    data: SecretBytes::from(data),
                },
            );
            a.is_some() && b.is_some()
        }

        /// Key `name` exported from the Mbed provider.
        fn mbed_export(&self, name: &str) -> Vec<u8> {
            self.one::<PsaExportKey, _>(
                &*self.mbed,
                psa_export_key::Request {
                    key_name: name.into(),
                },
            )
            .expect("Mbed export")
            .data
            .to_vec()
        }

        /// Exports (key and public) must agree, bytes included.
        fn compare_exports(&self, name: &str) {
            let (a, b) = self.same::<PsaExportKey>(
                &format!("export {name}"),
                psa_export_key::Request {
                    key_name: name.into(),
                },
            );
            if let (Some(a), Some(b)) = (a, b) {
                self.agree(
                    &format!("exported bytes of {name}"),
                    a.data.to_vec(),
                    b.data.to_vec(),
                );
            }
            let (a, b) = self.same::<PsaExportPublicKey>(
                &format!("export public {name}"),
                psa_export_public_key::Request {
                    key_name: name.into(),
                },
            );
            if let (Some(a), Some(b)) = (a, b) {
                self.agree(&format!("public bytes of {name}"), a.data, b.data);
            }
        }

        fn destroy(&self, name: &str) {
            let _ = self.both::<PsaDestroyKey>(psa_destroy_key::Request {
                key_name: name.into(),
            });
        }

        /// Generates an exportable key in Mbed and imports its material into both providers
        /// under `name`; `None` if Mbed cannot make it.
        fn shared_key(&self, name: &str, attributes: Attributes) -> Option<Vec<u8>> {
            let mut exportable = attributes;
            exportable.policy.usage_flags.set_export();
            let seed = format!("{name}-seed");
            let ctx = RequestContext::new(Some(&self.identity), &self.store, &self.settings);
            serve::<PsaGenerateKey, MbedProvider>(
                &self.mbed,
                ProviderId::MbedCrypto,
                &ctx,
                psa_generate_key::Request {
                    key_name: seed.clone(),
                    attributes: exportable,
                },
            )
            .ok()?;
            let material = self.mbed_export(&seed);
            let _ = self
                .one::<PsaDestroyKey, _>(&*self.mbed, psa_destroy_key::Request { key_name: seed });
            assert!(
                self.import(name, exportable, &material),
                "shared key {name}"
            );
            Some(material)
        }
    }

    fn usage(names: &str) -> UsageFlags {
        flags(|f| {
            for name in names.split_whitespace() {
                match name {
                    "sign" => {
                        f.set_sign_hash().set_sign_message();
                    }
                    "verify" => {
                        f.set_verify_hash().set_verify_message();
                    }
                    "encrypt" => {
                        f.set_encrypt();
                    }
                    "decrypt" => {
                        f.set_decrypt();
                    }
                    "derive" => {
                        f.set_derive();
                    }
                    "export" => {
                        f.set_export();
                    }
                    "mac" => {
                        f.set_sign_message().set_verify_message();
                    }
                    other => panic!("flag {other}"),
                }
            }
        })
    }

    fn ecc_pair(family: EccFamily) -> Type {
        Type::EccKeyPair {
            curve_family: family,
        }
    }

    fn ecc_public(family: EccFamily) -> Type {
        Type::EccPublicKey {
            curve_family: family,
        }
    }

    #[allow(deprecated)]
    fn key_creation(p: &Pair) {
        let mut n = 0;
        let mut name = || {
            n += 1;
            format!("gen-{n}")
        };
        let sign = AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha256.into(),
        };
        for bits in [0, 512, 1000, 1024, 1536, 2048, 3072] {
            p.generate(&name(), attrs(Type::RsaKeyPair, bits, sign, usage("sign")));
        }
        p.generate(
            &name(),
            attrs(Type::RsaPublicKey, 2048, sign, usage("verify")),
        );
        let es = ecdsa(Hash::Sha256);
        let curves: &[(EccFamily, &[usize])] = &[
            (
                EccFamily::SecpR1,
                &[0, 192, 224, 256, 284, 383, 384, 512, 521],
            ),
            (EccFamily::SecpK1, &[0, 192, 224, 225, 256]),
            (
                EccFamily::BrainpoolPR1,
                &[0, 160, 192, 224, 256, 320, 384, 512, 100],
            ),
            (EccFamily::SecpR2, &[160]),
            (EccFamily::SectK1, &[233, 163]),
            (EccFamily::SectR1, &[233]),
            (EccFamily::Frp, &[256]),
        ];
        for (family, sizes) in curves {
            for &bits in *sizes {
                p.generate(
                    &name(),
                    attrs(ecc_pair(*family), bits, es, usage("sign verify")),
                );
            }
        }
        let ecdh = KeyAgreement::Raw(RawKeyAgreement::Ecdh);
        for bits in [0, 255, 256, 448] {
            p.generate(
                &name(),
                attrs(ecc_pair(EccFamily::Montgomery), bits, ecdh, usage("derive")),
            );
        }
        p.generate(
            &name(),
            attrs(ecc_public(EccFamily::SecpR1), 256, es, usage("verify")),
        );
        let ctr = Cipher::Ctr;
        for (key_type, sizes) in [
            (Type::Aes, &[0, 64, 128, 192, 256, 512][..]),
            (Type::Camellia, &[128, 256, 100][..]),
            (Type::Chacha20, &[0, 128, 256][..]),
        ] {
            for &bits in sizes {
                let alg: Algorithm = if key_type == Type::Chacha20 {
                    Cipher::StreamCipher.into()
                } else {
                    ctr.into()
                };
                p.generate(
                    &name(),
                    attrs(key_type, bits, alg, usage("encrypt decrypt")),
                );
            }
        }
        for (key_type, bits) in [
            (Type::RawData, 0),
            (Type::RawData, 8),
            (Type::RawData, 100),
            (Type::RawData, 256),
            (Type::RawData, 65528),
            (Type::RawData, 65536),
            (Type::Hmac, 256),
            (Type::Hmac, 0),
            (Type::Derive, 256),
            (Type::Des, 64),
            (Type::Des, 192),
            (Type::Arc4, 128),
        ] {
            p.generate(
                &name(),
                attrs(key_type, bits, Algorithm::None, UsageFlags::default()),
            );
        }
        // The name is taken: AlreadyExists before the type is looked at.
        p.generate("gen-1", attrs(Type::Aes, 128, ctr, usage("encrypt")));
        p.generate(
            "gen-1",
            attrs(ecc_pair(EccFamily::Frp), 256, es, usage("sign")),
        );
    }

    /// Import checks, and exports of what was imported.
    #[allow(deprecated)]
    fn key_import(p: &Pair) {
        let es = ecdsa(Hash::Sha256);
        // Weierstrass keys of every curve both may support.
        for (family, bits) in [
            (EccFamily::SecpR1, 192),
            (EccFamily::SecpR1, 224),
            (EccFamily::SecpR1, 256),
            (EccFamily::SecpR1, 384),
            (EccFamily::SecpR1, 521),
            (EccFamily::SecpK1, 192),
            (EccFamily::SecpK1, 256),
            (EccFamily::BrainpoolPR1, 256),
            (EccFamily::BrainpoolPR1, 384),
            (EccFamily::BrainpoolPR1, 512),
        ] {
            let tag = format!("{family:?}-{bits}");
            let pair = attrs(ecc_pair(family), bits, es, usage("sign verify export"));
            let Some(private) = p.shared_key(&format!("imp-{tag}"), pair) else {
                continue;
            };
            p.compare_exports(&format!("imp-{tag}"));
            let public = p
                .one::<PsaExportPublicKey, _>(
                    &*p.mbed,
                    psa_export_public_key::Request {
                        key_name: format!("imp-{tag}"),
                    },
                )
                .expect("public")
                .data;
            let unsized_pair = attrs(ecc_pair(family), 0, es, usage("sign verify export"));
            p.import(&format!("imp0-{tag}"), unsized_pair, &private);
            p.compare_exports(&format!("imp0-{tag}"));
            let public_type = attrs(ecc_public(family), bits, es, usage("verify export"));
            p.import(&format!("pub-{tag}"), public_type, &public);
            p.compare_exports(&format!("pub-{tag}"));
            let unsized_public = attrs(ecc_public(family), 0, es, usage("verify"));
            p.import(&format!("pub0-{tag}"), unsized_public, &public);
            // Malformed data.
            let mut variants: Vec<(&str, Vec<u8>, Attributes)> = vec![
                ("short", private[1..].to_vec(), pair),
                ("short unsized", private[1..].to_vec(), unsized_pair),
                ("long", [&private[..], &[0]].concat(), pair),
                ("zero", vec![0; private.len()], pair),
                ("ones", vec![0xff; private.len()], pair),
                (
                    "public short",
                    public[..public.len() - 1].to_vec(),
                    public_type,
                ),
                (
                    "public short unsized",
                    public[..public.len() - 1].to_vec(),
                    unsized_public,
                ),
                ("public long", [&public[..], &[0]].concat(), public_type),
                ("public 0x05", [&[5], &public[1..]].concat(), public_type),
                ("public 0x00", vec![0], public_type),
                ("public empty", vec![], public_type),
                ("private empty", vec![], pair),
            ];
            let half = (public.len() - 1) / 2;
            let mut compressed = vec![2 + (public[public.len() - 1] & 1)];
            compressed.extend_from_slice(&public[1..=half]);
            variants.push(("public compressed", compressed.clone(), unsized_public));
            variants.push(("public compressed sized", compressed, public_type));
            let mut off_curve = public.clone();
            let last = off_curve.len() - 1;
            off_curve[last] ^= 1;
            variants.push(("public off curve", off_curve, public_type));
            for (what, data, attributes) in variants {
                p.import(&format!("bad-{tag}-{what}"), attributes, &data);
            }
        }
        // Montgomery keys: clamping on import.
        let ecdh = KeyAgreement::Raw(RawKeyAgreement::Ecdh);
        for (bits, len) in [(255, 32), (448, 56)] {
            let pair = attrs(
                ecc_pair(EccFamily::Montgomery),
                bits,
                ecdh,
                usage("derive export"),
            );
            let unclamped = vec![0xff; len];
            p.import(&format!("mont-{bits}"), pair, &unclamped);
            p.compare_exports(&format!("mont-{bits}"));
            let unsized_pair = attrs(
                ecc_pair(EccFamily::Montgomery),
                0,
                ecdh,
                usage("derive export"),
            );
            p.import(
                &format!("mont0-{bits}"),
                unsized_pair,
                &[0x11; 32][..len.min(32)],
            );
            p.compare_exports(&format!("mont0-{bits}"));
            p.import(&format!("mont-short-{bits}"), pair, &vec![1; len - 1]);
            let public = attrs(
                ecc_public(EccFamily::Montgomery),
                bits,
                ecdh,
                usage("derive export"),
            );
            p.import(&format!("mont-pub-{bits}"), public, &vec![9; len]);
            p.compare_exports(&format!("mont-pub-{bits}"));
        }
        // RSA.
        let sign = AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha256.into(),
        };
        let pair = attrs(Type::RsaKeyPair, 2048, sign, usage("sign verify export"));
        let private = p.shared_key("rsa-imp", pair).expect("RSA key");
        p.compare_exports("rsa-imp");
        let public = p
            .one::<PsaExportPublicKey, _>(
                &*p.mbed,
                psa_export_public_key::Request {
                    key_name: "rsa-imp".into(),
                },
            )
            .expect("public")
            .data;
        let unsized_pair = attrs(Type::RsaKeyPair, 0, sign, usage("sign verify export"));
        let public_type = attrs(Type::RsaPublicKey, 2048, sign, usage("verify export"));
        let unsized_public = attrs(Type::RsaPublicKey, 0, sign, usage("verify export"));
        p.import("rsa-imp0", unsized_pair, &private);
        p.import("rsa-pub", public_type, &public);
        p.compare_exports("rsa-pub");
        p.import("rsa-pub0", unsized_public, &public);
        for (what, data, attributes) in [
            ("long", [&private[..], &[0]].concat(), pair),
            ("short", private[..private.len() - 1].to_vec(), pair),
            (
                "wrong bits",
                private.clone(),
                attrs(Type::RsaKeyPair, 4096, sign, usage("sign")),
            ),
            ("public as pair", public.clone(), pair),
            ("pair as public", private.clone(), public_type),
            ("public long", [&public[..], &[0]].concat(), public_type),
            ("empty", vec![], pair),
            ("junk", b"junk".to_vec(), unsized_pair),
            ("pkcs8", pkcs8(&private), unsized_pair),
            ("spki", spki(&public), unsized_public),
        ] {
            p.import(&format!("rsa-bad-{what}"), attributes, &data);
            p.compare_exports(&format!("rsa-bad-{what}"));
        }
        for bits in [512u32, 1536, 3072] {
            let rsa = ::openssl::rsa::Rsa::generate(bits).expect("RSA");
            let der = rsa.private_key_to_der().expect("DER");
            p.import(&format!("rsa-{bits}"), unsized_pair, &der);
            p.import(
                &format!("rsa-{bits}-sized"),
                attrs(Type::RsaKeyPair, bits as usize, sign, usage("sign")),
                &der,
            );
            let public = rsa.public_key_to_der_pkcs1().expect("DER");
            p.import(&format!("rsa-pub-{bits}"), unsized_public, &public);
        }
        // Symmetric keys.
        let ctr = Cipher::Ctr;
        for (key_type, len) in [
            (Type::Aes, 16),
            (Type::Aes, 20),
            (Type::Aes, 32),
            (Type::Camellia, 24),
            (Type::Chacha20, 32),
            (Type::Chacha20, 16),
            (Type::RawData, 1),
            (Type::RawData, 0),
            (Type::Hmac, 1),
            (Type::Hmac, 200),
            (Type::Derive, 48),
        ] {
            let alg: Algorithm = match key_type {
                Type::Chacha20 => Cipher::StreamCipher.into(),
                Type::Aes | Type::Camellia => ctr.into(),
                _ => Algorithm::None,
            };
            let name = format!("sym-{key_type:?}-{len}");
            p.import(
                &name,
                attrs(key_type, 0, alg, usage("encrypt decrypt export")),
                &vec![7; len],
            );
            p.compare_exports(&name);
            p.import(
                &format!("{name}-sized"),
                attrs(key_type, len * 8 + 8, alg, usage("export")),
                &vec![7; len],
            );
        }
        // Public export of a symmetric key; export without the flag.
        p.import(
            "no-export",
            attrs(Type::Aes, 128, ctr, usage("encrypt")),
            &[1; 16],
        );
        p.compare_exports("no-export");
        p.compare_exports("nowhere");
    }

    fn pkcs8(pkcs1: &[u8]) -> Vec<u8> {
        let rsa = ::openssl::rsa::Rsa::private_key_from_der(pkcs1).expect("PKCS#1");
        ::openssl::pkey::PKey::from_rsa(rsa)
            .and_then(|key| key.private_key_to_pkcs8())
            .expect("PKCS#8")
    }

    fn spki(pkcs1: &[u8]) -> Vec<u8> {
        ::openssl::rsa::Rsa::public_key_from_der_pkcs1(pkcs1)
            .and_then(|rsa| rsa.public_key_to_der())
            .expect("SubjectPublicKeyInfo")
    }

    #[allow(deprecated)]
    fn signatures(p: &Pair) {
        let cases: Vec<(&str, Attributes, Vec<AsymmetricSignature>)> = vec![
            (
                "rsa1024",
                attrs(
                    Type::RsaKeyPair,
                    1024,
                    AsymmetricSignature::RsaPkcs1v15Sign {
                        hash_alg: SignHash::Any,
                    },
                    usage("sign verify"),
                ),
                [
                    Hash::Sha1,
                    Hash::Sha256,
                    Hash::Sha512,
                    Hash::Sha3_256,
                    Hash::Ripemd160,
                    Hash::Md5,
                ]
                .into_iter()
                .map(|h| AsymmetricSignature::RsaPkcs1v15Sign { hash_alg: h.into() })
                .collect(),
            ),
            (
                "pss1024",
                attrs(
                    Type::RsaKeyPair,
                    1024,
                    AsymmetricSignature::RsaPss {
                        hash_alg: SignHash::Any,
                    },
                    usage("sign verify"),
                ),
                [Hash::Sha256, Hash::Sha384, Hash::Sha512]
                    .into_iter()
                    .map(|h| AsymmetricSignature::RsaPss { hash_alg: h.into() })
                    .collect(),
            ),
            (
                "raw2048",
                attrs(
                    Type::RsaKeyPair,
                    2048,
                    AsymmetricSignature::RsaPkcs1v15SignRaw,
                    usage("sign verify"),
                ),
                vec![AsymmetricSignature::RsaPkcs1v15SignRaw],
            ),
            (
                "p256",
                attrs(
                    secp_r1_pair(),
                    256,
                    AsymmetricSignature::Ecdsa {
                        hash_alg: SignHash::Any,
                    },
                    usage("sign verify"),
                ),
                [Hash::Sha256, Hash::Sha384, Hash::Sha512, Hash::Sha1]
                    .into_iter()
                    .map(ecdsa)
                    .collect(),
            ),
            (
                "p521any",
                attrs(
                    secp_r1_pair(),
                    521,
                    AsymmetricSignature::EcdsaAny,
                    usage("sign verify"),
                ),
                vec![AsymmetricSignature::EcdsaAny],
            ),
            (
                "k256",
                attrs(
                    Type::EccKeyPair {
                        curve_family: EccFamily::SecpK1,
                    },
                    256,
                    ecdsa(Hash::Sha256),
                    usage("sign verify"),
                ),
                vec![ecdsa(Hash::Sha256)],
            ),
            (
                "bp384",
                attrs(
                    Type::EccKeyPair {
                        curve_family: EccFamily::BrainpoolPR1,
                    },
                    384,
                    ecdsa(Hash::Sha384),
                    usage("sign verify"),
                ),
                vec![ecdsa(Hash::Sha384)],
            ),
        ];
        for (name, attributes, algs) in cases {
            if p.shared_key(name, attributes).is_none() {
                continue;
            }
            for alg in algs {
                let hash_lens: Vec<usize> = match alg.hash() {
                    Some(SignHash::Specific(h)) => vec![h.hash_length(), h.hash_length() + 1, 0],
                    _ => vec![0, 1, 20, 32, 35, 64, 66, 100, 245, 246, 300],
                };
                for len in hash_lens {
                    let hash: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
                    let what = format!("sign {name} {alg:?} hash {len}");
                    let (a, b) = p.same::<PsaSignHash>(
                        &what,
                        psa_sign_hash::Request {
                            key_name: name.into(),
                            alg,
                            hash: hash.clone(),
                        },
                    );
                    let (Some(a), Some(b)) = (a, b) else { continue };
                    if matches!(
                        alg,
                        AsymmetricSignature::RsaPkcs1v15Sign { .. }
                            | AsymmetricSignature::RsaPkcs1v15SignRaw
                    ) {
                        p.agree(
                            &format!("{what}: deterministic signature"),
                            &a.signature,
                            &b.signature,
                        );
                    }
                    p.agree(
                        &format!("{what}: length"),
                        a.signature.len(),
                        b.signature.len(),
                    );
                    // Each verifies the other's signature, and refuses altered ones.
                    for (who, signature) in [("mbed's", &a.signature), ("openssl's", &b.signature)]
                    {
                        let verify = |signature: Vec<u8>, hash: Vec<u8>| psa_verify_hash::Request {
                            key_name: name.into(),
                            alg,
                            hash,
                            signature,
                        };
                        let (x, y) = p.same::<PsaVerifyHash>(
                            &format!("verify {who} {what}"),
                            verify(signature.clone(), hash.clone()),
                        );
                        p.agree(&format!("verify {who} {what} ok"), x.is_some(), true);
                        let _ = y;
                        let mut flipped = signature.clone();
                        flipped[0] ^= 0x01;
                        p.same::<PsaVerifyHash>(
                            &format!("verify flipped {who} {what}"),
                            verify(flipped, hash.clone()),
                        );
                        p.same::<PsaVerifyHash>(
                            &format!("verify short {who} {what}"),
                            verify(signature[1..].to_vec(), hash.clone()),
                        );
                        p.same::<PsaVerifyHash>(
                            &format!("verify zero {who} {what}"),
                            verify(vec![0; signature.len()], hash.clone()),
                        );
                        p.same::<PsaVerifyHash>(
                            &format!("verify ones {who} {what}"),
                            verify(vec![0xff; signature.len()], hash.clone()),
                        );
                    }
                }
                // Messages.
                let (a, _) = p.same::<PsaSignMessage>(
                    &format!("sign message {name} {alg:?}"),
                    psa_sign_message::Request {
                        key_name: name.into(),
                        alg,
                        message: b"message".to_vec(),
                    },
                );
                if let Some(a) = a {
                    p.same::<PsaVerifyMessage>(
                        &format!("verify message {name} {alg:?}"),
                        psa_verify_message::Request {
                            key_name: name.into(),
                            alg,
                            message: b"message".to_vec(),
                            signature: a.signature,
                        },
                    );
                }
            }
        }
        // Private operations on public keys.
        let public = p.one::<PsaExportPublicKey, _>(
            &*p.ossl,
            psa_export_public_key::Request {
                key_name: "p256".into(),
            },
        );
        if let Ok(public) = public {
            let attributes = attrs(
                Type::EccPublicKey {
                    curve_family: EccFamily::SecpR1,
                },
                256,
                ecdsa(Hash::Sha256),
                usage("sign verify"),
            );
            p.import("p256-public", attributes, &public.data);
            p.same::<PsaSignHash>(
                "sign with a public key",
                psa_sign_hash::Request {
                    key_name: "p256-public".into(),
                    alg: ecdsa(Hash::Sha256),
                    hash: vec![1; 32],
                },
            );
        }
        // A deterministic-ECDSA key: not supported here (recorded as a known difference).
        let det = AsymmetricSignature::DeterministicEcdsa {
            hash_alg: Hash::Sha256.into(),
        };
        if p.shared_key("det", attrs(secp_r1_pair(), 256, det, usage("sign verify")))
            .is_some()
        {
            p.same::<PsaSignHash>(
                "deterministic ECDSA",
                psa_sign_hash::Request {
                    key_name: "det".into(),
                    alg: det,
                    hash: vec![1; 32],
                },
            );
        }
    }

    #[allow(deprecated)]
    fn encryption(p: &Pair) {
        let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
        for (name, alg, bits) in [
            ("enc-v15", v15, 1024),
            (
                "enc-oaep256",
                AsymmetricEncryption::RsaOaep {
                    hash_alg: Hash::Sha256,
                },
                1024,
            ),
            (
                "enc-oaep512",
                AsymmetricEncryption::RsaOaep {
                    hash_alg: Hash::Sha512,
                },
                1024,
            ),
            (
                "enc-oaep1",
                AsymmetricEncryption::RsaOaep {
                    hash_alg: Hash::Sha1,
                },
                2048,
            ),
        ] {
            if p.shared_key(
                name,
                attrs(Type::RsaKeyPair, bits, alg, usage("encrypt decrypt")),
            )
            .is_none()
            {
                continue;
            }
            let k = bits / 8;
            for (label, len) in [
                (None, 1),
                (None, 16),
                (None, k - 11),
                (None, k - 10),
                (None, k - 66),
                (None, k - 65),
                (Some(b"label".to_vec()), 5),
            ] {
                let what = format!("encrypt {name} {len} label {label:?}");
                let (a, b) = p.same::<PsaAsymmetricEncrypt>(
                    &what,
                    psa_asymmetric_encrypt::Request {
                        key_name: name.into(),
                        alg,
                        plaintext: SecretBytes::from(vec![3; len]),
                        salt: label.clone(),
                    },
                );
                for (who, ciphertext) in [
                    ("mbed's", a.map(|r| r.ciphertext)),
                    ("openssl's", b.map(|r| r.ciphertext)),
                ] {
                    let Some(ciphertext) = ciphertext else {
                        continue;
                    };
                    let decrypt = |ciphertext: Vec<u8>, salt: Option<Vec<u8>>| {
                        psa_asymmetric_decrypt::Request {
                            key_name: name.into(),
                            alg,
                            ciphertext,
                            salt,
                        }
                    };
                    let (x, y) = p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt {who} {what}"),
                        decrypt(ciphertext.clone(), label.clone()),
                    );
                    if let (Some(x), Some(y)) = (x, y) {
                        p.agree(
                            &format!("decrypt {who} {what} plaintext"),
                            x.plaintext.to_vec(),
                            y.plaintext.to_vec(),
                        );
                    }
                    let mut flipped = ciphertext.clone();
                    flipped[k - 1] ^= 1;
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt flipped {who} {what}"),
                        decrypt(flipped, label.clone()),
                    );
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt other label {who} {what}"),
                        decrypt(ciphertext.clone(), Some(b"other".to_vec())),
                    );
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt short {who} {what}"),
                        decrypt(ciphertext[1..].to_vec(), label.clone()),
                    );
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt long {who} {what}"),
                        decrypt([&ciphertext[..], &[0]].concat(), label.clone()),
                    );
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt ≥ n {who} {what}"),
                        decrypt(vec![0xff; k], label.clone()),
                    );
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt zero {who} {what}"),
                        decrypt(vec![0; k], label.clone()),
                    );
                    p.same::<PsaAsymmetricDecrypt>(
                        &format!("decrypt one {who} {what}"),
                        decrypt([vec![0; k - 1], vec![1]].concat(), label.clone()),
                    );
                }
            }
        }
    }

    fn aead(p: &Pair) {
        let gcm = AeadWithDefaultLengthTag::Gcm;
        let ccm = AeadWithDefaultLengthTag::Ccm;
        let chacha = AeadWithDefaultLengthTag::Chacha20Poly1305;
        let mut cases = Vec::new();
        for (key_type, bits, base) in [
            (Type::Aes, 128, gcm),
            (Type::Aes, 256, ccm),
            (Type::Aes, 192, gcm),
            (Type::Chacha20, 256, chacha),
            (Type::Camellia, 128, gcm),
        ] {
            cases.push((key_type, bits, Aead::AeadWithDefaultLengthTag(base)));
            for tag_length in [0, 2, 3, 4, 5, 6, 8, 12, 13, 15, 16, 17] {
                cases.push((
                    key_type,
                    bits,
                    Aead::AeadWithShortenedTag {
                        aead_alg: base,
                        tag_length,
                    },
                ));
            }
        }
        for (i, (key_type, bits, alg)) in cases.into_iter().enumerate() {
            let name = format!("aead-{i}");
            if p.shared_key(&name, attrs(key_type, bits, alg, usage("encrypt decrypt")))
                .is_none()
            {
                continue;
            }
            for nonce_len in [1, 6, 7, 8, 12, 13, 16] {
                let nonce = vec![9; nonce_len];
                let what = format!("aead {key_type:?} {alg:?} nonce {nonce_len}");
                let (a, b) = p.same::<PsaAeadEncrypt>(
                    &what,
                    psa_aead_encrypt::Request {
                        key_name: name.clone(),
                        alg,
                        nonce: nonce.clone(),
                        additional_data: b"ad".to_vec(),
                        plaintext: SecretBytes::from(&b"plaintext of 25 bytes...."[..]),
                    },
                );
                if let (Some(a), Some(b)) = (&a, &b) {
                    p.agree(&format!("{what}: ciphertext"), &a.ciphertext, &b.ciphertext);
                }
                let Some(a) = a else { continue };
                let decrypt =
                    |ciphertext: Vec<u8>, additional_data: Vec<u8>| psa_aead_decrypt::Request {
                        key_name: name.clone(),
                        alg,
                        nonce: nonce.clone(),
                        additional_data,
                        ciphertext,
                    };
                let (x, y) = p.same::<PsaAeadDecrypt>(
                    &format!("{what}: decrypt"),
                    decrypt(a.ciphertext.clone(), b"ad".to_vec()),
                );
                if let (Some(x), Some(y)) = (x, y) {
                    p.agree(
                        &format!("{what}: plaintext"),
                        x.plaintext.to_vec(),
                        y.plaintext.to_vec(),
                    );
                }
                let mut flipped = a.ciphertext.clone();
                flipped[0] ^= 1;
                p.same::<PsaAeadDecrypt>(
                    &format!("{what}: flipped"),
                    decrypt(flipped, b"ad".to_vec()),
                );
                p.same::<PsaAeadDecrypt>(
                    &format!("{what}: other ad"),
                    decrypt(a.ciphertext.clone(), b"AD".to_vec()),
                );
                p.same::<PsaAeadDecrypt>(
                    &format!("{what}: no ad"),
                    decrypt(a.ciphertext.clone(), vec![]),
                );
                p.same::<PsaAeadDecrypt>(
                    &format!("{what}: 3 bytes"),
                    decrypt(a.ciphertext[..3].to_vec(), b"ad".to_vec()),
                );
                let tag_only = a.ciphertext[a.ciphertext.len() - 4..].to_vec();
                p.same::<PsaAeadDecrypt>(
                    &format!("{what}: 4 bytes"),
                    decrypt(tag_only, b"ad".to_vec()),
                );
            }
        }
    }

    fn ciphers(p: &Pair) {
        let algs = [
            Cipher::Ctr,
            Cipher::Cfb,
            Cipher::Ofb,
            Cipher::EcbNoPadding,
            Cipher::CbcNoPadding,
            Cipher::CbcPkcs7,
            Cipher::Xts,
        ];
        let mut i = 0;
        for (key_type, bits) in [(Type::Aes, 128), (Type::Aes, 256), (Type::Camellia, 192)] {
            for alg in algs {
                i += 1;
                let name = format!("cipher-{i}");
                if p.shared_key(&name, attrs(key_type, bits, alg, usage("encrypt decrypt")))
                    .is_none()
                {
                    continue;
                }
                for len in [1, 15, 16, 17, 32] {
                    let what = format!("cipher {key_type:?}-{bits} {alg:?} {len}");
                    let (a, b) = p.same::<PsaCipherEncrypt>(
                        &what,
                        psa_cipher_encrypt::Request {
                            key_name: name.clone(),
                            alg,
                            plaintext: SecretBytes::from(vec![0x42; len]),
                        },
                    );
                    if let (Some(a), Some(b)) = (&a, &b) {
                        p.agree(
                            &format!("{what}: length"),
                            a.ciphertext.len(),
                            b.ciphertext.len(),
                        );
                    }
                    for (who, ciphertext) in [
                        ("mbed's", a.map(|r| r.ciphertext)),
                        ("openssl's", b.map(|r| r.ciphertext)),
                    ] {
                        let Some(ciphertext) = ciphertext else {
                            continue;
                        };
                        let decrypt = |ciphertext: Vec<u8>| psa_cipher_decrypt::Request {
                            key_name: name.clone(),
                            alg,
                            ciphertext,
                        };
                        let (x, y) = p.same::<PsaCipherDecrypt>(
                            &format!("{what}: decrypt {who}"),
                            decrypt(ciphertext.clone()),
                        );
                        if let (Some(x), Some(y)) = (x, y) {
                            p.agree(
                                &format!("{what}: plaintext {who}"),
                                x.plaintext.to_vec(),
                                y.plaintext.to_vec(),
                            );
                            p.agree(
                                &format!("{what}: plaintext {who} is the original"),
                                y.plaintext.to_vec(),
                                vec![0x42; len],
                            );
                        }
                        let mut flipped = ciphertext.clone();
                        let last = flipped.len() - 1;
                        flipped[last] ^= 0x10;
                        p.same::<PsaCipherDecrypt>(
                            &format!("{what}: flipped {who}"),
                            decrypt(flipped),
                        );
                        p.same::<PsaCipherDecrypt>(
                            &format!("{what}: less one {who}"),
                            decrypt(ciphertext[..last].to_vec()),
                        );
                        p.same::<PsaCipherDecrypt>(
                            &format!("{what}: 15 {who}"),
                            decrypt(ciphertext[..15.min(last)].to_vec()),
                        );
                        p.same::<PsaCipherDecrypt>(
                            &format!("{what}: 16 {who}"),
                            decrypt(ciphertext[..16.min(last)].to_vec()),
                        );
                    }
                }
            }
        }
        let stream = Cipher::StreamCipher;
        if p.shared_key(
            "chacha",
            attrs(Type::Chacha20, 256, stream, usage("encrypt decrypt")),
        )
        .is_some()
        {
            let (a, _) = p.same::<PsaCipherEncrypt>(
                "chacha20",
                psa_cipher_encrypt::Request {
                    key_name: "chacha".into(),
                    alg: stream,
                    plaintext: SecretBytes::from(vec![1; 100]),
                },
            );
            if let Some(a) = a {
                let (x, y) = p.same::<PsaCipherDecrypt>(
                    "chacha20 decrypt",
                    psa_cipher_decrypt::Request {
                        key_name: "chacha".into(),
                        alg: stream,
                        ciphertext: a.ciphertext.clone(),
                    },
                );
                if let (Some(x), Some(y)) = (x, y) {
                    p.agree(
                        "chacha20 plaintext",
                        x.plaintext.to_vec(),
                        y.plaintext.to_vec(),
                    );
                }
                p.same::<PsaCipherDecrypt>(
                    "chacha20 short",
                    psa_cipher_decrypt::Request {
                        key_name: "chacha".into(),
                        alg: stream,
                        ciphertext: a.ciphertext[..11].to_vec(),
                    },
                );
            }
        }
    }

    #[allow(deprecated)]
    fn macs(p: &Pair) {
        let mut i = 0;
        let mut cases: Vec<(Type, usize, Mac)> = Vec::new();
        #[allow(deprecated)]
        for hash_alg in [
            Hash::Md5,
            Hash::Sha1,
            Hash::Sha224,
            Hash::Sha256,
            Hash::Sha384,
            Hash::Sha512,
            Hash::Sha3_256,
            Hash::Ripemd160,
            Hash::Sha512_256,
        ] {
            cases.push((
                Type::Hmac,
                256,
                Mac::FullLength(FullLengthMac::Hmac { hash_alg }),
            ));
        }
        for mac_length in [0, 1, 3, 4, 16, 32, 33] {
            cases.push((
                Type::Hmac,
                8,
                Mac::Truncated {
                    mac_alg: FullLengthMac::Hmac {
                        hash_alg: Hash::Sha256,
                    },
                    mac_length,
                },
            ));
            cases.push((
                Type::Aes,
                128,
                Mac::Truncated {
                    mac_alg: FullLengthMac::Cmac,
                    mac_length,
                },
            ));
        }
        cases.push((Type::Aes, 256, Mac::FullLength(FullLengthMac::Cmac)));
        cases.push((Type::Aes, 192, Mac::FullLength(FullLengthMac::Cmac)));
        cases.push((Type::Camellia, 128, Mac::FullLength(FullLengthMac::Cmac)));
        cases.push((Type::Aes, 128, Mac::FullLength(FullLengthMac::CbcMac)));
        cases.push((
            Type::Hmac,
            1024,
            Mac::FullLength(FullLengthMac::Hmac {
                hash_alg: Hash::Sha256,
            }),
        ));
        for (key_type, bits, alg) in cases {
            i += 1;
            let name = format!("mac-{i}");
            if p.shared_key(&name, attrs(key_type, bits, alg, usage("mac")))
                .is_none()
            {
                continue;
            }
            for input in [vec![], vec![1; 100]] {
                let what = format!("mac {key_type:?}-{bits} {alg:?} {}", input.len());
                let (a, b) = p.same::<PsaMacCompute>(
                    &what,
                    psa_mac_compute::Request {
                        key_name: name.clone(),
                        alg,
                        input: input.clone(),
                    },
                );
                if let (Some(a), Some(b)) = (&a, &b) {
                    p.agree(&format!("{what}: value"), &a.mac, &b.mac);
                }
                let mac = a.map(|a| a.mac).unwrap_or_else(|| vec![0; 16]);
                let verify = |mac: Vec<u8>| psa_mac_verify::Request {
                    key_name: name.clone(),
                    alg,
                    input: input.clone(),
                    mac,
                };
                p.same::<PsaMacVerify>(&format!("{what}: verify"), verify(mac.clone()));
                p.same::<PsaMacVerify>(&format!("{what}: verify short"), verify(mac[1..].to_vec()));
                let mut flipped = mac.clone();
                flipped[0] ^= 1;
                p.same::<PsaMacVerify>(&format!("{what}: verify flipped"), verify(flipped));
            }
        }
    }

    #[allow(deprecated)]
    fn hashes(p: &Pair) {
        for alg in [
            Hash::Md2,
            Hash::Md4,
            Hash::Md5,
            Hash::Ripemd160,
            Hash::Sha1,
            Hash::Sha224,
            Hash::Sha256,
            Hash::Sha384,
            Hash::Sha512,
            Hash::Sha512_224,
            Hash::Sha512_256,
            Hash::Sha3_224,
            Hash::Sha3_256,
            Hash::Sha3_384,
            Hash::Sha3_512,
        ] {
            let what = format!("hash {alg:?}");
            let (a, b) = p.same::<PsaHashCompute>(
                &what,
                psa_hash_compute::Request {
                    alg,
                    input: b"abc".to_vec(),
                },
            );
            if let (Some(a), Some(b)) = (&a, &b) {
                p.agree(&format!("{what}: value"), &a.hash, &b.hash);
            }
            let hash = a
                .map(|a| a.hash)
                .unwrap_or_else(|| vec![0; alg.hash_length()]);
            let compare = |hash: Vec<u8>| psa_hash_compare::Request {
                alg,
                input: b"abc".to_vec(),
                hash,
            };
            p.same::<PsaHashCompare>(&format!("{what}: compare"), compare(hash.clone()));
            p.same::<PsaHashCompare>(
                &format!("{what}: compare short"),
                compare(hash[1..].to_vec()),
            );
            p.same::<PsaHashCompare>(&format!("{what}: compare empty"), compare(vec![]));
            let mut flipped = hash.clone();
            flipped[0] ^= 1;
            p.same::<PsaHashCompare>(&format!("{what}: compare flipped"), compare(flipped));
        }
    }

    fn agreement(p: &Pair) {
        let ecdh = RawKeyAgreement::Ecdh;
        let alg = KeyAgreement::Raw(ecdh);
        for (family, bits) in [
            (EccFamily::SecpR1, 256),
            (EccFamily::SecpR1, 384),
            (EccFamily::SecpR1, 521),
            (EccFamily::SecpK1, 256),
            (EccFamily::BrainpoolPR1, 256),
            (EccFamily::Montgomery, 255),
            (EccFamily::Montgomery, 448),
        ] {
            let tag = format!("{family:?}-{bits}");
            let pair = attrs(ecc_pair(family), bits, alg, usage("derive"));
            if p.shared_key(&format!("a-{tag}"), pair).is_none()
                || p.shared_key(&format!("b-{tag}"), pair).is_none()
            {
                continue;
            }
            let peer = p
                .one::<PsaExportPublicKey, _>(
                    &*p.mbed,
                    psa_export_public_key::Request {
                        key_name: format!("b-{tag}"),
                    },
                )
                .expect("public")
                .data;
            let agree = |peer_key: Vec<u8>, alg| psa_raw_key_agreement::Request {
                alg,
                private_key_name: format!("a-{tag}"),
                peer_key,
            };
            let (a, b) =
                p.same::<PsaRawKeyAgreement>(&format!("ecdh {tag}"), agree(peer.clone(), ecdh));
            if let (Some(a), Some(b)) = (a, b) {
                p.agree(
                    &format!("ecdh {tag}: secret"),
                    a.shared_secret.to_vec(),
                    b.shared_secret.to_vec(),
                );
            }
            p.same::<PsaRawKeyAgreement>(
                &format!("ffdh {tag}"),
                agree(peer.clone(), RawKeyAgreement::Ffdh),
            );
            p.same::<PsaRawKeyAgreement>(
                &format!("ecdh {tag} short"),
                agree(peer[1..].to_vec(), ecdh),
            );
            p.same::<PsaRawKeyAgreement>(
                &format!("ecdh {tag} long"),
                agree([&peer[..], &[0]].concat(), ecdh),
            );
            p.same::<PsaRawKeyAgreement>(&format!("ecdh {tag} empty"), agree(vec![], ecdh));
            let mut off = peer.clone();
            let last = off.len() - 1;
            off[last] ^= 1;
            p.same::<PsaRawKeyAgreement>(&format!("ecdh {tag} altered"), agree(off, ecdh));
            if family != EccFamily::Montgomery {
                let half = (peer.len() - 1) / 2;
                let mut compressed = vec![2 + (peer[last] & 1)];
                compressed.extend_from_slice(&peer[1..=half]);
                p.same::<PsaRawKeyAgreement>(
                    &format!("ecdh {tag} compressed"),
                    agree(compressed, ecdh),
                );
            }
        }
    }

    fn capabilities(p: &Pair) {
        let es = ecdsa(Hash::Sha256);
        let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
        let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
        let cases = [
            attrs(secp_r1_pair(), 256, es, usage("sign verify")),
            attrs(secp_r1_pair(), 0, es, usage("sign verify")),
            attrs(secp_r1_pair(), 384, es, usage("sign verify")),
            attrs(secp_r1_pair(), 383, es, usage("sign verify")),
            attrs(ecc_public(EccFamily::SecpR1), 256, es, usage("verify")),
            attrs(Type::RsaKeyPair, 2048, v15, usage("encrypt decrypt")),
            attrs(Type::RsaKeyPair, 3072, v15, usage("encrypt decrypt")),
            attrs(Type::RsaPublicKey, 0, v15, usage("encrypt")),
            attrs(Type::Aes, 128, gcm, usage("encrypt decrypt")),
            attrs(Type::Aes, 128, Algorithm::None, usage("encrypt decrypt")),
            attrs(Type::Aes, 128, gcm, usage("derive")),
            attrs(Type::RsaKeyPair, 2048, es, usage("sign")),
            attrs(ecc_pair(EccFamily::Frp), 256, es, usage("sign")),
            attrs(
                ecc_pair(EccFamily::Montgomery),
                255,
                KeyAgreement::Raw(RawKeyAgreement::Ecdh),
                usage("derive"),
            ),
            attrs(Type::Chacha20, 256, Cipher::StreamCipher, usage("encrypt")),
            attrs(Type::RawData, 256, Algorithm::None, UsageFlags::default()),
        ];
        // A known difference (README, "Choosing a software provider"): Mbed's CanDoCrypto
        // accepts generating a key on a SECT curve, this provider has none of them.
        for family in [EccFamily::SectK1, EccFamily::SectR1] {
            let (mbed, ossl) = p.both::<CanDoCrypto>(can_do_crypto::Request {
                check_type: CheckType::Generate,
                attributes: attrs(ecc_pair(family), 409, es, usage("sign verify")),
            });
            assert!(mbed.is_ok(), "Mbed, {family:?} 409: {:?}", mbed.err());
            assert_eq!(
                ossl.err(),
                Some(ResponseStatus::PsaErrorNotSupported),
                "{family:?} 409"
            );
        }
        for attributes in cases {
            for check_type in [
                CheckType::Use,
                CheckType::Generate,
                CheckType::Import,
                CheckType::Derive,
            ] {
                p.same::<CanDoCrypto>(
                    &format!("can do {check_type:?} {attributes:?}"),
                    can_do_crypto::Request {
                        check_type,
                        attributes,
                    },
                );
            }
        }
    }

    /// Single-thread ECDSA P-256 sign and verify rates through each provider's handlers
    /// (printed; run in release mode for meaningful figures).
    fn throughput(p: &Pair) {
        use std::time::{Duration, Instant};
        let alg = ecdsa(Hash::Sha256);
        p.generate("speed", attrs(secp_r1_pair(), 256, alg, sign_verify()));
        let hash = vec![0x33; 32];
        let ctx = RequestContext::new(Some(&p.identity), &p.store, &p.settings);
        let sign = psa_sign_hash::Request {
            key_name: "speed".into(),
            alg,
            hash: hash.clone(),
        };
        let rate = |mut op: Box<dyn FnMut() + '_>| {
            let window = Duration::from_millis(500);
            let start = Instant::now();
            let mut count = 0u32;
            while start.elapsed() < window {
                op();
                count += 1;
            }
            f64::from(count) / start.elapsed().as_secs_f64()
        };
        let mut report = Vec::new();
        let mbed_sig =
            serve::<PsaSignHash, MbedProvider>(&p.mbed, ProviderId::MbedCrypto, &ctx, sign.clone())
                .expect("signed")
                .signature;
        let ossl_sig = serve::<PsaSignHash, OpenSslProvider>(
            &p.ossl,
            ProviderId::MbedCrypto,
            &ctx,
            sign.clone(),
        )
        .expect("signed")
        .signature;
        let verify = |signature: &Vec<u8>| psa_verify_hash::Request {
            key_name: "speed".into(),
            alg,
            hash: hash.clone(),
            signature: signature.clone(),
        };
        let rates = [
            rate(Box::new(|| {
                serve::<PsaSignHash, MbedProvider>(
                    &p.mbed,
                    ProviderId::MbedCrypto,
                    &ctx,
                    sign.clone(),
                )
                .expect("signed");
            })),
            rate(Box::new(|| {
                serve::<PsaSignHash, OpenSslProvider>(
                    &p.ossl,
                    ProviderId::MbedCrypto,
                    &ctx,
                    sign.clone(),
                )
                .expect("signed");
            })),
            rate(Box::new(|| {
                serve::<PsaVerifyHash, MbedProvider>(
                    &p.mbed,
                    ProviderId::MbedCrypto,
                    &ctx,
                    verify(&mbed_sig),
                )
                .expect("verified");
            })),
            rate(Box::new(|| {
                serve::<PsaVerifyHash, OpenSslProvider>(
                    &p.ossl,
                    ProviderId::MbedCrypto,
                    &ctx,
                    verify(&ossl_sig),
                )
                .expect("verified");
            })),
        ];
        report.push(format!(
            "ECDSA P-256, one thread, through the handlers: sign {:.0}/s OpenSSL vs {:.0}/s Mbed \
             ({:.1}x); verify {:.0}/s OpenSSL vs {:.0}/s Mbed ({:.1}x)",
            rates[1],
            rates[0],
            rates[1] / rates[0],
            rates[3],
            rates[2],
            rates[3] / rates[2]
        ));
        p.destroy("speed");
        println!("{}", report.join("\n"));
    }

    /// Differences that follow from what one of the two providers lacks, each with its reason.
    /// A mismatch is accepted when its description contains one of these.
    const KNOWN: &[(&str, &str)] = &[
        (
            "deterministic ECDSA",
            "OpenSSL 3.0 cannot make RFC 6979 nonces",
        ),
        (
            "aead Camellia",
            "OpenSSL has no Camellia-GCM or Camellia-CCM",
        ),
        (
            "Chacha20Poly1305, tag_length",
            "shortened ChaCha20-Poly1305 tags are supported here",
        ),
        ("cipher Camellia-192 Ofb", "Camellia-OFB is supported here"),
        ("Sha512_224", "SHA-512/224 is supported here"),
        ("Sha512_256", "SHA-512/256 is supported here"),
        ("mac Camellia", "Camellia-CMAC is supported here"),
        (
            "import rsa-512",
            "RSA keys below 1024 bits are refused here",
        ),
        (
            "import rsa-pub-512",
            "RSA keys below 1024 bits are refused here",
        ),
        (
            "key_type: Des,",
            "DES is not supported here (deprecated; single DES is not in OpenSSL 3's default \
             provider)",
        ),
        (
            "BrainpoolPR1 }, bits: 192",
            "brainpoolP192r1 is supported here",
        ),
        (
            "BrainpoolPR1 }, bits: 224",
            "brainpoolP224r1 is supported here",
        ),
        (
            "BrainpoolPR1 }, bits: 320",
            "brainpoolP320r1 is supported here",
        ),
        (
            "bad-BrainpoolPR1-384-public compressed",
            "49 bytes are a brainpoolP192r1 point here, which is not well formed",
        ),
    ];

    #[test]
    fn answers_like_the_mbed_provider() {
        if std::env::var_os(CHILD).is_none() {
            let dir = tempfile::tempdir().expect("temporary directory");
            let output = Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "providers::openssl::tests::against_mbed::answers_like_the_mbed_provider",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .current_dir(dir.path())
                .output()
                .expect("child test runs");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            let summary: Vec<&str> = stdout
                .lines()
                .filter(|line| {
                    line.contains("checks, same answers") || line.contains("ECDSA P-256")
                })
                .collect();
            println!("{}", summary.join("\n"));
            assert!(output.status.success(), "{stdout}\n{stderr}");
            assert!(stdout.contains("checks, same answers"), "{stdout}");
            return;
        }
        let p = Pair::new();
        key_creation(&p);
        key_import(&p);
        signatures(&p);
        encryption(&p);
        aead(&p);
        ciphers(&p);
        macs(&p);
        hashes(&p);
        agreement(&p);
        capabilities(&p);
        throughput(&p);
        let mismatches = p.mismatches.borrow();
        let (known, unknown): (Vec<&String>, Vec<&String>) = mismatches
            .iter()
            .partition(|m| KNOWN.iter().any(|(pattern, _)| m.contains(pattern)));
        println!(
            "{} checks, same answers but for {} known differences:\n  {}",
            p.checks.borrow(),
            known.len(),
            known
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
        assert!(
            unknown.is_empty(),
            "{} unexpected differences:\n  {}",
            unknown.len(),
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        );
    }
}

#[test]
fn the_identity_encoding_is_length_prefixed_and_stable() {
    use crate::keystore::KeyIdentity;
    use crate::providers::encode_key_identity;
    let identity = |application: &str, key_name: &str| {
        KeyIdentity::for_tests(AuthType::UnixPeerCredentials, application, "p", key_name)
    };
    assert_eq!(
        hex::encode(encode_key_identity(&identity("ab", "k"))),
        "03\
         00000000000000026162\
         000000000000000170\
         00000000000000016b"
    );
    // Moving bytes from one field to the next changes the encoding.
    assert_ne!(
        encode_key_identity(&identity("a", "bk")),
        encode_key_identity(&identity("ab", "k"))
    );
    // The associated data: label, version, then the identity and attributes, length-prefixed.
    let attributes = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let encoded = encode_key_identity(&identity("ab", "k"));
    let ad = super::kek::associated_data(&encoded, attributes).expect("associated data");
    let prefix = [
        &b"bulwark openssl-provider key\0"[..],
        &[1],
        &(encoded.len() as u64).to_be_bytes(),
        &encoded,
    ]
    .concat();
    assert!(ad.starts_with(&prefix));
}
