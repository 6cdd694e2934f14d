//! Capability discovery: CanDoCrypto (operations.md §8) with this provider's real
//! capabilities, including the mechanisms the token reported at start-up.
//!
//! The answer is Success or `NotSupported`. The pre-check accepts RSA keys (`key_bits` 0, or a
//! whole number of bytes within the token's key-generation bounds) and ECC keys on the curves
//! this provider knows. USE needs an algorithm, one of the encrypt/decrypt/sign/verify flags, a
//! compatible key type and an algorithm this provider implements with a mechanism the token
//! has. GENERATE (key pairs, with the token's generation mechanism) and IMPORT (key pairs and
//! public keys) then check USE when the policy names an algorithm. DERIVE is never supported.

use bulwark_interface::ops::can_do_crypto::{self, CheckType};
use bulwark_interface::ops::CanDoCrypto;
use cryptoki::mechanism::MechanismType;
use psa_crypto::types::algorithm::{
    Algorithm, AsymmetricEncryption, AsymmetricSignature, SignHash,
};
use psa_crypto::types::key::{Attributes, Type};
use psa_crypto::types::status::Error as PsaError;

use super::sign::hash_params;
use super::token::Token;
use super::{curve, rsa_bits_ok, Mechanisms, Pkcs11Provider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

/// The mechanisms of the token, as far as this provider uses them.
pub(super) fn read_mechanisms(token: &Token) -> Mechanisms {
    // Asked one by one: the token's whole list may name mechanisms `cryptoki` does not know,
    // which it logs as errors.
    let info = |mechanism| token.context.get_mechanism_info(token.slot, mechanism).ok();
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

fn supported(supported: bool) -> Result<(), PsaError> {
    if supported {
        Ok(())
    } else {
        Err(PsaError::NotSupported)
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

fn use_check(attributes: Attributes, mechanisms: Mechanisms) -> Result<(), PsaError> {
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
    supported(implemented(alg, mechanisms))
}

fn creation_check(
    attributes: Attributes,
    mechanisms: Mechanisms,
    type_ok: bool,
) -> Result<(), PsaError> {
    supported(type_ok)?;
    if attributes.policy.permitted_algorithms == Algorithm::None {
        Ok(())
    } else {
        use_check(attributes, mechanisms)
    }
}

impl Handles<CanDoCrypto> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        let attributes = request.attributes;
        let mechanisms = self.mechanisms();
        supported(holdable(attributes, mechanisms))?;
        let generable = match attributes.key_type {
            Type::RsaKeyPair => mechanisms.rsa_generate.is_some() && attributes.bits != 0,
            Type::EccKeyPair { .. } => mechanisms.ec_generate && attributes.bits != 0,
            _ => false,
        };
        match request.check_type {
            CheckType::Use => use_check(attributes, mechanisms)?,
            CheckType::Generate => creation_check(attributes, mechanisms, generable)?,
            CheckType::Import => creation_check(attributes, mechanisms, true)?,
            CheckType::Derive => return Err(PsaError::NotSupported.into()),
        }
        Ok(can_do_crypto::Response)
    }
}
