//! `[[key_manager]]`: where the key store lives.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default `sqlite_db_path` of a `SQLite` key manager.
pub const DEFAULT_SQLITE_DB_PATH: &str =
    "/var/lib/parsec/kim-mappings/sqlite/sqlite-key-info-manager.sqlite3";
/// Default `store_path` of an `OnDisk` key manager.
pub const DEFAULT_ON_DISK_STORE_PATH: &str = "/var/lib/parsec/mappings";

/// One `[[key_manager]]`, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyManagerConfig {
    /// Referenced by providers' `key_info_manager`; unique.
    pub name: String,
    /// The kind of store.
    pub manager_type: KeyManagerType,
    /// The database file (SQLite only).
    pub sqlite_db_path: PathBuf,
    /// The mapping directory (OnDisk only).
    pub store_path: PathBuf,
}

impl KeyManagerConfig {
    /// The store of this manager: `sqlite_db_path` for SQLite, `store_path` for OnDisk.
    pub fn store_location(&self) -> &Path {
        match self.manager_type {
            KeyManagerType::SQLite => &self.sqlite_db_path,
            KeyManagerType::OnDisk => &self.store_path,
        }
    }

    /// The directory holding the store (the parent of [`Self::store_location`]; empty for a
    /// bare relative name, meaning the working directory).
    pub fn store_dir(&self) -> PathBuf {
        self.store_location()
            .parent()
            .map_or_else(PathBuf::new, Path::to_path_buf)
    }
}

/// `key_manager.manager_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum KeyManagerType {
    /// SQLite database (recommended).
    SQLite,
    /// One file per key under a directory (to be deprecated upstream).
    OnDisk,
}

impl KeyManagerType {
    /// The name used in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyManagerType::SQLite => "SQLite",
            KeyManagerType::OnDisk => "OnDisk",
        }
    }
}

impl fmt::Display for KeyManagerType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
