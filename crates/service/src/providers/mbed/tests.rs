//! Tests of the Mbed Crypto provider, calling the handlers directly.
//!
//! Mbed TLS writes persistent keys into the working directory, so the test process moves once
//! to a temporary directory before any provider is made.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

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

use super::MbedProvider;
use crate::auth::Identity;
use crate::dispatch::Registry;
use crate::error::ProviderError;
use crate::keystore::{KeyRecord, KeyStore};
use crate::providers::{Handles, Provider, ProviderSettings, RequestContext};

/// Moves the process to a fresh temporary directory, once, and keeps it alive.
fn in_temp_dir() {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::env::set_current_dir(dir.path()).expect("enter the temporary directory");
        dir
    });
}

fn provider() -> Arc<MbedProvider> {
    in_temp_dir();
    Arc::new(MbedProvider::new("mbed-crypto-provider".to_owned()).expect("Mbed TLS starts"))
}

/// A provider, an empty key store and one application.
struct Fixture {
    provider: Arc<MbedProvider>,
    store: KeyStore,
    identity: Identity,
    settings: ProviderSettings,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with_settings(ProviderSettings::default())
    }

    fn with_settings(settings: ProviderSettings) -> Self {
        Fixture {
            provider: provider(),
            store: KeyStore::open_in_memory().expect("in-memory store"),
            identity: Identity {
                name: "app".to_owned(),
                auth_type: AuthType::Direct,
                is_admin: false,
            },
            settings,
        }
    }

    fn ctx(&self) -> RequestContext<'_> {
        RequestContext::new(Some(&self.identity), &self.store, &self.settings)
    }

    fn call<O: Operation>(&self, request: O::Request) -> Result<O::Response, ProviderError>
    where
        MbedProvider: Handles<O>,
    {
        <MbedProvider as Handles<O>>::handle(&self.provider, &self.ctx(), request)
    }

    fn record(&self, name: &str) -> KeyRecord {
        self.ctx()
            .keys(&*self.provider)
            .and_then(|keys| keys.get(name))
            .expect("key exists")
    }

    fn generate(&self, name: &str, attributes: Attributes) {
        let request = psa_generate_key::Request {
            key_name: name.to_owned(),
            attributes,
        };
        self.call::<PsaGenerateKey>(request).expect("key generated");
    }

    fn try_import(
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

    fn export_public(&self, name: &str) -> Vec<u8> {
        let request = psa_export_public_key::Request {
            key_name: name.to_owned(),
        };
        self.call::<PsaExportPublicKey>(request)
            .expect("public key exported")
            .data
    }

    fn try_export(&self, name: &str) -> Result<Vec<u8>, ProviderError> {
        let request = psa_export_key::Request {
            key_name: name.to_owned(),
        };
        self.call::<PsaExportKey>(request)
            .map(|response| response.data.to_vec())
    }

    fn try_sign(
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

    fn try_verify(
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

    fn destroy(&self, name: &str) -> Result<(), ProviderError> {
        self.call::<PsaDestroyKey>(psa_destroy_key::Request {
            key_name: name.to_owned(),
        })
        .map(drop)
    }

    fn can_do(&self, check_type: CheckType, attributes: Attributes) -> Result<(), ProviderError> {
        self.call::<CanDoCrypto>(can_do_crypto::Request {
            check_type,
            attributes,
        })
        .map(drop)
    }
}

/// The wire status of a failed call.
fn status<T: Debug>(result: Result<T, ProviderError>) -> ResponseStatus {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => ResponseStatus::from(&error),
    }
}

fn flags(set: impl FnOnce(&mut UsageFlags)) -> UsageFlags {
    let mut flags = UsageFlags::default();
    set(&mut flags);
    flags
}

fn sign_verify() -> UsageFlags {
    flags(|f| {
        f.set_sign_hash().set_verify_hash();
    })
}

fn encrypt_decrypt() -> UsageFlags {
    flags(|f| {
        f.set_encrypt().set_decrypt();
    })
}

fn attrs(
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

fn secp_r1_pair() -> Type {
    Type::EccKeyPair {
        curve_family: EccFamily::SecpR1,
    }
}

fn ecdsa(hash: Hash) -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: SignHash::Specific(hash),
    }
}

fn digest(f: &Fixture, alg: Hash, input: &[u8]) -> Vec<u8> {
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

fn ecdsa_round_trip(bits: usize, hash_alg: Hash, signature_len: usize) {
    let f = Fixture::new();
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

#[test]
fn ecdsa_p256_signs_and_verifies() {
    ecdsa_round_trip(256, Hash::Sha256, 64);
}

#[test]
fn ecdsa_p384_signs_and_verifies() {
    ecdsa_round_trip(384, Hash::Sha384, 96);
}

#[test]
fn rsa_2048_pkcs1v15_and_pss_sign_and_verify() {
    let f = Fixture::new();
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

#[test]
fn sign_message_hashes_then_signs() {
    let f = Fixture::new();
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

#[test]
fn sign_message_without_a_specific_hash_is_not_supported() {
    let f = Fixture::new();
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

#[test]
fn sign_is_refused_without_the_flag_or_with_another_algorithm() {
    let f = Fixture::new();
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

#[test]
fn a_hash_of_the_wrong_length_is_an_invalid_argument() {
    let f = Fixture::new();
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

#[test]
fn signing_from_eight_threads_at_once_is_safe() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    // More keys than Mbed TLS has key slots, so that keys are loaded and evicted concurrently.
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

fn rsa_encryption_round_trip(alg: AsymmetricEncryption, salt: Option<Vec<u8>>) {
    let f = Fixture::new();
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

#[test]
fn rsa_pkcs1v15_encryption_round_trip() {
    rsa_encryption_round_trip(AsymmetricEncryption::RsaPkcs1v15Crypt, None);
}

#[test]
fn rsa_oaep_encryption_round_trip_with_a_label() {
    rsa_encryption_round_trip(
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
        Some(b"label".to_vec()),
    );
}

// ---------------------------------------------------------------------------------------------
// AEAD
// ---------------------------------------------------------------------------------------------

fn aead_round_trip(key_type: Type, alg: AeadWithDefaultLengthTag, nonce_len: usize) {
    let f = Fixture::new();
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

#[test]
fn aes_gcm_round_trip_and_tag_failure() {
    aead_round_trip(Type::Aes, AeadWithDefaultLengthTag::Gcm, 12);
}

#[test]
fn aes_ccm_round_trip_and_tag_failure() {
    aead_round_trip(Type::Aes, AeadWithDefaultLengthTag::Ccm, 13);
}

#[test]
fn chacha20_poly1305_round_trip_and_tag_failure() {
    aead_round_trip(
        Type::Chacha20,
        AeadWithDefaultLengthTag::Chacha20Poly1305,
        12,
    );
}

// ---------------------------------------------------------------------------------------------
// Unauthenticated ciphers
// ---------------------------------------------------------------------------------------------

fn cipher_encrypt(f: &Fixture, alg: Cipher, plaintext: &[u8]) -> Vec<u8> {
    let request = psa_cipher_encrypt::Request {
        key_name: "aes".into(),
        alg,
        plaintext: SecretBytes::from(plaintext),
    };
    f.call::<PsaCipherEncrypt>(request)
        .expect("encrypted")
        .ciphertext
}

fn cipher_decrypt(f: &Fixture, alg: Cipher, ciphertext: &[u8]) -> Result<Vec<u8>, ProviderError> {
    let request = psa_cipher_decrypt::Request {
        key_name: "aes".into(),
        alg,
        ciphertext: ciphertext.to_vec(),
    };
    f.call::<PsaCipherDecrypt>(request)
        .map(|response| response.plaintext.to_vec())
}

#[test]
fn aes_cbc_pkcs7_round_trip_with_a_fresh_iv() {
    let f = Fixture::new();
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

#[test]
fn aes_cbc_pkcs7_bad_padding_is_invalid_padding() {
    let f = Fixture::new();
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

#[test]
fn aes_ctr_round_trip_keeps_the_length() {
    let f = Fixture::new();
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

#[test]
fn aes_ecb_has_no_iv() {
    let f = Fixture::new();
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

#[test]
fn hmac_compute_and_verify() {
    let f = Fixture::new();
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

#[test]
fn hash_compute_and_compare() {
    let f = Fixture::new();
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

#[test]
fn random_respects_the_buffer_limit() {
    let settings = ProviderSettings {
        buffer_size_limit: 64,
        ..ProviderSettings::default()
    };
    let f = Fixture::with_settings(settings);
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

#[test]
fn ecdh_gives_both_sides_the_same_secret() {
    let f = Fixture::new();
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

#[test]
fn public_keys_export_in_psa_format() {
    let f = Fixture::new();
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

#[test]
fn export_needs_the_export_flag() {
    let f = Fixture::new();
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

#[test]
fn imported_keys_work_and_keep_the_attributes_as_sent() {
    let f = Fixture::new();
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

#[test]
fn provider_size_and_type_checks() {
    let f = Fixture::new();
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

#[test]
fn a_name_can_only_be_used_once() {
    let f = Fixture::new();
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

#[test]
fn missing_and_destroyed_keys_do_not_exist() {
    let f = Fixture::new();
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
    let raw_id = super::psa_key_id(&f.record("ecc").key_id).expect("4-byte id");
    assert!((1..=0x3FFF_FFFF).contains(&raw_id));
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

#[test]
fn keys_of_another_application_are_invisible() {
    let f = Fixture::new();
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
    let result = <MbedProvider as Handles<PsaSignHash>>::handle(&f.provider, &ctx, request);
    assert_eq!(status(result), ResponseStatus::PsaErrorDoesNotExist);
}

#[test]
fn discard_removes_the_backing_key_and_tolerates_absence() {
    let f = Fixture::new();
    let alg = ecdsa(Hash::Sha256);
    f.generate("ecc", attrs(secp_r1_pair(), 256, alg, sign_verify()));
    let key_id = f.record("ecc").key_id;
    f.provider.discard(&key_id).expect("discarded");
    f.provider.discard(&key_id).expect("absent is fine");
    // The store still names the key, but Mbed TLS no longer has it.
    assert_eq!(
        status(f.try_sign("ecc", alg, &[0; 32])),
        ResponseStatus::PsaErrorDoesNotExist
    );
    f.destroy("ecc").expect("a key already gone is destroyed");
}

#[test]
#[allow(deprecated)]
fn deprecated_generation_needs_allow_deprecated() {
    let sha1 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha1), sign_verify());
    let strict = Fixture::new();
    let request = psa_generate_key::Request {
        key_name: "old".into(),
        attributes: sha1,
    };
    assert_eq!(
        status(strict.call::<PsaGenerateKey>(request)),
        ResponseStatus::DeprecatedPrimitive
    );
    assert!(strict.store.list(AuthType::Direct, "app").is_empty());

    let lenient = Fixture::with_settings(ProviderSettings {
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

#[test]
fn info_and_registered_operations() {
    let provider = provider();
    let info = provider.info();
    assert_eq!(
        info.uuid.to_string(),
        "1c1139dc-ad7c-47dc-ad6b-db6fdb466552"
    );
    assert_eq!(
        (info.vendor.as_str(), info.id),
        ("Arm", ProviderId::MbedCrypto)
    );
    assert_eq!(
        (info.version_maj, info.version_min, info.version_rev),
        (0, 1, 0)
    );
    assert_eq!(provider.name(), "mbed-crypto-provider");

    let mut registry = Registry::new();
    Arc::clone(&provider).register(&mut registry.registrar(ProviderId::MbedCrypto));
    let opcodes = registry.opcodes(ProviderId::MbedCrypto);
    assert_eq!(opcodes.len(), 22);
    for opcode in Opcode::ALL.iter().filter(|opcode| !opcode.is_core()) {
        let expected = !matches!(opcode, Opcode::AttestKey | Opcode::PrepareKeyAttestation);
        assert_eq!(opcodes.contains(opcode), expected, "{opcode}");
    }
}

#[test]
fn ffdh_agreement_is_not_supported() {
    let f = Fixture::new();
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
}

// ---------------------------------------------------------------------------------------------
// CanDoCrypto
// ---------------------------------------------------------------------------------------------

#[test]
fn can_do_crypto_follows_the_reference_rules() {
    let f = Fixture::new();
    let ecdsa256 = attrs(secp_r1_pair(), 256, ecdsa(Hash::Sha256), sign_verify());
    let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
    let rsa = |bits| attrs(Type::RsaKeyPair, bits, v15, encrypt_decrypt());
    let ok = |check, attributes| f.can_do(check, attributes).is_ok();
    let no = |check, attributes| {
        status(f.can_do(check, attributes)) == ResponseStatus::PsaErrorNotSupported
    };

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
    assert!(no(
        CheckType::Generate,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
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
    assert!(no(
        CheckType::Import,
        attrs(Type::Hmac, 256, Algorithm::None, UsageFlags::default())
    ));

    // DERIVE
    assert!(no(CheckType::Derive, ecdsa256));
}
