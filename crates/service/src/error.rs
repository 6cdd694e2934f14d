//! Typed errors of each service layer.
//!
//! Every error is turned into a wire status in exactly one place, `status.rs`; nothing else in
//! the service picks a status number.

use bulwark_interface::wire::WireError;
use bulwark_interface::BodyError;
use psa_crypto::types::status::Error as PsaError;

use crate::keystore::KeyStoreError;

/// Authentication failures (docs/protocol.md#request-pipeline steps B1–B2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The request names an authenticator other than the configured one.
    #[error("the request's authenticator is not the one this service uses")]
    NotRegistered,
    /// The credentials were rejected.
    #[error("credentials rejected: {0}")]
    Rejected(&'static str),
    /// The credentials are not valid text where text is required.
    #[error("credentials are not valid UTF-8")]
    InvalidEncoding,
}

/// Routing and access-policy failures (steps C1–E3, F1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The provider id is defined but not configured.
    #[error("provider is not configured")]
    ProviderNotRegistered,
    /// A core opcode sent to a crypto provider or the reverse, or an operation the provider
    /// does not implement.
    #[error("operation not supported by this provider")]
    NotSupported,
    /// The operation needs an identity and the request had none.
    #[error("operation requires authentication")]
    NotAuthenticated,
    /// The operation is reserved to administrators.
    #[error("operation reserved to administrators")]
    AdminOnly,
}

/// A provider's failure.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A PSA status from the back end or from a policy check.
    #[error("PSA error: {0:?}")]
    Psa(PsaError),
    /// The key-info store failed or refused.
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),
    /// Generating a key with a deprecated primitive while `allow_deprecated` is false.
    #[error("deprecated key type or algorithm")]
    Deprecated,
    /// The response would exceed `buffer_size_limit`.
    #[error("response larger than the configured buffer limit")]
    ResponseTooLarge,
    /// An operation that needs an identity reached a provider without one.
    #[error("no identity")]
    NotAuthenticated,
    /// A request named a provider id that is defined but not configured (ListOpcodes).
    #[error("provider is not configured")]
    ProviderNotRegistered,
    /// In an attempt that must stay short ([`RequestContext::quick_only`]), the key named
    /// makes the operation long ([`providers::takes_long`]): the request is given back, before
    /// anything was done, to be served on the blocking pool. Never answered to a client.
    ///
    /// [`RequestContext::quick_only`]: crate::providers::RequestContext::quick_only
    /// [`providers::takes_long`]: crate::providers::takes_long
    #[error("long work in a quick-only attempt")]
    TakesLong,
}

impl From<PsaError> for ProviderError {
    fn from(error: PsaError) -> Self {
        ProviderError::Psa(error)
    }
}

/// Any failure while serving a request.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The frame could not be read or interpreted.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The body could not be decoded or the result encoded.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Authentication failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Routing or access policy refused the request.
    #[error(transparent)]
    Dispatch(#[from] DispatchError),
    /// The provider failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// A broken invariant, such as a panic caught in a handler.
    #[error("internal error: {0}")]
    Internal(&'static str),
}
