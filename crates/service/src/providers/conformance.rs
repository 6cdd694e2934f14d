//! The provider conformance suite: the behaviours every software crypto provider shares,
//! written once and run against each provider by [`conformance_tests!`].
//!
//! Each shared behaviour is a function generic over the provider under test ([`Subject`]).
//! Where the providers legitimately differ, the behaviour reads the provider's
//! [`Expectations`] and asserts the expected outcome either way: nothing is skipped.
//! Provider-specific tests (Mbed's key files, OpenSSL's KEK, wrapping, cache, ...) stay in each
//! provider's `tests.rs`, which also uses the [`Fixture`] and helpers from here.

use std::any::Any;
use std::fmt::Debug;
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
use psa_crypto::types::key::{Attributes, DhFamily, EccFamily, Lifetime, Policy, Type, UsageFlags};

use crate::auth::Identity;
use crate::dispatch::Registry;
use crate::error::ProviderError;
use crate::keystore::{KeyRecord, KeyStore};
use crate::providers::{Handles, Provider, ProviderSettings, RequestContext, SoftwareOperations};

/// Whatever must outlive a provider made for a test (a temporary directory, say).
pub(crate) type Keep = Box<dyn Any + Send + Sync>;

/// A provider the conformance suite runs against.
pub(crate) trait Subject: SoftwareOperations + Sized {
    /// Where this provider differs from the others.
    const EXPECTED: Expectations;

    /// A fresh provider whose keys are recorded in `store`.
    fn make(store: &KeyStore) -> (Arc<Self>, Keep);
}

/// The behaviours in which providers differ, one entry each, asserted both ways.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expectations {
    /// Checks the back-end key id recorded for a generated SECP-R1 P-256 key pair.
    pub key_id: fn(&[u8]),
    /// Whether RFC 7919 DH key pairs can be generated and imported (FFDH agreement itself is
    /// NotSupported either way).
    pub dh_keys: bool,
    /// Whether CanDoCrypto answers Ok to generating and importing an HMAC key whose policy
    /// names no algorithm.
    pub can_do_bare_hmac_keys: bool,
    /// Whether CanDoCrypto answers Ok to USE of deterministic ECDSA.
    pub deterministic_ecdsa: bool,
    /// Whether CanDoCrypto answers Ok to GENERATE of an AES key for CBC-MAC.
    pub cbc_mac: bool,
}

/// One `#[test]` per shared behaviour for provider `$provider`, named after the behaviour.
macro_rules! conformance_tests {
    ($provider:ty) => {
        $crate::providers::conformance::conformance_tests!(
            @tests $provider;
            ecdsa_p256_signs_and_verifies,
            ecdsa_p384_signs_and_verifies,
            rsa_2048_pkcs1v15_and_pss_sign_and_verify,
            sign_message_hashes_then_signs,
            sign_message_without_a_specific_hash_is_not_supported,
            sign_is_refused_without_the_flag_or_with_another_algorithm,
            a_hash_of_the_wrong_length_is_an_invalid_argument,
            signing_from_eight_threads_at_once_is_safe,
            rsa_pkcs1v15_encryption_round_trip,
            rsa_oaep_encryption_round_trip_with_a_label,
            aes_gcm_round_trip_and_tag_failure,
            aes_ccm_round_trip_and_tag_failure,
            chacha20_poly1305_round_trip_and_tag_failure,
            aes_cbc_pkcs7_round_trip_with_a_fresh_iv,
            aes_cbc_pkcs7_bad_padding_is_invalid_padding,
            aes_ctr_round_trip_keeps_the_length,
            aes_ecb_has_no_iv,
            hmac_compute_and_verify,
            hash_compute_and_compare,
            random_respects_the_buffer_limit,
            ecdh_gives_both_sides_the_same_secret,
            public_keys_export_in_psa_format,
            export_needs_the_export_flag,
            imported_keys_work_and_keep_the_attributes_as_sent,
            provider_size_and_type_checks,
            a_name_can_only_be_used_once,
            missing_and_destroyed_keys_do_not_exist,
            keys_of_another_application_are_invisible,
            deprecated_generation_needs_allow_deprecated,
            ffdh_agreement_is_not_supported,
            can_do_crypto_follows_the_reference_rules,
        );
    };
    (@tests $provider:ty; $($behaviour:ident,)*) => {
        $(
            #[test]
            fn $behaviour() {
                $crate::providers::conformance::$behaviour::<$provider>();
            }
        )*
    };
}
pub(crate) use conformance_tests;

/// A provider, an empty key store and one application.
pub(crate) struct Fixture<P> {
    pub(crate) provider: Arc<P>,
    pub(crate) store: KeyStore,
    pub(crate) identity: Identity,
    pub(crate) settings: ProviderSettings,
    _keep: Keep,
}

impl<P: Subject> Fixture<P> {
    pub(crate) fn new() -> Self {
        Fixture::with_settings(ProviderSettings::default())
    }

    pub(crate) fn with_settings(settings: ProviderSettings) -> Self {
        let store = KeyStore::open_in_memory().expect("in-memory store");
        let (provider, keep) = P::make(&store);
        Fixture::from_parts(provider, store, keep, settings)
    }
}

impl<P: SoftwareOperations> Fixture<P> {
    /// A fixture on a given provider and store, for application "app".
    pub(crate) fn from_parts(
        provider: Arc<P>,
        store: KeyStore,
        keep: Keep,
        settings: ProviderSettings,
    ) -> Self {
        Fixture {
            provider,
            store,
            identity: Identity {
                name: "app".to_owned(),
                auth_type: AuthType::Direct,
                is_admin: false,
            },
            settings,
            _keep: keep,
        }
    }

    pub(crate) fn ctx(&self) -> RequestContext<'_> {
        RequestContext::new(Some(&self.identity), &self.store, &self.settings)
    }

    pub(crate) fn call<O: Operation>(
        &self,
        request: O::Request,
    ) -> Result<O::Response, ProviderError>
    where
        P: Handles<O>,
    {
        <P as Handles<O>>::handle(&self.provider, &self.ctx(), request)
    }
    pub(crate) fn record(&self, name: &str) -> KeyRecord {
        self.ctx()
            .keys(&*self.provider)
            .and_then(|keys| keys.get(name))
            .expect("key exists")
    }

    pub(crate) fn generate(&self, name: &str, attributes: Attributes) {
        let request = psa_generate_key::Request {
            key_name: name.to_owned(),
            attributes,
        };
        self.call::<PsaGenerateKey>(request).expect("key generated");
    }

    pub(crate) fn try_import(
        &self,
        name: &str,
        attributes: Attributes,
        data: &[u8],
    ) -> Result<(), ProviderError> {
        let request = psa_import_key::Request {
            key_name: name.to_owned(),
            attributes,
            data: SecretBytes::from(data),
        };
        self.call::<PsaImportKey>(request).map(drop)
    }

    pub(crate) fn export_public(&self, name: &str) -> Vec<u8> {
        let request = psa_export_public_key::Request {
            key_name: name.to_owned(),
        };
        self.call::<PsaExportPublicKey>(request)
            .expect("public key exported")
            .data
    }

    pub(crate) fn try_export(&self, name: &str) -> Result<Vec<u8>, ProviderError> {
        let request = psa_export_key::Request {
            key_name: name.to_owned(),
        };
        self.call::<PsaExportKey>(request)
            .map(|response| response.data.to_vec())
    }

    pub(crate) fn try_sign(
        &self,
        name: &str,
        alg: AsymmetricSignature,
        hash: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        let request = psa_sign_hash::Request {
            key_name: name.to_owned(),
            alg,
            hash: hash.to_vec(),
        };
        self.call::<PsaSignHash>(request)
            .map(|response| response.signature)
    }

    pub(crate) fn try_verify(
        &self,
        name: &str,
        alg: AsymmetricSignature,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<(), ProviderError> {
        let request = psa_verify_hash::Request {
            key_name: name.to_owned(),
            alg,
            hash: hash.to_vec(),
            signature: signature.to_vec(),
        };
        self.call::<PsaVerifyHash>(request).map(drop)
    }

    pub(crate) fn destroy(&self, name: &str) -> Result<(), ProviderError> {
        self.call::<PsaDestroyKey>(psa_destroy_key::Request {
            key_name: name.to_owned(),
        })
        .map(drop)
    }

    pub(crate) fn can_do(
        &self,
        check_type: CheckType,
        attributes: Attributes,
    ) -> Result<(), ProviderError> {
        self.call::<CanDoCrypto>(can_do_crypto::Request {
            check_type,
            attributes,
        })
        .map(drop)
    }
}

/// The wire status of a failed call.
pub(crate) fn status<T: Debug>(result: Result<T, ProviderError>) -> ResponseStatus {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => ResponseStatus::from(&error),
    }
}

pub(crate) fn flags(set: impl FnOnce(&mut UsageFlags)) -> UsageFlags {
    let mut flags = UsageFlags::default();
    set(&mut flags);
    flags
}

pub(crate) fn sign_verify() -> UsageFlags {
    flags(|f| {
        f.set_sign_hash().set_verify_hash();
    })
}

pub(crate) fn encrypt_decrypt() -> UsageFlags {
    flags(|f| {
        f.set_encrypt().set_decrypt();
    })
}

pub(crate) fn attrs(
    key_type: Type,
    bits: usize,
    alg: impl Into<Algorithm>,
    usage_flags: UsageFlags,
) -> Attributes {
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type,
        bits,
        policy: Policy {
            usage_flags,
            permitted_algorithms: alg.into(),
        },
    }
}

pub(crate) fn secp_r1_pair() -> Type {
    Type::EccKeyPair {
        curve_family: EccFamily::SecpR1,
    }
}

pub(crate) fn ecdsa(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: SignHash::Specific(hash),
    }
}

pub(crate) fn digest<P: Subject>(f: &Fixture<P>, alg: Hash, input: &[u8]) -> Vec<u8> {
    let request = psa_hash_compute::Request {
        alg,
        input: input.to_vec(),
    };
    f.call::<PsaHashCompute>(request)
        .expect("hash computed")
        .hash
}

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

pub(crate) fn ecdsa_round_trip<P: Subject>(bits: usize, hash_alg: Hash, signature_len: usize) {
    let f = Fixture::<P>::new();
    let alg = ecdsa(hash_alg);
    f.generate("ecc", attrs(secp_r1_pair(), bits, alg, sign_verify()));
    let hash = digest(&f, hash_alg, b"message");
    let signature = f.try_sign("ecc", alg, &hash).expect("signed");
    assert_eq!(signature.len(), signature_len);
    f.try_verify("ecc", alg, &hash, &signature)
        .expect("verified");
    let mut bad = signature.clone();
    bad[5] ^= 1;
    assert_eq!(
        status(f.try_verify("ecc", alg, &hash, &bad)),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn ecdsa_p256_signs_and_verifies<P: Subject>() {
    ecdsa_round_trip::<P>(256, Hash::Sha256, 64);
}

pub(crate) fn ecdsa_p384_signs_and_verifies<P: Subject>() {
    ecdsa_round_trip::<P>(384, Hash::Sha384, 96);
}

pub(crate) fn rsa_2048_pkcs1v15_and_pss_sign_and_verify<P: Subject>() {
    let f = Fixture::<P>::new();
    let hash = digest(&f, Hash::Sha256, b"message");
    let v15 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: SignHash::Any,
    };
    let pss = AsymmetricSignature::RsaPss {
        hash_alg: Hash::Sha256.into(),
    };
    f.generate("v15", attrs(Type::RsaKeyPair, 2048, v15, sign_verify()));
    f.generate("pss", attrs(Type::RsaKeyPair, 2048, pss, sign_verify()));

    // A policy with the `Any` wildcard permits the scheme with a specific hash.
    let v15_sha256 = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    let signature = f.try_sign("v15", v15_sha256, &hash).expect("signed");
    assert_eq!(signature.len(), 256);
    assert_eq!(
        f.try_sign("v15", v15_sha256, &hash).expect("signed"),
        signature,
        "deterministic"
    );
    f.try_verify("v15", v15_sha256, &hash, &signature)
        .expect("verified");

    let signature = f.try_sign("pss", pss, &hash).expect("signed");
    assert_eq!(signature.len(), 256);
    f.try_verify("pss", pss, &hash, &signature)
        .expect("verified");
    let other = digest(&f, Hash::Sha256, b"other message");
    assert_eq!(
        status(f.try_verify("pss", pss, &other, &signature)),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn sign_message_hashes_then_signs<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let request = psa_sign_message::Request {
        key_name: "ecc".into(),
        alg,
        message: b"hello".to_vec(),
    };
    let signature = f.call::<PsaSignMessage>(request).expect("signed").signature;
    // The message signature is a signature of the message's hash.
    let hash = digest(&f, Hash::Sha256, b"hello");
    f.try_verify("ecc", alg, &hash, &signature)
        .expect("verified as a hash signature");
    let verify = |message: &[u8]| {
        f.call::<PsaVerifyMessage>(psa_verify_message::Request {
            key_name: "ecc".into(),
            alg,
            message: message.to_vec(),
            signature: signature.clone(),
        })
    };
    verify(b"hello").expect("verified");
    assert_eq!(
        status(verify(b"hellO")),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn sign_message_without_a_specific_hash_is_not_supported<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = AsymmetricSignature::EcdsaAny;
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let request = psa_sign_message::Request {
        key_name: "ecc".into(),
        alg,
        message: b"hello".to_vec(),
    };
    assert_eq!(
        status(f.call::<PsaSignMessage>(request)),
        ResponseStatus::PsaErrorNotSupported
    );
}

pub(crate) fn sign_is_refused_without_the_flag_or_with_another_algorithm<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    let verify_only = flags(|f| {
        f.set_verify_hash();
    });
    f.generate("verify-only", attrs(secp_r1_pair(), 256, alg, verify_only));
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let hash = [0x42; 32];
    assert_eq!(
        status(f.try_sign("verify-only", alg, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );
    let sha384 = ecdsa(Hash::Sha384);
    assert_eq!(
        status(f.try_sign("ecc", sha384, &[0x42; 48])),
        ResponseStatus::PsaErrorNotPermitted
    );
    let rsa = AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    };
    assert_eq!(
        status(f.try_sign("ecc", rsa, &hash)),
        ResponseStatus::PsaErrorNotPermitted
    );
}

pub(crate) fn a_hash_of_the_wrong_length_is_an_invalid_argument<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0x42; 31])),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_verify("ecc", alg, &[0x42; 33], &[0; 64])),
        ResponseStatus::PsaErrorInvalidArgument
    );
}

pub(crate) fn signing_from_eight_threads_at_once_is_safe<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    // Many keys: more than Mbed TLS has key slots, so that keys are loaded and evicted
    // concurrently there, and unwrapped and cached concurrently in the OpenSSL provider.
    let names: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
    for name in &names {
        f.generate(name, attrs(secp_r1_pair(), 256, alg, sign_verify()));
    }
    std::thread::scope(|scope| {
        for thread in 0..8u8 {
            let (f, names) = (&f, &names);
            scope.spawn(move || {
                for round in 0..80u8 {
                    let name = &names
                        [usize::from(thread.wrapping_mul(7).wrapping_add(round)) % names.len()];
                    let hash = [thread ^ round; 32];
                    let signature = f.try_sign(name, alg, &hash).expect("signed");
                    f.try_verify(name, alg, &hash, &signature)
                        .expect("verified");
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Asymmetric encryption
// ---------------------------------------------------------------------------------------------

pub(crate) fn rsa_encryption_round_trip<P: Subject>(
    alg: AsymmetricEncryption,
    salt: Option<Vec<u8>>,
) {
    let f = Fixture::<P>::new();
    f.generate("rsa", attrs(Type::RsaKeyPair, 2048, alg, encrypt_decrypt()));
    let encrypt = psa_asymmetric_encrypt::Request {
        key_name: "rsa".into(),
        alg,
        plaintext: SecretBytes::from(&b"attack at dawn"[..]),
        salt: salt.clone(),
    };
    let ciphertext = f
        .call::<PsaAsymmetricEncrypt>(encrypt)
        .expect("encrypted")
        .ciphertext;
    assert_eq!(ciphertext.len(), 256);
    let decrypt = |salt: Option<Vec<u8>>| {
        f.call::<PsaAsymmetricDecrypt>(psa_asymmetric_decrypt::Request {
            key_name: "rsa".into(),
            alg,
            ciphertext: ciphertext.clone(),
            salt,
        })
    };
    let plaintext = decrypt(salt.clone()).expect("decrypted").plaintext;
    assert_eq!(&plaintext[..], b"attack at dawn");
    if salt.is_some() {
        // Another OAEP label does not decrypt.
        assert_eq!(
            status(decrypt(Some(b"other".to_vec()))),
            ResponseStatus::PsaErrorInvalidPadding
        );
    }
}

pub(crate) fn rsa_pkcs1v15_encryption_round_trip<P: Subject>() {
    rsa_encryption_round_trip::<P>(AsymmetricEncryption::RsaPkcs1v15Crypt, None);
}

pub(crate) fn rsa_oaep_encryption_round_trip_with_a_label<P: Subject>() {
    rsa_encryption_round_trip::<P>(
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
        Some(b"label".to_vec()),
    );
}

// ---------------------------------------------------------------------------------------------
// AEAD
// ---------------------------------------------------------------------------------------------

pub(crate) fn aead_round_trip<P: Subject>(
    key_type: Type,
    alg: AeadWithDefaultLengthTag,
    nonce_len: usize,
) {
    let f = Fixture::<P>::new();
    let alg = Aead::AeadWithDefaultLengthTag(alg);
    f.generate("aead", attrs(key_type, 256, alg, encrypt_decrypt()));
    let nonce = vec![7; nonce_len];
    let request = psa_aead_encrypt::Request {
        key_name: "aead".into(),
        alg,
        nonce: nonce.clone(),
        additional_data: b"header".to_vec(),
        plaintext: SecretBytes::from(&b"secret payload"[..]),
    };
    let ciphertext = f
        .call::<PsaAeadEncrypt>(request)
        .expect("encrypted")
        .ciphertext;
    assert_eq!(ciphertext.len(), b"secret payload".len() + 16);
    let decrypt = |ciphertext: Vec<u8>| {
        f.call::<PsaAeadDecrypt>(psa_aead_decrypt::Request {
            key_name: "aead".into(),
            alg,
            nonce: nonce.clone(),
            additional_data: b"header".to_vec(),
            ciphertext,
        })
    };
    let plaintext = decrypt(ciphertext.clone()).expect("decrypted").plaintext;
    assert_eq!(&plaintext[..], b"secret payload");
    let mut tampered = ciphertext;
    let last = tampered.len() - 1;
    tampered[last] ^= 0x80;
    assert_eq!(
        status(decrypt(tampered)),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn aes_gcm_round_trip_and_tag_failure<P: Subject>() {
    aead_round_trip::<P>(Type::Aes, AeadWithDefaultLengthTag::Gcm, 12);
}

pub(crate) fn aes_ccm_round_trip_and_tag_failure<P: Subject>() {
    aead_round_trip::<P>(Type::Aes, AeadWithDefaultLengthTag::Ccm, 13);
}

pub(crate) fn chacha20_poly1305_round_trip_and_tag_failure<P: Subject>() {
    aead_round_trip::<P>(
        Type::Chacha20,
        AeadWithDefaultLengthTag::Chacha20Poly1305,
        12,
    );
}

// ---------------------------------------------------------------------------------------------
// Unauthenticated ciphers
// ---------------------------------------------------------------------------------------------

pub(crate) fn cipher_encrypt<P: Subject>(f: &Fixture<P>, alg: Cipher, plaintext: &[u8]) -> Vec<u8> {
    let request = psa_cipher_encrypt::Request {
        key_name: "aes".into(),
        alg,
        plaintext: SecretBytes::from(plaintext),
    };
    f.call::<PsaCipherEncrypt>(request)
        .expect("encrypted")
        .ciphertext
}

pub(crate) fn cipher_decrypt<P: Subject>(
    f: &Fixture<P>,
    alg: Cipher,
    ciphertext: &[u8],
) -> Result<Vec<u8>, ProviderError> {
    let request = psa_cipher_decrypt::Request {
        key_name: "aes".into(),
        alg,
        ciphertext: ciphertext.to_vec(),
    };
    f.call::<PsaCipherDecrypt>(request)
        .map(|response| response.plaintext.to_vec())
}

pub(crate) fn aes_cbc_pkcs7_round_trip_with_a_fresh_iv<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = Cipher::CbcPkcs7;
    f.generate("aes", attrs(Type::Aes, 128, alg, encrypt_decrypt()));
    let plaintext = b"twenty bytes of text";
    let ciphertext = cipher_encrypt(&f, alg, plaintext);
    // 16-byte IV, then 20 bytes padded to 32.
    assert_eq!(ciphertext.len(), 16 + 32);
    assert_ne!(
        cipher_encrypt(&f, alg, plaintext)[..16],
        ciphertext[..16],
        "IV is random"
    );
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
}

pub(crate) fn aes_cbc_pkcs7_bad_padding_is_invalid_padding<P: Subject>() {
    let f = Fixture::<P>::new();
    f.generate(
        "aes",
        attrs(Type::Aes, 128, Cipher::CbcPkcs7, encrypt_decrypt()),
    );
    // One block: 10 bytes of data and 6 bytes of padding 0x06. The last byte of the decrypted
    // block is the IV's last byte XOR the block's decryption, so flipping a bit of the IV turns
    // the padding byte into 0x16, more than a block.
    let ciphertext = cipher_encrypt(&f, Cipher::CbcPkcs7, b"0123456789");
    let mut tampered = ciphertext;
    tampered[15] ^= 0x10;
    assert_eq!(
        status(cipher_decrypt(&f, Cipher::CbcPkcs7, &tampered)),
        ResponseStatus::PsaErrorInvalidPadding
    );
}

pub(crate) fn aes_ctr_round_trip_keeps_the_length<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = Cipher::Ctr;
    f.generate("aes", attrs(Type::Aes, 256, alg, encrypt_decrypt()));
    let plaintext = b"odd length message";
    let ciphertext = cipher_encrypt(&f, alg, plaintext);
    assert_eq!(ciphertext.len(), 16 + plaintext.len());
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
    // A key with a cipher policy (which psa-crypto cannot read back) can be destroyed.
    f.destroy("aes").expect("destroyed");
    assert_eq!(
        status(cipher_decrypt(&f, alg, &ciphertext)),
        ResponseStatus::PsaErrorDoesNotExist
    );
}

pub(crate) fn aes_ecb_has_no_iv<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = Cipher::EcbNoPadding;
    f.generate("aes", attrs(Type::Aes, 128, alg, encrypt_decrypt()));
    let plaintext = [0x5a; 32];
    let ciphertext = cipher_encrypt(&f, alg, &plaintext);
    assert_eq!(ciphertext.len(), 32);
    assert_eq!(
        ciphertext[..16],
        ciphertext[16..],
        "ECB: equal blocks, equal ciphertext"
    );
    assert_eq!(
        cipher_decrypt(&f, alg, &ciphertext).expect("decrypted"),
        plaintext
    );
}

// ---------------------------------------------------------------------------------------------
// MAC, hash, random
// ---------------------------------------------------------------------------------------------

pub(crate) fn hmac_compute_and_verify<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = Mac::FullLength(FullLengthMac::Hmac {
        hash_alg: Hash::Sha256,
    });
    let usage = flags(|f| {
        f.set_sign_message().set_verify_message();
    });
    f.generate("hmac", attrs(Type::Hmac, 256, alg, usage));
    let compute = psa_mac_compute::Request {
        key_name: "hmac".into(),
        alg,
        input: b"data".to_vec(),
    };
    let mac = f.call::<PsaMacCompute>(compute).expect("computed").mac;
    assert_eq!(mac.len(), 32);
    let verify = |mac: Vec<u8>| {
        f.call::<PsaMacVerify>(psa_mac_verify::Request {
            key_name: "hmac".into(),
            alg,
            input: b"data".to_vec(),
            mac,
        })
    };
    verify(mac.clone()).expect("verified");
    let mut wrong = mac;
    wrong[0] ^= 1;
    assert_eq!(
        status(verify(wrong)),
        ResponseStatus::PsaErrorInvalidSignature
    );
}

pub(crate) fn hash_compute_and_compare<P: Subject>() {
    let f = Fixture::<P>::new();
    let hash = digest(&f, Hash::Sha256, b"abc");
    assert_eq!(
        hash,
        hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
            .expect("hex")
    );
    let compare = |hash: Vec<u8>| {
        f.call::<PsaHashCompare>(psa_hash_compare::Request {
            alg: Hash::Sha256,
            input: b"abc".to_vec(),
            hash,
        })
    };
    compare(hash.clone()).expect("equal");
    let mut wrong = hash.clone();
    wrong[31] ^= 1;
    assert_eq!(
        status(compare(wrong)),
        ResponseStatus::PsaErrorInvalidSignature
    );
    assert_eq!(
        status(compare(hash[..31].to_vec())),
        ResponseStatus::PsaErrorInvalidArgument
    );
}

pub(crate) fn random_respects_the_buffer_limit<P: Subject>() {
    let settings = ProviderSettings {
        buffer_size_limit: 64,
        ..ProviderSettings::default()
    };
    let f = Fixture::<P>::with_settings(settings);
    let random = |size| f.call::<PsaGenerateRandom>(psa_generate_random::Request { size });
    assert!(random(0).expect("empty").random_bytes.is_empty());
    let bytes = random(64).expect("random").random_bytes;
    assert_eq!(bytes.len(), 64);
    assert_ne!(
        bytes.to_vec(),
        random(64).expect("random").random_bytes.to_vec()
    );
    assert_eq!(status(random(65)), ResponseStatus::ResponseTooLarge);
}

// ---------------------------------------------------------------------------------------------
// Key agreement
// ---------------------------------------------------------------------------------------------

pub(crate) fn ecdh_gives_both_sides_the_same_secret<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = RawKeyAgreement::Ecdh;
    let derive = flags(|f| {
        f.set_derive();
    });
    f.generate(
        "alice",
        attrs(secp_r1_pair(), 256, KeyAgreement::Raw(alg), derive),
    );
    f.generate(
        "bob",
        attrs(secp_r1_pair(), 256, KeyAgreement::Raw(alg), derive),
    );
    let agree = |own: &str, peer: &str| {
        let request = psa_raw_key_agreement::Request {
            alg,
            private_key_name: own.to_owned(),
            peer_key: f.export_public(peer),
        };
        f.call::<PsaRawKeyAgreement>(request)
            .map(|response| response.shared_secret.to_vec())
    };
    let alice = agree("alice", "bob").expect("agreed");
    assert_eq!(alice.len(), 32);
    assert_eq!(alice, agree("bob", "alice").expect("agreed"));
    let bad_peer = psa_raw_key_agreement::Request {
        alg,
        private_key_name: "alice".into(),
        peer_key: vec![0x04; 65],
    };
    assert_eq!(
        status(f.call::<PsaRawKeyAgreement>(bad_peer)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let ffdh = psa_raw_key_agreement::Request {
        alg: RawKeyAgreement::Ffdh,
        private_key_name: "alice".into(),
        peer_key: f.export_public("bob"),
    };
    // The policy names ECDH, so FFDH is refused by policy first.
    assert_eq!(
        status(f.call::<PsaRawKeyAgreement>(ffdh)),
        ResponseStatus::PsaErrorNotPermitted
    );
}

// ---------------------------------------------------------------------------------------------
// Key management
// ---------------------------------------------------------------------------------------------

pub(crate) fn public_keys_export_in_psa_format<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("p256", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    f.generate(
        "p384",
        attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify()),
    );
    let p256 = f.export_public("p256");
    assert_eq!((p256.len(), p256[0]), (65, 0x04));
    let p384 = f.export_public("p384");
    assert_eq!((p384.len(), p384[0]), (97, 0x04));
    f.generate("aes", attrs(Type::Aes, 128, Cipher::Ctr, encrypt_decrypt()));
    let request = psa_export_public_key::Request {
        key_name: "aes".into(),
    };
    assert_eq!(
        status(f.call::<PsaExportPublicKey>(request)),
        ResponseStatus::PsaErrorInvalidArgument
    );
}

pub(crate) fn export_needs_the_export_flag<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("locked", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    assert_eq!(
        status(f.try_export("locked")),
        ResponseStatus::PsaErrorNotPermitted
    );
    let mut usage = sign_verify();
    usage.set_export();
    f.generate("open", attrs(secp_r1_pair(), 256, alg, usage));
    assert_eq!(f.try_export("open").expect("exported").len(), 32);
}

pub(crate) fn imported_keys_work_and_keep_the_attributes_as_sent<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha384);
    let mut usage = sign_verify();
    usage.set_export();
    f.generate("original", attrs(secp_r1_pair(), 384, alg, usage));
    let private = f.try_export("original").expect("exported");
    assert_eq!(private.len(), 48);

    // secp384r1 with its size given, and with the size taken from the data.
    let sized = attrs(secp_r1_pair(), 384, alg, sign_verify());
    f.try_import("sized", sized, &private).expect("imported");
    let unsized_ = attrs(secp_r1_pair(), 0, alg, sign_verify());
    f.try_import("unsized", unsized_, &private)
        .expect("imported");
    assert_eq!(
        f.record("unsized").attributes,
        unsized_,
        "stored exactly as sent"
    );
    assert_eq!(f.export_public("unsized"), f.export_public("original"));

    // Sign with the copy, verify with an imported public key.
    let hash = digest(&f, Hash::Sha384, b"message");
    let signature = f.try_sign("unsized", alg, &hash).expect("signed");
    let public_type = Type::EccPublicKey {
        curve_family: EccFamily::SecpR1,
    };
    let verify_only = flags(|f| {
        f.set_verify_hash();
    });
    let public = f.export_public("original");
    f.try_import("public", attrs(public_type, 0, alg, verify_only), &public)
        .expect("imported");
    f.try_verify("public", alg, &hash, &signature)
        .expect("verified");

    // A size that does not match the data, and data that is not a key.
    let wrong = attrs(secp_r1_pair(), 256, alg, sign_verify());
    assert_eq!(
        status(f.try_import("wrong", wrong, &private)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    assert_eq!(
        status(f.try_import("junk", attrs(public_type, 0, alg, verify_only), b"junk")),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // Failed imports leave the names free.
    f.try_import("wrong", sized, &private)
        .expect("name is free");
}

pub(crate) fn provider_size_and_type_checks<P: Subject>() {
    let f = Fixture::<P>::new();
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let generate = |name: &str, attributes| {
        f.call::<PsaGenerateKey>(psa_generate_key::Request {
            key_name: name.into(),
            attributes,
        })
    };
    for bits in [0, 1536, 3072] {
        let rsa = attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
        assert_eq!(
            status(generate("rsa", rsa)),
            ResponseStatus::PsaErrorInvalidArgument,
            "{bits}"
        );
        let import = f.try_import("rsa", rsa, b"not a key");
        if bits != 0 {
            assert_eq!(
                status(import),
                ResponseStatus::PsaErrorInvalidArgument,
                "{bits}"
            );
        }
    }
    let public = attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt());
    assert_eq!(
        status(generate("public", public)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    let ecc_public = Type::EccPublicKey {
        curve_family: EccFamily::SecpR1,
    };
    let ecc = attrs(ecc_public, 256, ecdsa(Hash::Sha256), sign_verify());
    assert_eq!(
        status(generate("public", ecc)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // 284 is not a SECP-R1 size (psa-crypto 0.13 wrongly accepts it instead of 384).
    let typo = attrs(secp_r1_pair(), 284, ecdsa(Hash::Sha256), sign_verify());
    assert_eq!(
        status(generate("typo", typo)),
        ResponseStatus::PsaErrorInvalidArgument
    );
    // Nothing was stored.
    assert!(f.store.list(AuthType::Direct, "app").is_empty());
}

pub(crate) fn a_name_can_only_be_used_once<P: Subject>() {
    let f = Fixture::<P>::new();
    let aes = attrs(Type::Aes, 128, Cipher::Ctr, encrypt_decrypt());
    f.generate("key", aes);
    let again = psa_generate_key::Request {
        key_name: "key".into(),
        attributes: aes,
    };
    assert_eq!(
        status(f.call::<PsaGenerateKey>(again)),
        ResponseStatus::PsaErrorAlreadyExists
    );
    assert_eq!(
        status(f.try_import("key", aes, &[0; 16])),
        ResponseStatus::PsaErrorAlreadyExists
    );
}

pub(crate) fn missing_and_destroyed_keys_do_not_exist<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    assert_eq!(
        status(f.try_sign("nowhere", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.destroy("nowhere")),
        ResponseStatus::PsaErrorDoesNotExist
    );

    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    (P::EXPECTED.key_id)(&f.record("ecc").key_id);
    f.destroy("ecc").expect("destroyed");
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    assert_eq!(
        status(f.destroy("ecc")),
        ResponseStatus::PsaErrorDoesNotExist
    );
    // The name is free again.
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
}

pub(crate) fn keys_of_another_application_are_invisible<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("mine", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let other = Identity {
        name: "other".into(),
        auth_type: AuthType::Direct,
        is_admin: false,
    };
    let ctx = RequestContext::new(Some(&other), &f.store, &f.settings);
    let request = psa_sign_hash::Request {
        key_name: "mine".into(),
        alg,
        hash: vec![0; 32],
    };
    let result = <P as Handles<PsaSignHash>>::handle(&f.provider, &ctx, request);
    assert_eq!(status(result), ResponseStatus::PsaErrorDoesNotExist);
}

#[allow(deprecated)]
pub(crate) fn deprecated_generation_needs_allow_deprecated<P: Subject>() {
    let sha1 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha1), sign_verify());
    let strict = Fixture::<P>::new();
    let request = psa_generate_key::Request {
        key_name: "old".into(),
        attributes: sha1,
    };
    assert_eq!(
        status(strict.call::<PsaGenerateKey>(request)),
        ResponseStatus::DeprecatedPrimitive
    );
    assert!(strict.store.list(AuthType::Direct, "app").is_empty());

    let lenient = Fixture::<P>::with_settings(ProviderSettings {
        allow_deprecated: true,
        ..ProviderSettings::default()
    });
    lenient.generate("old", sha1);
    // Deprecation outranks the provider's own checks, as in the reference.
    let rsa_sha1 = attrs(
        Type::RsaKeyPair,
        3072,
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha1.into(),
        },
        sign_verify(),
    );
    let request = psa_generate_key::Request {
        key_name: "rsa".into(),
        attributes: rsa_sha1,
    };
    assert_eq!(
        status(strict.call::<PsaGenerateKey>(request)),
        ResponseStatus::DeprecatedPrimitive
    );

    // Importing a deprecated primitive is only logged.
    let mut exportable = sign_verify();
    exportable.set_export();
    lenient.generate(
        "exportable",
        attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha1), exportable),
    );
    let private = lenient.try_export("exportable").expect("exported");
    strict
        .try_import("old", sha1, &private)
        .expect("imported despite SHA-1");
}

// ---------------------------------------------------------------------------------------------
// Provider identity and registration
// ---------------------------------------------------------------------------------------------

/// Asserts that `provider` registers every operation of a crypto provider except attestation.
pub(crate) fn assert_registers_every_crypto_operation<P: Provider>(provider: &Arc<P>) {
    let mut registry = Registry::new();
    Arc::clone(provider).register(&mut registry.registrar(ProviderId::MbedCrypto));
    let opcodes = registry.opcodes(ProviderId::MbedCrypto);
    assert_eq!(opcodes.len(), 22);
    for opcode in Opcode::ALL.iter().filter(|opcode| !opcode.is_core()) {
        let expected = !matches!(opcode, Opcode::AttestKey | Opcode::PrepareKeyAttestation);
        assert_eq!(opcodes.contains(opcode), expected, "{opcode}");
    }
}

/// FFDH is supported by neither provider; whether DH keys can be held at all is per provider
/// ([`Expectations::dh_keys`]).
pub(crate) fn ffdh_agreement_is_not_supported<P: Subject>() {
    let f = Fixture::<P>::new();
    let alg = RawKeyAgreement::Ffdh;
    let derive = flags(|f| {
        f.set_derive();
    });
    let group_family = DhFamily::Rfc7919;
    let dh = attrs(
        Type::DhKeyPair { group_family },
        2048,
        KeyAgreement::Raw(alg),
        derive,
    );
    if P::EXPECTED.dh_keys {
        f.generate("dh", dh);
        let request = psa_raw_key_agreement::Request {
            alg,
            private_key_name: "dh".into(),
            peer_key: f.export_public("dh"),
        };
        assert_eq!(
            status(f.call::<PsaRawKeyAgreement>(request)),
            ResponseStatus::PsaErrorNotSupported
        );
    } else {
        let request = psa_generate_key::Request {
            key_name: "dh".into(),
            attributes: dh,
        };
        assert_eq!(
            status(f.call::<PsaGenerateKey>(request)),
            ResponseStatus::PsaErrorNotSupported
        );
        assert!(f.store.list(AuthType::Direct, "app").is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// CanDoCrypto
// ---------------------------------------------------------------------------------------------

pub(crate) fn can_do_crypto_follows_the_reference_rules<P: Subject>() {
    let f = Fixture::<P>::new();
    let ecdsa256 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let rsa = |bits| attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
    let ok = |check, attributes| f.can_do(check, attributes).is_ok();
    let no = |check, attributes| {
        status(f.can_do(check, attributes)) == ResponseStatus::PsaErrorNotSupported
    };
    // Where the providers differ: supported means Ok, otherwise exactly NotSupported.
    let expect = |supported: bool, check, attributes| {
        if supported {
            ok(check, attributes)
        } else {
            no(check, attributes)
        }
    };
    let expected = P::EXPECTED;

    // USE
    assert!(ok(CheckType::Use, ecdsa256));
    assert!(ok(CheckType::Use, rsa(2048)));
    assert!(ok(CheckType::Use, rsa(0)), "0 bits is any size");
    assert!(no(CheckType::Use, rsa(3072)));
    assert!(no(
        CheckType::Use,
        attrs(Type::Aes, 128, Algorithm::None, encrypt_decrypt())
    ));
    let derive_only = flags(|f| {
        f.set_derive();
    });
    let ecdh = attrs(
        secp_r1_pair(),
        256,
        KeyAgreement::Raw(RawKeyAgreement::Ecdh),
        derive_only,
    );
    assert!(
        no(CheckType::Use, ecdh),
        "derive is not among the flags USE looks at"
    );
    let mismatched = attrs(Type::RsaKeyPair, 2048, ecdsa(Hash::Sha256), sign_verify());
    assert!(no(CheckType::Use, mismatched));

    // GENERATE
    assert!(ok(CheckType::Generate, ecdsa256));
    assert!(ok(
        CheckType::Generate,
        attrs(secp_r1_pair(), 384, ecdsa(Hash::Sha384), sign_verify())
    ));
    assert!(ok(
        CheckType::Generate,
        attrs(Type::Aes, 256, Algorithm::None, UsageFlags::default())
    ));
    assert!(
        no(CheckType::Generate, ecdh),
        "GENERATE runs USE when the policy names an algorithm"
    );
    assert!(no(
        CheckType::Generate,
        attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt())
    ));
    assert!(expect(
        expected.can_do_bare_hmac_keys,
        CheckType::Generate,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));
    let deterministic = AsymmetricSignature::DeterministicEcdsa {
        hash_alg: Hash::Sha256.into(),
    };
    assert!(expect(
        expected.deterministic_ecdsa,
        CheckType::Use,
        attrs(secp_r1_pair(), 256, deterministic, sign_verify())
    ));
    assert!(expect(
        expected.cbc_mac,
        CheckType::Generate,
        attrs(
            Type::Aes,
            128,
            Mac::FullLength(FullLengthMac::CbcMac),
            flags(|f| {
                f.set_sign_message();
            })
        )
    ));
    assert!(no(CheckType::Generate, rsa(1536)));
    assert!(no(
        CheckType::Generate,
        attrs(secp_r1_pair(), 383, ecdsa(Hash::Sha256), sign_verify())
    ));
    let frp = Type::EccKeyPair {
        curve_family: EccFamily::Frp,
    };
    assert!(no(
        CheckType::Generate,
        attrs(frp, 256, ecdsa(Hash::Sha256), sign_verify())
    ));

    // IMPORT
    assert!(ok(
        CheckType::Import,
        attrs(Type::RsaPublicKey, 2048, v15, encrypt_decrypt())
    ));
    assert!(ok(
        CheckType::Import,
        attrs(Type::RsaPublicKey, 0, v15, encrypt_decrypt())
    ));
    assert!(expect(
        expected.can_do_bare_hmac_keys,
        CheckType::Import,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));
    let dh = Type::DhKeyPair {
        group_family: DhFamily::Rfc7919,
    };
    assert!(expect(
        expected.dh_keys,
        CheckType::Import,
        attrs(dh, 2048, Algorithm::None, UsageFlags::default())
    ));

    // DERIVE
    assert!(no(CheckType::Derive, ecdsa256));
}
