//! One application's keys in one provider: the key store's only view for serving requests.
//!
//! A [`ScopedKeys`] is made from a request's authenticated identity and a provider's name, and
//! builds every [`KeyIdentity`] it looks up from them: nothing outside the key store makes a
//! `KeyIdentity` (its fields are private to `keystore`), so no other code can name another
//! owner's key. The registry reaches keys through it when it resolves a request's key
//! (`providers::serve`).

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::psa_generate_key::uses_deprecated_primitive;
use bulwark_interface::status::ResponseStatus;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use super::{KeyIdentity, KeyRecord, KeyStore, KeyStoreError};
use crate::audit::{AuditNotes, KeyEvent, KeyRef};
use crate::auth::Identity;
use crate::error::ProviderError;
use crate::providers::{encode_key_identity, Creation, ProviderSettings};

/// One application's keys in one provider: the only way to a key, made from the authenticated
/// identity of a request.
#[derive(Debug)]
pub struct ScopedKeys<'a> {
    store: &'a KeyStore,
    authenticator: AuthType,
    application: &'a str,
    provider_name: &'a str,
    provider_id: ProviderId,
    settings: &'a ProviderSettings,
    notes: Option<&'a AuditNotes>,
}

impl<'a> ScopedKeys<'a> {
    /// The keys of `owner` in the provider named `provider_name`, of id `provider_id`.
    ///
    /// Made by `RequestContext` from the request's authenticated identity, when the registry
    /// resolves a request's key.
    pub(crate) fn new(
        store: &'a KeyStore,
        owner: &'a Identity,
        provider_name: &'a str,
        provider_id: ProviderId,
        settings: &'a ProviderSettings,
        notes: Option<&'a AuditNotes>,
    ) -> Self {
        ScopedKeys {
            store,
            authenticator: owner.auth_type,
            application: &owner.name,
            provider_name,
            provider_id,
            settings,
            notes,
        }
    }
}

impl ScopedKeys<'_> {
    /// [`encode_key_identity`] of the caller's key `key_name` in this provider.
    pub(crate) fn identity_encoding(&self, key_name: &str) -> Vec<u8> {
        encode_key_identity(&self.identity(key_name))
    }

    /// Whether a back-end key id is used by any key of this provider, of any application.
    ///
    /// # Errors
    /// A store failure.
    pub(crate) fn key_id_in_use(&self, key_id: &[u8]) -> Result<bool, ProviderError> {
        Ok(self.store.key_id_in_use(self.provider_name, key_id)?)
    }

    /// `key_name` of the caller in this provider, for the audit log.
    fn audit_ref<'k>(&'k self, key_name: &'k str) -> KeyRef<'k> {
        KeyRef {
            owner: self.application,
            provider_name: self.provider_name,
            provider_id: self.provider_id,
            key_name,
        }
    }

    fn note_key(&self, key_name: &str) {
        if let Some(notes) = self.notes {
            notes.note_key(self.audit_ref(key_name));
        }
    }

    fn note_event(&self, event: KeyEvent, key_name: &str, status: ResponseStatus) {
        if let Some(notes) = self.notes {
            notes.note_event(event, self.audit_ref(key_name), status);
        }
    }

    /// Refuses a key name longer than `max_key_name_len` (InvalidArgument), before anything
    /// else looks at it.
    fn check_name(&self, key_name: &str) -> Result<(), ProviderError> {
        if key_name.len() > self.settings.max_key_name_len {
            return Err(PsaError::InvalidArgument.into());
        }
        Ok(())
    }

    fn identity(&self, key_name: &str) -> KeyIdentity {
        KeyIdentity {
            authenticator: self.authenticator,
            application: self.application.to_owned(),
            provider_name: self.provider_name.to_owned(),
            key_name: key_name.to_owned(),
        }
    }

    /// The record of a key of the caller.
    ///
    /// # Errors
    /// `InvalidArgument` for a name over `max_key_name_len`; `NotFound`
    /// (PsaErrorDoesNotExist) when the caller has no such key, whether or not another
    /// application has one of that name.
    pub(crate) fn get(&self, key_name: &str) -> Result<KeyRecord, ProviderError> {
        self.check_name(key_name)?;
        self.note_key(key_name);
        self.store
            .get(&self.identity(key_name))?
            .ok_or(KeyStoreError::NotFound.into())
    }

    /// See [`KeyToCreate::create`](crate::providers::KeyToCreate::create).
    pub(crate) fn create(
        &self,
        key_name: &str,
        attributes: Attributes,
        key_id: Vec<u8>,
        creation: Creation,
        create: impl FnOnce() -> Result<(), ProviderError>,
        discard: impl FnOnce(&[u8]) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        self.check_name(key_name)?;
        self.note_key(key_name);
        if uses_deprecated_primitive(&attributes) {
            match creation {
                Creation::Generate if !self.settings.allow_deprecated => {
                    return Err(ProviderError::Deprecated);
                }
                _ => tracing::warn!("key created with a deprecated primitive"),
            }
        }
        let identity = self.identity(key_name);
        let record = KeyRecord {
            provider_id: self.provider_id,
            key_id: key_id.into(),
            attributes,
        };
        self.store
            .reserve_within(&identity, &record, self.settings.max_keys_per_client)?;
        if let Err(error) = create() {
            self.store.abort(&identity)?;
            return Err(error);
        }
        if let Err(error) = self.store.commit(&identity) {
            // The reservation row stays if even this fails; start-up recovery removes it.
            if discard(&record.key_id).is_ok() {
                let _ = self.store.abort(&identity);
            }
            return Err(error.into());
        }
        let event = match creation {
            Creation::Generate => KeyEvent::Generated,
            Creation::Import => KeyEvent::Imported,
        };
        self.note_event(event, key_name, ResponseStatus::Success);
        Ok(())
    }

    /// See [`ResolvedKey::destroy`](crate::providers::ResolvedKey::destroy).
    pub(crate) fn destroy(
        &self,
        key_name: &str,
        destroy: impl FnOnce(&KeyRecord) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        self.check_name(key_name)?;
        self.note_key(key_name);
        let identity = self.identity(key_name);
        let record = self.store.begin_destroy(&identity)?;
        // From here on the key is gone for clients, whatever happens next: audited.
        let outcome = destroy(&record);
        let outcome = match self.store.finish_destroy(&identity) {
            Ok(()) => outcome,
            Err(error) => Err(error.into()),
        };
        let status = match &outcome {
            Ok(()) => ResponseStatus::Success,
            Err(error) => error.into(),
        };
        self.note_event(KeyEvent::Destroyed, key_name, status);
        outcome
    }
}
