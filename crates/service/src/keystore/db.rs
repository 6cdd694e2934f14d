//! The SQLite side of the store: connection set-up, schema, statements and the row codec.
//!
//! Schema version 1:
//!
//! ```sql
//! metadata (name TEXT PRIMARY KEY, int_value INTEGER)   -- holds ('schema_version', 1)
//! key_info (
//!     authenticator INTEGER,  -- AuthType wire value
//!     application   TEXT,
//!     provider_name TEXT,
//!     key_name      TEXT,
//!     provider_id   INTEGER,  -- ProviderId wire value
//!     key_id        BLOB,     -- opaque to the store
//!     attributes    BLOB,     -- protobuf psa_key_attributes.KeyAttributes
//!     state         INTEGER,  -- 0 creating, 1 committed, 2 destroying
//!     created_at    INTEGER,  -- unix seconds
//!     PRIMARY KEY (authenticator, application, provider_name, key_name)
//! )
//! key_info_by_key_id  ON key_info (provider_name, key_id)
//! key_info_unfinished ON key_info (provider_name) WHERE state <> 1  -- the recovery scan
//! upstream_import (      -- each upstream mapping taken over once (see `KeyStore::import`)
//!     authenticator INTEGER, application TEXT, provider_id INTEGER, key_name TEXT,
//!     upstream_key_id BLOB,   -- the key id as upstream recorded it
//!     imported_at   INTEGER,  -- unix seconds
//!     PRIMARY KEY (authenticator, application, provider_id, key_name, upstream_key_id)
//! )
//! ```
//!
//! Indexes and the `upstream_import` table are created with `IF NOT EXISTS` at every open: a
//! database written before one was added gains it, and the schema version does not change (an
//! older build ignores it).
//!
//! The tables are `STRICT`, so SQLite itself rejects a value of the wrong type. Attributes are
//! stored in the same protobuf form the wire uses, so the store needs no second codec and a row
//! can be read with standard tools.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::psa::{decode_attributes, encode_attributes};
use rusqlite::{
    ffi, params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior,
};

use super::{Import, ImportMarker, ImportOutcome, KeyIdentity, KeyRecord, KeyState, KeyStoreError};

/// The schema this build writes and understands.
const SCHEMA_VERSION: i64 = 1;

/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_METADATA: &str = "CREATE TABLE IF NOT EXISTS metadata (
    name TEXT PRIMARY KEY NOT NULL,
    int_value INTEGER NOT NULL
) STRICT, WITHOUT ROWID";

const CREATE_KEY_INFO: &str = "CREATE TABLE IF NOT EXISTS key_info (
    authenticator INTEGER NOT NULL,
    application TEXT NOT NULL,
    provider_name TEXT NOT NULL,
    key_name TEXT NOT NULL,
    provider_id INTEGER NOT NULL,
    key_id BLOB NOT NULL,
    attributes BLOB NOT NULL,
    state INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (authenticator, application, provider_name, key_name)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS key_info_by_key_id ON key_info (provider_name, key_id);
CREATE INDEX IF NOT EXISTS key_info_unfinished ON key_info (provider_name) WHERE state <> 1;
CREATE TABLE IF NOT EXISTS upstream_import (
    authenticator INTEGER NOT NULL,
    application TEXT NOT NULL,
    provider_id INTEGER NOT NULL,
    key_name TEXT NOT NULL,
    upstream_key_id BLOB NOT NULL,
    imported_at INTEGER NOT NULL,
    PRIMARY KEY (authenticator, application, provider_id, key_name, upstream_key_id)
) STRICT, WITHOUT ROWID";

const SELECT_IMPORTED: &str = "SELECT EXISTS (SELECT 1 FROM upstream_import WHERE \
    authenticator = ?1 AND application = ?2 AND provider_id = ?3 AND key_name = ?4 \
    AND upstream_key_id = ?5)";

const INSERT_IMPORTED: &str = "INSERT INTO upstream_import (authenticator, application, \
    provider_id, key_name, upstream_key_id, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const SELECT_SCHEMA_VERSION: &str = "SELECT int_value FROM metadata WHERE name = 'schema_version'";

const INSERT_SCHEMA_VERSION: &str =
    "INSERT INTO metadata (name, int_value) VALUES ('schema_version', ?1)";

/// The columns [`decode`] expects, in its order.
macro_rules! columns {
    () => {
        "authenticator, application, provider_name, key_name, provider_id, key_id, attributes, \
         state"
    };
}

/// Selects one identity, bound to parameters 1 to 4.
macro_rules! where_identity {
    () => {
        " WHERE authenticator = ?1 AND application = ?2 AND provider_name = ?3 AND key_name = ?4"
    };
}

const SELECT_ANY_STATE: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM key_info",
    where_identity!(),
    ")"
);

const SELECT_COMMITTED: &str = concat!("SELECT ", columns!(), " FROM key_info WHERE state = ?1");

const SELECT_ONE_IN_STATE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM key_info",
    where_identity!(),
    " AND state = ?5"
);

/// Served by the partial index `key_info_unfinished`, which holds the few rows not committed:
/// the start-up recovery scan does not visit every key. The state is written as a literal (1,
/// committed) so that SQLite can match the index's condition.
const SELECT_UNFINISHED: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM key_info INDEXED BY key_info_unfinished WHERE provider_name = ?1 AND state <> 1",
    " ORDER BY authenticator, application, key_name"
);

const INSERT_ROW: &str = concat!(
    "INSERT INTO key_info (",
    columns!(),
    ", created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
);

const UPDATE_STATE: &str = concat!(
    "UPDATE key_info SET state = ?6",
    where_identity!(),
    " AND state = ?5"
);

const DELETE_IN_STATE: &str = concat!("DELETE FROM key_info", where_identity!(), " AND state = ?5");

const DELETE_ANY: &str = concat!("DELETE FROM key_info", where_identity!());

/// Served by the primary key, whose first two columns are the owner: only the owner's rows are
/// visited.
const COUNT_OWNED: &str =
    "SELECT COUNT(*) FROM key_info WHERE authenticator = ?1 AND application = ?2";

const IDENTITY_EXISTS: &str = concat!(
    "SELECT EXISTS (SELECT 1 FROM key_info",
    where_identity!(),
    ")"
);

const KEY_ID_IN_USE: &str =
    "SELECT EXISTS (SELECT 1 FROM key_info WHERE provider_name = ?1 AND key_id = ?2)";

/// Opens the (already created and checked) database file and makes every commit durable.
pub(super) fn open_file(path: &Path) -> Result<Connection, KeyStoreError> {
    // No SQLITE_OPEN_CREATE (`fs::prepare` created the file with the right mode) and no URI
    // interpretation of the path. The connection is used behind a mutex only.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let journal_mode: String =
        connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        // Still durable with synchronous=FULL, only slower: worth a warning, not a refusal.
        tracing::warn!(
            path = %path.display(),
            journal_mode,
            "the key store could not switch to WAL mode"
        );
    }
    Ok(connection)
}

/// Copies the database at `path` to the new file `copy`, changing nothing at `path`.
///
/// Without a `-wal` file (a store closed cleanly) the file holds every commit and is copied as
/// it is: a SQLite connection would create the side files and leave them behind. With one (a
/// service runs, or stopped without closing), a read-only connection copies a consistent state.
pub(super) fn copy_read_only(path: &Path, wal: &Path, copy: &Path) -> Result<(), KeyStoreError> {
    if !wal.exists() {
        std::fs::copy(path, copy).map_err(super::fs::io_error)?;
        return Ok(());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let copy = copy.to_str().ok_or_else(|| {
        KeyStoreError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{}: not a UTF-8 path", copy.display()),
        ))
    })?;
    connection.execute("VACUUM INTO ?1", [copy])?;
    Ok(())
}

/// Sets the per-connection options, creates the schema if absent and checks its version.
pub(super) fn init_schema(connection: &mut Connection) -> Result<(), KeyStoreError> {
    // FULL: with WAL, NORMAL may lose the last commits on power loss; FULL syncs the WAL at each
    // commit. secure_delete: deleted rows may have held secret key ids; overwrite them.
    connection.execute_batch("PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;")?;
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    transaction.execute_batch(CREATE_METADATA)?;
    let version: Option<i64> = transaction
        .query_row(SELECT_SCHEMA_VERSION, [], |row| row.get(0))
        .optional()?;
    match version {
        None => {
            transaction.execute(INSERT_SCHEMA_VERSION, [SCHEMA_VERSION])?;
        }
        Some(SCHEMA_VERSION) => {}
        // Checked before touching anything else, so a newer database is left as it was.
        Some(other) => return Err(KeyStoreError::UnsupportedSchema(other)),
    }
    transaction.execute_batch(CREATE_KEY_INFO)?;
    transaction.commit()?;
    Ok(())
}

/// Every committed row, for the read cache.
pub(super) fn load_committed(
    connection: &Connection,
) -> Result<HashMap<KeyIdentity, KeyRecord>, KeyStoreError> {
    let mut statement = connection.prepare(SELECT_COMMITTED)?;
    let mut rows = statement.query([KeyState::Committed.code()])?;
    let mut cache = HashMap::new();
    while let Some(row) = rows.next()? {
        let (identity, record, _) = decode(row)?;
        cache.insert(identity, record);
    }
    Ok(cache)
}

/// Inserts a row in state `Creating`.
pub(super) fn insert_creating(
    connection: &Connection,
    identity: &KeyIdentity,
    record: &KeyRecord,
) -> Result<(), KeyStoreError> {
    insert(connection, identity, record, KeyState::Creating)
}

/// Whether the upstream mapping `marker` was taken over already.
pub(super) fn imported(
    connection: &Connection,
    marker: &ImportMarker,
) -> Result<bool, KeyStoreError> {
    let imported = connection.prepare_cached(SELECT_IMPORTED)?.query_row(
        params![
            i64::from(marker.authenticator.value()),
            marker.application,
            i64::from(marker.provider_id.value()),
            marker.key_name,
            marker.upstream_key_id.as_slice(),
        ],
        |row| row.get(0),
    )?;
    Ok(imported)
}

/// Takes over the upstream mappings of `imports` not taken over yet, in one transaction: each
/// gets a committed row and a marker. A mapping whose identity already has a row is left out.
pub(super) fn import(
    connection: &mut Connection,
    imports: &[Import],
) -> Result<Vec<ImportOutcome>, KeyStoreError> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(imports.len());
    for import in imports {
        if imported(&transaction, &import.marker)? {
            outcomes.push(ImportOutcome::AlreadyImported);
            continue;
        }
        let identity = &import.identity;
        let taken: bool = transaction.prepare_cached(SELECT_ANY_STATE)?.query_row(
            params![
                i64::from(identity.authenticator.value()),
                identity.application,
                identity.provider_name,
                identity.key_name,
            ],
            |row| row.get(0),
        )?;
        if taken {
            outcomes.push(ImportOutcome::NameTaken);
            continue;
        }
        insert(&transaction, identity, &import.record, KeyState::Committed)?;
        let marker = &import.marker;
        transaction
            .prepare_cached(INSERT_IMPORTED)?
            .execute(params![
                i64::from(marker.authenticator.value()),
                marker.application,
                i64::from(marker.provider_id.value()),
                marker.key_name,
                marker.upstream_key_id.as_slice(),
                unix_now(),
            ])?;
        outcomes.push(ImportOutcome::Imported);
    }
    transaction.commit()?;
    Ok(outcomes)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

fn insert(
    connection: &Connection,
    identity: &KeyIdentity,
    record: &KeyRecord,
    state: KeyState,
) -> Result<(), KeyStoreError> {
    let attributes = encode_attributes(record.attributes).map_err(KeyStoreError::Attributes)?;
    let created_at = unix_now();
    let result = connection.prepare_cached(INSERT_ROW)?.execute(params![
        i64::from(identity.authenticator.value()),
        identity.application,
        identity.provider_name,
        identity.key_name,
        i64::from(record.provider_id.value()),
        record.key_id.as_slice(),
        attributes,
        state.code(),
        created_at,
    ]);
    match result {
        Ok(_) => Ok(()),
        // The primary key is the identity: any row, in any state, blocks the name.
        Err(error)
            if error.sqlite_error().map(|e| e.extended_code)
                == Some(ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
        {
            Err(KeyStoreError::AlreadyExists)
        }
        Err(error) => Err(error.into()),
    }
}

/// `QuotaExceeded` if the owner of `identity` has `quota` rows or more, in any state; but
/// `AlreadyExists` if one of them is `identity` itself, the more precise answer. Run inside the
/// caller's transaction, before the insertion.
pub(super) fn check_quota(
    connection: &Connection,
    identity: &KeyIdentity,
    quota: usize,
) -> Result<(), KeyStoreError> {
    let owner = i64::from(identity.authenticator.value());
    let owned: i64 = connection
        .prepare_cached(COUNT_OWNED)?
        .query_row(params![owner, identity.application], |row| row.get(0))?;
    if usize::try_from(owned).unwrap_or(usize::MAX) < quota {
        return Ok(());
    }
    let exists: bool = connection.prepare_cached(IDENTITY_EXISTS)?.query_row(
        params![
            owner,
            identity.application,
            identity.provider_name,
            identity.key_name
        ],
        |row| row.get(0),
    )?;
    Err(if exists {
        KeyStoreError::AlreadyExists
    } else {
        KeyStoreError::QuotaExceeded
    })
}

/// Moves the row of `identity` from state `from` to state `to` and returns its record;
/// `NotFound` if it is not in state `from`. Run inside the caller's transaction.
pub(super) fn transition(
    transaction: &Connection,
    identity: &KeyIdentity,
    from: KeyState,
    to: KeyState,
) -> Result<KeyRecord, KeyStoreError> {
    let record = {
        let mut statement = transaction.prepare_cached(SELECT_ONE_IN_STATE)?;
        let mut rows = statement.query(params![
            i64::from(identity.authenticator.value()),
            identity.application,
            identity.provider_name,
            identity.key_name,
            from.code(),
        ])?;
        match rows.next()? {
            Some(row) => decode(row)?.1,
            None => return Err(KeyStoreError::NotFound),
        }
    };
    transaction.prepare_cached(UPDATE_STATE)?.execute(params![
        i64::from(identity.authenticator.value()),
        identity.application,
        identity.provider_name,
        identity.key_name,
        from.code(),
        to.code(),
    ])?;
    Ok(record)
}

/// Deletes the row of `identity` if it is in `state` (any state for `None`); `NotFound` if no
/// row was deleted.
pub(super) fn delete(
    connection: &Connection,
    identity: &KeyIdentity,
    state: Option<KeyState>,
) -> Result<(), KeyStoreError> {
    let authenticator = i64::from(identity.authenticator.value());
    let deleted = match state {
        Some(state) => connection
            .prepare_cached(DELETE_IN_STATE)?
            .execute(params![
                authenticator,
                identity.application,
                identity.provider_name,
                identity.key_name,
                state.code(),
            ])?,
        None => connection.prepare_cached(DELETE_ANY)?.execute(params![
            authenticator,
            identity.application,
            identity.provider_name,
            identity.key_name,
        ])?,
    };
    if deleted == 0 {
        return Err(KeyStoreError::NotFound);
    }
    Ok(())
}

/// Rows of one provider that are not committed.
pub(super) fn unfinished(
    connection: &Connection,
    provider_name: &str,
) -> Result<Vec<(KeyIdentity, KeyRecord, KeyState)>, KeyStoreError> {
    let mut statement = connection.prepare_cached(SELECT_UNFINISHED)?;
    debug_assert_eq!(KeyState::Committed.code(), 1, "SELECT_UNFINISHED's literal");
    let mut rows = statement.query(params![provider_name])?;
    let mut unfinished = Vec::new();
    while let Some(row) = rows.next()? {
        unfinished.push(decode(row)?);
    }
    Ok(unfinished)
}

/// Whether a row of `provider_name` in any state has this `key_id`.
pub(super) fn key_id_in_use(
    connection: &Connection,
    provider_name: &str,
    key_id: &[u8],
) -> Result<bool, KeyStoreError> {
    let in_use = connection
        .prepare_cached(KEY_ID_IN_USE)?
        .query_row(params![provider_name, key_id], |row| row.get(0))?;
    Ok(in_use)
}

/// Maps SQLite's "disk full" and "read-only" result codes to their own variants.
pub(super) fn error(error: rusqlite::Error) -> KeyStoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => KeyStoreError::Full,
        Some(ErrorCode::ReadOnly) => KeyStoreError::ReadOnly,
        _ => KeyStoreError::Storage(error),
    }
}

impl KeyState {
    /// The value of the `state` column.
    fn code(self) -> i64 {
        match self {
            KeyState::Creating => 0,
            KeyState::Committed => 1,
            KeyState::Destroying => 2,
        }
    }

    fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(KeyState::Creating),
            1 => Some(KeyState::Committed),
            2 => Some(KeyState::Destroying),
            _ => None,
        }
    }
}

/// Decodes a row selected with `columns!()`.
fn decode(row: &Row<'_>) -> Result<(KeyIdentity, KeyRecord, KeyState), KeyStoreError> {
    let authenticator = u8::try_from(integer(row, 0, "authenticator")?)
        .ok()
        .and_then(|value| AuthType::try_from(value).ok())
        .ok_or(KeyStoreError::Corrupt("authenticator"))?;
    let provider_id = u8::try_from(integer(row, 4, "provider_id")?)
        .ok()
        .and_then(|value| ProviderId::try_from(value).ok())
        .ok_or(KeyStoreError::Corrupt("provider_id"))?;
    let attributes = decode_attributes(blob(row, 6, "attributes")?)
        .map_err(|_| KeyStoreError::Corrupt("attributes"))?;
    let state =
        KeyState::from_code(integer(row, 7, "state")?).ok_or(KeyStoreError::Corrupt("state"))?;
    let identity = KeyIdentity {
        authenticator,
        application: text(row, 1, "application")?,
        provider_name: text(row, 2, "provider_name")?,
        key_name: text(row, 3, "key_name")?,
    };
    let record = KeyRecord {
        provider_id,
        key_id: blob(row, 5, "key_id")?.to_vec().into(),
        attributes,
    };
    Ok((identity, record, state))
}

fn integer(row: &Row<'_>, index: usize, column: &'static str) -> Result<i64, KeyStoreError> {
    row.get_ref(index)?
        .as_i64()
        .map_err(|_| KeyStoreError::Corrupt(column))
}

fn text(row: &Row<'_>, index: usize, column: &'static str) -> Result<String, KeyStoreError> {
    row.get_ref(index)?
        .as_str()
        .map(str::to_owned)
        .map_err(|_| KeyStoreError::Corrupt(column))
}

fn blob<'row>(
    row: &'row Row<'_>,
    index: usize,
    column: &'static str,
) -> Result<&'row [u8], KeyStoreError> {
    row.get_ref(index)?
        .as_blob()
        .map_err(|_| KeyStoreError::Corrupt(column))
}
