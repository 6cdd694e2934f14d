//! Capability discovery: what CanDoCrypto's rules (`providers::can_do`) ask of this provider,
//! from the mechanisms the token reported at start-up.
//!
//! Held: RSA keys (`key_bits` 0, or a whole number of bytes within the token's key-generation
//! bounds) and ECC keys on the curves this provider knows. Implemented: the algorithms this
//! provider has a mechanism of the token for. Generated: key pairs of a given size, with the
//! token's generation mechanism. Imported: key pairs and public keys.

use bulwark_interface::ops::can_do_crypto;
use bulwark_interface::ops::CanDoCrypto;
use cryptoki::mechanism::MechanismType;
use psa_crypto::types::algorithm::{
    Algorithm, AsymmetricEncryption, AsymmetricSignature, SignHash,
};
use psa_crypto::types::key::{Attributes, Type};

use super::sign::hash_params;
use super::token::PooledSession;
use super::{curve, rsa_bits_ok, Mechanisms, Pkcs11Provider};
use crate::error::ProviderError;
use crate::providers::can_do::{self, Capabilities};
use crate::providers::{Handles, RequestContext};

/// The mechanisms of the token, as far as this provider uses them.
pub(super) fn read_mechanisms(session: &PooledSession<'_>) -> Mechanisms {
    // Asked one by one: the token's whole list may name mechanisms `cryptoki` does not know,
    // which it logs as errors.
    let info = |mechanism| {
        session
            .context()
            .get_mechanism_info(session.slot(), mechanism)
            .ok()
    };
    let has = |mechanism| info(mechanism).is_some();
    Mechanisms {
        rsa_generate: info(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
            .map(|info| (info.min_key_size(), info.max_key_size())),
        ec_generate: has(MechanismType::ECC_KEY_PAIR_GEN),
        rsa_pkcs: has(MechanismType::RSA_PKCS),
        rsa_pss: has(MechanismType::RSA_PKCS_PSS),
        rsa_oaep: has(MechanismType::RSA_PKCS_OAEP),
        ecdsa: has(MechanismType::ECDSA),
    }
}

fn sign_hash_ok(hash: SignHash) -> bool {
    match hash {
        SignHash::Any => true,
        SignHash::Specific(hash) => hash_params(hash).is_ok(),
    }
}

/// Whether this provider implements `alg` on this token.
fn implemented(alg: Algorithm, mechanisms: Mechanisms) -> bool {
    match alg {
        Algorithm::AsymmetricSignature(signature) => match signature {
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg } => {
                mechanisms.rsa_pkcs && sign_hash_ok(hash_alg)
            }
            AsymmetricSignature::RsaPkcs1v15SignRaw => mechanisms.rsa_pkcs,
            AsymmetricSignature::RsaPss { hash_alg } => {
                mechanisms.rsa_pss && sign_hash_ok(hash_alg)
            }
            AsymmetricSignature::Ecdsa { hash_alg } => mechanisms.ecdsa && sign_hash_ok(hash_alg),
            AsymmetricSignature::EcdsaAny => mechanisms.ecdsa,
            AsymmetricSignature::DeterministicEcdsa { .. } => false,
        },
        Algorithm::AsymmetricEncryption(encryption) => match encryption {
            AsymmetricEncryption::RsaPkcs1v15Crypt => mechanisms.rsa_pkcs,
            AsymmetricEncryption::RsaOaep { hash_alg } => {
                mechanisms.rsa_oaep && hash_params(hash_alg).is_ok()
            }
        },
        _ => false,
    }
}

/// Whether a key of this type and size can be held here at all.
fn holdable(attributes: Attributes, mechanisms: Mechanisms) -> bool {
    match attributes.key_type {
        Type::RsaKeyPair | Type::RsaPublicKey => {
            let (min, max) = mechanisms.rsa_generate.unwrap_or((1024, 16384));
            attributes.bits == 0
                || rsa_bits_ok(attributes.bits) && (min..=max).contains(&attributes.bits)
        }
        Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
            if attributes.bits == 0 {
                super::CURVES.iter().any(|c| c.family == curve_family)
            } else {
                curve(curve_family, attributes.bits).is_some()
            }
        }
        _ => false,
    }
}

impl Capabilities for Mechanisms {
    fn holds(&self, attributes: Attributes) -> bool {
        holdable(attributes, *self)
    }

    /// Key pairs of a given size, with the token's generation mechanism.
    fn generates(&self, attributes: Attributes) -> bool {
        attributes.bits != 0
            && match attributes.key_type {
                Type::RsaKeyPair => self.rsa_generate.is_some(),
                Type::EccKeyPair { .. } => self.ec_generate,
                _ => false,
            }
    }

    /// Every type held: key pairs and public keys.
    fn imports(&self, _: Attributes) -> bool {
        true
    }

    fn implements(&self, alg: Algorithm, _: Attributes) -> bool {
        implemented(alg, *self)
    }
}

impl Handles<CanDoCrypto> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        can_do::answer(&self.mechanisms(), request)
    }
}
