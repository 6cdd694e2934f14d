//! Tests of the PKCS #11 provider against a real SoftHSMv2 token (one fresh token per fixture),
//! checking signatures and encryption against the RustCrypto implementations. The provider is
//! called as a client calls it, through its registry (the conformance `Fixture`, which keeps
//! the token alive).

use std::collections::BTreeSet;
use std::sync::Arc;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::can_do_crypto::CheckType;
use bulwark_interface::ops::*;
use bulwark_interface::status::ResponseStatus;
use bulwark_testenv::softhsm::SoftHsm;
use cryptoki::types::AuthPin;
use p256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Hash,
    SignHash,
};
use psa_crypto::types::key::{EccFamily, Type, UsageFlags};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPrivateKey};
use rsa::{Oaep, Pkcs1v15Encrypt, Pkcs1v15Sign, Pss};
use sha2::Digest;

use super::{Pkcs11Provider, StartError, PKCS11_UUID};
use crate::config::{Pkcs11Config, SecretString};
use crate::keystore::KeyStore;
use crate::providers::conformance::{
    attrs, ecdsa, flags, secp_r1_pair, secp_r1_public, sign_verify, status, verify_only,
};
use crate::providers::{Provider, ProviderSettings};

fn config(token: &SoftHsm) -> Pkcs11Config {
    Pkcs11Config {
        library_path: token.library_path(),
        slot_number: Some(token.slot),
        serial_number: None,
        user_pin: Some(SecretString::new(token.user_pin().to_owned())),
        software_public_operations: false,
        allow_export: true,
    }
}

type Fixture = crate::providers::conformance::Fixture<Pkcs11Provider>;

/// The provider name used throughout.
const NAME: &str = "pkcs11-provider";

/// A provider on a fresh token, an in-memory store and application "app".
fn fixture() -> Fixture {
    fixture_with(|_| {})
}

/// [`fixture`], with `change` applied to the provider's configuration.
fn fixture_with(change: impl FnOnce(&mut Pkcs11Config)) -> Fixture {
    let token = SoftHsm::new("unit");
    let mut config = config(&token);
    change(&mut config);
    let store = Arc::new(KeyStore::open_in_memory().expect("in-memory store"));
    on(token, &config, store)
}

/// A provider on `token` and `store`; the fixture keeps the token alive.
fn on(token: SoftHsm, config: &Pkcs11Config, store: Arc<KeyStore>) -> Fixture {
    let provider = Pkcs11Provider::new(NAME.to_owned(), config, &store)
        .unwrap_or_else(|e| panic!("provider starts: {e}"));
    Fixture::from_parts(
        Arc::new(provider),
        store,
        Box::new(token),
        ProviderSettings::default(),
    )
}

/// The token `f` uses.
fn token(f: &Fixture) -> &SoftHsm {
    f.kept::<SoftHsm>()
}

/// Another provider on the same token and store as `f` (a reload), with `change` applied.
fn reopen(f: &Fixture, change: impl FnOnce(&mut Pkcs11Config)) -> Fixture {
    let token = token(f).clone();
    let mut config = config(&token);
    change(&mut config);
    on(token, &config, Arc::clone(&f.store))
}

/// How many token objects carry `CKA_ID` `key_id`.
fn objects(f: &Fixture, key_id: &[u8]) -> usize {
    let session = f.provider.token.pool.get().expect("a session");
    session
        .find_objects(&[cryptoki::object::Attribute::Id(key_id.to_vec())])
        .expect("objects listed")
        .len()
}

fn all_rsa() -> UsageFlags {
    flags(|u| {
        u.set_sign_hash()
            .set_verify_hash()
            .set_encrypt()
            .set_decrypt();
    })
}

fn v15(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Specific(hash),
    }
}

fn pss(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::RsaPss {
        hash_alg: SignHash::Specific(hash),
    }
}

const OAEP: AsymmetricEncryption = AsymmetricEncryption::RsaOaep {
    hash_alg: Hash::Sha256,
};

/// OAEP with SHA-1, the only OAEP SoftHSM 2.6 has.
#[allow(deprecated)]
const OAEP_SHA1: AsymmetricEncryption = AsymmetricEncryption::RsaOaep {
    hash_alg: Hash::Sha1,
};

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

fn start_error(config: &Pkcs11Config) -> String {
    let store = KeyStore::open_in_memory().expect("store");
    match Pkcs11Provider::new("p".to_owned(), config, &store) {
        Ok(_) => panic!("the provider started"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn info_and_advertised_operations() {
    let f = fixture();
    let info = f.provider.info();
    assert_eq!(info.id, ProviderId::Pkcs11);
    assert_eq!(info.uuid.to_string(), PKCS11_UUID);
    assert_eq!(info.vendor, "OASIS Standard.");
    assert_eq!(
        (info.version_maj, info.version_min, info.version_rev),
        (0, 1, 0)
    );
    assert_eq!(
        f.registered(),
        Opcode::ALL
            .iter()
            .copied()
            .filter(|o| o.is_served_by(Family::Pkcs11))
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(f.provider.token.pool.size(), super::token::POOL_SIZE);
}

/// ECDSA on P-256 and P-384, verified both ways against RustCrypto, in both modes of the
/// public-key operations.
#[test]
fn ecdsa_matches_rustcrypto_in_both_modes() {
    for software in [false, true] {
        let f = fixture_with(|c| c.software_public_operations = software);
        let alg = ecdsa(Hash::Sha256);
        f.generate("p256", attrs(secp_r1_pair(), 256, alg, sign_verify()));
        let point = f.export_public("p256");
        assert_eq!((point.len(), point[0]), (65, 0x04));
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("P-256 point");
        let hash = sha256(b"message");
        let ours = f.try_sign("p256", alg, &hash).expect("signed");
        assert_eq!(ours.len(), 64);
        let signature = p256::ecdsa::Signature::from_slice(&ours).expect("r || s");
        public
            .verify_prehash(&hash, &signature)
            .expect("RustCrypto verifies the token's signature");
        f.try_verify("p256", alg, &hash, &ours).expect("verified");
        let mut bad = ours.clone();
        bad[10] ^= 1;
        assert_eq!(
            status(f.try_verify("p256", alg, &hash, &bad)),
            ResponseStatus::PsaErrorInvalidSignature
        );
        assert_eq!(
            status(f.try_verify("p256", alg, &hash, &ours[..63])),
            ResponseStatus::PsaErrorInvalidSignature
        );

        // A RustCrypto P-384 key imported, signing here, and RustCrypto's signature verified.
        let alg = ecdsa(Hash::Sha384);
        let secret = p384::ecdsa::SigningKey::random(&mut rand::thread_rng());
        f.try_import(
            "p384",
            attrs(secp_r1_pair(), 0, alg, sign_verify()),
            &secret.to_bytes(),
        )
        .expect("imported");
        let public = p384::ecdsa::VerifyingKey::from(&secret);
        assert_eq!(
            f.export_public("p384"),
            public.to_encoded_point(false).as_bytes()
        );
        let hash = sha2::Sha384::digest(b"message").to_vec();
        let ours = f.try_sign("p384", alg, &hash).expect("signed");
        public
            .verify_prehash(
                &hash,
                &p384::ecdsa::Signature::from_slice(&ours).expect("r || s"),
            )
            .expect("RustCrypto verifies");
        let theirs: p384::ecdsa::Signature = secret.sign_prehash(&hash).expect("signed");
        f.try_verify("p384", alg, &hash, &theirs.to_bytes())
            .expect("RustCrypto's signature verified");
    }
}

/// RSA PKCS#1 v1.5 and PSS signatures, OAEP (with a label) and PKCS#1 v1.5 encryption, against
/// RustCrypto, in both modes.
#[test]
fn rsa_matches_rustcrypto_in_both_modes() {
    let mut rng = rand::thread_rng();
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
    let der = private.to_pkcs1_der().expect("DER");
    let public = private.to_public_key();
    for software in [false, true] {
        let f = fixture_with(|c| c.software_public_operations = software);
        let hash = sha256(b"message");

        // A key generated on the token.
        f.generate(
            "gen",
            attrs(Type::RsaKeyPair, 2048, v15(Hash::Sha256), all_rsa()),
        );
        let generated =
            rsa::RsaPublicKey::from_pkcs1_der(&f.export_public("gen")).expect("RSAPublicKey");
        let ours = f.try_sign("gen", v15(Hash::Sha256), &hash).expect("signed");
        generated
            .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &ours)
            .expect("RustCrypto verifies PKCS#1 v1.5");

        // The RustCrypto key imported: PKCS#1 v1.5 is deterministic.
        f.try_import(
            "v15",
            attrs(Type::RsaKeyPair, 0, v15(Hash::Sha256), all_rsa()),
            der.as_bytes(),
        )
        .expect("imported");
        let ours = f.try_sign("v15", v15(Hash::Sha256), &hash).expect("signed");
        let theirs = private
            .sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &hash)
            .expect("signed");
        assert_eq!(ours, theirs);
        f.try_verify("v15", v15(Hash::Sha256), &hash, &theirs)
            .expect("verified");
        let mut bad = theirs.clone();
        bad[100] ^= 1;
        assert_eq!(
            status(f.try_verify("v15", v15(Hash::Sha256), &hash, &bad)),
            ResponseStatus::PsaErrorInvalidSignature
        );

        f.try_import(
            "pss",
            attrs(Type::RsaKeyPair, 2048, pss(Hash::Sha256), all_rsa()),
            der.as_bytes(),
        )
        .expect("imported");
        let ours = f.try_sign("pss", pss(Hash::Sha256), &hash).expect("signed");
        public
            .verify(Pss::new::<sha2::Sha256>(), &hash, &ours)
            .expect("RustCrypto verifies PSS");
        let theirs = private
            .sign_with_rng(&mut rng, Pss::new::<sha2::Sha256>(), &hash)
            .expect("signed");
        f.try_verify("pss", pss(Hash::Sha256), &hash, &theirs)
            .expect("RustCrypto's PSS verified");

        // Encryption both ways.
        f.try_import(
            "oaep",
            attrs(Type::RsaKeyPair, 0, OAEP_SHA1, all_rsa()),
            der.as_bytes(),
        )
        .expect("imported");
        let v15c = AsymmetricEncryption::RsaPkcs1v15Crypt;
        f.try_import(
            "v15c",
            attrs(Type::RsaKeyPair, 0, v15c, all_rsa()),
            der.as_bytes(),
        )
        .expect("imported");
        let ours = f
            .try_encrypt("oaep", OAEP_SHA1, b"secret", None)
            .expect("encrypted");
        assert_eq!(
            private
                .decrypt(Oaep::new::<sha1::Sha1>(), &ours)
                .expect("RustCrypto decrypts"),
            b"secret"
        );
        let theirs = public
            .encrypt(&mut rng, Oaep::new::<sha1::Sha1>(), b"secret")
            .expect("encrypted");
        assert_eq!(
            f.try_decrypt("oaep", OAEP_SHA1, &theirs, None)
                .expect("decrypted"),
            b"secret"
        );
        let ours = f
            .try_encrypt("v15c", v15c, b"secret", None)
            .expect("encrypted");
        assert_eq!(
            private
                .decrypt(Pkcs1v15Encrypt, &ours)
                .expect("RustCrypto decrypts"),
            b"secret"
        );
        let theirs = public
            .encrypt(&mut rng, Pkcs1v15Encrypt, b"secret")
            .expect("encrypted");
        assert_eq!(
            f.try_decrypt("v15c", v15c, &theirs, None)
                .expect("decrypted"),
            b"secret"
        );

        // Decryption failures: one status for anything wrong inside, InvalidArgument for what
        // the ciphertext shows.
        let mut bad = theirs.clone();
        bad[5] ^= 0x55;
        assert_eq!(
            status(f.try_decrypt("v15c", v15c, &bad, None)),
            ResponseStatus::PsaErrorInvalidPadding
        );
        let oaep_of_v15 = public
            .encrypt(&mut rng, Pkcs1v15Encrypt, b"secret")
            .expect("encrypted");
        assert_eq!(
            status(f.try_decrypt("oaep", OAEP_SHA1, &oaep_of_v15, None)),
            ResponseStatus::PsaErrorInvalidPadding
        );
        assert_eq!(
            status(f.try_decrypt("v15c", v15c, &theirs[1..], None)),
            ResponseStatus::PsaErrorInvalidArgument
        );
        assert_eq!(
            status(f.try_decrypt("v15c", v15c, &[0xff; 256], None)),
            ResponseStatus::PsaErrorInvalidArgument
        );
        assert_eq!(
            status(f.try_encrypt("v15c", v15c, &[1; 246], None)),
            ResponseStatus::PsaErrorInvalidArgument
        );
    }
}

/// OAEP with SHA-256 and a label: done, or refused as not supported by the token (SoftHSM
/// 2.6 has neither), never another status. Software encryption always does it.
#[test]
fn oaep_beyond_sha1_is_done_or_not_supported() {
    let mut rng = rand::thread_rng();
    for software in [false, true] {
        let f = fixture_with(|c| c.software_public_operations = software);
        f.generate("k", attrs(Type::RsaKeyPair, 2048, OAEP, all_rsa()));
        let public = rsa::RsaPublicKey::from_pkcs1_der(&f.export_public("k")).expect("DER");
        for label in [None, Some(&b"label"[..])] {
            let scheme = || match label {
                Some(_) => Oaep::new_with_label::<sha2::Sha256, _>("label"),
                None => Oaep::new::<sha2::Sha256>(),
            };
            let theirs = public
                .encrypt(&mut rng, scheme(), b"secret")
                .expect("encrypted");
            match f.try_decrypt("k", OAEP, &theirs, label) {
                Ok(plaintext) => assert_eq!(plaintext, b"secret"),
                Err(refusal) => assert_eq!(refusal, ResponseStatus::PsaErrorNotSupported),
            }
            match f.try_encrypt("k", OAEP, b"secret", label) {
                Ok(ciphertext) => {
                    assert_eq!(ciphertext.len(), 256);
                }
                Err(refusal) => {
                    assert!(!software, "software encryption does any OAEP: {refusal}");
                    assert_eq!(refusal, ResponseStatus::PsaErrorNotSupported);
                }
            }
        }
    }
}

#[test]
fn imports_check_their_data() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    let secret = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    let scalar = secret.to_bytes();
    for (name, attributes, data, expected) in [
        (
            "empty",
            attrs(secp_r1_pair(), 0, alg, sign_verify()),
            &[][..],
            ResponseStatus::PsaErrorInvalidArgument,
        ),
        (
            "size",
            attrs(secp_r1_pair(), 384, alg, sign_verify()),
            &scalar[..],
            ResponseStatus::PsaErrorInvalidArgument,
        ),
        (
            "zero",
            attrs(secp_r1_pair(), 256, alg, sign_verify()),
            &[0; 32][..],
            ResponseStatus::PsaErrorInvalidArgument,
        ),
        (
            "order",
            attrs(secp_r1_pair(), 256, alg, sign_verify()),
            &[0xff; 32][..],
            ResponseStatus::PsaErrorInvalidArgument,
        ),
        (
            "junk-rsa",
            attrs(Type::RsaKeyPair, 0, v15(Hash::Sha256), sign_verify()),
            &b"junk"[..],
            ResponseStatus::PsaErrorInvalidArgument,
        ),
        (
            "aes",
            attrs(
                Type::Aes,
                128,
                Algorithm::Aead(Aead::AeadWithDefaultLengthTag(
                    AeadWithDefaultLengthTag::Gcm,
                )),
                flags(|u| {
                    u.set_encrypt();
                }),
            ),
            &[0; 16][..],
            ResponseStatus::PsaErrorNotSupported,
        ),
    ] {
        assert_eq!(
            status(f.try_import(name, attributes, data)),
            expected,
            "{name}"
        );
    }
    // A public point not on the curve.
    let mut point = p256::ecdsa::VerifyingKey::from(&secret)
        .to_encoded_point(false)
        .as_bytes()
        .to_vec();
    let public_type = secp_r1_public();
    point[40] ^= 1;
    assert_eq!(
        status(f.try_import(
            "off-curve",
            attrs(public_type, 0, alg, verify_only()),
            &point
        )),
        ResponseStatus::PsaErrorInvalidArgument
    );
    point[40] ^= 1;
    // A public key verifies, but cannot sign.
    f.try_import("public", attrs(public_type, 0, alg, sign_verify()), &point)
        .expect("imported");
    let hash = sha256(b"m");
    let theirs: p256::ecdsa::Signature = secret.sign_prehash(&hash).expect("signed");
    f.try_verify("public", alg, &hash, &theirs.to_bytes())
        .expect("verified");
    assert_eq!(
        status(f.try_sign("public", alg, &hash)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(f.export_public("public"), point);
    // Failed imports left nothing behind.
    assert_eq!(f.store.list_for_provider("pkcs11-provider").len(), 1);
    f.try_import(
        "size",
        attrs(secp_r1_pair(), 256, alg, sign_verify()),
        &scalar,
    )
    .expect("the name is free");
}

#[test]
#[allow(deprecated)] // SHA-1, to check it is refused.
fn generation_checks() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    let public_type = secp_r1_public();
    assert_eq!(
        status(f.try_generate("pub", attrs(public_type, 256, alg, sign_verify()))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_generate(
            "rsa0",
            attrs(Type::RsaKeyPair, 0, v15(Hash::Sha256), sign_verify())
        )),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_generate("p200", attrs(secp_r1_pair(), 200, alg, sign_verify()))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let k1 = Type::EccKeyPair {
        curve_family: EccFamily::SecpK1,
    };
    assert_eq!(
        status(f.try_generate("k1-192", attrs(k1, 192, alg, sign_verify()))),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(f.try_generate(
            "sha1",
            attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha1), sign_verify())
        )),
        ResponseStatus::DeprecatedPrimitive
    );
    // A name used twice, a policy naming another algorithm, a hash of the wrong length and a
    // missing key are refused as the conformance suite asserts for every provider
    // (`a_name_can_only_be_used_once`, `sign_is_refused_without_the_flag_or_with_another_algorithm`,
    // `a_hash_of_the_wrong_length_is_an_invalid_argument`, `missing_and_destroyed_keys_do_not_exist`).
    // Deterministic ECDSA is not supported by the token.
    let det = AsymmetricSignature::DeterministicEcdsa {
        hash_alg: SignHash::Specific(Hash::Sha256),
    };
    f.generate("det", attrs(secp_r1_pair(), 256, det, sign_verify()));
    assert_eq!(
        status(f.try_sign("det", det, &[0; 32])),
        ResponseStatus::PsaErrorNotSupported
    );
}

#[test]
fn private_keys_never_leave_the_token() {
    let f = fixture();
    f.generate(
        "k",
        attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
    );
    let id = f.record("k").key_id;
    assert_eq!(id.len(), 4, "a u32, big-endian");
    let session = f.provider.token.pool.get().expect("a session");
    let private = session
        .find_objects(&[
            cryptoki::object::Attribute::Id(id.to_vec()),
            cryptoki::object::Attribute::Class(cryptoki::object::ObjectClass::PRIVATE_KEY),
        ])
        .expect("found");
    assert_eq!(private.len(), 1);
    let values = session
        .get_attributes(
            private[0],
            &[
                cryptoki::object::AttributeType::Sensitive,
                cryptoki::object::AttributeType::Extractable,
                cryptoki::object::AttributeType::Token,
            ],
        )
        .expect("attributes");
    use cryptoki::object::Attribute as A;
    assert!(values.contains(&A::Sensitive(true)));
    assert!(values.contains(&A::Extractable(false)));
    assert!(values.contains(&A::Token(true)));
}

#[test]
fn allow_export_false_refuses_exportable_keys() {
    let mut exportable = sign_verify();
    exportable.set_export();
    let alg = ecdsa(Hash::Sha256);
    let secret = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    let f = fixture_with(|c| c.allow_export = false);
    assert_eq!(
        status(f.try_generate("g", attrs(secp_r1_pair(), 256, alg, exportable))),
        ResponseStatus::PsaErrorNotPermitted
    );
    assert_eq!(
        status(f.try_import(
            "i",
            attrs(secp_r1_pair(), 256, alg, exportable),
            &secret.to_bytes()
        )),
        ResponseStatus::PsaErrorNotPermitted
    );
    f.try_generate("g", attrs(secp_r1_pair(), 256, alg, sign_verify()))
        .expect("without the flag");
    let f = fixture();
    f.try_generate("g", attrs(secp_r1_pair(), 256, alg, exportable))
        .expect("allowed by default");
}

#[test]
fn destroy_and_discard_remove_the_token_objects() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("a", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    f.generate("b", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let (a, b) = (f.record("a").key_id, f.record("b").key_id);
    assert_ne!(a, b);
    assert_eq!((objects(&f, &a), objects(&f, &b)), (2, 2));
    f.try_sign("a", alg, &[1; 32]).expect("signed");
    f.destroy("a").expect("destroyed");
    assert_eq!(objects(&f, &a), 0);
    assert_eq!(
        status(f.try_sign("a", alg, &[1; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(status(f.destroy("a")), ResponseStatus::PsaErrorDoesNotExist);
    f.provider.discard(&b).expect("discarded");
    assert_eq!(objects(&f, &b), 0);
    f.provider
        .discard(&b)
        .expect("discarding a missing key is not an error");
    // The key is still recorded but gone from the token.
    assert_eq!(
        status(f.try_sign("b", alg, &[1; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    // A restart drops the row of the key that vanished, and keeps the others.
    f.generate("c", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let again = reopen(&f, |_| {});
    let names: Vec<String> = again
        .store
        .list_for_provider("pkcs11-provider")
        .into_iter()
        .map(|(identity, _)| identity.into_key_name())
        .collect();
    assert_eq!(names, ["c"]);
}

#[test]
fn keys_survive_a_new_provider_while_the_old_one_lives() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let hash = sha256(b"m");
    let signature = f.try_sign("k", alg, &hash).expect("signed");
    // A reload: the library is already initialised and the token already logged in.
    let reloaded = reopen(&f, |c| {
        c.slot_number = None;
        c.serial_number = Some(format!("  {}  ", token(&f).serial));
    });
    reloaded
        .try_verify("k", alg, &hash, &signature)
        .expect("verified by the new provider");
    reloaded.try_sign("k", alg, &hash).expect("signed");
    drop(f);
    reloaded
        .try_sign("k", alg, &hash)
        .expect("still logged in once the old provider is gone");
}

#[test]
fn random_comes_from_the_token() {
    let f = fixture();
    let random = |size| {
        f.call::<PsaGenerateRandom>(psa_generate_random::Request { size })
            .map(|r| r.random_bytes.to_vec())
    };
    let a = random(100_000).expect("random");
    let b = random(100_000).expect("random");
    assert_eq!(a.len(), 100_000);
    assert_ne!(a, b);
    assert!(random(0).expect("empty").is_empty());
    assert_eq!(
        status(random(f.settings.buffer_size_limit + 1)),
        ResponseStatus::ResponseTooLarge
    );
}

#[test]
fn can_do_crypto_reports_what_the_token_does() {
    let f = fixture();
    let p256 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let rsa = attrs(Type::RsaKeyPair, 2048, OAEP, all_rsa());
    let public_rsa = attrs(Type::RsaPublicKey, 0, pss(Hash::Sha256), sign_verify());
    for (check_type, attributes) in [
        (CheckType::Use, p256),
        (CheckType::Generate, p256),
        (CheckType::Import, p256),
        (CheckType::Generate, rsa),
        (CheckType::Use, public_rsa),
        (CheckType::Import, public_rsa),
    ] {
        f.can_do(check_type, attributes)
            .unwrap_or_else(|e| panic!("{check_type:?} {attributes:?}: {e}"));
    }
    let det = attrs(
        secp_r1_pair(),
        256,
        AsymmetricSignature::DeterministicEcdsa {
            hash_alg: SignHash::Specific(Hash::Sha256),
        },
        sign_verify(),
    );
    let aes = attrs(
        Type::Aes,
        256,
        Algorithm::Aead(Aead::AeadWithDefaultLengthTag(
            AeadWithDefaultLengthTag::Gcm,
        )),
        flags(|u| {
            u.set_encrypt();
        }),
    );
    let sha3 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha3_256), sign_verify());
    let no_flags = attrs(
        secp_r1_pair(),
        256,
        ecdsa(Hash::Sha256),
        UsageFlags::default(),
    );
    let k1_192 = attrs(
        Type::EccKeyPair {
            curve_family: EccFamily::SecpK1,
        },
        192,
        ecdsa(Hash::Sha256),
        sign_verify(),
    );
    for (check_type, attributes) in [
        (CheckType::Use, det),
        (CheckType::Generate, aes),
        (CheckType::Use, sha3),
        (CheckType::Use, no_flags),
        (CheckType::Use, k1_192),
        (CheckType::Generate, public_rsa),
        (CheckType::Derive, p256),
    ] {
        assert_eq!(
            status(f.can_do(check_type, attributes)),
            ResponseStatus::PsaErrorNotSupported,
            "{check_type:?} {attributes:?}"
        );
    }
}

#[test]
fn sessions_are_shared_by_many_threads() {
    // A failure shows the provider's warnings (an unmapped return value names itself).
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::WARN)
        .try_init();
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let public =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&f.export_public("k")).expect("P-256 point");
    std::thread::scope(|scope| {
        for thread in 0..8_u8 {
            let (f, public) = (&f, &public);
            scope.spawn(move || {
                for round in 0..20_u8 {
                    let hash = sha256(&[thread, round]);
                    let signature = f.try_sign("k", alg, &hash).expect("signed");
                    public
                        .verify_prehash(
                            &hash,
                            &p256::ecdsa::Signature::from_slice(&signature).expect("r || s"),
                        )
                        .expect("verified");
                    f.try_verify("k", alg, &hash, &signature).expect("verified");
                    let name = format!("t{thread}-{round}");
                    if round % 5 == 0 {
                        f.generate(&name, attrs(secp_r1_pair(), 256, alg, sign_verify()));
                        f.destroy(&name).expect("destroyed");
                    }
                }
            });
        }
    });
    assert_eq!(f.store.list_for_provider("pkcs11-provider").len(), 1);
}

#[test]
fn start_up_errors_name_their_cause() {
    let token = SoftHsm::new("errors");
    let base = config(&token);

    let mut c = base.clone();
    c.library_path = "/nonexistent/libpkcs11.so".into();
    let message = start_error(&c);
    assert!(
        message.contains("/nonexistent/libpkcs11.so") && message.contains("does not exist"),
        "{message}"
    );

    let not_a_library = tempfile::NamedTempFile::new().expect("file");
    c.library_path = not_a_library.path().to_owned();
    let message = start_error(&c);
    assert!(message.contains("cannot be loaded"), "{message}");

    let mut c = base.clone();
    c.slot_number = Some(4_242_424_242);
    let message = start_error(&c);
    assert!(
        message.contains("no slot 4242424242") && message.contains(&token.slot.to_string()),
        "{message}"
    );

    let mut c = base.clone();
    c.serial_number = Some("0000000000000000".into());
    let message = start_error(&c);
    assert!(
        message.contains("serial number \"0000000000000000\"") && message.contains(&token.serial),
        "{message}"
    );

    let mut c = base.clone();
    c.slot_number = Some(token.uninitialised_slot());
    let message = start_error(&c);
    assert!(message.contains("is not initialised"), "{message}");

    let mut c = base.clone();
    c.user_pin = Some(SecretString::new("str:wrong-pin".into()));
    let message = start_error(&c);
    assert!(
        message.contains("refused the user PIN") && message.contains("CKR_PIN_INCORRECT"),
        "{message}"
    );
    assert!(!message.contains("wrong-pin"), "the PIN is not shown");

    let mut c = base.clone();
    c.user_pin = Some(SecretString::new("hex:zz".into()));
    assert!(start_error(&c).contains("user_pin"));

    // Several initialised tokens (this process has many) and neither slot nor serial number.
    let mut c = base.clone();
    c.slot_number = None;
    let message = start_error(&c);
    assert!(
        message.contains("serial_number or slot_number"),
        "{message}"
    );

    // The right PIN in hexadecimal logs in.
    let mut c = base;
    let hex: String = token
        .user_pin()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    c.user_pin = Some(SecretString::new(format!("hex:{hex}")));
    let store = KeyStore::open_in_memory().expect("store");
    Pkcs11Provider::new("p".into(), &c, &store).expect("hex PIN accepted");
}

#[test]
fn start_up_errors_do_not_hide_behind_one_type() {
    // The error type keeps the causes apart for callers too.
    let token = SoftHsm::new("kinds");
    let mut c = config(&token);
    c.user_pin = Some(SecretString::new("bad".into()));
    let store = KeyStore::open_in_memory().expect("store");
    assert!(matches!(
        Pkcs11Provider::new("p".into(), &c, &store),
        Err(StartError::WrongPin(slot)) if slot == token.slot
    ));
}

#[test]
fn a_reload_with_a_wrong_pin_is_refused_and_the_running_provider_still_serves() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("before", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let token = token(&f).clone();
    let mut wrong = config(&token);
    wrong.user_pin = Some(SecretString::new("not-the-pin".into()));
    // The library is initialised again, so the token is logged out and checks the PIN.
    assert!(matches!(
        Pkcs11Provider::new("reloaded".into(), &wrong, &f.store),
        Err(StartError::WrongPin(slot)) if slot == token.slot
    ));
    // The running provider logs in again with its own PIN.
    f.try_sign("before", alg, &[1; 32])
        .expect("the running provider signs after the refused reload");
    // The right PIN is still accepted, and the first provider still serves.
    let again = reopen(&f, |_| {});
    again.generate("after", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    f.try_sign("after", alg, &[1; 32])
        .expect("the first provider signs with a key of the same token");
}

#[test]
fn a_token_made_after_the_library_was_initialised_is_used_by_a_new_provider() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    // Made by softhsm2-util after this process initialised SoftHSM.
    let late = token(&f).another("late");
    let store = Arc::new(KeyStore::open_in_memory().expect("in-memory store"));
    let on_late = on(late.clone(), &config(&late), store);
    on_late.generate("new", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let hash = sha256(b"on the late token");
    let signature = on_late.try_sign("new", alg, &hash).expect("signed");
    on_late
        .try_verify("new", alg, &hash, &signature)
        .expect("verified");
    // The provider of the first token lives on across the re-initialisation.
    let signature = f.try_sign("k", alg, &hash).expect("signed");
    f.try_verify("k", alg, &hash, &signature).expect("verified");
}

#[test]
fn a_user_pin_changed_on_the_token_is_applied_by_a_new_provider() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let token = token(&f).clone();
    // Changed in a session of this process (C_SetPIN): `p11tool` does not look past the 48th
    // slot, and this process's configuration holds more tokens.
    let session = f.provider.token.pool.get().expect("a session");
    session
        .set_pin(
            &AuthPin::from(token.user_pin().to_owned()),
            &AuthPin::from("a-new-user-pin".to_owned()),
        )
        .expect("PIN changed");
    drop(session);
    // The old PIN is refused by the token, the new one accepted.
    assert!(matches!(
        Pkcs11Provider::new("old-pin".into(), &config(&token), &f.store),
        Err(StartError::WrongPin(_))
    ));
    let reloaded = reopen(&f, |c| {
        c.user_pin = Some(SecretString::new("a-new-user-pin".into()));
    });
    let hash = sha256(b"after the PIN change");
    let signature = reloaded
        .try_sign("k", alg, &hash)
        .expect("a key made before the change signs");
    reloaded
        .try_verify("k", alg, &hash, &signature)
        .expect("verified");
    drop(f);
    reloaded
        .try_sign("k", alg, &hash)
        .expect("still logged in once the old provider is gone");
}

#[test]
fn object_handles_of_a_finalised_library_are_not_used() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("a", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    f.generate("b", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let public_a = p256::ecdsa::VerifyingKey::from_sec1_bytes(&f.export_public("a")).expect("a");
    let hash = sha256(b"which key");
    // Cached handles of "a".
    f.try_sign("a", alg, &hash).expect("signed");
    // The library is initialised again and the objects of "b" are looked up first, so the
    // library may give them the numbers "a" had.
    let reloaded = reopen(&f, |_| {});
    reloaded.try_sign("b", alg, &hash).expect("signed");
    let signature = f.try_sign("a", alg, &hash).expect("signed");
    public_a
        .verify_prehash(
            &hash,
            &p256::ecdsa::Signature::from_slice(&signature).expect("r || s"),
        )
        .expect("signed by key a, not by whatever object took its old handle");
}

#[test]
fn new_providers_during_concurrent_signing_break_no_request() {
    let f = fixture();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let public =
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&f.export_public("k")).expect("P-256 point");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let signed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4_u8)
            .map(|thread| {
                let (f, public, stop, signed) = (&f, &public, &stop, &signed);
                scope.spawn(move || {
                    let mut round = 0_u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let hash = sha256(&[&[thread][..], &round.to_be_bytes()].concat());
                        let signature = f.try_sign("k", alg, &hash).expect("signed");
                        public
                            .verify_prehash(
                                &hash,
                                &p256::ecdsa::Signature::from_slice(&signature).expect("r || s"),
                            )
                            .expect("verified");
                        signed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        round += 1;
                    }
                })
            })
            .collect();
        // Each new provider initialises the library again under the signing threads.
        for _ in 0..5 {
            let reloaded = reopen(&f, |_| {});
            reloaded.try_sign("k", alg, &[7; 32]).expect("signed");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for worker in workers {
            worker.join().expect("every signature succeeded");
        }
    });
    assert!(signed.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

mod conformance {
    use std::sync::Arc;

    use bulwark_interface::ops::Family;
    use bulwark_interface::status::ResponseStatus;
    use bulwark_testenv::softhsm::SoftHsm;

    use super::config;
    use crate::keystore::KeyStore;
    use crate::providers::conformance::{Expectations, Keep, Load, Subject, Support};
    use crate::providers::pkcs11::Pkcs11Provider;

    const NOT_SUPPORTED: ResponseStatus = ResponseStatus::PsaErrorNotSupported;

    impl Subject for Pkcs11Provider {
        const EXPECTED: Expectations = Expectations {
            family: Family::Pkcs11,
            key_id: |key_id| assert_eq!(key_id.len(), 4, "CKA_ID: a u32, big-endian"),
            rsa_bits: &[1024, 1536, 2048, 3072, 4096],
            refused_size: ResponseStatus::PsaErrorInvalidArgument,
            p384: Support::Yes,
            rsa_pss: Support::Yes,
            // SoftHSM 2.6 takes no OAEP label.
            oaep_sha256: Support::No(NOT_SUPPORTED),
            oaep_label: Support::No(NOT_SUPPORTED),
            private_key_import: Support::Yes,
            aes_keys: Support::No(NOT_SUPPORTED),
            dh_keys: false,
            can_do_bare_hmac_keys: false,
            deterministic_ecdsa: false,
            cbc_mac: false,
            load: Load {
                keys: 4,
                rounds: 10,
            },
        };

        fn make(store: &KeyStore) -> (Arc<Self>, Keep) {
            let token = SoftHsm::new("conformance");
            let provider =
                Pkcs11Provider::new("pkcs11-provider".to_owned(), &config(&token), store)
                    .unwrap_or_else(|e| panic!("provider starts: {e}"));
            (Arc::new(provider), Box::new(token))
        }
    }

    crate::providers::conformance::conformance_tests!(Pkcs11Provider);
}
