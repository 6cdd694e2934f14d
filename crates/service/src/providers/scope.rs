//! How a request reaches a key: resolved once, before the provider runs.
//!
//! The operations table says, for each operation, whether it works on no key, names a key to
//! create, or uses an existing key of the caller and which policy check that key must pass
//! (`Operation::Key`, `Operation::key_name`, `Operation::check_key`). [`serve`] is the one
//! place that turns that column into a key: it scopes the name to the caller and the provider
//! ([`ScopedKeys`], the key store's view of one caller's keys), looks the key up, runs the operation's policy check against the recorded
//! attributes, and only then calls the provider's [`Handles::handle`], which receives the result
//! as its `key` argument: a [`ResolvedKey`], a [`KeyToCreate`] or `()`.
//!
//! Nothing outside this module can make a [`ResolvedKey`] or a [`KeyToCreate`], nor reach the
//! store through a [`RequestContext`]: their fields and constructors are private here, and a
//! [`ScopedKeys`] is made only from a context's authenticated identity. So a handler cannot use
//! a key it was not handed, cannot skip the policy check, and cannot name another caller's key.

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::psa_generate_key::uses_deprecated_primitive;
use bulwark_interface::ops::{ExistingKey, KeyKind, NewKey, NoKey, Operation};
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use super::{Handles, ProviderSettings};
use crate::audit::AuditNotes;
use crate::auth::Identity;
use crate::error::ProviderError;
use crate::fair::Client;
use crate::keystore::{KeyRecord, KeyStore, KeyStoreError, ScopedKeys};

/// What a provider knows about the request it serves.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    identity: Option<&'a Identity>,
    store: &'a KeyStore,
    settings: &'a ProviderSettings,
    /// Where the request's audit notes go (`None`: not audited). Carried here, not in a
    /// thread-local, so that work moved to another thread still notes what it does.
    notes: Option<&'a AuditNotes>,
    /// See [`RequestContext::quick_only`].
    quick_only: bool,
    /// Whose request this is, for resources that serve clients in turns.
    client: Client,
}

impl<'a> RequestContext<'a> {
    /// A context for one request.
    pub fn new(
        identity: Option<&'a Identity>,
        store: &'a KeyStore,
        settings: &'a ProviderSettings,
    ) -> Self {
        RequestContext {
            identity,
            store,
            settings,
            notes: None,
            quick_only: false,
            client: Client::default(),
        }
    }

    /// The same context for an attempt that must stay short (on an I/O thread): resolving a key
    /// for which [`takes_long`](super::takes_long) holds fails with
    /// [`ProviderError::TakesLong`], so that the request is served again on the blocking pool.
    pub fn quick_only(self) -> Self {
        RequestContext {
            quick_only: true,
            ..self
        }
    }

    /// The same context, noting what the request does to keys in `notes`.
    pub fn with_notes(self, notes: Option<&'a AuditNotes>) -> Self {
        RequestContext { notes, ..self }
    }

    /// A context for work done on behalf of `identity` within this request (DeleteClient
    /// destroying another client's keys, a health probe without identity): same store,
    /// settings and audit notes.
    pub fn on_behalf_of<'b>(&self, identity: Option<&'b Identity>) -> RequestContext<'b>
    where
        'a: 'b,
    {
        RequestContext {
            identity,
            store: self.store,
            settings: self.settings,
            notes: self.notes,
            quick_only: self.quick_only,
            client: self.client,
        }
    }

    /// The same context, serving `client` (the peer uid of the connection).
    pub fn for_client(self, client: Client) -> Self {
        RequestContext { client, ..self }
    }

    /// Whose request this is: resources that can do one thing at a time (the Mbed TLS thread)
    /// serve waiting clients in turns ([`crate::fair`]).
    pub fn client(&self) -> Client {
        self.client
    }

    /// The caller, if authenticated.
    pub fn identity(&self) -> Option<&'a Identity> {
        self.identity
    }

    /// The settings providers obey.
    pub fn settings(&self) -> &ProviderSettings {
        self.settings
    }

    /// The checks every provider makes first on a key to generate, in the reference order:
    /// a deprecated primitive is refused unless the settings allow it, then a public key type
    /// (only key pairs and symmetric keys are generated).
    ///
    /// # Errors
    /// [`ProviderError::Deprecated`], then `InvalidArgument`.
    pub fn check_generation(&self, attributes: &Attributes) -> Result<(), ProviderError> {
        if uses_deprecated_primitive(attributes) && !self.settings.allow_deprecated {
            return Err(ProviderError::Deprecated);
        }
        if attributes.key_type.is_public_key() {
            return Err(PsaError::InvalidArgument.into());
        }
        Ok(())
    }

    /// The caller's keys in the provider named `provider_name`, of id `provider_id`.
    ///
    /// # Errors
    /// [`ProviderError::NotAuthenticated`] when the request carries no identity (the
    /// dispatcher refuses such requests before they reach a provider, so this is a guard).
    fn keys(
        &self,
        provider_name: &'a str,
        provider_id: ProviderId,
    ) -> Result<ScopedKeys<'a>, ProviderError> {
        let identity = self.identity.ok_or(ProviderError::NotAuthenticated)?;
        Ok(ScopedKeys::new(
            self.store,
            identity,
            provider_name,
            provider_id,
            self.settings,
            self.notes,
        ))
    }
}

/// Serves `request` of operation `O` with `provider`, registered as provider `provider_id`:
/// resolves the operation's key for the caller, then calls the handler with it.
///
/// # Errors
/// The resolution's error (`NotAuthenticated`, `InvalidArgument` for a name over
/// `max_key_name_len`, `DoesNotExist`, the policy check's refusal), else the handler's.
pub(crate) fn serve<O, P>(
    provider: &P,
    provider_id: ProviderId,
    ctx: &RequestContext<'_>,
    request: O::Request,
) -> Result<O::Response, ProviderError>
where
    O: Operation,
    O::Key: Resolve,
    P: Handles<O> + ?Sized,
{
    let key = O::Key::resolve::<O>(ctx, provider.name(), provider_id, &request)?;
    provider.handle(ctx, key, request)
}

/// The key a handler of an operation receives, per kind of the table's key column: `()` for
/// [`NoKey`], [`KeyToCreate`] for [`NewKey`], [`ResolvedKey`] for [`ExistingKey`].
///
/// Implemented here only: [`Resolve::resolve`] is how the registry makes the key.
pub trait Resolve: KeyKind + Sized {
    /// What the handler receives.
    type Resolved<'a>;

    /// Resolves the key `request` names, for the caller of `ctx` in the provider named
    /// `provider_name`.
    ///
    /// # Errors
    /// As `serve`: `NotAuthenticated`, `InvalidArgument` for a name over `max_key_name_len`,
    /// `DoesNotExist`, the policy check's refusal.
    fn resolve<'a, O: Operation<Key = Self>>(
        ctx: &RequestContext<'a>,
        provider_name: &'a str,
        provider_id: ProviderId,
        request: &O::Request,
    ) -> Result<Self::Resolved<'a>, ProviderError>;
}

/// The key of `O` that `request` names; the table gives one to every operation of a key.
fn key_name<O: Operation>(request: &O::Request) -> Result<&str, ProviderError> {
    O::key_name(request).ok_or(ProviderError::Psa(PsaError::GenericError))
}

impl Resolve for NoKey {
    type Resolved<'a> = ();

    fn resolve<'a, O: Operation<Key = Self>>(
        _: &RequestContext<'a>,
        _: &'a str,
        _: ProviderId,
        _: &O::Request,
    ) -> Result<(), ProviderError> {
        Ok(())
    }
}

impl Resolve for NewKey {
    type Resolved<'a> = KeyToCreate<'a>;

    /// Nothing is looked up yet: providers check the key's type and size before the name, as
    /// the reference does ([`KeyToCreate::check_free`]).
    fn resolve<'a, O: Operation<Key = Self>>(
        ctx: &RequestContext<'a>,
        provider_name: &'a str,
        provider_id: ProviderId,
        request: &O::Request,
    ) -> Result<KeyToCreate<'a>, ProviderError> {
        let keys = ctx.keys(provider_name, provider_id)?;
        Ok(KeyToCreate {
            name: key_name::<O>(request)?.to_owned(),
            keys,
        })
    }
}

impl Resolve for ExistingKey {
    type Resolved<'a> = ResolvedKey<'a>;

    fn resolve<'a, O: Operation<Key = Self>>(
        ctx: &RequestContext<'a>,
        provider_name: &'a str,
        provider_id: ProviderId,
        request: &O::Request,
    ) -> Result<ResolvedKey<'a>, ProviderError> {
        let keys = ctx.keys(provider_name, provider_id)?;
        let name = key_name::<O>(request)?;
        let record = keys.get(name)?;
        // Before the policy check: a refusal is then audited once, where the request is served.
        if ctx.quick_only && super::takes_long(&record.attributes) {
            return Err(ProviderError::TakesLong);
        }
        O::check_key(request, record.attributes)?;
        Ok(ResolvedKey {
            name: name.to_owned(),
            record,
            keys,
        })
    }
}

/// An existing key of the caller, found and accepted by the operation's policy check.
#[derive(Debug)]
pub struct ResolvedKey<'a> {
    keys: ScopedKeys<'a>,
    name: String,
    record: KeyRecord,
}

impl ResolvedKey<'_> {
    /// The key's name, in the caller's namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the store records of the key.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    /// The key's attributes, as recorded at creation.
    pub fn attributes(&self) -> Attributes {
        self.record.attributes
    }

    /// The back end's reference to the key.
    pub fn key_id(&self) -> &[u8] {
        &self.record.key_id
    }

    /// [`encode_key_identity`](super::encode_key_identity) of this key.
    pub fn identity_encoding(&self) -> Vec<u8> {
        self.keys.identity_encoding(&self.name)
    }

    /// Destroys the key: hides the name, runs `destroy` in the back end, then frees the name.
    ///
    /// The name is free once this returns, even if the back end failed (its error is
    /// returned); a crash in between is finished by start-up recovery.
    ///
    /// # Errors
    /// `NotFound` when another request destroyed it first, a store failure or the back end's
    /// error.
    pub fn destroy(
        self,
        destroy: impl FnOnce(&KeyRecord) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        self.keys.destroy(&self.name, destroy)
    }
}

/// A key the request creates: its name, in the caller's namespace, not yet taken.
#[derive(Debug)]
pub struct KeyToCreate<'a> {
    keys: ScopedKeys<'a>,
    name: String,
}

impl KeyToCreate<'_> {
    /// The new key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `AlreadyExists` if the caller already has a key of this name: called by a provider
    /// once the key's type and size passed its checks (the reference order of checks) and
    /// before costly work. [`KeyToCreate::create`] checks again, atomically.
    ///
    /// # Errors
    /// `InvalidArgument` for a name over `max_key_name_len`, `AlreadyExists`, a store failure.
    pub fn check_free(&self) -> Result<(), ProviderError> {
        match self.keys.get(&self.name) {
            Ok(_) => Err(KeyStoreError::AlreadyExists.into()),
            Err(ProviderError::KeyStore(KeyStoreError::NotFound)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// [`encode_key_identity`](super::encode_key_identity) of the new key.
    pub fn identity_encoding(&self) -> Vec<u8> {
        self.keys.identity_encoding(&self.name)
    }

    /// Whether a back-end key id is used by any key of this provider, of any application.
    ///
    /// # Errors
    /// A store failure.
    pub fn key_id_in_use(&self, key_id: &[u8]) -> Result<bool, ProviderError> {
        self.keys.key_id_in_use(key_id)
    }

    /// Creates the key: checks the name's length and deprecation, reserves the name with the
    /// back-end id the key will have (within the owner's quota of keys), runs `create` in the
    /// back end, then commits the name.
    ///
    /// If `create` fails the reservation is dropped and the name stays free. If the commit
    /// fails the back-end key is removed with `discard`. A crash anywhere in between leaves a
    /// reservation that start-up recovery cleans, so a key the caller was told exists always
    /// exists, and a half-made key is never visible.
    ///
    /// # Errors
    /// `InvalidArgument` for a name over `max_key_name_len`, [`ProviderError::Deprecated`],
    /// `AlreadyExists`, `QuotaExceeded` (PsaErrorInsufficientStorage), a store failure or the
    /// back end's error.
    pub fn create(
        &self,
        attributes: Attributes,
        key_id: Vec<u8>,
        creation: Creation,
        create: impl FnOnce() -> Result<(), ProviderError>,
        discard: impl FnOnce(&[u8]) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        self.keys
            .create(&self.name, attributes, key_id, creation, create, discard)
    }
}

/// Whether a key is being generated or imported; they differ on deprecated primitives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    /// PsaGenerateKey: deprecated primitives refused unless allowed.
    Generate,
    /// PsaImportKey: deprecated primitives only logged.
    Import,
}
