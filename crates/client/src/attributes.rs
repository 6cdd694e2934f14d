//! Key attributes for the common cases, each one call and hard to get wrong.
//!
//! Every key made here is persistent, not exportable, and allowed exactly one algorithm,
//! chosen to be a safe default for its purpose. To allow export, set the flag on the result:
//!
//! ```no_run
//! use bulwark_client::{attributes, Client};
//! let mut attrs = attributes::aes_gcm_key(256);
//! attrs.policy.usage_flags.set_export();
//! Client::new("my-app")?.generate_key("wrapped-key", attrs)?;
//! # Ok::<(), bulwark_client::Error>(())
//! ```

use bulwark_interface::psa_types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, Hash, KeyAgreement, Mac, RawKeyAgreement,
};
use bulwark_interface::psa_types::key::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};

fn key(
    key_type: Type,
    bits: usize,
    usage_flags: UsageFlags,
    alg: impl Into<Algorithm>,
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

fn sign_and_verify() -> UsageFlags {
    let mut flags = UsageFlags::default();
    flags
        .set_sign_hash()
        .set_sign_message()
        .set_verify_hash()
        .set_verify_message();
    flags
}

fn verify_only() -> UsageFlags {
    let mut flags = UsageFlags::default();
    flags.set_verify_hash().set_verify_message();
    flags
}

fn encrypt_and_decrypt() -> UsageFlags {
    let mut flags = UsageFlags::default();
    flags.set_encrypt().set_decrypt();
    flags
}

/// The hash that matches a curve of `bits` bits: SHA-256 up to 256 bits, SHA-384 up to 384,
/// SHA-512 above.
fn hash_for_curve(bits: usize) -> Hash {
    match bits {
        0..=256 => Hash::Sha256,
        257..=384 => Hash::Sha384,
        _ => Hash::Sha512,
    }
}

/// An ECDSA key pair on `family` with `bits` bits (for NIST P-256, `EccFamily::SecpR1` and
/// 256), allowed to sign and verify hashes and messages with the hash that matches the curve
/// size (SHA-256 up to 256 bits, SHA-384 up to 384, SHA-512 above).
///
/// ```no_run
/// use bulwark_client::{attributes, Client, EccFamily};
/// let client = Client::new("my-app")?;
/// client.generate_key("p256", attributes::ecc_signing_key(EccFamily::SecpR1, 256))?;
/// let signature = client.sign_message("p256", b"message")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn ecc_signing_key(family: EccFamily, bits: usize) -> Attributes {
    key(
        Type::EccKeyPair {
            curve_family: family,
        },
        bits,
        sign_and_verify(),
        AsymmetricSignature::Ecdsa {
            hash_alg: hash_for_curve(bits).into(),
        },
    )
}

/// An ECC public key on `family` with `bits` bits, for importing someone else's key (an
/// uncompressed point) to verify their ECDSA signatures, with the same algorithm as
/// [`ecc_signing_key`].
///
/// ```no_run
/// use bulwark_client::{attributes, Client, EccFamily};
/// let client = Client::new("my-app")?;
/// let point = [0x04; 65]; // 04 ‖ X ‖ Y, from the signer
/// client.import_key("peer", attributes::ecc_verification_key(EccFamily::SecpR1, 256), &point)?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn ecc_verification_key(family: EccFamily, bits: usize) -> Attributes {
    key(
        Type::EccPublicKey {
            curve_family: family,
        },
        bits,
        verify_only(),
        AsymmetricSignature::Ecdsa {
            hash_alg: hash_for_curve(bits).into(),
        },
    )
}

/// An ECC key pair on `family` with `bits` bits for raw ECDH key agreement.
///
/// ```no_run
/// use bulwark_client::{attributes, Client, EccFamily, RawKeyAgreement};
/// let client = Client::new("my-app")?;
/// client.generate_key("ecdh", attributes::ecc_key_agreement_key(EccFamily::SecpR1, 256))?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn ecc_key_agreement_key(family: EccFamily, bits: usize) -> Attributes {
    let mut flags = UsageFlags::default();
    flags.set_derive();
    key(
        Type::EccKeyPair {
            curve_family: family,
        },
        bits,
        flags,
        KeyAgreement::Raw(RawKeyAgreement::Ecdh),
    )
}

/// An RSA key pair of `bits` bits (2048 or more) for encryption with OAEP and SHA-256.
///
/// ```no_run
/// use bulwark_client::{attributes, Client};
/// let client = Client::new("my-app")?;
/// client.generate_key("rsa", attributes::rsa_encryption_key(2048))?;
/// let ciphertext = client.encrypt("rsa", b"secret")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn rsa_encryption_key(bits: usize) -> Attributes {
    key(
        Type::RsaKeyPair,
        bits,
        encrypt_and_decrypt(),
        AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha256,
        },
    )
}

/// An RSA key pair of `bits` bits (2048 or more) signing with PKCS#1 v1.5 and SHA-256, the
/// scheme X.509 certificates and most verifiers expect.
///
/// ```no_run
/// use bulwark_client::{attributes, Client};
/// let client = Client::new("my-app")?;
/// client.generate_key("rsa-sign", attributes::rsa_signing_key(2048))?;
/// let signature = client.sign_message("rsa-sign", b"message")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn rsa_signing_key(bits: usize) -> Attributes {
    key(
        Type::RsaKeyPair,
        bits,
        sign_and_verify(),
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha256.into(),
        },
    )
}

/// An RSA key pair of `bits` bits signing with PSS and SHA-256.
///
/// ```no_run
/// use bulwark_client::{attributes, Client};
/// let client = Client::new("my-app")?;
/// client.generate_key("rsa-pss", attributes::rsa_pss_signing_key(3072))?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn rsa_pss_signing_key(bits: usize) -> Attributes {
    key(
        Type::RsaKeyPair,
        bits,
        sign_and_verify(),
        AsymmetricSignature::RsaPss {
            hash_alg: Hash::Sha256.into(),
        },
    )
}

/// An AES key of `bits` bits (128, 192 or 256) for authenticated encryption with GCM and its
/// full 16-byte tag; use it with [`Client::aead_seal`](crate::Client::aead_seal).
///
/// ```no_run
/// use bulwark_client::{attributes, Client};
/// let client = Client::new("my-app")?;
/// client.generate_key("aes", attributes::aes_gcm_key(256))?;
/// let sealed = client.aead_seal("aes", b"secret")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn aes_gcm_key(bits: usize) -> Attributes {
    key(
        Type::Aes,
        bits,
        encrypt_and_decrypt(),
        Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm),
    )
}

/// An AES key of `bits` bits for the unauthenticated cipher mode `mode` (such as
/// `Cipher::CbcPkcs7`). Nothing detects tampering with such ciphertexts: prefer
/// [`aes_gcm_key`] unless a protocol needs a bare cipher.
///
/// ```no_run
/// use bulwark_client::{attributes, Cipher, Client};
/// let client = Client::new("my-app")?;
/// client.generate_key("aes-cbc", attributes::aes_cipher_key(128, Cipher::CbcPkcs7))?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn aes_cipher_key(bits: usize, mode: Cipher) -> Attributes {
    key(Type::Aes, bits, encrypt_and_decrypt(), mode)
}

/// The HMAC algorithm with hash `hash`, untruncated.
///
/// ```no_run
/// use bulwark_client::{attributes, Client, Hash};
/// let client = Client::new("my-app")?;
/// let mac = client.mac_compute("hmac", attributes::hmac(Hash::Sha256), b"data")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn hmac(hash: Hash) -> Mac {
    Mac::FullLength(FullLengthMac::Hmac { hash_alg: hash })
}

/// An HMAC key as long as the output of `hash` (SHA-256: 256 bits), allowed to compute and
/// verify [`hmac`] with that hash.
///
/// ```no_run
/// use bulwark_client::{attributes, Client, Hash};
/// let client = Client::new("my-app")?;
/// client.generate_key("hmac", attributes::hmac_key(Hash::Sha256))?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub fn hmac_key(hash: Hash) -> Attributes {
    let mut flags = UsageFlags::default();
    flags.set_sign_message().set_verify_message();
    key(Type::Hmac, hash.hash_length() * 8, flags, hmac(hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_interface::psa_types::algorithm::SignHash;

    #[test]
    fn signing_keys_use_the_hash_of_their_curve_size() {
        let p256 = ecc_signing_key(EccFamily::SecpR1, 256);
        assert_eq!(
            p256.policy.permitted_algorithms,
            Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(Hash::Sha256)
            })
        );
        assert!(p256.policy.usage_flags.sign_hash() && p256.policy.usage_flags.verify_message());
        assert!(!p256.is_exportable());
        let p384 = ecc_signing_key(EccFamily::SecpR1, 384);
        assert_eq!(
            p384.policy.permitted_algorithms,
            Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(Hash::Sha384)
            })
        );
        let public = ecc_verification_key(EccFamily::SecpR1, 256);
        assert!(!public.policy.usage_flags.sign_hash());
        assert!(public.policy.usage_flags.verify_hash());
    }

    #[test]
    fn helpers_allow_exactly_their_purpose() {
        let rsa = rsa_encryption_key(2048);
        assert_eq!((rsa.key_type, rsa.bits), (Type::RsaKeyPair, 2048));
        assert!(rsa.policy.usage_flags.encrypt() && rsa.policy.usage_flags.decrypt());
        assert!(!rsa.policy.usage_flags.sign_hash());
        let aes = aes_gcm_key(256);
        assert_eq!(
            aes.policy.permitted_algorithms,
            Algorithm::Aead(Aead::AeadWithDefaultLengthTag(
                AeadWithDefaultLengthTag::Gcm
            ))
        );
        let hmac_key = hmac_key(Hash::Sha384);
        assert_eq!(hmac_key.bits, 384);
        assert!(hmac_key.policy.usage_flags.sign_message());
        assert!(!hmac_key.policy.usage_flags.sign_hash());
        let ecdh = ecc_key_agreement_key(EccFamily::SecpR1, 256);
        assert!(ecdh.policy.usage_flags.derive());
    }
}
