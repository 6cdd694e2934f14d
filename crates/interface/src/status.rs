//! Response status codes (docs/protocol.md#status-codes), with their exact wire values.
//!
//! Service-internal codes are 0–22; PSA codes are `1000 + |psa_status_t|`. Values outside the
//! table are not representable: [`ResponseStatus::try_from`] rejects them, which is what a client
//! must do with a response carrying an unknown status.

use std::fmt;

use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;

macro_rules! statuses {
    ($($(#[$doc:meta])* $name:ident = $value:literal => $text:literal,)*) => {
        /// A response status as carried in bytes 32..34 of the header.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum ResponseStatus {
            $($(#[$doc])* $name = $value,)*
        }

        impl ResponseStatus {
            /// Every status, in wire-value order.
            pub const ALL: &'static [ResponseStatus] = &[$(ResponseStatus::$name,)*];

            /// The variant name, as the upstream interface spells it.
            pub const fn name(self) -> &'static str {
                match self { $(ResponseStatus::$name => stringify!($name),)* }
            }

            /// A sentence describing the status, for humans.
            pub const fn description(self) -> &'static str {
                match self { $(ResponseStatus::$name => $text,)* }
            }
        }

        impl TryFrom<u16> for ResponseStatus {
            type Error = u16;
            /// Fails with the value itself when it is not in the table.
            fn try_from(value: u16) -> Result<Self, u16> {
                match value {
                    $($value => Ok(ResponseStatus::$name),)*
                    other => Err(other),
                }
            }
        }
    };
}

statuses! {
    /// The operation succeeded.
    Success = 0 => "successful operation",
    /// The header's provider does not match the back end that handled it.
    WrongProviderId = 1 => "requested provider ID does not match that of the backend",
    /// Unsupported body content type.
    ContentTypeNotSupported = 2 => "requested content type is not supported by the backend",
    /// Unsupported response content type.
    AcceptTypeNotSupported = 3 => "requested accept type is not supported by the backend",
    /// Unsupported wire protocol version.
    WireProtocolVersionNotSupported = 4 => "requested version is not supported by the backend",
    /// The provider id is valid but no such provider is configured.
    ProviderNotRegistered = 5 => "no provider registered for the requested provider ID",
    /// The provider id is outside the defined range.
    ProviderDoesNotExist = 6 => "no provider defined for requested provider ID",
    /// The body could not be decoded.
    DeserializingBodyFailed = 7 => "failed to deserialize the body of the message",
    /// The result could not be encoded.
    SerializingBodyFailed = 8 => "failed to serialize the body of the message",
    /// The opcode is not defined.
    OpcodeDoesNotExist = 9 => "requested operation is not defined",
    /// The response would exceed the configured buffer limit.
    ResponseTooLarge = 10 => "response size exceeds allowed limits",
    /// The credentials were rejected.
    AuthenticationError = 11 => "authentication failed",
    /// The auth type is outside the defined range.
    AuthenticatorDoesNotExist = 12 => "authenticator not supported",
    /// The auth type is defined but not the one the service uses.
    AuthenticatorNotRegistered = 13 => "authenticator not supported by the service",
    /// The key-info store failed.
    KeyInfoManagerError = 14 => "internal error in the key info manager",
    /// Reading or writing the stream failed or timed out.
    ConnectionError = 15 => "generic input/output error",
    /// A field holds a value its type does not allow.
    InvalidEncoding = 16 => "invalid value for this data type",
    /// Magic, header size or reserved bytes are wrong.
    InvalidHeader = 17 => "constant fields in header are invalid",
    /// A provider UUID could not be parsed.
    WrongProviderUuid = 18 => "the UUID vector needs to only contain 16 bytes",
    /// The operation needs an authenticated identity.
    NotAuthenticated = 19 => "request did not provide a required authentication",
    /// The body is larger than the configured limit.
    BodySizeExceedsLimit = 20 => "request length specified in the header is above defined limit",
    /// The operation is reserved to administrators.
    AdminOperation = 21 => "the operation requires admin privilege",
    /// The key type or algorithm is deprecated and not allowed by configuration.
    DeprecatedPrimitive = 22 => "the key or algorithm is deprecated and not allowed",
    /// PSA_ERROR_GENERIC_ERROR.
    PsaErrorGenericError = 1132 => "an error occurred that does not correspond to any defined failure cause",
    /// PSA_ERROR_NOT_PERMITTED.
    PsaErrorNotPermitted = 1133 => "the requested action is denied by a policy",
    /// PSA_ERROR_NOT_SUPPORTED.
    PsaErrorNotSupported = 1134 => "the requested operation or a parameter is not supported by this implementation",
    /// PSA_ERROR_INVALID_ARGUMENT.
    PsaErrorInvalidArgument = 1135 => "the parameters passed to the function are invalid",
    /// PSA_ERROR_INVALID_HANDLE.
    PsaErrorInvalidHandle = 1136 => "the key handle is not valid",
    /// PSA_ERROR_BAD_STATE.
    PsaErrorBadState = 1137 => "the requested action cannot be performed in the current state",
    /// PSA_ERROR_BUFFER_TOO_SMALL.
    PsaErrorBufferTooSmall = 1138 => "an output buffer is too small",
    /// PSA_ERROR_ALREADY_EXISTS.
    PsaErrorAlreadyExists = 1139 => "asking for an item that already exists",
    /// PSA_ERROR_DOES_NOT_EXIST.
    PsaErrorDoesNotExist = 1140 => "asking for an item that doesn't exist",
    /// PSA_ERROR_INSUFFICIENT_MEMORY.
    PsaErrorInsufficientMemory = 1141 => "there is not enough runtime memory",
    /// PSA_ERROR_INSUFFICIENT_STORAGE.
    PsaErrorInsufficientStorage = 1142 => "there is not enough persistent storage",
    /// PSA_ERROR_INSUFFICIENT_DATA.
    PsaErrorInsufficientData = 1143 => "insufficient data when attempting to read from a resource",
    /// PSA_ERROR_COMMUNICATION_FAILURE.
    PsaErrorCommunicationFailure = 1145 => "there was a communication failure inside the implementation",
    /// PSA_ERROR_STORAGE_FAILURE.
    PsaErrorStorageFailure = 1146 => "there was a storage failure that may have led to data loss",
    /// PSA_ERROR_HARDWARE_FAILURE.
    PsaErrorHardwareFailure = 1147 => "a hardware failure was detected",
    /// PSA_ERROR_INSUFFICIENT_ENTROPY.
    PsaErrorInsufficientEntropy = 1148 => "there is not enough entropy to generate random data needed for the requested action",
    /// PSA_ERROR_INVALID_SIGNATURE.
    PsaErrorInvalidSignature = 1149 => "the signature, MAC or hash is incorrect",
    /// PSA_ERROR_INVALID_PADDING.
    PsaErrorInvalidPadding = 1150 => "the decrypted padding is incorrect",
    /// PSA_ERROR_CORRUPTION_DETECTED.
    PsaErrorCorruptionDetected = 1151 => "a tampering attempt was detected",
    /// PSA_ERROR_DATA_CORRUPT.
    PsaErrorDataCorrupt = 1152 => "stored data has been corrupted",
    /// PSA_ERROR_DATA_INVALID.
    PsaErrorDataInvalid = 1153 => "data read from storage is not valid for the implementation",
}

impl ResponseStatus {
    /// The value carried on the wire.
    pub const fn value(self) -> u16 {
        self as u16
    }

    /// Whether this is [`ResponseStatus::Success`].
    pub const fn is_success(self) -> bool {
        matches!(self, ResponseStatus::Success)
    }
}

impl fmt::Display for ResponseStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.name(),
            self.value(),
            self.description()
        )
    }
}

impl std::error::Error for ResponseStatus {}

impl From<PsaError> for ResponseStatus {
    fn from(error: PsaError) -> Self {
        match error {
            PsaError::GenericError => Self::PsaErrorGenericError,
            PsaError::NotSupported => Self::PsaErrorNotSupported,
            PsaError::NotPermitted => Self::PsaErrorNotPermitted,
            PsaError::BufferTooSmall => Self::PsaErrorBufferTooSmall,
            PsaError::AlreadyExists => Self::PsaErrorAlreadyExists,
            PsaError::DoesNotExist => Self::PsaErrorDoesNotExist,
            PsaError::BadState => Self::PsaErrorBadState,
            PsaError::InvalidArgument => Self::PsaErrorInvalidArgument,
            PsaError::InsufficientMemory => Self::PsaErrorInsufficientMemory,
            PsaError::InsufficientStorage => Self::PsaErrorInsufficientStorage,
            PsaError::CommunicationFailure => Self::PsaErrorCommunicationFailure,
            PsaError::StorageFailure => Self::PsaErrorStorageFailure,
            PsaError::DataCorrupt => Self::PsaErrorDataCorrupt,
            PsaError::DataInvalid => Self::PsaErrorDataInvalid,
            PsaError::HardwareFailure => Self::PsaErrorHardwareFailure,
            PsaError::CorruptionDetected => Self::PsaErrorCorruptionDetected,
            PsaError::InsufficientEntropy => Self::PsaErrorInsufficientEntropy,
            PsaError::InvalidSignature => Self::PsaErrorInvalidSignature,
            PsaError::InvalidPadding => Self::PsaErrorInvalidPadding,
            PsaError::InsufficientData => Self::PsaErrorInsufficientData,
            PsaError::InvalidHandle => Self::PsaErrorInvalidHandle,
        }
    }
}

impl From<BodyError> for ResponseStatus {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::Deserialize => Self::DeserializingBodyFailed,
            BodyError::InvalidEncoding(_) => Self::InvalidEncoding,
            BodyError::ProviderDoesNotExist(_) => Self::ProviderDoesNotExist,
            BodyError::OpcodeDoesNotExist(_) => Self::OpcodeDoesNotExist,
            BodyError::AuthenticatorDoesNotExist(_) => Self::AuthenticatorDoesNotExist,
            BodyError::WrongProviderUuid => Self::WrongProviderUuid,
            BodyError::Serialize => Self::SerializingBodyFailed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_wire_value() {
        for status in ResponseStatus::ALL {
            assert_eq!(ResponseStatus::try_from(status.value()), Ok(*status));
        }
        assert_eq!(ResponseStatus::ALL.len(), 23 + 21);
    }

    #[test]
    fn unassigned_values_are_rejected() {
        for value in [23u16, 500, 1131, 1144, 1154, u16::MAX] {
            assert_eq!(ResponseStatus::try_from(value), Err(value));
        }
    }

    #[test]
    fn values_added_after_the_book_exist() {
        assert_eq!(ResponseStatus::DeprecatedPrimitive.value(), 22);
        assert_eq!(ResponseStatus::PsaErrorDataInvalid.value(), 1153);
        assert!(ResponseStatus::PsaErrorDataInvalid
            .to_string()
            .contains("1153"));
    }
}
