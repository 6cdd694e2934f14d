//! Providers: the back ends that hold keys and do cryptography.
//!
//! A provider implements [`Provider`] (what it is) and one [`Handles<O>`] per operation it
//! serves, and lists those operations in [`Provider::register`]. There is no trait with a
//! default "not supported" method per operation: an operation a provider does not register is
//! answered `PsaErrorNotSupported` by the dispatcher, and `ListOpcodes` is read from the same
//! registrations, so what a provider advertises cannot drift from what it does.
//!
//! Providers never see wire bytes, opcodes or status numbers, and never see a key name without
//! its owner: keys are reached only through [`ScopedKeys`], built from the authenticated
//! identity.

mod can_do;
#[cfg(test)]
pub(crate) mod conformance;
pub mod core;
pub mod mbed;
pub mod openssl;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
#[cfg(feature = "tpm")]
pub mod tpm;

use std::sync::Arc;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::list_providers::ProviderInfo;
use bulwark_interface::ops::psa_generate_key::uses_deprecated_primitive;
use bulwark_interface::ops::{
    CanDoCrypto, Operation, PsaAeadDecrypt, PsaAeadEncrypt, PsaAsymmetricDecrypt,
    PsaAsymmetricEncrypt, PsaCipherDecrypt, PsaCipherEncrypt, PsaDestroyKey, PsaExportKey,
    PsaExportPublicKey, PsaGenerateKey, PsaGenerateRandom, PsaHashCompare, PsaHashCompute,
    PsaImportKey, PsaMacCompute, PsaMacVerify, PsaRawKeyAgreement, PsaSignHash, PsaSignMessage,
    PsaVerifyHash, PsaVerifyMessage,
};
use bulwark_interface::status::ResponseStatus;
use psa_crypto::types::key::{Attributes, EccFamily};
use psa_crypto::types::status::Error as PsaError;

use crate::audit::{self, KeyEvent, KeyRef};
use crate::auth::Identity;
use crate::dispatch::Registrar;
use crate::error::ProviderError;
use crate::keystore::{KeyIdentity, KeyRecord, KeyStore, KeyStoreError};

/// A configured provider.
pub trait Provider: Send + Sync + 'static {
    /// What ListProviders says about this provider.
    fn info(&self) -> ProviderInfo;

    /// The configured name; part of every key identity of this provider.
    fn name(&self) -> &str;

    /// Registers every operation this provider serves.
    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>);

    /// Removes a back-end key left behind by an interrupted create or destroy.
    ///
    /// Called at start-up for every key-store row a crash left unfinished. A key that does
    /// not exist in the back end is not an error.
    ///
    /// # Errors
    /// The back end's failure to remove an existing key.
    fn discard(&self, key_id: &[u8]) -> Result<(), ProviderError>;
}

/// A provider that serves operation `O`.
pub trait Handles<O: Operation>: Provider {
    /// Serves one request.
    ///
    /// # Errors
    /// Whatever the back end or a policy check refuses.
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        request: O::Request,
    ) -> Result<O::Response, ProviderError>;
}

/// Generates, from one list, the trait of a provider serving every listed operation, its
/// blanket impl, and the function registering them all.
macro_rules! operation_set {
    ($(#[$doc:meta])* $set:ident, $register:ident: $($op:ident),* $(,)?) => {
        $(#[$doc])*
        pub(crate) trait $set: Provider $(+ Handles<$op>)* {}

        impl<P> $set for P where P: Provider $(+ Handles<$op>)* {}

        #[doc = concat!("Registers the operations of [`", stringify!($set), "`].")]
        pub(crate) fn $register<P: $set>(provider: &Arc<P>, registrar: &mut Registrar<'_>) {
            $(registrar.add::<$op, _>(provider);)*
        }
    };
}

operation_set!(
    /// A provider serving every crypto operation of the software providers (Mbed Crypto and
    /// OpenSSL): all of them but key attestation.
    SoftwareOperations,
    register_software_operations:
    PsaGenerateKey,
    PsaImportKey,
    PsaDestroyKey,
    PsaExportPublicKey,
    PsaExportKey,
    PsaSignHash,
    PsaVerifyHash,
    PsaSignMessage,
    PsaVerifyMessage,
    PsaAsymmetricEncrypt,
    PsaAsymmetricDecrypt,
    PsaAeadEncrypt,
    PsaAeadDecrypt,
    PsaCipherEncrypt,
    PsaCipherDecrypt,
    PsaMacCompute,
    PsaMacVerify,
    PsaRawKeyAgreement,
    PsaGenerateRandom,
    PsaHashCompute,
    PsaHashCompare,
    CanDoCrypto,
);

#[cfg(any(feature = "pkcs11", feature = "tpm"))]
operation_set!(
    /// A provider serving the operations of the hardware providers (PKCS #11 and TPM,
    /// docs/protocol.md#operations-per-provider): key management without private-key export, signatures of a hash,
    /// asymmetric encryption, random numbers and CanDoCrypto.
    HardwareOperations,
    register_hardware_operations:
    PsaGenerateKey,
    PsaImportKey,
    PsaDestroyKey,
    PsaExportPublicKey,
    PsaSignHash,
    PsaVerifyHash,
    PsaAsymmetricEncrypt,
    PsaAsymmetricDecrypt,
    PsaGenerateRandom,
    CanDoCrypto,
);

/// Settings every provider obeys, from `[core_settings]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Whether PsaGenerateKey may use deprecated primitives.
    pub allow_deprecated: bool,
    /// Largest response buffer a provider may produce (PsaGenerateRandom, ListKeys,
    /// ListClients).
    pub buffer_size_limit: usize,
    /// Longest key name, in bytes: [`ScopedKeys`] refuses longer ones before the store is
    /// read, so that no request can make the store hold, or the audit log copy, a name of the
    /// size of a whole request body.
    pub max_key_name_len: usize,
    /// Most keys one owner (authenticator and application) may hold over all providers:
    /// bounds what one client can make the store (and its in-memory copy) hold, and the size
    /// of its ListKeys answer.
    pub max_keys_per_client: usize,
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            allow_deprecated: false,
            buffer_size_limit: crate::config::DEFAULT_SIZE_LIMIT,
            max_key_name_len: crate::config::DEFAULT_MAX_KEY_NAME_LEN,
            max_keys_per_client: crate::config::DEFAULT_MAX_KEYS_PER_CLIENT,
        }
    }
}

/// The largest RSA key whose private operations (signing, decryption) count as quick: about a
/// millisecond with OpenSSL. Their cost grows with the cube of the size: 4096 bits take about
/// eight times as long, 8192 bits about sixty times ([`takes_long`]).
pub const QUICK_RSA_BITS: usize = 2048;

/// Whether using a key with `attributes` may take long enough that it must not run on the
/// front end's I/O threads: an RSA key pair over [`QUICK_RSA_BITS`], or of a size not recorded
/// (an import that took its size from the data, which may be as large as 8192 bits).
///
/// This is the one place that decides it, for every operation that uses a key: a request
/// answered on an I/O thread ([`Service::runs_inline`](crate::service::Service::runs_inline))
/// runs with [`RequestContext::quick_only`], and [`ScopedKeys::get`] gives it back
/// ([`ProviderError::TakesLong`]) when the key it resolves is such a key, before anything was
/// done with it. Public-key operations with such a key pair (verification) go to the pool too:
/// they are cheap, but a rule on the key alone keeps the decision out of the handlers.
pub fn takes_long(attributes: &Attributes) -> bool {
    matches!(
        attributes.key_type,
        psa_crypto::types::key::Type::RsaKeyPair
    ) && (attributes.bits == 0 || attributes.bits > QUICK_RSA_BITS)
}

/// What a provider knows about the request it serves.
#[derive(Debug)]
pub struct RequestContext<'a> {
    identity: Option<&'a Identity>,
    store: &'a KeyStore,
    settings: &'a ProviderSettings,
    quick_only: bool,
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
            quick_only: false,
        }
    }

    /// The same context for an attempt that must stay short (on an I/O thread): resolving a key
    /// for which [`takes_long`] holds fails with [`ProviderError::TakesLong`], so that the
    /// request is served again on the blocking pool.
    pub fn quick_only(mut self) -> Self {
        self.quick_only = true;
        self
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

    /// The caller's keys in provider `provider`.
    ///
    /// # Errors
    /// [`ProviderError::NotAuthenticated`] when the request carries no identity (the
    /// dispatcher refuses such requests before they reach a provider, so this is a guard).
    pub fn keys<P: Provider + ?Sized>(
        &self,
        provider: &'a P,
    ) -> Result<ScopedKeys<'a>, ProviderError> {
        let identity = self.identity.ok_or(ProviderError::NotAuthenticated)?;
        Ok(ScopedKeys {
            store: self.store,
            authenticator: identity.auth_type,
            application: &identity.name,
            provider_name: provider.name(),
            provider_id: provider.info().id,
            settings: self.settings,
            quick_only: self.quick_only,
        })
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

/// One application's keys in one provider: the only way a provider reaches a key.
#[derive(Debug)]
pub struct ScopedKeys<'a> {
    store: &'a KeyStore,
    authenticator: AuthType,
    application: &'a str,
    provider_name: &'a str,
    provider_id: ProviderId,
    settings: &'a ProviderSettings,
    /// See [`RequestContext::quick_only`].
    quick_only: bool,
}

/// A canonical, unambiguous byte encoding of a key identity, for binding data to one key (the
/// OpenSSL provider authenticates each wrapped key with it).
///
/// `authenticator (1 byte) ‖ len ‖ application ‖ len ‖ provider name ‖ len ‖ key name`, each
/// `len` the byte length of the UTF-8 field that follows, as 8 bytes big-endian. The lengths
/// make the encoding injective: no two identities encode alike, whatever bytes the names hold.
pub fn encode_key_identity(identity: &KeyIdentity) -> Vec<u8> {
    let fields = [
        identity.application.as_bytes(),
        identity.provider_name.as_bytes(),
        identity.key_name.as_bytes(),
    ];
    let mut encoded = Vec::with_capacity(1 + fields.iter().map(|f| 8 + f.len()).sum::<usize>());
    encoded.push(identity.authenticator.value());
    for field in fields {
        encoded.extend_from_slice(&(field.len() as u64).to_be_bytes());
        encoded.extend_from_slice(field);
    }
    encoded
}

impl ScopedKeys<'_> {
    /// [`encode_key_identity`] of the caller's key `key_name` in this provider.
    pub fn identity_encoding(&self, key_name: &str) -> Vec<u8> {
        encode_key_identity(&self.identity(key_name))
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
    /// application has one of that name; [`ProviderError::TakesLong`] in a quick-only attempt
    /// when [`takes_long`] holds for the key.
    pub fn get(&self, key_name: &str) -> Result<KeyRecord, ProviderError> {
        self.check_name(key_name)?;
        audit::note_key(self.audit_ref(key_name));
        let record = self
            .store
            .get(&self.identity(key_name))?
            .ok_or(ProviderError::from(KeyStoreError::NotFound))?;
        if self.quick_only && takes_long(&record.attributes) {
            return Err(ProviderError::TakesLong);
        }
        Ok(record)
    }

    /// Whether a back-end key id is used by any key of this provider, of any application.
    ///
    /// # Errors
    /// A store failure.
    pub fn key_id_in_use(&self, key_id: &[u8]) -> Result<bool, ProviderError> {
        Ok(self.store.key_id_in_use(self.provider_name, key_id)?)
    }

    /// Creates a key: checks the name's length and deprecation, reserves the name with the
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
        key_name: &str,
        attributes: Attributes,
        key_id: Vec<u8>,
        creation: Creation,
        create: impl FnOnce() -> Result<(), ProviderError>,
        discard: impl FnOnce(&[u8]) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        self.check_name(key_name)?;
        audit::note_key(self.audit_ref(key_name));
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
        audit::note_event(event, self.audit_ref(key_name), ResponseStatus::Success);
        Ok(())
    }

    /// Destroys a key: hides the name, runs `destroy` in the back end, then frees the name.
    ///
    /// The name is free once this returns, even if the back end failed (its error is
    /// returned); a crash in between is finished by start-up recovery.
    ///
    /// # Errors
    /// `InvalidArgument` for a name over `max_key_name_len`, `NotFound`, a store failure or
    /// the back end's error.
    pub fn destroy(
        &self,
        key_name: &str,
        destroy: impl FnOnce(&KeyRecord) -> Result<(), ProviderError>,
    ) -> Result<(), ProviderError> {
        self.check_name(key_name)?;
        audit::note_key(self.audit_ref(key_name));
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
        audit::note_event(KeyEvent::Destroyed, self.audit_ref(key_name), status);
        outcome
    }
}

/// Whether `bits` is a size PSA knows for curves of `family` (SECP-R2, SECT-R2 and FRP: any
/// size). Other sizes are invalid arguments; a known size without a curve in a back end is
/// not supported there.
#[allow(deprecated)]
pub(crate) fn is_psa_curve_size(family: EccFamily, bits: usize) -> bool {
    let sizes: &[usize] = match family {
        EccFamily::SecpK1 => &[192, 224, 256],
        EccFamily::SecpR1 => &[192, 224, 256, 384, 521],
        EccFamily::SectK1 => &[233, 239, 283, 409, 571],
        EccFamily::SectR1 => &[233, 283, 409, 571],
        EccFamily::BrainpoolPR1 => &[192, 224, 256, 320, 384, 512],
        EccFamily::Montgomery => &[255, 448],
        EccFamily::SecpR2 | EccFamily::SectR2 | EccFamily::Frp => return true,
    };
    sizes.contains(&bits)
}
