//! Errors raised while turning operation bodies into native values and back.
//!
//! Header and framing errors live in [`crate::wire::WireError`]; this type covers only what
//! happens once a frame has been read. Each variant maps to exactly one wire status in
//! `impl From<BodyError> for ResponseStatus` (see `status.rs`).

/// Why an operation or result body could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The bytes are not a valid protobuf encoding of the expected message.
    #[error("the body is not a valid protobuf message for this operation")]
    Deserialize,
    /// A field is missing, holds an unknown enum value, or a `*_NONE` placeholder.
    #[error("field `{0}` is missing or holds a value its type does not allow")]
    InvalidEncoding(&'static str),
    /// A provider id outside the defined range was named in a body.
    #[error("provider id {0} does not exist")]
    ProviderDoesNotExist(u32),
    /// An opcode that this library does not know was named in a body.
    #[error("opcode {0} does not exist")]
    OpcodeDoesNotExist(u32),
    /// An auth type outside the defined range was named in a body.
    #[error("authenticator id {0} does not exist")]
    AuthenticatorDoesNotExist(u32),
    /// A provider UUID in a body could not be parsed.
    #[error("provider UUID is not valid")]
    WrongProviderUuid,
    /// A native value could not be expressed on the wire.
    #[error("the result could not be encoded")]
    Serialize,
}
