//! The Mbed Crypto provider (id 1): software cryptography on the PSA Crypto implementation of
//! Mbed TLS, reached through the `psa-crypto` crate.
//!
//! Keys are persistent PSA keys. Each key gets a random id in the PSA user range
//! (1..=0x3FFF_FFFF), recorded in the key store as 4 little-endian bytes; Mbed TLS keeps the key
//! material in one file per id in the service's working directory.
//!
//! Mbed TLS, as `psa-crypto-sys` builds it, has no threading support: every call into it is
//! made while holding one process-wide lock (see `MbedProvider::psa`).
//!
//! The operations are split by family: key management in `keys`, signatures in `sign`,
//! asymmetric encryption in `asym`, AEAD in `aead`, unauthenticated ciphers in `cipher`, MACs in
//! `mac`, hashes in `hash`, random numbers in `random`, key agreement in `agreement` and
//! CanDoCrypto in `capability`. The only `unsafe` code is in `ffi`.

mod aead;
mod agreement;
mod asym;
mod capability;
mod cipher;
mod ffi;
mod hash;
mod keys;
mod mac;
mod random;
mod sign;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_providers::ProviderInfo;
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::key::{Attributes, Id};
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::Provider;
use crate::dispatch::Registrar;
use crate::error::ProviderError;
use crate::keystore::KeyRecord;

/// Fixed identity of the Mbed Crypto provider.
pub const MBED_UUID: &str = "1c1139dc-ad7c-47dc-ad6b-db6fdb466552";

/// The lock every call into Mbed TLS is made under.
///
/// Static rather than per provider because the state it protects (the key slots, the random
/// generator, the persistent key files) belongs to the process, not to a provider value.
static PSA_LOCK: Mutex<()> = Mutex::new(());

/// Proof that the caller holds the PSA lock; the `ffi` functions ask for it.
#[derive(Debug)]
struct PsaGuard<'a> {
    _held: MutexGuard<'a, ()>,
}

/// The Mbed Crypto provider.
#[derive(Debug)]
pub struct MbedProvider {
    name: String,
    /// Serialises every call into Mbed TLS.
    ///
    /// Mbed TLS is built by `psa-crypto-sys` without `MBEDTLS_THREADING_C`: its key slot table
    /// (keys are loaded from and evicted to storage on use), random generator and other state
    /// are unguarded globals, and two threads inside it at once (two signatures, say) corrupt
    /// memory. The dispatcher calls providers
    /// from several threads, so each PSA call runs with this lock held (see
    /// [`MbedProvider::psa`]). It points to a process-wide static, so that two provider values
    /// (as tests make) still share one lock.
    psa_lock: &'static Mutex<()>,
}

impl MbedProvider {
    /// Starts Mbed TLS's PSA Crypto implementation and makes a provider named `name`.
    ///
    /// # Errors
    /// The PSA status of a failed initialisation (for example no entropy source).
    pub fn new(name: String) -> Result<MbedProvider, ProviderError> {
        let provider = MbedProvider {
            name,
            psa_lock: &PSA_LOCK,
        };
        provider.psa(|_| psa_crypto::init())?;
        Ok(provider)
    }

    /// Runs `call` with the PSA lock held.
    ///
    /// Keep `call` to the PSA call and the buffer handling around it. A panic while the lock
    /// was held poisons it; Mbed TLS never unwinds, so the state behind it is still whole and
    /// the poison is ignored.
    fn psa<T>(&self, call: impl FnOnce(&PsaGuard<'_>) -> T) -> T {
        let guard = PsaGuard {
            _held: self.psa_lock.lock().unwrap_or_else(PoisonError::into_inner),
        };
        call(&guard)
    }

    /// Runs `call` on the PSA key behind `record`, with the PSA lock held.
    ///
    /// `call` receives the key and the attributes recorded at creation with the size the key
    /// really has (a key imported with `key_bits` 0 is recorded with 0 bits, but output buffers
    /// must be sized from the real size).
    ///
    /// # Errors
    /// `DoesNotExist` when Mbed TLS has no such key, or `call`'s error.
    fn with_key<T>(
        &self,
        record: &KeyRecord,
        call: impl FnOnce(&PsaGuard<'_>, Id, Attributes) -> Result<T, PsaError>,
    ) -> Result<T, ProviderError> {
        let raw_id = psa_key_id(&record.key_id)?;
        self.psa(|guard| {
            let bits = ffi::key_bits(guard, raw_id).map_err(missing_key)?;
            call(
                guard,
                psa_handle(raw_id)?,
                Attributes {
                    bits,
                    ..record.attributes
                },
            )
        })
        .map_err(ProviderError::from)
    }
}

/// The `psa-crypto` handle of the persistent key `raw_id`.
///
/// `psa-crypto` 0.13's only constructor, `Id::from_persistent_key_id`, first reads the key's
/// policy back into its own types, and that fails for every key whose algorithm is an
/// unauthenticated cipher: such keys could not even be destroyed. `Id` is a plain serde newtype
/// over the PSA id, so it is rebuilt through serde instead; whether the key exists is checked
/// by the caller with [`ffi::key_bits`].
fn psa_handle(raw_id: u32) -> Result<Id, PsaError> {
    use serde::de::value::{Error, SeqDeserializer};
    use serde::Deserialize;
    Id::deserialize(SeqDeserializer::<_, Error>::new(std::iter::once(raw_id)))
        .map_err(|_| PsaError::GenericError)
}

/// The PSA key id recorded in a key-store row.
///
/// A row whose id is not 4 bytes was not written by this provider: reported as corrupt data.
fn psa_key_id(key_id: &[u8]) -> Result<u32, ProviderError> {
    let bytes: [u8; 4] = key_id.try_into().map_err(|_| PsaError::DataCorrupt)?;
    Ok(u32::from_le_bytes(bytes))
}

/// Mbed TLS reports a persistent key with no file as an invalid handle; to the caller the key
/// does not exist.
fn missing_key(error: PsaError) -> PsaError {
    match error {
        PsaError::InvalidHandle => PsaError::DoesNotExist,
        other => other,
    }
}

/// A zeroed buffer of `size` bytes to receive PSA output.
fn buffer(size: usize) -> Vec<u8> {
    vec![0; size]
}

/// A zeroed buffer of `size` bytes to receive secret PSA output, wiped on drop.
fn secret_buffer(size: usize) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(buffer(size))
}

/// Moves secret output into the response type, without a copy left behind.
fn into_secret(mut data: Zeroizing<Vec<u8>>) -> SecretBytes {
    SecretBytes::new(std::mem::take(&mut *data))
}

impl Provider for MbedProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            uuid: uuid::Uuid::parse_str(MBED_UUID).unwrap_or_default(),
            description: "Software provider running the PSA Crypto implementation of Mbed TLS; \
                          keys are persistent PSA keys stored in files by Mbed TLS"
                .to_owned(),
            vendor: "Arm".to_owned(),
            version_maj: 0,
            version_min: 1,
            version_rev: 0,
            id: ProviderId::MbedCrypto,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>) {
        super::register_software_operations(&self, registrar);
    }

    fn discard(&self, key_id: &[u8]) -> Result<(), ProviderError> {
        let raw_id = psa_key_id(key_id)?;
        self.psa(|guard| keys::destroy_if_present(guard, raw_id))
            .map_err(ProviderError::from)
    }
}
