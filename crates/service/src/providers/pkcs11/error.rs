//! PKCS #11 return values as PSA statuses.
//!
//! The library's reason is logged at debug level; a return value without a mapping of its own
//! (answered `GenericError`) is logged at warn, by name, with the function that returned it, so
//! that it can be given one. Decryption has its own mapping ([`decrypt`]): every failure of the
//! decryption itself is `InvalidPadding`.

use cryptoki::context::Function;
use cryptoki::error::{Error as CkError, RvError};
use psa_crypto::types::status::Error as PsaError;

/// The PSA status of a failed library call.
pub(super) fn psa(error: CkError) -> PsaError {
    tracing::debug!(%error, "PKCS #11 call failed");
    let CkError::Pkcs11(rv, function) = error else {
        tracing::warn!(%error, "PKCS #11 call failed outside the library: GenericError");
        return PsaError::GenericError;
    };
    match rv {
        // Parameters this provider built from a valid request, refused when an operation is
        // set up: the token lacks them (SoftHSM 2.6 has OAEP with SHA-1 only, for one).
        RvError::ArgumentsBad
            if matches!(
                function,
                Function::EncryptInit
                    | Function::DecryptInit
                    | Function::SignInit
                    | Function::VerifyInit
            ) =>
        {
            PsaError::NotSupported
        }
        RvError::HostMemory | RvError::DeviceMemory => PsaError::InsufficientMemory,
        RvError::MechanismInvalid
        | RvError::MechanismParamInvalid
        | RvError::FunctionNotSupported
        | RvError::KeySizeRange
        | RvError::CurveNotSupported
        | RvError::DomainParamsInvalid => PsaError::NotSupported,
        RvError::ArgumentsBad
        | RvError::DataInvalid
        | RvError::DataLenRange
        | RvError::KeyTypeInconsistent
        | RvError::AttributeValueInvalid
        | RvError::TemplateInconsistent
        | RvError::TemplateIncomplete => PsaError::InvalidArgument,
        RvError::SignatureInvalid | RvError::SignatureLenRange => PsaError::InvalidSignature,
        RvError::KeyFunctionNotPermitted => PsaError::NotPermitted,
        RvError::DeviceError | RvError::DeviceRemoved | RvError::TokenNotPresent => {
            PsaError::HardwareFailure
        }
        RvError::UserNotLoggedIn | RvError::PinExpired | RvError::PinLocked => {
            PsaError::NotPermitted
        }
        _ => {
            tracing::warn!(
                rv = ?rv,
                function = ?function,
                "unmapped PKCS #11 return value: GenericError"
            );
            PsaError::GenericError
        }
    }
}

/// The PSA status of a failed decryption: the mapping of [`psa`] for a refused set-up (the
/// mechanism or key, which do not depend on the ciphertext), `InvalidPadding` for every failure
/// of the decryption itself, whatever the library's reason, which is not logged.
pub(super) fn decrypt(error: CkError) -> PsaError {
    match error {
        CkError::Pkcs11(_, Function::DecryptInit) => psa(error),
        _ => PsaError::InvalidPadding,
    }
}

/// Whether a call failed because an object handle is no longer valid (the object was removed
/// behind this provider's back): the handle cache entry is dropped and the object looked up
/// again.
pub(super) fn stale_handle(error: &CkError) -> bool {
    matches!(
        error,
        CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)
    )
}
