//! Tests of the OpenSSL provider, through its registry (the conformance `Fixture`) or, to
//! compare it with the Mbed Crypto provider, calling the handlers directly.
//!
//! First the shared conformance suite (`providers::conformance`), with this provider's entries
//! in its expectation table; then what only this provider does: keys at rest (no plaintext key
//! in the store file, swapped blobs refused), the KEK checks at start-up, concurrency, known
//! answers against RustCrypto, and a comparison with the Mbed Crypto provider on the same
//! requests, with its table of known differences (`against_mbed`).

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

mod against_mbed;

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
