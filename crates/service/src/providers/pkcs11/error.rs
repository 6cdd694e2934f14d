//! PKCS #11 return values as PSA statuses.
//!
//! The library's reason is logged at debug level; a return value without a mapping of its own
//! (answered `GenericError`) is logged at warn, by name, with the function that returned it, so
//! that it can be given one, and so is a failure of the token itself (`CKR_GENERAL_ERROR`,
//! `CKR_FUNCTION_FAILED`: `CommunicationFailure`). Decryption has its own mapping ([`decrypt`]): every failure of the
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
        // The token failed, with no cause it can name: PSA's failure inside the
        // implementation, between it and its storage (as upstream answers them). SoftHSM gives
        // these when its object store fails (see `token::PooledSession::object_list`): worth a
        // warning, by name.
        RvError::GeneralError | RvError::FunctionFailed => {
            tracing::warn!(
                rv = ?rv,
                function = ?function,
                "the PKCS #11 token failed: CommunicationFailure"
            );
            PsaError::CommunicationFailure
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

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A log writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn logged_at_warn(error: CkError) -> (PsaError, String) {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish();
        let status = tracing::subscriber::with_default(subscriber, || psa(error));
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        (status, text)
    }

    #[test]
    fn unmapped_return_values_are_logged_at_warn_by_name() {
        let (status, text) = logged_at_warn(CkError::Pkcs11(
            RvError::OperationActive,
            Function::GenerateKeyPair,
        ));
        assert_eq!(status, PsaError::GenericError);
        assert!(
            text.contains("WARN")
                && text.contains("OperationActive")
                && text.contains("GenerateKeyPair"),
            "{text}"
        );
        // A mapped one is not a warning.
        let (status, text) = logged_at_warn(CkError::Pkcs11(RvError::HostMemory, Function::Sign));
        assert_eq!(status, PsaError::InsufficientMemory);
        assert!(text.is_empty(), "{text}");
    }

    #[test]
    fn token_failures_are_communication_failures_logged_at_warn_by_name() {
        for rv in [RvError::GeneralError, RvError::FunctionFailed] {
            let (status, text) = logged_at_warn(CkError::Pkcs11(rv, Function::GenerateKeyPair));
            assert_eq!(status, PsaError::CommunicationFailure);
            assert!(
                text.contains("WARN")
                    && text.contains(&format!("{rv:?}"))
                    && text.contains("GenerateKeyPair"),
                "{text}"
            );
        }
    }
}
