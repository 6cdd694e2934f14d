//! Capability discovery: what CanDoCrypto's rules (`providers::can_do`) ask of this provider,
//! with its real capabilities.
//!
//! As in the reference provider, a key is held in a size this provider takes (RSA: 1024, 2048
//! or 4096). Unlike the reference, USE also asks whether the algorithm itself is implemented
//! here (so deterministic ECDSA, CBC-MAC, XTS, FFDH, key derivation, MD2/MD4 and Camellia AEAD
//! are `NotSupported`), and HMAC and derivation keys can be generated.

use bulwark_interface::ops::can_do_crypto;
use bulwark_interface::ops::CanDoCrypto;
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, KeyAgreement, Mac, RawKeyAgreement, SignHash,
};
use psa_crypto::types::key::{Attributes, Type};

use super::{hash, material, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::can_do::{self, Capabilities};
use crate::providers::check_rsa_bits;
use crate::providers::{is_psa_curve_size, Handles, RequestContext};

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

impl Capabilities for OpenSslProvider {
    /// A key OpenSSL can hold (a curve of a PSA size, a type and size it has), in a size this
    /// provider takes.
    fn holds(&self, attributes: Attributes) -> bool {
        let valid_size = match attributes.key_type {
            Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
                attributes.bits == 0 || is_psa_curve_size(curve_family, attributes.bits)
            }
            _ => true,
        };
        valid_size
            && material::is_supported(attributes.key_type, attributes.bits)
            && check_rsa_bits(attributes, true).is_ok()
    }

    fn generates(&self, attributes: Attributes) -> bool {
        generable(attributes.key_type)
    }

    fn implements(&self, alg: Algorithm, attributes: Attributes) -> bool {
        implemented(alg, attributes.key_type)
    }
}

impl Handles<CanDoCrypto> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        can_do::answer(self, request)
    }
}
