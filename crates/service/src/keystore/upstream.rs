//! Reading the key mappings an upstream Parsec service wrote, exactly as they are on disk.
//!
//! Nothing here writes: the SQLite database is opened read-only and the OnDisk tree is only
//! listed and read, so that the upstream service keeps working on the same files.
//!
//! # Formats (docs/protocol.md#key-store)
//!
//! The SQLite manager's database holds `kim_metadata (id TEXT PRIMARY KEY, int_value INTEGER)`
//! with `('schema_version', 1)`, and `key_mapping (authenticator_id, application_name,
//! key_name, provider_uuid, provider_name, key_id BLOB, key_id_version, key_attributes BLOB,
//! key_attributes_version)`, keyed by (authenticator, application, key name). Both version
//! columns are 1; `key_attributes` is the bincode encoding (fixed-width little-endian integers,
//! 64-bit lengths, 32-bit enum tags) of the PSA attributes. Rows with authenticator 255 are the
//! service's own internal keys.
//!
//! The OnDisk manager keeps one file per key at `<store>/<app>/<provider id>/<key>`, where
//! `<app>` and `<key>` are the URL-safe base64 (with padding) of the names and the provider id
//! is decimal; the file holds the bincode encoding of (key id bytes, attributes). No
//! authenticator is recorded: the configured one is meant. A top-level `parsec` directory
//! holds the service's internal keys, as files.
//!
//! In both, the key id is itself the bincode encoding of the provider's id: for Mbed Crypto and
//! PKCS #11 a `u32` (4 little-endian bytes), for the TPM a (legacy, empty) saved context, the
//! key's auth value and its public and TPM-wrapped private parts.

use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use bulwark_interface::ids::{AuthType, ProviderId};
use psa_crypto::types::key::Attributes;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::KeyIdentity;

/// The upstream UUID of each provider kind whose keys can be found in a mapping.
const PROVIDER_UUIDS: [(&str, ProviderId); 3] = [
    (crate::providers::mbed::MBED_UUID, ProviderId::MbedCrypto),
    ("30e39502-eba6-4d60-a4af-c518b7f5e38f", ProviderId::Pkcs11),
    ("1e4954a4-ff21-46d3-ab0c-661eeb667e1d", ProviderId::Tpm),
];

/// The authenticator id upstream records for its own internal keys.
const INTERNAL_AUTHENTICATOR: i64 = 255;

/// The name of the OnDisk directory holding upstream's internal keys.
const INTERNAL_DIRECTORY: &str = "parsec";

/// The only schema, key-id and attributes versions upstream 1.x writes.
const VERSION: i64 = 1;

/// One key mapping written by the upstream service.
pub(crate) struct UpstreamMapping {
    /// The authenticator of the owning application.
    pub authenticator: AuthType,
    /// The owning application's name.
    pub application: String,
    /// The provider that holds the key.
    pub provider_id: ProviderId,
    /// The provider's configured name, when the store records it (SQLite only).
    pub provider_name: Option<String>,
    /// The key's name.
    pub key_name: String,
    /// The key id as upstream wrote it (bincode of the provider's own id). For the TPM it holds
    /// the key's auth value.
    pub key_id: Zeroizing<Vec<u8>>,
    /// The key's attributes.
    pub attributes: Attributes,
}

impl UpstreamMapping {
    /// The identity this mapping's key takes in Bulwark's store, held by the provider named
    /// `provider_name`.
    pub(crate) fn into_identity(self, provider_name: &str) -> KeyIdentity {
        KeyIdentity {
            authenticator: self.authenticator,
            application: self.application,
            provider_name: provider_name.to_owned(),
            key_name: self.key_name,
        }
    }
}

impl std::fmt::Debug for UpstreamMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamMapping")
            .field("authenticator", &self.authenticator)
            .field("application", &self.application)
            .field("provider_id", &self.provider_id)
            .field("provider_name", &self.provider_name)
            .field("key_name", &self.key_name)
            .field("key_id", &format_args!("<{} bytes>", self.key_id.len()))
            .field("attributes", &self.attributes)
            .finish()
    }
}

/// Why upstream's mappings cannot be read; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub(crate) struct UpstreamError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

fn error(path: &Path, reason: impl ToString) -> UpstreamError {
    UpstreamError {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The tables of a SQLite database file that tell whose store it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tables {
    /// It has upstream's `key_mapping` or `kim_metadata` table.
    pub upstream: bool,
    /// It has Bulwark's `key_info` table.
    pub bulwark: bool,
}

/// Which tables the SQLite database at `path` has (none if the file does not exist).
///
/// # Errors
/// The file exists but cannot be opened read-only as a SQLite database.
pub(crate) fn tables(path: &Path) -> Result<Tables, UpstreamError> {
    if !path.exists() {
        return Ok(Tables::default());
    }
    let connection = open_read_only(path)?;
    let has = |name: &str| -> Result<bool, UpstreamError> {
        connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [name],
                |row| row.get(0),
            )
            .map_err(|e| error(path, e))
    };
    Ok(Tables {
        upstream: has("key_mapping")? || has("kim_metadata")?,
        bulwark: has("key_info")?,
    })
}

/// Every client key mapping of upstream's SQLite manager at `path`.
///
/// Rows of providers this build does not know and internal keys are left out.
///
/// # Errors
/// The file is writable by others or owned by another user, is not upstream's database, has
/// another schema or record version, or a row cannot be decoded.
pub(crate) fn read_sqlite(path: &Path) -> Result<Vec<UpstreamMapping>, UpstreamError> {
    check_owner(path)?;
    let connection = open_read_only(path)?;
    let sql = |e: rusqlite::Error| error(path, e);
    let schema: Option<i64> = connection
        .query_row(
            "SELECT int_value FROM kim_metadata WHERE id = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sql)?;
    if schema != Some(VERSION) {
        return Err(error(
            path,
            format!("upstream key mappings of schema version {schema:?}: only 1 is known"),
        ));
    }
    let mut statement = connection
        .prepare(
            "SELECT authenticator_id, application_name, key_name, provider_uuid, provider_name, \
             key_id, key_id_version, key_attributes, key_attributes_version FROM key_mapping \
             ORDER BY authenticator_id, application_name, key_name",
        )
        .map_err(sql)?;
    let mut rows = statement.query([]).map_err(sql)?;
    let mut mappings = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        let authenticator: i64 = row.get(0).map_err(sql)?;
        let application: String = row.get(1).map_err(sql)?;
        let key_name: String = row.get(2).map_err(sql)?;
        let uuid: String = row.get(3).map_err(sql)?;
        let provider_name: String = row.get(4).map_err(sql)?;
        let key_id: Vec<u8> = row.get(5).map_err(sql)?;
        let key_id = Zeroizing::new(key_id);
        let versions: (i64, i64) = (row.get(6).map_err(sql)?, row.get(8).map_err(sql)?);
        let attributes: Vec<u8> = row.get(7).map_err(sql)?;
        if versions != (VERSION, VERSION) {
            return Err(error(
                path,
                format!(
                    "key {key_name:?} of {application:?} has key id and attributes versions \
                     {versions:?}: only (1, 1) is known"
                ),
            ));
        }
        if authenticator == INTERNAL_AUTHENTICATOR {
            continue;
        }
        let Some(authenticator) = u8::try_from(authenticator)
            .ok()
            .and_then(|value| AuthType::try_from(value).ok())
        else {
            return Err(error(
                path,
                format!("key {key_name:?} of {application:?}: unknown authenticator"),
            ));
        };
        let Some(provider_id) = provider_of_uuid(&uuid) else {
            tracing::warn!(
                application = %application,
                key = %key_name,
                provider_uuid = %uuid,
                "an upstream key mapping names a provider this build does not have: left out"
            );
            continue;
        };
        let attributes = bincode::deserialize::<Attributes>(&attributes).map_err(|e| {
            error(
                path,
                format!("key {key_name:?} of {application:?}: attributes: {e}"),
            )
        })?;
        mappings.push(UpstreamMapping {
            authenticator,
            application,
            provider_id,
            provider_name: Some(provider_name),
            key_name,
            key_id,
            attributes,
        });
    }
    Ok(mappings)
}

/// Every client key mapping of upstream's OnDisk manager under `directory`, owned through
/// `authenticator` (the configured one: the tree does not record it).
///
/// # Errors
/// The directory is writable by others or owned by another user, or a name or file cannot be
/// decoded.
pub(crate) fn read_on_disk(
    directory: &Path,
    authenticator: AuthType,
) -> Result<Vec<UpstreamMapping>, UpstreamError> {
    check_owner(directory)?;
    let mut mappings = Vec::new();
    for application_dir in sorted_entries(directory)? {
        let Some(application_file_name) = file_name(&application_dir) else {
            continue;
        };
        if application_file_name == INTERNAL_DIRECTORY || !application_dir.is_dir() {
            continue;
        }
        let application = decode_name(&application_dir, application_file_name)?;
        for provider_dir in sorted_entries(&application_dir)? {
            if !provider_dir.is_dir() {
                continue;
            }
            let provider_id = file_name(&provider_dir)
                .and_then(|name| name.parse::<u8>().ok())
                .and_then(|value| ProviderId::try_from(value).ok());
            let Some(provider_id) =
                provider_id.filter(|id| PROVIDER_UUIDS.iter().any(|(_, known)| *known == *id))
            else {
                tracing::warn!(
                    directory = %provider_dir.display(),
                    "an upstream key mapping directory names a provider this build does not have: \
                     left out"
                );
                continue;
            };
            for key_file in sorted_entries(&provider_dir)? {
                if !key_file.is_file() {
                    continue;
                }
                let Some(key_file_name) = file_name(&key_file) else {
                    continue;
                };
                let key_name = decode_name(&key_file, key_file_name)?;
                let bytes = Zeroizing::new(fs::read(&key_file).map_err(|e| error(&key_file, e))?);
                let info = bincode::deserialize::<OnDiskKeyInfo>(&bytes)
                    .map_err(|e| error(&key_file, format!("key info: {e}")))?;
                mappings.push(UpstreamMapping {
                    authenticator,
                    application: application.clone(),
                    provider_id,
                    provider_name: None,
                    key_name,
                    key_id: Zeroizing::new(info.id),
                    attributes: info.attributes,
                });
            }
        }
    }
    Ok(mappings)
}

/// The provider kind upstream identifies by `uuid`.
pub(crate) fn provider_of_uuid(uuid: &str) -> Option<ProviderId> {
    PROVIDER_UUIDS
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(uuid))
        .map(|(_, id)| *id)
}

/// The PSA key id in an upstream Mbed Crypto or PKCS #11 key id (bincode of a `u32`).
pub(crate) fn u32_key_id(key_id: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = key_id.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// The record of an OnDisk mapping file.
#[derive(Deserialize)]
struct OnDiskKeyInfo {
    id: Vec<u8>,
    attributes: Attributes,
}

fn open_read_only(path: &Path) -> Result<Connection, UpstreamError> {
    // Read-only: nothing of upstream's is changed. Without a write-ahead log beside it the file
    // holds every committed transaction, and it is opened immutable, so that not even a
    // shared-memory file is created and removed in its directory (which `--check` must leave
    // as it is); with one (a service running or killed), an ordinary read-only connection
    // reads the log too.
    if !super::fs::side_file(path, "-wal").exists() && !super::fs::side_file(path, "-shm").exists()
    {
        if let Some(text) = path.to_str() {
            let uri = format!("file:{}?immutable=1", uri_escape(text));
            return Connection::open_with_flags(
                uri,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )
            .map_err(|e| error(path, e));
        }
    }
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| error(path, e))
}

/// A path as the path part of an SQLite URI: the characters a URI gives a meaning escaped.
fn uri_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Whoever can write upstream's store can make any client's key name point at another key:
/// the store must be this user's and closed to group and others, as Bulwark's own is.
fn check_owner(path: &Path) -> Result<(), UpstreamError> {
    let metadata: Metadata = fs::metadata(path).map_err(|e| error(path, e))?;
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(error(
            path,
            format!("writable by group or others (mode {mode:04o}): its mappings are not trusted"),
        ));
    }
    let us = nix::unistd::geteuid().as_raw();
    if metadata.uid() != us {
        return Err(error(
            path,
            format!(
                "owned by uid {}, not by this process's uid {us}: its mappings are not trusted",
                metadata.uid()
            ),
        ));
    }
    Ok(())
}

fn sorted_entries(directory: &Path) -> Result<Vec<PathBuf>, UpstreamError> {
    let mut entries = fs::read_dir(directory)
        .map_err(|e| error(directory, e))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(directory, e))?;
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> Option<&str> {
    path.file_name().and_then(|name| name.to_str())
}

fn decode_name(path: &Path, encoded: &str) -> Result<String, UpstreamError> {
    base64_url_decode(encoded)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| error(path, "not a URL-safe base64 name of UTF-8 text"))
}

/// URL-safe base64 (RFC 4648 §5), padding optional.
fn base64_url_decode(text: &str) -> Option<Vec<u8>> {
    let symbols = text.trim_end_matches('=').as_bytes();
    if symbols.len() % 4 == 1 {
        return None;
    }
    let value = |symbol: u8| -> Option<u32> {
        Some(u32::from(match symbol {
            b'A'..=b'Z' => symbol - b'A',
            b'a'..=b'z' => symbol - b'a' + 26,
            b'0'..=b'9' => symbol - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    };
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for chunk in symbols.chunks(4) {
        let mut accumulator = 0u32;
        for (i, &symbol) in chunk.iter().enumerate() {
            accumulator |= value(symbol)? << (18 - 6 * i);
        }
        let bytes = accumulator.to_be_bytes();
        out.extend(bytes.iter().skip(1).take(chunk.len() - 1));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use psa_crypto::types::algorithm::{
        Algorithm, AsymmetricEncryption, AsymmetricSignature, Hash,
    };
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;

    #[test]
    fn url_safe_base64_names_decode_with_or_without_padding() {
        assert_eq!(
            base64_url_decode("cGFyc2VjLXRvb2w=").unwrap(),
            b"parsec-tool"
        );
        assert_eq!(
            base64_url_decode("cGFyc2VjLXRvb2w").unwrap(),
            b"parsec-tool"
        );
        assert_eq!(base64_url_decode("-_8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(base64_url_decode("").unwrap(), b"");
        assert!(base64_url_decode("a+b/").is_none());
        assert!(base64_url_decode("abcde").is_none());
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `key_attributes` blobs written by the upstream service 1.5.0 (SQLite manager) for the keys
    /// `parsec-tool create-ecc-key` and `create-rsa-key` make.
    #[test]
    fn attributes_written_by_upstream_decode() {
        let ecc = hex(concat!(
            "010000000A000000010000000001000000000000000000000001010101",
            "0005000000030000000000000006000000"
        ));
        let mut usage_flags = UsageFlags::default();
        usage_flags
            .set_sign_message()
            .set_verify_message()
            .set_sign_hash()
            .set_verify_hash();
        assert_eq!(
            bincode::deserialize::<Attributes>(&ecc).unwrap(),
            Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::EccKeyPair {
                    curve_family: EccFamily::SecpR1,
                },
                bits: 256,
                policy: Policy {
                    usage_flags,
                    permitted_algorithms: Algorithm::AsymmetricSignature(
                        AsymmetricSignature::Ecdsa {
                            hash_alg: Hash::Sha256.into(),
                        },
                    ),
                },
            }
        );
        let rsa = hex("01000000090000000008000000000000000000010100000000000600000000000000");
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_encrypt().set_decrypt();
        assert_eq!(
            bincode::deserialize::<Attributes>(&rsa).unwrap(),
            Attributes {
                lifetime: Lifetime::Persistent,
                key_type: Type::RsaKeyPair,
                bits: 2048,
                policy: Policy {
                    usage_flags,
                    permitted_algorithms: Algorithm::AsymmetricEncryption(
                        AsymmetricEncryption::RsaPkcs1v15Crypt,
                    ),
                },
            }
        );
        assert_eq!(u32_key_id(&hex("02000000")), Some(2));
    }
}
