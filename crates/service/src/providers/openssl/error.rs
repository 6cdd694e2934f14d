//! OpenSSL errors as PSA statuses.
//!
//! OpenSSL reports failures as an error stack with free-text reasons; PSA needs one status. The
//! status of a failure is chosen by what was being done ([`parse`], [`verify`], [`decrypt`],
//! [`tag`]) or, for the operations themselves, by [`internal`], which recognises the few reasons
//! a caller can act on (memory, unsupported algorithm) and calls everything else a generic
//! error. The OpenSSL reasons are logged at debug level only: they never carry key material, but
//! a reason such as "padding check failed" is exactly what a padding oracle needs, so they are
//! not sent to the client.

use ::openssl::error::ErrorStack;
use psa_crypto::types::status::Error as PsaError;

/// Whether any entry of the stack has a reason containing one of `needles`.
fn has_reason(errors: &ErrorStack, needles: &[&str]) -> bool {
    errors.errors().iter().any(|error| {
        error
            .reason()
            .is_some_and(|reason| needles.iter().any(|needle| reason.contains(needle)))
    })
}

/// A failure of an operation that should not fail once its inputs were checked.
///
/// `InsufficientMemory` for an allocation failure, `NotSupported` for an algorithm this build of
/// OpenSSL lacks, `GenericError` otherwise.
pub(super) fn internal(errors: ErrorStack) -> PsaError {
    tracing::debug!(%errors, "OpenSSL operation failed");
    if has_reason(&errors, &["malloc failure"]) {
        PsaError::InsufficientMemory
    } else if has_reason(&errors, &["unsupported", "not supported", "disabled"]) {
        PsaError::NotSupported
    } else {
        PsaError::GenericError
    }
}

/// Key data that OpenSSL refused to parse: malformed input, `InvalidArgument`.
pub(super) fn parse(errors: ErrorStack) -> PsaError {
    tracing::debug!(%errors, "OpenSSL refused key data");
    PsaError::InvalidArgument
}

/// A signature check that could not be completed: the signature is not valid.
pub(super) fn verify(errors: ErrorStack) -> PsaError {
    tracing::debug!(%errors, "OpenSSL signature check failed");
    PsaError::InvalidSignature
}

/// Any failure of an RSA decryption, whatever OpenSSL's reason: `InvalidPadding`.
///
/// One status for every failure of the decryption itself, so that a caller learns nothing
/// about why a ciphertext was refused (no padding oracle). The reason is not logged either.
pub(super) fn decrypt(errors: ErrorStack) -> PsaError {
    drop(errors);
    PsaError::InvalidPadding
}

/// An AEAD decryption whose tag did not verify: `InvalidSignature`.
pub(super) fn tag(errors: ErrorStack) -> PsaError {
    drop(errors);
    PsaError::InvalidSignature
}
