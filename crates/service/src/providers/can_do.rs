//! CanDoCrypto's rules (docs/protocol.md#candocrypto), written once for every crypto provider.
//!
//! The answer is Success (supported) or `NotSupported`; no other status is given for a
//! well-formed request. A `key_bits` of 0 means "any size". A provider says what it can hold,
//! create and compute through [`Capabilities`]; the rules that combine them are here:
//!
//! - every check first asks whether a key of that type and size can be held at all;
//! - USE needs an algorithm, one of the encrypt/decrypt/sign/verify usage flags, a key type
//!   that fits the algorithm, and an algorithm the provider implements;
//! - GENERATE and IMPORT need a type the provider creates that way, then USE when the policy
//!   names an algorithm (a key is never promised that could not be used);
//! - DERIVE is never supported.

use bulwark_interface::ops::can_do_crypto::{self, CheckType};
use psa_crypto::types::algorithm::Algorithm;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::ProviderError;

/// What one provider can do, as CanDoCrypto asks it.
pub(crate) trait Capabilities {
    /// Whether a key of this type and size (0: any size) can be held here at all.
    fn holds(&self, attributes: Attributes) -> bool;

    /// Whether a key of this type (and size, already known to be held) can be generated here.
    fn generates(&self, attributes: Attributes) -> bool;

    /// Whether a key of this type (and size, already known to be held) can be imported here.
    ///
    /// By default: what can be generated, and public keys (of the types held here).
    fn imports(&self, attributes: Attributes) -> bool {
        self.generates(attributes) || attributes.key_type.is_public_key()
    }

    /// Whether `alg` is implemented here for a key like `attributes` (whether the key type fits
    /// the algorithm at all is checked by the rules).
    fn implements(&self, alg: Algorithm, attributes: Attributes) -> bool;
}

/// Whether `capabilities` support the check `check` of a key like `attributes`.
fn supports(capabilities: &impl Capabilities, check: CheckType, attributes: Attributes) -> bool {
    if !capabilities.holds(attributes) {
        return false;
    }
    let creatable = match check {
        CheckType::Use => return usable(capabilities, attributes),
        CheckType::Generate => capabilities.generates(attributes),
        CheckType::Import => capabilities.imports(attributes),
        CheckType::Derive => return false,
    };
    creatable
        && (attributes.policy.permitted_algorithms == Algorithm::None
            || usable(capabilities, attributes))
}

/// The answer to a CanDoCrypto request: Success, or `NotSupported`.
///
/// # Errors
/// `NotSupported` when [`supports`] says no.
pub(crate) fn answer(
    capabilities: &impl Capabilities,
    request: can_do_crypto::Request,
) -> Result<can_do_crypto::Response, ProviderError> {
    if supports(capabilities, request.check_type, request.attributes) {
        Ok(can_do_crypto::Response)
    } else {
        Err(PsaError::NotSupported.into())
    }
}

/// USE: an algorithm, a usage flag that uses it, a key type that fits it, and an algorithm
/// implemented here.
fn usable(capabilities: &impl Capabilities, attributes: Attributes) -> bool {
    let alg = attributes.policy.permitted_algorithms;
    let flags = attributes.policy.usage_flags;
    alg != Algorithm::None
        && (flags.encrypt()
            || flags.decrypt()
            || flags.sign_hash()
            || flags.sign_message()
            || flags.verify_hash()
            || flags.verify_message())
        && attributes.is_compatible_with_alg(alg)
        && capabilities.implements(alg, attributes)
}
