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
// What only the hardware providers' runs use is unused when they are compiled out.
#[cfg_attr(not(all(feature = "pkcs11", feature = "tpm")), allow(dead_code))]
pub(crate) mod conformance;
pub mod core;
pub mod mbed;
pub mod openssl;
#[cfg(feature = "pkcs11")]
pub mod pkcs11;
mod scope;
#[cfg(feature = "tpm")]
pub mod tpm;

use std::sync::Arc;

use bulwark_interface::ops::list_providers::ProviderInfo;
use bulwark_interface::ops::Operation;
use psa_crypto::types::key::{Attributes, EccFamily, Type};
use psa_crypto::types::status::Error as PsaError;

pub(crate) use self::scope::serve;
pub use self::scope::{Creation, KeyToCreate, RequestContext, Resolve, ResolvedKey};
use crate::dispatch::Registrar;
use crate::error::ProviderError;
use crate::keystore::KeyIdentity;
pub use crate::keystore::ScopedKeys;

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
///
/// The handler receives the operation's key already resolved by the registry
/// ([`Registrar::add`](crate::dispatch::Registrar::add)): a
/// [`ResolvedKey`] that passed the operation's policy check for an operation on an existing
/// key, a [`KeyToCreate`] for a key creation, `()` otherwise ([`KeyOf`]). It has no other way to
/// a key, so it cannot forget the check. A handler of a key-using operation that does not take
/// the key does not compile:
///
/// ```compile_fail,E0050
/// # use std::sync::Arc;
/// # use bulwark_interface::ops::{list_providers::ProviderInfo, psa_sign_hash, PsaSignHash};
/// # use bulwark_service::dispatch::Registrar;
/// # use bulwark_service::error::ProviderError;
/// # use bulwark_service::providers::{Handles, Provider, RequestContext};
/// # struct Mine;
/// # impl Provider for Mine {
/// #     fn info(&self) -> ProviderInfo { unimplemented!() }
/// #     fn name(&self) -> &str { "mine" }
/// #     fn register(self: Arc<Self>, _: &mut Registrar<'_>) {}
/// #     fn discard(&self, _: &[u8]) -> Result<(), ProviderError> { Ok(()) }
/// # }
/// impl Handles<PsaSignHash> for Mine {
///     fn handle(
///         &self,
///         ctx: &RequestContext<'_>,
///         request: psa_sign_hash::Request,
///     ) -> Result<psa_sign_hash::Response, ProviderError> {
///         unimplemented!("would have to find and check the key itself")
///     }
/// }
/// ```
///
/// and neither does one that takes something else than the resolved key:
///
/// ```compile_fail,E0053
/// # use std::sync::Arc;
/// # use bulwark_interface::ops::{list_providers::ProviderInfo, psa_sign_hash, PsaSignHash};
/// # use bulwark_service::dispatch::Registrar;
/// # use bulwark_service::error::ProviderError;
/// # use bulwark_service::providers::{Handles, Provider, RequestContext};
/// # struct Mine;
/// # impl Provider for Mine {
/// #     fn info(&self) -> ProviderInfo { unimplemented!() }
/// #     fn name(&self) -> &str { "mine" }
/// #     fn register(self: Arc<Self>, _: &mut Registrar<'_>) {}
/// #     fn discard(&self, _: &[u8]) -> Result<(), ProviderError> { Ok(()) }
/// # }
/// impl Handles<PsaSignHash> for Mine {
///     fn handle(
///         &self,
///         ctx: &RequestContext<'_>,
///         key: (),
///         request: psa_sign_hash::Request,
///     ) -> Result<psa_sign_hash::Response, ProviderError> {
///         unimplemented!()
///     }
/// }
/// ```
///
/// The same handler with `key: ResolvedKey<'_>` compiles:
///
/// ```
/// # use std::sync::Arc;
/// # use bulwark_interface::ops::{list_providers::ProviderInfo, psa_sign_hash, PsaSignHash};
/// # use bulwark_service::dispatch::Registrar;
/// # use bulwark_service::error::ProviderError;
/// # use bulwark_service::providers::{Handles, Provider, RequestContext, ResolvedKey};
/// # struct Mine;
/// # impl Provider for Mine {
/// #     fn info(&self) -> ProviderInfo { unimplemented!() }
/// #     fn name(&self) -> &str { "mine" }
/// #     fn register(self: Arc<Self>, _: &mut Registrar<'_>) {}
/// #     fn discard(&self, _: &[u8]) -> Result<(), ProviderError> { Ok(()) }
/// # }
/// impl Handles<PsaSignHash> for Mine {
///     fn handle(
///         &self,
///         _: &RequestContext<'_>,
///         key: ResolvedKey<'_>,
///         request: psa_sign_hash::Request,
///     ) -> Result<psa_sign_hash::Response, ProviderError> {
///         let _ = (key.attributes(), request);
///         Err(ProviderError::NotAuthenticated)
///     }
/// }
/// ```
pub trait Handles<O: Operation>: Provider
where
    O::Key: Resolve,
{
    /// Serves one request with its resolved `key`.
    ///
    /// # Errors
    /// Whatever the back end or a check of its own refuses.
    fn handle<'a>(
        &self,
        ctx: &RequestContext<'a>,
        key: KeyOf<'a, O>,
        request: O::Request,
    ) -> Result<O::Response, ProviderError>;
}

/// The key a handler of `O` receives: `()`, [`KeyToCreate`] or [`ResolvedKey`], after the
/// table's key column for `O`.
pub type KeyOf<'a, O> = <<O as Operation>::Key as Resolve>::Resolved<'a>;

/// Generates, from the operations the table says one family of providers serves
/// ([`operations_served_by!`](bulwark_interface::operations_served_by)), the trait of a provider
/// serving them all, its blanket impl, and the function registering them all.
macro_rules! operation_set {
    ($(#[$doc:meta])* $set:ident, $register:ident: $($op:path,)*) => {
        $(#[$doc])*
        pub(crate) trait $set: Provider $(+ Handles<$op>)* {}

        impl<P> $set for P where P: Provider $(+ Handles<$op>)* {}

        #[doc = concat!("Registers the operations of [`", stringify!($set), "`].")]
        pub(crate) fn $register<P: $set>(provider: &Arc<P>, registrar: &mut Registrar<'_>) {
            $(registrar.add::<$op, _>(provider);)*
        }
    };
}

bulwark_interface::operations_served_by!(Core => operation_set! {
    /// The core provider: the operations the table says `[Core]`.
    CoreOperations,
    register_core_operations:
});

bulwark_interface::operations_served_by!(Mbed => operation_set! {
    /// The Mbed Crypto provider: the operations the table says `Mbed` serves.
    MbedOperations,
    register_mbed_operations:
});

bulwark_interface::operations_served_by!(OpenSsl => operation_set! {
    /// The OpenSSL provider: the operations the table says `OpenSsl` serves.
    OpenSslOperations,
    register_openssl_operations:
});

#[cfg(feature = "pkcs11")]
bulwark_interface::operations_served_by!(Pkcs11 => operation_set! {
    /// The PKCS #11 provider: the operations the table says `Pkcs11` serves.
    Pkcs11Operations,
    register_pkcs11_operations:
});

#[cfg(feature = "tpm")]
bulwark_interface::operations_served_by!(Tpm => operation_set! {
    /// The TPM provider: the operations the table says `Tpm` serves.
    TpmOperations,
    register_tpm_operations:
});

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
/// runs with [`RequestContext::quick_only`], and the registry gives it back
/// ([`ProviderError::TakesLong`]) when the key it resolves is such a key, before the policy
/// check and before the provider is called. Public-key operations with such a key pair
/// (verification) go to the pool too: they are cheap, but a rule on the key alone keeps the
/// decision out of the handlers.
pub fn takes_long(attributes: &Attributes) -> bool {
    matches!(attributes.key_type, Type::RsaKeyPair)
        && (attributes.bits == 0 || attributes.bits > QUICK_RSA_BITS)
}

/// A canonical, unambiguous byte encoding of a key identity, for binding data to one key (the
/// OpenSSL provider authenticates each wrapped key with it).
///
/// `authenticator (1 byte) ‖ len ‖ application ‖ len ‖ provider name ‖ len ‖ key name`, each
/// `len` the byte length of the UTF-8 field that follows, as 8 bytes big-endian. The lengths
/// make the encoding injective: no two identities encode alike, whatever bytes the names hold.
pub fn encode_key_identity(identity: &KeyIdentity) -> Vec<u8> {
    let fields = [
        identity.application().as_bytes(),
        identity.provider_name().as_bytes(),
        identity.key_name().as_bytes(),
    ];
    let mut encoded = Vec::with_capacity(1 + fields.iter().map(|f| 8 + f.len()).sum::<usize>());
    encoded.push(identity.authenticator().value());
    for field in fields {
        encoded.extend_from_slice(&(field.len() as u64).to_be_bytes());
        encoded.extend_from_slice(field);
    }
    encoded
}

/// The RSA sizes the software providers generate, as the reference provider does
/// (docs/protocol.md#key-management).
pub(crate) const RSA_BITS: [usize; 3] = [1024, 2048, 4096];

/// Checks the RSA key size of a key the software providers create, as the reference provider
/// does (docs/protocol.md#key-management): one of [`RSA_BITS`], or 0 when `zero_ok` (an import
/// taking its size from the data).
///
/// # Errors
/// `InvalidArgument` for any other size of an RSA key.
pub(crate) fn check_rsa_bits(attributes: Attributes, zero_ok: bool) -> Result<(), PsaError> {
    match attributes.key_type {
        Type::RsaKeyPair | Type::RsaPublicKey
            if !(RSA_BITS.contains(&attributes.bits) || zero_ok && attributes.bits == 0) =>
        {
            Err(PsaError::InvalidArgument)
        }
        _ => Ok(()),
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
