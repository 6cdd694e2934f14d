//! The key-info store: a persistent, crash-safe map from [`KeyIdentity`] to [`KeyRecord`],
//! shared by every provider.
//!
//! # Identity
//!
//! A key is identified by all four of (authenticator, application, provider name, key name).
//! Unlike upstream's SQLite manager, whose uniqueness leaves out the provider (docs/protocol.md#key-store,
//! docs/protocol.md#key-identity), the same key name may be used by another application, under another
//! authenticator or in another provider without collision.
//!
//! # Crash protocol
//!
//! Creating or destroying a key touches two stores that cannot share a transaction: this
//! database and the provider's back end (Mbed TLS key slots, a PKCS #11 token, a TPM). Each row
//! therefore carries a [`KeyState`], and both operations are bracketed by two store writes:
//!
//! | Operation | Step | Call | Row afterwards | Visible to reads |
//! |---|---|---|---|---|
//! | create | 1 | [`KeyStore::reserve`] (`AlreadyExists` if any row has the identity) | `Creating` | no |
//! | create | 2 | the back end creates the key | `Creating` | no |
//! | create | 3 | [`KeyStore::commit`], or [`KeyStore::abort`] if step 2 failed | `Committed`, or none | yes, or no |
//! | destroy | 1 | [`KeyStore::begin_destroy`] | `Destroying` | no |
//! | destroy | 2 | the back end destroys the key | `Destroying` | no |
//! | destroy | 3 | [`KeyStore::finish_destroy`] | none | no |
//!
//! Providers acknowledge a creation to the client only after `commit` returned, so an
//! acknowledged key is always `Committed`. A process killed between the steps leaves a
//! `Creating` or `Destroying` row behind. The reserved name stays taken (the back end may hold a
//! key under that row's `key_id`) and the key is invisible. At the next start the service asks
//! [`KeyStore::unfinished`] for such rows, removes whatever back-end key they name, and then
//! calls [`KeyStore::forget`]. So a half-created key is never visible and never leaks, and a
//! half-destroyed key never comes back.
//!
//! # Durability
//!
//! Writes are committed in WAL mode with `synchronous=FULL`: once a call has returned `Ok`, the
//! change survives `kill -9` and power loss (on a disk that honours `fsync`). Concurrent writes
//! are folded into one transaction, so that they share one `fsync` (group commit, see
//! `group`); each is still acknowledged only after that transaction is committed.
//! The database file is created with mode 0600 in a directory created with mode 0700, and the
//! store refuses to open a file or directory that group or others can write, or that another
//! user owns, because whoever can write the file can redirect any client's key names to other
//! back-end keys.
//!
//! # Concurrency and the read cache
//!
//! Reads ([`KeyStore::get`], [`KeyStore::list`], ...) are served from an in-memory copy of the
//! committed rows, loaded at open, so that the hot path of every request takes only a read lock.
//! Writes go through the group committer: the batch leader locks the connection, runs and
//! commits the batch's transaction, and only then updates the cache, still under the connection
//! lock so that cache updates happen in commit order. The cache lock is
//! never held across a SQLite call. The store assumes that this process is the database's only
//! writer; another writer would not be seen by the cache.

mod db;
mod fs;
mod group;
mod scoped;
#[cfg(test)]
mod tests;
pub(crate) mod upstream;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::BodyError;
use psa_crypto::types::key::Attributes;
use rusqlite::Connection;

use self::group::{Committer, Done, Write};
pub use self::scoped::ScopedKeys;

/// Who owns a key and what it is called: the primary key of the store.
///
/// All four parts count for uniqueness. Only the key store makes one (its fields are private to
/// `keystore`): [`ScopedKeys`] from a request's authenticated identity, the store's own reads
/// from its rows, and upstream mappings being taken over. Everything else can only read those
/// it is given, so no code outside the key store can name another owner's key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyIdentity {
    /// The authenticator that authenticated the owning application.
    authenticator: AuthType,
    /// The owning application's name, as produced by that authenticator.
    application: String,
    /// The configured name of the provider that holds the key.
    provider_name: String,
    /// The client's name for the key (any UTF-8).
    key_name: String,
}

impl KeyIdentity {
    /// The authenticator that authenticated the owning application.
    pub fn authenticator(&self) -> AuthType {
        self.authenticator
    }

    /// The owning application's name, as produced by that authenticator.
    pub fn application(&self) -> &str {
        &self.application
    }

    /// The configured name of the provider that holds the key.
    pub fn provider_name(&self) -> &str {
        &self.provider_name
    }

    /// The client's name for the key.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// The client's name for the key, taken out of the identity.
    pub fn into_key_name(self) -> String {
        self.key_name
    }

    /// An identity for tests outside the key store, which build rows by hand.
    #[cfg(test)]
    pub(crate) fn for_tests(
        authenticator: AuthType,
        application: &str,
        provider_name: &str,
        key_name: &str,
    ) -> Self {
        KeyIdentity {
            authenticator,
            application: application.to_owned(),
            provider_name: provider_name.to_owned(),
            key_name: key_name.to_owned(),
        }
    }
}

/// What the store knows about a key.
///
/// `Debug` prints only the length of `key_id`: for some back ends it holds secret material (the
/// TPM provider keeps the key's auth value there).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// The provider that created the key.
    pub provider_id: ProviderId,
    /// The provider-specific reference to the back-end key, opaque to the store.
    pub key_id: zeroize::Zeroizing<Vec<u8>>,
    /// The attributes the key was created with.
    ///
    /// The lifetime is not stored: a record read back always has [`Lifetime::Persistent`].
    ///
    /// [`Lifetime::Persistent`]: psa_crypto::types::key::Lifetime::Persistent
    pub attributes: Attributes,
}

/// An upstream key mapping to take over ([`KeyStore::import`]).
#[derive(Debug, Clone)]
pub struct Import {
    /// The key's identity in this store.
    pub identity: KeyIdentity,
    /// Its record, with the key id in this provider's own form.
    pub record: KeyRecord,
    /// What identifies the upstream mapping, so that it is taken over once only.
    pub marker: ImportMarker,
}

/// One upstream mapping, as recorded once it is taken over: the owner, the provider kind, the
/// name and the key id as upstream wrote it.
///
/// The key id is part of it: a key upstream creates again under the same name after an
/// import is a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMarker {
    /// The authenticator of the owning application.
    pub authenticator: AuthType,
    /// The owning application.
    pub application: String,
    /// The provider kind holding the key.
    pub provider_id: ProviderId,
    /// The key's name.
    pub key_name: String,
    /// The key id as upstream recorded it (never secret for the providers taken over).
    pub upstream_key_id: Vec<u8>,
}

/// What [`KeyStore::import`] did with one mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Taken over now: the key is committed in this store.
    Imported,
    /// Taken over at an earlier start (the key may have been destroyed since).
    AlreadyImported,
    /// Left out: this store already has a key of that identity.
    NameTaken,
}

/// Where a row stands in the crash protocol (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Created in the back end and acknowledged: the only state reads can see.
    Committed,
    /// Reserved; the back-end key may or may not exist yet.
    Creating,
    /// Being destroyed; the back-end key may or may not still exist.
    Destroying,
}

/// Why a key-store call failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// A row (in any state) already has this identity.
    #[error("a key with this identity already exists")]
    AlreadyExists,
    /// The record's attributes cannot be put in their stored (protobuf) form.
    #[error("the key attributes cannot be stored")]
    Attributes(#[source] BodyError),
    /// A stored row cannot be decoded; the argument names the offending column.
    #[error("the key store holds a row whose `{0}` cannot be decoded")]
    Corrupt(&'static str),
    /// The disk (or the database's size limit) is full (`SQLITE_FULL`, `ENOSPC`).
    #[error("the key store's disk is full")]
    Full,
    /// The store's file or directory could not be created, opened or inspected.
    #[error("key store file error")]
    Io(#[source] std::io::Error),
    /// No row in the state the call needs has this identity.
    #[error("no such key")]
    NotFound,
    /// The key's owner already has as many keys as its quota allows
    /// (`core_settings.max_keys_per_client`).
    #[error("the application has reached its quota of keys")]
    QuotaExceeded,
    /// The store file or directory is writable by group or others, or owned by another user.
    #[error("unsafe key store permissions: {0}")]
    Permissions(String),
    /// The database or its file system is read-only (`SQLITE_READONLY`, `EROFS`).
    #[error("the key store is read-only")]
    ReadOnly,
    /// Any other SQLite failure.
    #[error("key store database error")]
    Storage(#[source] rusqlite::Error),
    /// The database was written with a schema version this build does not know.
    #[error("the key store has schema version {0}, which this version of bulwarkd does not know")]
    UnsupportedSchema(i64),
}

/// The key-info store: SQLite for durability, an in-memory map of committed rows for reads.
pub struct KeyStore {
    /// The only connection. Every write holds this lock from its first statement until its
    /// cache update, which orders cache updates as the commits were ordered.
    connection: Mutex<Connection>,
    /// The committed rows. Never locked across a SQLite call; written only while `connection`
    /// is held (lock order: connection, then cache).
    cache: RwLock<HashMap<KeyIdentity, KeyRecord>>,
    /// Folds concurrent writes into one transaction (see [`group`]).
    committer: Committer,
    /// The database file, or `None` in memory; for `Debug` only.
    path: Option<PathBuf>,
}

impl KeyStore {
    /// Opens the store at `path`, creating it (and missing parent directories) if needed.
    ///
    /// Missing directories are created with mode 0700 and a missing file with mode 0600. The
    /// journal is put in WAL mode with `synchronous=FULL`, the schema is created if absent, and
    /// the committed rows are loaded into the read cache.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::Permissions`] if the file or its parent directory is writable by group or
    /// others or owned by another user; [`KeyStoreError::UnsupportedSchema`] for a database of an
    /// unknown schema version; [`KeyStoreError::Corrupt`] if a committed row cannot be decoded;
    /// otherwise a file or SQLite error.
    pub fn open(path: &Path) -> Result<Self, KeyStoreError> {
        fs::prepare(path)?;
        let connection = db::open_file(path)?;
        Self::with_connection(connection, Some(path.to_owned()))
    }

    /// Opens a copy of the store at `path`, made in the directory `scratch`, for checking a
    /// configuration without changing anything (`bulwarkd --check`).
    ///
    /// `path` and its directory get the checks of [`open`](Self::open), without creating
    /// either. An existing store is copied (by SQLite from a read-only connection while it has
    /// a write-ahead log, consistent even while a running service writes it), and the copy is
    /// opened as [`open`](Self::open) opens a store, schema checks and all. A store that does
    /// not exist yet is valid when it could be created (its nearest existing ancestor is a
    /// directory); a fresh store in `scratch` stands in for it.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_copy(path: &Path, scratch: &Path) -> Result<Self, KeyStoreError> {
        let copy = scratch.join("key-store-copy.sqlite3");
        if fs::inspect(path)? {
            db::copy_read_only(path, &fs::side_file(path, "-wal"), &copy)?;
        }
        Self::open(&copy)
    }

    /// Opens an empty store that lives in memory only (for tests).
    ///
    /// # Errors
    ///
    /// A SQLite error if the database cannot be set up.
    pub fn open_in_memory() -> Result<Self, KeyStoreError> {
        let connection = Connection::open_in_memory()?;
        Self::with_connection(connection, None)
    }

    fn with_connection(
        mut connection: Connection,
        path: Option<PathBuf>,
    ) -> Result<Self, KeyStoreError> {
        db::init_schema(&mut connection)?;
        let cache = db::load_committed(&connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
            cache: RwLock::new(cache),
            committer: Committer::default(),
            path,
        })
    }

    /// Step 1 of creating a key: records `identity` in state [`KeyState::Creating`].
    ///
    /// The key stays invisible to reads until [`commit`](Self::commit).
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::AlreadyExists`] if a row in any state has this identity;
    /// [`KeyStoreError::Attributes`] if the attributes cannot be stored; a storage error.
    pub fn reserve(&self, identity: &KeyIdentity, record: &KeyRecord) -> Result<(), KeyStoreError> {
        self.insert(identity, record, None)
    }

    /// [`reserve`](Self::reserve), unless the owner of `identity` (its authenticator and
    /// application) already has `quota` rows, in any state and in any provider.
    ///
    /// The count and the insertion run in one transaction of the group committer, which runs
    /// writes one after another: concurrent reservations of one owner cannot overshoot.
    ///
    /// # Errors
    ///
    /// As [`reserve`](Self::reserve) (`AlreadyExists` first), and
    /// [`KeyStoreError::QuotaExceeded`] when the owner has no room left.
    pub fn reserve_within(
        &self,
        identity: &KeyIdentity,
        record: &KeyRecord,
        quota: usize,
    ) -> Result<(), KeyStoreError> {
        self.insert(identity, record, Some(quota))
    }

    fn insert(
        &self,
        identity: &KeyIdentity,
        record: &KeyRecord,
        quota: Option<usize>,
    ) -> Result<(), KeyStoreError> {
        self.write(Write::Insert {
            identity: identity.clone(),
            record: record.clone(),
            quota,
        })
        .map(drop)
    }

    /// Step 3 of creating a key: the back-end key exists, make the key visible.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::NotFound`] if `identity` has no row in state [`KeyState::Creating`]; a
    /// storage error.
    pub fn commit(&self, identity: &KeyIdentity) -> Result<(), KeyStoreError> {
        self.write(Write::Transition {
            identity: identity.clone(),
            from: KeyState::Creating,
            to: KeyState::Committed,
        })
        .map(drop)
    }

    /// Step 3 of a failed key creation: the back end did not create the key, free the name.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::NotFound`] if `identity` has no row in state [`KeyState::Creating`]; a
    /// storage error.
    pub fn abort(&self, identity: &KeyIdentity) -> Result<(), KeyStoreError> {
        self.write(Write::Delete {
            identity: identity.clone(),
            state: Some(KeyState::Creating),
        })
        .map(drop)
    }

    /// Step 1 of destroying a key: hides it and returns its record, so that the caller can
    /// destroy the back-end key.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::NotFound`] if `identity` has no committed row; a storage error.
    pub fn begin_destroy(&self, identity: &KeyIdentity) -> Result<KeyRecord, KeyStoreError> {
        match self.write(Write::Transition {
            identity: identity.clone(),
            from: KeyState::Committed,
            to: KeyState::Destroying,
        })? {
            Done::Record(record) => Ok(record),
            Done::Unit => Err(KeyStoreError::NotFound),
        }
    }

    /// Step 3 of destroying a key: the back-end key is gone, delete the row.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::NotFound`] if `identity` has no row in state [`KeyState::Destroying`]; a
    /// storage error.
    pub fn finish_destroy(&self, identity: &KeyIdentity) -> Result<(), KeyStoreError> {
        self.write(Write::Delete {
            identity: identity.clone(),
            state: Some(KeyState::Destroying),
        })
        .map(drop)
    }

    /// Rows of `provider_name` left in [`KeyState::Creating`] or [`KeyState::Destroying`] by a
    /// crash, ordered by authenticator, application and key name.
    ///
    /// At start-up, the service removes the back-end key each one names and then calls
    /// [`forget`](Self::forget).
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::Corrupt`] if such a row cannot be decoded; a storage error.
    pub fn unfinished(
        &self,
        provider_name: &str,
    ) -> Result<Vec<(KeyIdentity, KeyRecord, KeyState)>, KeyStoreError> {
        let connection = self.connection();
        db::unfinished(&connection, provider_name)
    }

    /// Deletes the row of `identity`, whatever its state.
    ///
    /// Used to clean up after [`unfinished`](Self::unfinished), and to drop the mapping of a
    /// committed key whose back-end key has disappeared.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::NotFound`] if there is no such row; a storage error.
    pub fn forget(&self, identity: &KeyIdentity) -> Result<(), KeyStoreError> {
        self.write(Write::Delete {
            identity: identity.clone(),
            state: None,
        })
        .map(drop)
    }

    /// Deletes the row of `identity` if it is committed; `NotFound` otherwise.
    ///
    /// Used to drop the name of a key whose back-end key has disappeared, without touching a
    /// row that a request in flight is creating or destroying.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::NotFound`] if there is no committed row of that identity; a storage
    /// error.
    pub fn forget_committed(&self, identity: &KeyIdentity) -> Result<(), KeyStoreError> {
        self.write(Write::Delete {
            identity: identity.clone(),
            state: Some(KeyState::Committed),
        })
        .map(drop)
    }

    /// Takes over upstream key mappings, atomically and once each.
    ///
    /// In one transaction, every mapping of `imports` whose marker is not recorded yet and whose
    /// identity has no row gets a committed row and its marker; the outcome of each is returned
    /// in order. A key imported once and destroyed later is not imported again, because its
    /// marker stays.
    ///
    /// # Errors
    ///
    /// [`KeyStoreError::Attributes`] if some attributes cannot be stored; a storage error. On
    /// error nothing was imported.
    pub fn import(&self, imports: &[Import]) -> Result<Vec<ImportOutcome>, KeyStoreError> {
        let mut connection = self.connection();
        let outcomes = db::import(&mut connection, imports)?;
        // Still under the connection lock: cache updates stay in commit order.
        let mut cache = self
            .cache
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (import, outcome) in imports.iter().zip(&outcomes) {
            if *outcome == ImportOutcome::Imported {
                cache.insert(import.identity.clone(), import.record.clone());
            }
        }
        Ok(outcomes)
    }

    /// Whether the upstream mapping `marker` was taken over already.
    ///
    /// # Errors
    ///
    /// A storage error.
    pub fn imported(&self, marker: &ImportMarker) -> Result<bool, KeyStoreError> {
        db::imported(&self.connection(), marker)
    }

    /// The record of a committed key, or `None` (also for a key being created or destroyed).
    ///
    /// # Errors
    ///
    /// None at present: reads are served from memory. The `Result` leaves room for a store that
    /// reads from disk.
    pub fn get(&self, identity: &KeyIdentity) -> Result<Option<KeyRecord>, KeyStoreError> {
        Ok(self.cache_read().get(identity).cloned())
    }

    /// The committed keys of one application over all providers, ordered by provider name, then
    /// key name.
    pub fn list(
        &self,
        authenticator: AuthType,
        application: &str,
    ) -> Vec<(KeyIdentity, KeyRecord)> {
        let mut keys = self.collect(|identity| {
            identity.authenticator == authenticator && identity.application == application
        });
        keys.sort_by(|(a, _), (b, _)| {
            (&a.provider_name, &a.key_name).cmp(&(&b.provider_name, &b.key_name))
        });
        keys
    }

    /// The committed keys of one application name under every authenticator, ordered by
    /// authenticator, provider name, then key name: what ListClients names it for.
    pub fn list_under_any_authenticator(&self, application: &str) -> Vec<(KeyIdentity, KeyRecord)> {
        let mut keys = self.collect(|identity| identity.application == application);
        keys.sort_by(|(a, _), (b, _)| {
            (a.authenticator, &a.provider_name, &a.key_name).cmp(&(
                b.authenticator,
                &b.provider_name,
                &b.key_name,
            ))
        });
        keys
    }

    /// The committed keys held by one provider, ordered by authenticator, application, then key
    /// name.
    pub fn list_for_provider(&self, provider_name: &str) -> Vec<(KeyIdentity, KeyRecord)> {
        let mut keys = self.collect(|identity| identity.provider_name == provider_name);
        keys.sort_by(|(a, _), (b, _)| {
            (a.authenticator, &a.application, &a.key_name).cmp(&(
                b.authenticator,
                &b.application,
                &b.key_name,
            ))
        });
        keys
    }

    /// The names of the applications that own at least one committed key, under any
    /// authenticator, sorted ascending and without duplicates.
    pub fn applications(&self) -> Vec<String> {
        let cache = self.cache_read();
        let names: BTreeSet<&String> = cache.keys().map(|identity| &identity.application).collect();
        names.into_iter().cloned().collect()
    }

    /// Each (authenticator, application name) owning at least one committed key, sorted by
    /// name then authenticator, without duplicates.
    pub fn owners(&self) -> Vec<(String, AuthType)> {
        let cache = self.cache_read();
        let owners: BTreeSet<(&String, AuthType)> = cache
            .keys()
            .map(|identity| (&identity.application, identity.authenticator))
            .collect();
        owners
            .into_iter()
            .map(|(name, auth_type)| (name.clone(), auth_type))
            .collect()
    }

    /// How many committed keys each provider holds, by provider name (providers holding none
    /// are absent).
    pub fn counts_by_provider(&self) -> HashMap<String, u64> {
        let mut counts = HashMap::new();
        for identity in self.cache_read().keys() {
            *counts.entry(identity.provider_name.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Whether any row of `provider_name`, in any state, references the back-end key `key_id`.
    ///
    /// Providers use it to allocate a fresh back-end id.
    ///
    /// # Errors
    ///
    /// A storage error.
    pub fn key_id_in_use(&self, provider_name: &str, key_id: &[u8]) -> Result<bool, KeyStoreError> {
        let connection = self.connection();
        db::key_id_in_use(&connection, provider_name, key_id)
    }

    fn collect(&self, keep: impl Fn(&KeyIdentity) -> bool) -> Vec<(KeyIdentity, KeyRecord)> {
        self.cache_read()
            .iter()
            .filter(|(identity, _)| keep(identity))
            .map(|(identity, record)| (identity.clone(), record.clone()))
            .collect()
    }

    /// Runs one write through the group committer: `Ok` once it is committed and cached.
    fn write(&self, write: Write) -> Result<Done, KeyStoreError> {
        self.committer.submit(write, &self.connection, &self.cache)
    }

    /// The connection. A panic while it was held left no transaction open (an unfinished
    /// `Transaction` rolls back when dropped) and no cache update half-done (the cache is
    /// updated by single map operations), so a poisoned lock is safe to reuse.
    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// See [`connection`](Self::connection) on poisoning: map operations are atomic.
    fn cache_read(&self) -> RwLockReadGuard<'_, HashMap<KeyIdentity, KeyRecord>> {
        self.cache
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Maps SQLite's "disk full" and "read-only" result codes to [`KeyStoreError::Full`] and
/// [`KeyStoreError::ReadOnly`], anything else to [`KeyStoreError::Storage`].
impl From<rusqlite::Error> for KeyStoreError {
    fn from(error: rusqlite::Error) -> Self {
        db::error(error)
    }
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("path", &self.path)
            .field("committed_keys", &self.cache_read().len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("provider_id", &self.provider_id)
            .field("key_id", &format_args!("<{} bytes>", self.key_id.len()))
            .field("attributes", &self.attributes)
            .finish()
    }
}
