//! Tests of the TPM provider on a real swtpm (one simulator per test, manufactured on a
//! temporary path by `bulwark_testenv::swtpm`), called as a client calls it: through its
//! registry and the wire encoding (the conformance `Fixture`, which keeps the simulator alive).
//!
//! Signatures are checked with RustCrypto, encryption round-trips with RustCrypto on the other
//! side, keys are used again after a TPM reset (simulator killed and restarted), and attestation
//! is checked end to end with a verifier that builds the credential with `TPM2_MakeCredential`
//! on a second simulator.

use std::str::FromStr;
use std::sync::Arc;

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::attest_key::{AttestationMechanismParams, AttestationOutput};
use bulwark_interface::ops::can_do_crypto::CheckType;
use bulwark_interface::ops::prepare_key_attestation::{
    PrepareKeyAttestationOutput, PrepareKeyAttestationParams,
};
use bulwark_interface::ops::*;
use bulwark_interface::status::ResponseStatus;
use bulwark_testenv::swtpm::Swtpm;
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Hash,
    SignHash,
};
use psa_crypto::types::key::{EccFamily, Type, UsageFlags};
use sha2::Digest as _;
use tss_esapi::abstraction::{ek, AsymmetricAlgorithmSelection};
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::structures::{Digest, Name, Public, PublicKeyRsa};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::UnMarshall;

use super::{TpmProvider, TPM_UUID};
use crate::config::{SecretString, TpmConfig};
use crate::keystore::KeyStore;
use crate::providers::conformance::{
    self, attrs, ecdsa, encrypt_decrypt, secp_r1_pair, secp_r1_public, sign_verify, status,
    verify_only, Expectations, Keep, Load, Subject, Support,
};
use crate::providers::Provider;

const NAME: &str = "tpm-provider";

/// The key id of a generated key pair: format version 1, kind 1 (key pair), then the 32-byte
/// auth value.
fn wrapped_key_pair(key_id: &[u8]) {
    assert_eq!(key_id[..4], [1, 1, 0, 32]);
}

impl Subject for TpmProvider {
    const EXPECTED: Expectations = Expectations {
        family: Family::Tpm,
        key_id: wrapped_key_pair,
        // What swtpm (libtpms) takes; the provider asks the TPM at start-up.
        rsa_bits: &[1024, 2048, 3072],
        refused_size: ResponseStatus::PsaErrorNotSupported,
        p384: Support::Yes,
        rsa_pss: Support::No(ResponseStatus::PsaErrorNotSupported),
        oaep_sha256: Support::Yes,
        // Only labels ending in a zero byte (the TPM appends one to any other).
        oaep_label: Support::No(ResponseStatus::PsaErrorNotSupported),
        private_key_import: Support::No(ResponseStatus::PsaErrorNotSupported),
        aes_keys: Support::No(ResponseStatus::PsaErrorNotSupported),
        dh_keys: false,
        can_do_bare_hmac_keys: false,
        deterministic_ecdsa: false,
        cbc_mac: false,
        load: Load { keys: 4, rounds: 5 },
    };

    fn make(store: &KeyStore) -> (Arc<Self>, Keep) {
        let _ = store;
        let tpm = Swtpm::start();
        let provider =
            TpmProvider::new(NAME.to_owned(), &config(&tpm.tcti(), "")).expect("provider starts");
        (Arc::new(provider), Box::new(tpm))
    }
}

conformance::conformance_tests!(TpmProvider);

fn config(tcti: &str, owner_auth: &str) -> TpmConfig {
    TpmConfig {
        tcti: tcti.to_owned(),
        owner_hierarchy_auth: SecretString::new(owner_auth.to_owned()),
        endorsement_hierarchy_auth: None,
        skip_if_no_tpm: false,
    }
}

type Fixture = conformance::Fixture<TpmProvider>;

/// The simulator `f`'s provider runs on.
fn tpm(f: &mut Fixture) -> &mut Swtpm {
    f.kept_mut::<Swtpm>()
}

fn pkcs1(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Specific(hash),
    }
}

fn oaep() -> AsymmetricEncryption {
    AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    sha2::Sha256::digest(data).to_vec()
}

fn sha384(data: &[u8]) -> Vec<u8> {
    sha2::Sha384::digest(data).to_vec()
}

// ---------------------------------------------------------------------------------------------
// Identity, registration, start-up
// ---------------------------------------------------------------------------------------------

#[test]
fn info_and_registered_operations() {
    let f = Fixture::new();
    let info = f.provider.info();
    assert_eq!(info.uuid.to_string(), TPM_UUID);
    assert_eq!(info.id, ProviderId::Tpm);
    assert_eq!(info.vendor, "Trusted Computing Group (TCG)");
    assert_eq!(
        (info.version_maj, info.version_min, info.version_rev),
        (0, 1, 0)
    );
    assert_eq!(f.provider.name(), NAME);
    assert_eq!(
        f.registered(),
        Opcode::ALL
            .iter()
            .copied()
            .filter(|o| o.is_served_by(Family::Tpm))
            .collect()
    );
    // What the TPM reported is what is offered.
    assert!(f.provider.capabilities.rsa_bits.contains(&2048));
    assert!(f.provider.capabilities.curve_bits.contains(&256));
    assert!(f.provider.capabilities.hashes.contains(&Hash::Sha256));
}

#[test]
fn start_up_errors_name_the_cause() {
    let tpm = Swtpm::start();
    // Give the owner hierarchy an auth value, as a real owner would.
    {
        let mut context =
            tss_esapi::Context::new(TctiNameConf::from_str(&tpm.tcti()).unwrap()).unwrap();
        context
            .execute_with_session(
                Some(tss_esapi::interface_types::session_handles::AuthSession::Password),
                |ctx| {
                    ctx.hierarchy_change_auth(
                        tss_esapi::handles::AuthHandle::Owner,
                        tss_esapi::structures::Auth::try_from(b"tpm_pass".to_vec()).unwrap(),
                    )
                },
            )
            .expect("owner auth set");
    }
    for good in ["str:tpm_pass", "hex:74706d5f70617373", "tpm_pass"] {
        let provider = TpmProvider::new(NAME.to_owned(), &config(&tpm.tcti(), good));
        assert!(provider.is_ok(), "{good}: {:?}", provider.err());
    }
    for bad in ["", "str:wrong", "hex:00"] {
        let error = TpmProvider::new(NAME.to_owned(), &config(&tpm.tcti(), bad)).unwrap_err();
        assert!(
            error.to_string().contains("owner_hierarchy_auth"),
            "{bad}: {error}"
        );
    }
    let error = TpmProvider::new(NAME.to_owned(), &config(&tpm.tcti(), "hex:zz")).unwrap_err();
    assert!(error.to_string().contains("hex"), "{error}");
    let error = TpmProvider::new(NAME.to_owned(), &config("nonsense", "")).unwrap_err();
    assert!(error.to_string().contains("nonsense"), "{error}");
}

#[test]
fn providers_on_one_tcti_share_the_connection() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    // A provider rebuilt on reload while the first one lives, on the same store.
    let second =
        TpmProvider::new(NAME.to_owned(), &config(&f.kept::<Swtpm>().tcti(), "")).expect("starts");
    let second = Fixture::from_parts(
        Arc::new(second),
        Arc::clone(&f.store),
        Box::new(()),
        f.settings,
    );
    assert!(Arc::ptr_eq(&f.provider.tpm, &second.provider.tpm));
    let hash = sha256(b"reload");
    let signature = f.try_sign("k", alg, &hash).unwrap();
    second
        .try_verify("k", alg, &hash, &signature)
        .expect("the second provider verifies");
    drop(second);
    f.try_verify("k", alg, &hash, &signature)
        .expect("the first one still works");
}

// ---------------------------------------------------------------------------------------------
// Key management
// ---------------------------------------------------------------------------------------------

#[test]
fn generation_errors() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_eq!(
        status(f.try_generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()))),
        ResponseStatus::PsaErrorAlreadyExists
    );
    assert_eq!(
        status(f.try_generate("p", attrs(secp_r1_public(), 256, alg, sign_verify()))),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_generate(
            "a",
            attrs(Type::Aes, 128, Algorithm::None, encrypt_decrypt())
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(f.try_generate(
            "r",
            attrs(Type::RsaKeyPair, 1000, pkcs1(Hash::Sha256), sign_verify())
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(f.try_generate(
            "b",
            attrs(
                Type::EccKeyPair {
                    curve_family: EccFamily::BrainpoolPR1
                },
                256,
                alg,
                sign_verify()
            )
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    // Deprecated primitives are refused unless allowed.
    #[allow(deprecated)]
    let sha1 = pkcs1(Hash::Sha1);
    assert_eq!(
        status(f.try_generate("d", attrs(Type::RsaKeyPair, 2048, sha1, sign_verify()))),
        ResponseStatus::DeprecatedPrimitive
    );
    // Nothing half-made is left behind.
    assert_eq!(
        status(f.try_export_public("r")),
        ResponseStatus::PsaErrorDoesNotExist
    );
}

#[test]
fn destroy_frees_the_name_and_other_applications_see_nothing() {
    let mut f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let first = f.export_public("k");
    f.identity.name = "other".to_owned();
    assert_eq!(
        status(f.try_export_public("k")),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(status(f.destroy("k")), ResponseStatus::PsaErrorDoesNotExist);
    f.identity.name = "app".to_owned();
    f.destroy("k").unwrap();
    assert_eq!(status(f.destroy("k")), ResponseStatus::PsaErrorDoesNotExist);
    assert_eq!(
        status(f.try_sign("k", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    f.generate("k", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_ne!(f.export_public("k"), first, "a new key");
    // The key id holds no key in the clear: only the TPM's wrapping, the public area and the
    // auth value; discard has nothing to remove.
    let record = f.record("k");
    assert_eq!(record.key_id[..2], [1, 1]);
    f.provider.discard(&record.key_id).unwrap();
    f.try_sign("k", alg, &[0; 32]).expect("still usable");
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

#[test]
fn ecdsa_p256_and_p384_signatures_verify_with_rustcrypto() {
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    let f = Fixture::new();
    f.generate(
        "p256",
        attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
    );
    f.generate(
        "p384",
        attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify()),
    );

    let hash = sha256(b"message");
    let signature = f.try_sign("p256", ecdsa(Hash::Sha256), &hash).unwrap();
    assert_eq!(signature.len(), 64);
    let public = f.export_public("p256");
    assert_eq!((public.len(), public[0]), (65, 4));
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
    let parsed = p256::ecdsa::Signature::from_slice(&signature).unwrap();
    key.verify_prehash(&hash, &parsed)
        .expect("RustCrypto verifies");
    f.try_verify("p256", ecdsa(Hash::Sha256), &hash, &signature)
        .unwrap();
    let mut bad = signature.clone();
    bad[10] ^= 1;
    assert_eq!(
        status(f.try_verify("p256", ecdsa(Hash::Sha256), &hash, &bad)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    assert_eq!(
        status(f.try_verify("p256", ecdsa(Hash::Sha256), &hash, &signature[..63])),
        ResponseStatus::PsaErrorInvalidSignature
    );

    let hash = sha384(b"message");
    let signature = f.try_sign("p384", ecdsa(Hash::Sha384), &hash).unwrap();
    assert_eq!(signature.len(), 96);
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&f.export_public("p384")).unwrap();
    let parsed = p384::ecdsa::Signature::from_slice(&signature).unwrap();
    key.verify_prehash(&hash, &parsed)
        .expect("RustCrypto verifies");
}

#[test]
fn rsa_pkcs1_signatures_verify_with_rustcrypto() {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let f = Fixture::new();
    let alg = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Any,
    };
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, alg, sign_verify()));
    let hash = sha256(b"message");
    let signature = f.try_sign("rsa", pkcs1(Hash::Sha256), &hash).unwrap();
    assert_eq!(signature.len(), 256);
    let key = rsa::RsaPublicKey::from_pkcs1_der(&f.export_public("rsa")).unwrap();
    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .expect("RustCrypto verifies");
    f.try_verify("rsa", pkcs1(Hash::Sha256), &hash, &signature)
        .unwrap();
    let mut bad = signature.clone();
    bad[0] ^= 1;
    assert_eq!(
        status(f.try_verify("rsa", pkcs1(Hash::Sha256), &hash, &bad)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    // SHA-384 under the same policy.
    let hash = sha384(b"message");
    let signature = f.try_sign("rsa", pkcs1(Hash::Sha384), &hash).unwrap();
    key.verify(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), &hash, &signature)
        .expect("RustCrypto verifies");
}

#[test]
fn signature_policy_and_argument_errors() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    // A key without the sign flag, a policy naming another algorithm and a missing key are
    // refused as the conformance suite asserts for every provider
    // (`sign_is_refused_without_the_flag_or_with_another_algorithm`,
    // `missing_and_destroyed_keys_do_not_exist`); so is a hash of 31 bytes, and here of 20.
    f.generate("s", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_eq!(
        status(f.try_sign("s", alg, &[0; 20])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // Deterministic ECDSA is not offered.
    let deterministic = AsymmetricSignature::DeterministicEcdsa {
        hash_alg: Hash::Sha256.into(),
    };
    assert_eq!(
        status(f.try_generate(
            "d",
            attrs(secp_r1_pair(), 256, deterministic, sign_verify())
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    // ECDSA without a named hash signs inputs of a hash's length as given.
    let any = AsymmetricSignature::EcdsaAny;
    f.generate("any", attrs(secp_r1_pair(), 256, any, sign_verify()));
    let input = sha384(b"longer than the curve");
    let signature = f.try_sign("any", any, &input).unwrap();
    f.try_verify("any", any, &input, &signature).unwrap();
    assert_eq!(
        status(f.try_sign("any", any, &[1; 33])),
        ResponseStatus::PsaErrorNotSupported
    );
}

// ---------------------------------------------------------------------------------------------
// Encryption
// ---------------------------------------------------------------------------------------------

#[test]
fn rsa_encryption_round_trips_with_rustcrypto() {
    use rsa::pkcs1::DecodeRsaPublicKey;
    let f = Fixture::new();
    f.generate(
        "oaep",
        attrs(Type::RsaKeyPair, 2048, oaep(), encrypt_decrypt()),
    );
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    f.generate("v15", attrs(Type::RsaKeyPair, 2048, v15, encrypt_decrypt()));
    for (name, alg) in [("oaep", oaep()), ("v15", v15)] {
        let ciphertext = f.try_encrypt(name, alg, b"secret", None).unwrap();
        assert_eq!(ciphertext.len(), 256);
        assert_eq!(
            f.try_decrypt(name, alg, &ciphertext, None).unwrap(),
            b"secret"
        );
    }
    // Encrypted by RustCrypto, decrypted by the TPM.
    let key = rsa::RsaPublicKey::from_pkcs1_der(&f.export_public("oaep")).unwrap();
    let mut rng = rand::thread_rng();
    let ciphertext = key
        .encrypt(&mut rng, rsa::Oaep::new::<sha2::Sha256>(), b"from outside")
        .unwrap();
    assert_eq!(
        f.try_decrypt("oaep", oaep(), &ciphertext, None).unwrap(),
        b"from outside"
    );
    let key = rsa::RsaPublicKey::from_pkcs1_der(&f.export_public("v15")).unwrap();
    let ciphertext = key
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"v1.5")
        .unwrap();
    assert_eq!(
        f.try_decrypt("v15", v15, &ciphertext, None).unwrap(),
        b"v1.5"
    );
    // A label ending in a zero byte is used as is; others are refused.
    let label = b"label\0";
    let ciphertext = f
        .try_encrypt("oaep", oaep(), b"labelled", Some(label))
        .unwrap();
    assert_eq!(
        f.try_decrypt("oaep", oaep(), &ciphertext, Some(label))
            .unwrap(),
        b"labelled"
    );
    assert_eq!(
        status(f.try_encrypt("oaep", oaep(), b"x", Some(b"label"))),
        ResponseStatus::PsaErrorNotSupported
    );
    // Errors.
    let mut tampered = f.try_encrypt("oaep", oaep(), b"secret", None).unwrap();
    tampered[3] ^= 1;
    assert_eq!(
        status(f.try_decrypt("oaep", oaep(), &tampered, None)),
        ResponseStatus::PsaErrorInvalidPadding
    );
    let ciphertext = f.try_encrypt("v15", v15, b"secret", None).unwrap();
    let mut tampered_v15 = ciphertext.clone();
    tampered_v15[3] ^= 1;
    assert_eq!(
        status(f.try_decrypt("v15", v15, &tampered_v15, None)),
        ResponseStatus::PsaErrorInvalidPadding
    );
    // The TPM still works after refusing.
    assert_eq!(
        f.try_decrypt("v15", v15, &ciphertext, None).unwrap(),
        b"secret"
    );
    assert_eq!(
        status(f.try_decrypt("oaep", oaep(), &tampered[..100], None)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_encrypt("oaep", oaep(), &[1; 250], None)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_encrypt("oaep", v15, b"x", None)),
        ResponseStatus::PsaErrorNotPermitted
    );
    assert_eq!(
        status(f.try_encrypt("nope", oaep(), b"x", None)),
        ResponseStatus::PsaErrorDoesNotExist
    );
}

// ---------------------------------------------------------------------------------------------
// Imported public keys
// ---------------------------------------------------------------------------------------------

#[test]
fn imported_public_keys_verify_and_encrypt() {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    use rsa::pkcs1::EncodeRsaPublicKey;
    let f = Fixture::new();
    let mut rng = rand::thread_rng();

    let signing = p256::ecdsa::SigningKey::random(&mut rng);
    let point = signing.verifying_key().to_encoded_point(false);
    let alg = ecdsa(Hash::Sha256);
    f.try_import(
        "ecc",
        attrs(secp_r1_public(), 0, alg, verify_only()),
        point.as_bytes(),
    )
    .unwrap();
    assert_eq!(f.export_public("ecc"), point.as_bytes());
    let hash = sha256(b"imported");
    let signature: p256::ecdsa::Signature = signing.sign_prehash(&hash).unwrap();
    f.try_verify("ecc", alg, &hash, &signature.to_bytes())
        .expect("verified");
    assert_eq!(
        status(f.try_sign("ecc", alg, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );

    let private = rsa::RsaPrivateKey::new(&mut rng, 2048).unwrap();
    let der = private.to_public_key().to_pkcs1_der().unwrap();
    f.try_import(
        "rsa",
        attrs(Type::RsaPublicKey, 2048, oaep(), encrypt_decrypt()),
        der.as_bytes(),
    )
    .unwrap();
    assert_eq!(f.export_public("rsa"), der.as_bytes());
    let ciphertext = f.try_encrypt("rsa", oaep(), b"to the owner", None).unwrap();
    let plaintext = private
        .decrypt(rsa::Oaep::new::<sha2::Sha256>(), &ciphertext)
        .unwrap();
    assert_eq!(plaintext, b"to the owner");

    // Errors: private keys and other types, bad data, size mismatch, unsupported curve.
    assert_eq!(
        status(f.try_import(
            "x",
            attrs(secp_r1_pair(), 256, alg, sign_verify()),
            &[1; 32]
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(f.try_import(
            "x",
            attrs(Type::Aes, 128, Algorithm::None, encrypt_decrypt()),
            &[1; 16]
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(f.try_import(
            "x",
            attrs(secp_r1_public(), 0, alg, verify_only()),
            &[4; 65]
        )),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_import(
            "x",
            attrs(secp_r1_public(), 384, alg, verify_only()),
            point.as_bytes()
        )),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_import(
            "x",
            attrs(Type::RsaPublicKey, 0, oaep(), encrypt_decrypt()),
            b"junk"
        )),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_import(
            "x",
            attrs(
                Type::EccPublicKey {
                    curve_family: EccFamily::SecpK1
                },
                256,
                alg,
                verify_only()
            ),
            point.as_bytes()
        )),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(f.try_import(
            "ecc",
            attrs(secp_r1_public(), 0, alg, verify_only()),
            point.as_bytes()
        )),
        ResponseStatus::PsaErrorAlreadyExists
    );
}

// ---------------------------------------------------------------------------------------------
// TPM resets
// ---------------------------------------------------------------------------------------------

#[test]
fn keys_survive_a_tpm_reset() {
    use p256::ecdsa::signature::hazmat::PrehashSigner;
    let mut f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("made", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    f.generate(
        "rsa",
        attrs(Type::RsaKeyPair, 2048, oaep(), encrypt_decrypt()),
    );
    let signing = p256::ecdsa::SigningKey::random(&mut rand::thread_rng());
    let point = signing.verifying_key().to_encoded_point(false);
    f.try_import(
        "imported",
        attrs(secp_r1_public(), 256, alg, verify_only()),
        point.as_bytes(),
    )
    .unwrap();
    let ciphertext = f.try_encrypt("rsa", oaep(), b"before", None).unwrap();

    tpm(&mut f).restart();

    let hash = sha256(b"after the reset");
    let signature = f
        .try_sign("made", alg, &hash)
        .expect("a generated key signs after a reset");
    f.try_verify("made", alg, &hash, &signature).unwrap();
    let theirs: p256::ecdsa::Signature = signing.sign_prehash(&hash).unwrap();
    f.try_verify("imported", alg, &hash, &theirs.to_bytes())
        .expect("an imported key verifies after a reset");
    assert_eq!(
        f.try_decrypt("rsa", oaep(), &ciphertext, None).unwrap(),
        b"before"
    );

    // Twice, and with the simulator down in between: the outage is reported, then cured.
    tpm(&mut f).kill();
    assert_eq!(
        status(f.try_sign("made", alg, &hash)),
        ResponseStatus::PsaErrorCommunicationFailure
    );
    tpm(&mut f).restart();
    f.try_sign("made", alg, &hash)
        .expect("signs once the TPM is back");
}

// ---------------------------------------------------------------------------------------------
// Random
// ---------------------------------------------------------------------------------------------

#[test]
fn random_bytes() {
    let mut f = Fixture::new();
    for size in [0, 1, 64, 65, 1000] {
        let bytes = f
            .call::<PsaGenerateRandom>(psa_generate_random::Request { size })
            .unwrap()
            .random_bytes;
        assert_eq!(bytes.len(), size);
    }
    let a = f
        .call::<PsaGenerateRandom>(psa_generate_random::Request { size: 32 })
        .unwrap();
    let b = f
        .call::<PsaGenerateRandom>(psa_generate_random::Request { size: 32 })
        .unwrap();
    assert_ne!(a.random_bytes, b.random_bytes);
    f.settings.buffer_size_limit = 16;
    assert_eq!(
        status(f.call::<PsaGenerateRandom>(psa_generate_random::Request { size: 17 })),
        ResponseStatus::ResponseTooLarge
    );
}

// ---------------------------------------------------------------------------------------------
// CanDoCrypto
// ---------------------------------------------------------------------------------------------

#[test]
fn can_do_crypto_reports_what_is_served() {
    let f = Fixture::new();
    let ok = Ok(());
    let no = Err(ResponseStatus::PsaErrorNotSupported);
    let p256 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let rsa = attrs(Type::RsaKeyPair, 2048, oaep(), encrypt_decrypt());
    let rsa_public = attrs(Type::RsaPublicKey, 2048, oaep(), encrypt_decrypt());
    let aes = attrs(
        Type::Aes,
        128,
        Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm),
        encrypt_decrypt(),
    );
    let cases = [
        (CheckType::Use, p256, ok),
        (CheckType::Generate, p256, ok),
        (CheckType::Import, p256, no),
        (CheckType::Derive, p256, no),
        (CheckType::Generate, rsa, ok),
        (CheckType::Import, rsa_public, ok),
        (CheckType::Generate, rsa_public, no),
        (CheckType::Generate, aes, no),
        (CheckType::Use, aes, no),
        (
            CheckType::Generate,
            attrs(Type::RsaKeyPair, 1000, oaep(), encrypt_decrypt()),
            no,
        ),
        (
            CheckType::Generate,
            attrs(Type::RsaKeyPair, 0, Algorithm::None, encrypt_decrypt()),
            ok,
        ),
        (
            CheckType::Use,
            attrs(
                secp_r1_pair(),
                256,
                AsymmetricSignature::DeterministicEcdsa {
                    hash_alg: Hash::Sha256.into(),
                },
                sign_verify(),
            ),
            no,
        ),
        (
            CheckType::Use,
            attrs(
                Type::RsaKeyPair,
                2048,
                AsymmetricSignature::RsaPss {
                    hash_alg: Hash::Sha256.into(),
                },
                sign_verify(),
            ),
            no,
        ),
        (
            CheckType::Use,
            attrs(
                secp_r1_pair(),
                256,
                ecdsa(Hash::Sha256),
                UsageFlags::default(),
            ),
            no,
        ),
    ];
    for (check, attributes, expected) in cases {
        assert_eq!(
            f.can_do(check, attributes),
            expected,
            "{check:?} {attributes:?}"
        );
    }
    // What CanDoCrypto accepts for generation is generated.
    f.try_generate("k", p256).expect("generated as announced");
    f.try_generate("r", rsa).expect("generated as announced");
}

// ---------------------------------------------------------------------------------------------
// Attestation
// ---------------------------------------------------------------------------------------------

/// A verifier on its own TPM: builds the credential for `name` under the endorsement key whose
/// RSA public key (RSAPublicKey DER) is `ek_der`, with `TPM2_MakeCredential`.
fn make_credential(
    verifier: &Swtpm,
    ek_der: &[u8],
    name: &[u8],
    secret: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::traits::PublicKeyParts;
    let ek = rsa::RsaPublicKey::from_pkcs1_der(ek_der).expect("EK public key");
    assert_eq!(ek.n().bits(), 2048);
    let template = ek::create_ek_public_from_default_template_2(
        AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
        None,
    )
    .unwrap();
    let Public::Rsa {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        ..
    } = template
    else {
        panic!("RSA template")
    };
    let public = Public::Rsa {
        object_attributes,
        name_hashing_algorithm,
        auth_policy,
        parameters,
        unique: PublicKeyRsa::try_from(ek.n().to_bytes_be()).unwrap(),
    };
    let mut context =
        tss_esapi::Context::new(TctiNameConf::from_str(&verifier.tcti()).unwrap()).unwrap();
    let handle = context
        .load_external_public(public, Hierarchy::Null)
        .unwrap();
    let (blob, secret) = context
        .make_credential(
            handle,
            Digest::try_from(secret.to_vec()).unwrap(),
            Name::try_from(name.to_vec()).unwrap(),
        )
        .unwrap();
    (blob.value().to_vec(), secret.value().to_vec())
}

/// What PrepareKeyAttestation gives: name, public area, EK public key.
type Prepared = (Vec<u8>, Vec<u8>, Vec<u8>);

fn prepare(f: &Fixture, key: &str, attesting: Option<&str>) -> Result<Prepared, ResponseStatus> {
    let response = f.call::<PrepareKeyAttestation>(prepare_key_attestation::Request {
        parameters: PrepareKeyAttestationParams::ActivateCredential {
            attested_key_name: key.to_owned(),
            attesting_key_name: attesting.map(str::to_owned),
        },
    })?;
    let PrepareKeyAttestationOutput::ActivateCredential {
        name,
        public,
        attesting_key_pub,
    } = response.output;
    Ok((name, public, attesting_key_pub))
}

fn attest(
    f: &Fixture,
    key: &str,
    blob: Vec<u8>,
    secret: Vec<u8>,
    attesting: Option<&str>,
) -> Result<Vec<u8>, ResponseStatus> {
    let response = f.call::<AttestKey>(attest_key::Request {
        attested_key_name: key.to_owned(),
        parameters: AttestationMechanismParams::ActivateCredential {
            credential_blob: blob,
            secret,
        },
        attesting_key_name: attesting.map(str::to_owned),
    })?;
    let AttestationOutput::ActivateCredential { credential } = response.output;
    Ok(credential.to_vec())
}

#[test]
fn attestation_with_the_endorsement_key() {
    let f = Fixture::new();
    let verifier = Swtpm::start();
    f.generate(
        "k",
        attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify()),
    );
    f.generate(
        "other",
        attrs(Type::RsaKeyPair, 2048, oaep(), encrypt_decrypt()),
    );
    let (name, public, ek) = prepare(&f, "k", None).expect("prepared");
    // The name is the name algorithm (SHA-256) and the hash of the public area given.
    assert_eq!(name[..2], [0x00, 0x0B]);
    assert_eq!(name[2..], sha256(&public)[..]);
    let area = Public::unmarshall(&public).expect("a public area");
    assert!(matches!(area, Public::Ecc { .. }));
    // The EK is always the same key.
    assert_eq!(prepare(&f, "other", Some("")).unwrap().2, ek);

    let challenge = b"a fresh challenge, 32 bytes long".to_vec();
    let (blob, secret) = make_credential(&verifier, &ek, &name, &challenge);
    let answer = attest(&f, "k", blob.clone(), secret.clone(), None).expect("attested");
    assert_eq!(answer, challenge);

    // The credential names "k": another key cannot release it.
    assert_eq!(
        status(attest(&f, "other", blob.clone(), secret.clone(), None)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // Errors of the contract.
    assert_eq!(
        status(prepare(&f, "k", Some("my-ak"))),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(attest(&f, "k", blob.clone(), secret.clone(), Some("my-ak"))),
        ResponseStatus::PsaErrorNotSupported
    );
    assert_eq!(
        status(prepare(&f, "nope", None)),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(attest(&f, "nope", blob.clone(), secret.clone(), None)),
        ResponseStatus::PsaErrorDoesNotExist
    );
    let mut bad = secret.clone();
    bad[20] ^= 1;
    assert_eq!(
        status(attest(&f, "k", blob, bad, None)),
        ResponseStatus::PsaErrorInvalidArgument
    );
}
