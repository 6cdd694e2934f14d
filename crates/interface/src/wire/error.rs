use std::io;

use crate::status::ResponseStatus;

/// Why a frame could not be read or converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The stream ended cleanly before the first byte of a frame.
    #[error("the peer closed the connection")]
    Closed,
    /// The first four bytes are not the Parsec magic number.
    #[error("bad magic number {0:#010x}")]
    BadMagic(u32),
    /// The header-size field is not 30.
    #[error("header size field is {0}, expected 30")]
    HeaderSize(u16),
    /// The wire protocol version is not 1.0.
    #[error("wire protocol version {0}.{1} is not supported")]
    UnsupportedVersion(u8, u8),
    /// A reserved byte is not zero.
    #[error("reserved header bytes are not zero")]
    NonZeroReserved,
    /// The announced body is larger than allowed.
    #[error("body of {len} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// Announced length.
        len: u32,
        /// Configured limit.
        limit: usize,
    },
    /// The announced auth field is larger than allowed.
    #[error("auth field of {len} bytes exceeds the limit of {limit}")]
    AuthTooLarge {
        /// Announced length.
        len: u16,
        /// Configured limit.
        limit: usize,
    },
    /// The stream failed, timed out or ended inside a frame.
    #[error("connection error: {0:?}")]
    Io(io::ErrorKind),
    /// The body content type is not protobuf.
    #[error("content type {0} is not supported")]
    ContentType(u8),
    /// The accept type is not protobuf.
    #[error("accept type {0} is not supported")]
    AcceptType(u8),
    /// The auth type is not defined.
    #[error("auth type {0} does not exist")]
    AuthType(u8),
    /// The opcode is not defined.
    #[error("opcode {0:#x} does not exist")]
    Opcode(u32),
    /// The provider id is not defined.
    #[error("provider id {0} does not exist")]
    Provider(u8),
    /// A response carries a status outside the table.
    #[error("response status {0} does not exist")]
    Status(u16),
}

impl From<io::Error> for WireError {
    fn from(error: io::Error) -> Self {
        WireError::Io(error.kind())
    }
}

impl From<WireError> for ResponseStatus {
    fn from(error: WireError) -> Self {
        match error {
            WireError::Closed | WireError::Io(_) => ResponseStatus::ConnectionError,
            WireError::BadMagic(_) | WireError::HeaderSize(_) | WireError::NonZeroReserved => {
                ResponseStatus::InvalidHeader
            }
            WireError::UnsupportedVersion(..) => ResponseStatus::WireProtocolVersionNotSupported,
            WireError::BodyTooLarge { .. } | WireError::AuthTooLarge { .. } => {
                ResponseStatus::BodySizeExceedsLimit
            }
            WireError::ContentType(_) => ResponseStatus::ContentTypeNotSupported,
            WireError::AcceptType(_) => ResponseStatus::AcceptTypeNotSupported,
            WireError::AuthType(_) => ResponseStatus::AuthenticatorDoesNotExist,
            WireError::Opcode(_) => ResponseStatus::OpcodeDoesNotExist,
            WireError::Provider(_) => ResponseStatus::ProviderDoesNotExist,
            WireError::Status(_) => ResponseStatus::InvalidEncoding,
        }
    }
}
