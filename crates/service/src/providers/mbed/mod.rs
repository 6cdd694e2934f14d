//! The Mbed Crypto provider (id 1): software cryptography on the PSA Crypto implementation of
//! Mbed TLS, reached through the `psa-crypto` crate.
//!
//! Keys are persistent PSA keys. Each key gets a random id in the PSA user range
//! (1..=0x3FFF_FFFF), recorded in the key store as 4 little-endian bytes; Mbed TLS keeps the key
//! material in one file per id in the service's working directory.
//!
//! Mbed TLS, as `psa-crypto-sys` builds it, has no threading support: every call into it is
//! made while holding one process-wide lock, and calls that find it taken queue for one thread,
//! served in turns between clients (see `MbedProvider::psa`).
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
pub(crate) mod tests;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, TryLockError};

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::list_providers::ProviderInfo;
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::key::{Attributes, Id};
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::Provider;
use crate::dispatch::Registrar;
use crate::error::ProviderError;
use crate::fair::{Client, FairQueue};
use crate::keystore::{KeyRecord, KeyStore};

/// Fixed identity of the Mbed Crypto provider.
pub const MBED_UUID: &str = "1c1139dc-ad7c-47dc-ad6b-db6fdb466552";

/// Held by every call into Mbed TLS.
///
/// Static rather than per provider because the state it protects (the key slots, the random
/// generator, the persistent key files) belongs to the process, not to a provider value: two
/// provider values (as tests make) still share it.
static PSA_LOCK: Mutex<()> = Mutex::new(());

/// The thread that runs the calls which found [`PSA_LOCK`] taken (a single-thread pool).
static PSA_THREAD: OnceLock<rayon_core::ThreadPool> = OnceLock::new();

/// The calls waiting for [`PSA_THREAD`], let through to it in turns between clients, two at a
/// time: one running and the next already queued to the thread, so that Mbed TLS does not sit
/// idle while the next caller wakes up to hand its call over.
static PSA_TURNS: FairQueue = FairQueue::new(2);

/// The Mbed TLS thread, started by the first provider.
fn psa_thread() -> Result<&'static rayon_core::ThreadPool, ProviderError> {
    if let Some(pool) = PSA_THREAD.get() {
        return Ok(pool);
    }
    let pool = rayon_core::ThreadPoolBuilder::new()
        .num_threads(1)
        .thread_name(|_| "bulwark-mbedtls".to_owned())
        .build()
        .map_err(|_| PsaError::InsufficientMemory)?;
    // Two first providers at once may both build one: the loser's pool is dropped unused.
    Ok(PSA_THREAD.get_or_init(|| pool))
}

/// Proof that the caller holds [`PSA_LOCK`]; the `ffi` functions ask for it.
///
/// Only [`MbedProvider::psa`] makes one. It cannot leave the thread that took the lock.
#[derive(Debug)]
struct PsaGuard {
    _held: MutexGuard<'static, ()>,
}

/// The Mbed Crypto provider.
///
/// Mbed TLS is built by `psa-crypto-sys` without `MBEDTLS_THREADING_C`: its key slot table
/// (keys are loaded from and evicted to storage on use), random generator and other state are
/// unguarded globals, and two threads inside it at once (two signatures, say) corrupt memory.
/// The dispatcher calls providers from several threads, so every call into Mbed TLS holds one
/// process-wide lock (see `MbedProvider::psa`).
#[derive(Debug)]
pub struct MbedProvider {
    name: String,
    /// Runs, one after the other, the calls that found the lock taken.
    psa_thread: &'static rayon_core::ThreadPool,
}

impl MbedProvider {
    /// Starts Mbed TLS's PSA Crypto implementation and makes a provider named `name`.
    ///
    /// # Errors
    /// The PSA status of a failed initialisation (for example no entropy source), or
    /// `InsufficientMemory` when the Mbed TLS thread cannot be started.
    pub fn new(name: String) -> Result<MbedProvider, ProviderError> {
        let provider = MbedProvider {
            name,
            psa_thread: psa_thread()?,
        };
        provider.psa(Client::default(), |_| psa_crypto::init())?;
        Ok(provider)
    }

    /// Drops the key store rows of this provider whose Mbed TLS key file is gone, with a
    /// warning for each (as upstream does at start-up): such a key is no longer listed.
    pub fn drop_vanished_keys(&self, store: &KeyStore) {
        for (identity, record) in store.list_for_provider(&self.name) {
            let Ok(raw_id) = psa_key_id(&record.key_id) else {
                continue;
            };
            let gone = matches!(
                self.psa(Client::default(), |guard| ffi::key_bits(guard, raw_id)),
                Err(PsaError::DoesNotExist | PsaError::InvalidHandle)
            );
            if gone && store.forget_committed(&identity).is_ok() {
                tracing::warn!(
                    application = %identity.application(),
                    key = %identity.key_name(),
                    "key no longer in Mbed TLS's storage: its name was dropped"
                );
            }
        }
    }

    /// Runs `call` with the PSA lock held, and returns its result.
    ///
    /// When nothing waits for Mbed TLS and the lock is free, `call` runs here and now.
    /// Otherwise `call` is queued to the Mbed TLS thread, which takes the lock for each call it
    /// runs, and this thread waits. The queue is what keeps Mbed TLS busy under load: with only
    /// a lock, each hand-over to a waiting dispatcher thread lasted as long as that thread took
    /// to wake up, and Mbed TLS sat idle about a seventh of the time under eight signing
    /// clients (86 % of the in-process rate; 95 % with the queue). Short calls (hashes, random
    /// numbers) rarely find the lock taken, and keep the direct path: sending every call to the
    /// thread halved their rate.
    ///
    /// Calls reach the thread through [`PSA_TURNS`]: the clients (peer uids, `client` being the
    /// caller's, from [`RequestContext::client`]) with calls waiting get one call through each,
    /// in turn, so a client with many calls waiting delays another's by one of its calls, not
    /// by all of them. A call already running is never interrupted: a long one (an RSA-4096
    /// generation holds Mbed TLS for its whole run) delays every other client by what remains
    /// of it.
    ///
    /// Keep `call` to the PSA call and the buffer handling around it: everything it does is
    /// serialised with every other client's calls. `call` may borrow from the caller, who waits.
    /// A panic in `call` reaches the caller and poisons the lock; Mbed TLS never unwinds, so the
    /// state behind it is still whole and the poison is ignored.
    fn psa<T: Send>(&self, client: Client, call: impl FnOnce(&PsaGuard) -> T + Send) -> T {
        // A call that finds others waiting for their turn waits for its own, even if the lock
        // happens to be free between two of theirs.
        let held = if PSA_TURNS.is_idle() {
            match PSA_LOCK.try_lock() {
                Ok(held) => Some(held),
                Err(TryLockError::Poisoned(poison)) => Some(poison.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            }
        } else {
            None
        };
        match held {
            Some(held) => call(&PsaGuard { _held: held }),
            None => PSA_TURNS.run(client, || {
                self.psa_thread.install(|| {
                    call(&PsaGuard {
                        _held: PSA_LOCK.lock().unwrap_or_else(PoisonError::into_inner),
                    })
                })
            }),
        }
    }

    /// Runs `call` on the PSA key behind `record`, with the PSA lock held.
    ///
    /// `call` receives the key and the attributes recorded at creation with the size the key
    /// really has (a key imported with `key_bits` 0 is recorded with 0 bits, but output buffers
    /// must be sized from the real size).
    ///
    /// # Errors
    /// `DoesNotExist` when Mbed TLS has no such key, or `call`'s error.
    fn with_key<T: Send>(
        &self,
        client: Client,
        record: &KeyRecord,
        call: impl FnOnce(&PsaGuard, Id, Attributes) -> Result<T, PsaError> + Send,
    ) -> Result<T, ProviderError> {
        let raw_id = psa_key_id(&record.key_id)?;
        self.psa(client, |guard| {
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

/// The file Mbed TLS writes every new key file through before renaming it to the key's own name
/// (`psa_its_set` in Mbed TLS's file-backed storage), in the working directory.
pub const MBED_TEMPORARY_FILE: &str = "tempfile.psa_its";

/// Refuses a working directory where another user could reach Mbed TLS's key files.
///
/// Mbed TLS keeps its key files in the working directory and writes each one through the fixed
/// name [`MBED_TEMPORARY_FILE`], opened for writing without `O_EXCL`: in a directory that others
/// can write, another user can plant that file (mode 0666, theirs) and receive every key created
/// or imported next. Upstream Parsec keeps the same files in the same place, so the directory
/// is not moved; it must be this user's and closed to writes by group and others, and a
/// leftover temporary file must be this user's and closed too.
///
/// # Errors
/// A sentence naming the directory or file, what is wrong and what to do.
pub fn check_working_directory() -> Result<(), String> {
    let directory = std::env::current_dir()
        .map_err(|e| format!("the working directory cannot be read: {e}"))?;
    let us = nix::unistd::geteuid().as_raw();
    let unsafe_because = |metadata: &std::fs::Metadata| -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            Some(format!("is writable by group or others (mode {mode:04o})"))
        } else if metadata.uid() != us {
            Some(format!(
                "is owned by uid {}, not by uid {us}",
                metadata.uid()
            ))
        } else {
            None
        }
    };
    let metadata =
        std::fs::metadata(&directory).map_err(|e| format!("{}: {e}", directory.display()))?;
    if let Some(reason) = unsafe_because(&metadata) {
        return Err(format!(
            "the Mbed Crypto provider keeps its key files in the working directory {}, which \
             {reason}: another user could capture keys through {MBED_TEMPORARY_FILE}; start \
             bulwarkd in a directory that only its user can write (for example \
             WorkingDirectory=/var/lib/parsec with mode 0700)",
            directory.display()
        ));
    }
    let temporary = directory.join(MBED_TEMPORARY_FILE);
    match std::fs::symlink_metadata(&temporary) {
        Ok(metadata) => {
            let reason = if metadata.file_type().is_file() {
                unsafe_because(&metadata)
            } else {
                Some("is not a regular file".to_owned())
            };
            if let Some(reason) = reason {
                return Err(format!(
                    "{} {reason}: keys written through it would reach whoever made it; remove \
                     it and check the directory",
                    temporary.display()
                ));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(format!("{}: {error}", temporary.display())),
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
            max_key_name_len: None,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn register(self: Arc<Self>, registrar: &mut Registrar<'_>) {
        super::register_mbed_operations(&self, registrar);
    }

    fn discard(&self, key_id: &[u8]) -> Result<(), ProviderError> {
        let raw_id = psa_key_id(key_id)?;
        self.psa(Client::default(), |guard| {
            keys::destroy_if_present(guard, raw_id)
        })
        .map_err(ProviderError::from)
    }
}
