//! The one mapping from service errors to wire statuses.
//!
//! Each `match` is exhaustive with no catch-all arm: a new error variant does not compile until
//! someone decides which status it gets.

use bulwark_interface::status::ResponseStatus;

use crate::error::{AuthError, DispatchError, ProviderError, ServiceError};
use crate::keystore::KeyStoreError;

impl From<&ServiceError> for ResponseStatus {
    fn from(error: &ServiceError) -> Self {
        match error {
            ServiceError::Wire(e) => (*e).into(),
            ServiceError::Body(e) => (*e).into(),
            ServiceError::Auth(AuthError::NotRegistered) => Self::AuthenticatorNotRegistered,
            ServiceError::Auth(AuthError::Rejected(_)) => Self::AuthenticationError,
            ServiceError::Auth(AuthError::InvalidEncoding) => Self::InvalidEncoding,
            ServiceError::Dispatch(DispatchError::ProviderNotRegistered) => {
                Self::ProviderNotRegistered
            }
            ServiceError::Dispatch(DispatchError::NotSupported) => Self::PsaErrorNotSupported,
            ServiceError::Dispatch(DispatchError::NotAuthenticated) => Self::NotAuthenticated,
            ServiceError::Dispatch(DispatchError::AdminOnly) => Self::AdminOperation,
            ServiceError::Provider(e) => e.into(),
            ServiceError::Internal(_) => Self::PsaErrorGenericError,
        }
    }
}

impl From<&ProviderError> for ResponseStatus {
    fn from(error: &ProviderError) -> Self {
        match error {
            ProviderError::Psa(e) => (*e).into(),
            ProviderError::KeyStore(e) => e.into(),
            ProviderError::Deprecated => Self::DeprecatedPrimitive,
            ProviderError::ResponseTooLarge => Self::ResponseTooLarge,
            ProviderError::NotAuthenticated => Self::NotAuthenticated,
            ProviderError::ProviderNotRegistered => Self::ProviderNotRegistered,
            // The front end serves such a request again on the blocking pool and never answers
            // this; should it ever escape, it is a broken invariant, not the client's fault.
            ProviderError::TakesLong => Self::PsaErrorGenericError,
        }
    }
}

impl From<&KeyStoreError> for ResponseStatus {
    fn from(error: &KeyStoreError) -> Self {
        match error {
            KeyStoreError::AlreadyExists => Self::PsaErrorAlreadyExists,
            KeyStoreError::NotFound => Self::PsaErrorDoesNotExist,
            // PSA's "no room to store the key": the same answer as a full disk, which clients
            // already handle, and not a policy refusal of the key itself (NotPermitted).
            KeyStoreError::Full | KeyStoreError::QuotaExceeded => Self::PsaErrorInsufficientStorage,
            KeyStoreError::ReadOnly => Self::PsaErrorStorageFailure,
            KeyStoreError::Storage(_)
            | KeyStoreError::Io(_)
            | KeyStoreError::Corrupt(_)
            | KeyStoreError::Attributes(_)
            | KeyStoreError::UnsupportedSchema(_)
            | KeyStoreError::Permissions(_) => Self::KeyInfoManagerError,
        }
    }
}
