//! Capability discovery: CanDoCrypto, following the rules of operations.md §8 with this
//! provider's real capabilities.
//!
//! The answer is Success (supported) or `NotSupported`; no other status is given for a
//! well-formed request. A `key_bits` of 0 means "any size". As in the reference provider:
//! USE needs an algorithm, one of the encrypt/decrypt/sign/verify flags, a compatible key type
//! and a size this provider takes (RSA: 1024, 2048 or 4096); GENERATE and IMPORT check the type
//! and size, then USE when the policy names an algorithm; DERIVE is never supported. Unlike the
//! reference, USE also asks whether the algorithm itself is implemented here (so deterministic
//! ECDSA, CBC-MAC, XTS, FFDH, key derivation, MD2/MD4 and Camellia AEAD are `NotSupported`),
//! and HMAC and derivation keys can be generated.

use bulwark_interface::ops::can_do_crypto::{self, CheckType};
use bulwark_interface::ops::CanDoCrypto;
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, KeyAgreement, Mac, RawKeyAgreement, SignHash,
};
use psa_crypto::types::key::{Attributes, Type};
use psa_crypto::types::status::Error as PsaError;

use super::keys::check_rsa_bits;
use super::{hash, material, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

/// `Ok` when `supported`, else `NotSupported`.
fn supported(supported: bool) -> Result<(), PsaError> {
    if supported {
        Ok(())
    } else {
        Err(PsaError::NotSupported)
    }
}

/// The provider's size check: RSA keys of 1024, 2048 or 4096 bits (or any size).
fn size_check(attributes: Attributes) -> Result<(), PsaError> {
    supported(check_rsa_bits(attributes, true).is_ok())
}

/// Whether `hash` names a hash OpenSSL has (the `Any` wildcard: yes).
fn sign_hash_ok(hash: SignHash) -> bool {
    match hash {
        SignHash::Any => true,
        SignHash::Specific(hash) => hash::digest(hash).is_ok(),
    }
}

/// Whether this provider implements `alg` with keys of `key_type` (compatibility is checked
/// separately).
fn implemented(alg: Algorithm, key_type: Type) -> bool {
    match alg {
        Algorithm::None => true,
        Algorithm::Hash(hash) => hash::digest(hash).is_ok(),
        Algorithm::Mac(mac) => {
            let (full, length) = match mac {
                Mac::FullLength(full) => (full, 0),
                Mac::Truncated {
                    mac_alg,
                    mac_length,
                } => (mac_alg, mac_length),
            };
            let full_length = match full {
                FullLengthMac::Hmac { hash_alg } => match hash::digest(hash_alg) {
                    Ok(md) => md.size(),
                    Err(_) => return false,
                },
                FullLengthMac::Cmac => 16,
                FullLengthMac::CbcMac => return false,
            };
            length == 0 || (4..=full_length).contains(&length)
        }
        Algorithm::Cipher(cipher) => match cipher {
            Cipher::Xts => false,
            Cipher::StreamCipher => key_type == Type::Chacha20,
            _ => matches!(key_type, Type::Aes | Type::Camellia),
        },
        Algorithm::Aead(aead) => {
            let (base, tag) = match aead {
                Aead::AeadWithDefaultLengthTag(base) => (base, 16),
                Aead::AeadWithShortenedTag {
                    aead_alg,
                    tag_length,
                } => (aead_alg, tag_length),
            };
            match base {
                AeadWithDefaultLengthTag::Ccm => {
                    key_type == Type::Aes && (4..=16).contains(&tag) && tag % 2 == 0
                }
                AeadWithDefaultLengthTag::Gcm => key_type == Type::Aes && (4..=16).contains(&tag),
                AeadWithDefaultLengthTag::Chacha20Poly1305 => (4..=16).contains(&tag),
            }
        }
        Algorithm::AsymmetricSignature(signature) => match signature {
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg }
            | AsymmetricSignature::RsaPss { hash_alg }
            | AsymmetricSignature::Ecdsa { hash_alg } => sign_hash_ok(hash_alg),
            AsymmetricSignature::RsaPkcs1v15SignRaw | AsymmetricSignature::EcdsaAny => true,
            AsymmetricSignature::DeterministicEcdsa { .. } => false,
        },
        Algorithm::AsymmetricEncryption(encryption) => match encryption {
            AsymmetricEncryption::RsaPkcs1v15Crypt => true,
            AsymmetricEncryption::RsaOaep { hash_alg } => hash::digest(hash_alg).is_ok(),
        },
        Algorithm::KeyAgreement(agreement) => agreement == KeyAgreement::Raw(RawKeyAgreement::Ecdh),
        Algorithm::KeyDerivation(_) => false,
    }
}

/// USE: an algorithm, a usage flag that uses it, a key type that fits it, a size this
/// provider takes, and an algorithm this provider implements.
fn use_check(attributes: Attributes) -> Result<(), PsaError> {
    let alg = attributes.policy.permitted_algorithms;
    supported(alg != Algorithm::None)?;
    let flags = attributes.policy.usage_flags;
    supported(
        flags.encrypt()
            || flags.decrypt()
            || flags.sign_hash()
            || flags.sign_message()
            || flags.verify_hash()
            || flags.verify_message(),
    )?;
    supported(attributes.is_compatible_with_alg(alg))?;
    size_check(attributes)?;
    supported(implemented(alg, attributes.key_type))
}

/// The key types this provider generates.
fn generable(key_type: Type) -> bool {
    matches!(
        key_type,
        Type::RsaKeyPair
            | Type::EccKeyPair { .. }
            | Type::RawData
            | Type::Hmac
            | Type::Derive
            | Type::Aes
            | Type::Camellia
            | Type::Chacha20
    )
}

/// The key types this provider imports: the generable ones and public keys.
fn importable(key_type: Type) -> bool {
    generable(key_type) || matches!(key_type, Type::RsaPublicKey | Type::EccPublicKey { .. })
}

/// A creation check, then USE when the policy names an algorithm.
fn creation_check(attributes: Attributes, type_ok: bool) -> Result<(), PsaError> {
    supported(type_ok)?;
    size_check(attributes)?;
    if attributes.policy.permitted_algorithms == Algorithm::None {
        Ok(())
    } else {
        use_check(attributes)
    }
}

impl Handles<CanDoCrypto> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        let attributes = request.attributes;
        // The pre-check: a key of this type and size can be held here at all.
        let valid_size = match attributes.key_type {
            Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
                material::is_psa_curve_size(curve_family, attributes.bits)
            }
            _ => true,
        };
        supported(valid_size && material::is_supported(attributes.key_type, attributes.bits))?;
        match request.check_type {
            CheckType::Use => use_check(attributes)?,
            CheckType::Generate => creation_check(attributes, generable(attributes.key_type))?,
            CheckType::Import => creation_check(attributes, importable(attributes.key_type))?,
            CheckType::Derive => return Err(PsaError::NotSupported.into()),
        }
        Ok(can_do_crypto::Response)
    }
}
