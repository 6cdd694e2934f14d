//! Capability discovery: CanDoCrypto, following the rules of operations.md §8.
//!
//! The answer is Success (supported) or `NotSupported`; no other status is given for a
//! well-formed request. A `key_bits` of 0 means "any size".

use bulwark_interface::ops::can_do_crypto::{self, CheckType};
use bulwark_interface::ops::CanDoCrypto;
use psa_crypto::types::algorithm::Algorithm;
use psa_crypto::types::key::{Attributes, Type};
use psa_crypto::types::status::Error as PsaError;

use super::keys::check_rsa_bits;
use super::{ffi, MbedProvider};
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

/// USE: an algorithm, a usage flag that uses it, a key type that fits it, a size this
/// provider takes.
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
    size_check(attributes)
}

/// The key types Mbed TLS generates here.
fn generable(key_type: Type) -> bool {
    matches!(
        key_type,
        Type::RsaKeyPair
            | Type::EccKeyPair { .. }
            | Type::DhKeyPair { .. }
            | Type::RawData
            | Type::Aes
            | Type::Camellia
            | Type::Chacha20
    )
}

/// The key types Mbed TLS imports here: the generable ones and public keys.
fn importable(key_type: Type) -> bool {
    generable(key_type)
        || matches!(
            key_type,
            Type::RsaPublicKey | Type::EccPublicKey { .. } | Type::DhPublicKey { .. }
        )
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

impl Handles<CanDoCrypto> for MbedProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        request: can_do_crypto::Request,
    ) -> Result<can_do_crypto::Response, ProviderError> {
        let attributes = request.attributes;
        let representable = self.psa(|guard| ffi::check_representable(guard, attributes));
        supported(representable.is_ok())?;
        match request.check_type {
            CheckType::Use => use_check(attributes)?,
            CheckType::Generate => creation_check(attributes, generable(attributes.key_type))?,
            CheckType::Import => creation_check(attributes, importable(attributes.key_type))?,
            CheckType::Derive => return Err(PsaError::NotSupported.into()),
        }
        Ok(can_do_crypto::Response)
    }
}
