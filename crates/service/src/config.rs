//! The configuration file: Parsec's `config.toml`, read unchanged, plus a few Bulwark keys.
//!
//! [`Config::parse`] runs three steps, each failing with a [`ConfigError`] that names the key:
//!
//! 1. TOML syntax ([`ConfigError::Syntax`], with line and column);
//! 2. types and required keys ([`ConfigError::Type`], with the key's path, e.g.
//!    `provider[1].slot_number`, and its line and column);
//! 3. consistency ([`Config::validate`], [`ConfigError::Invalid`]): unique provider names, key
//!    managers that exist, and so on.
//!
//! Like upstream Parsec, unknown keys are accepted, but they are collected in
//! [`Config::unknown_keys`] so that the daemon can warn about them. Keys that exist but mean
//! nothing for the chosen type (`library_path` in a `MbedCrypto` provider, `store_path` in a
//! `SQLite` key manager, `workload_endpoint` without `JwtSvid`) are collected there as well.
//!
//! Secrets of the file (PKCS #11 PIN, TPM hierarchy auth values) are held in [`SecretString`],
//! which `Debug` never shows and which is wiped on drop.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bulwark_interface::ids::{AuthType, ProviderId};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The built-in default configuration, as TOML text (what `bulwarkd --print-default-config`
/// prints). [`Config::embedded_default`] is this text parsed.
pub const EMBEDDED_DEFAULT: &str = include_str!("default_config.toml");

/// Default `listener.socket_path`.
pub const DEFAULT_SOCKET_PATH: &str = "/run/parsec/parsec.sock";
/// Default `sqlite_db_path` of a `SQLite` key manager.
pub const DEFAULT_SQLITE_DB_PATH: &str =
    "/var/lib/parsec/kim-mappings/sqlite/sqlite-key-info-manager.sqlite3";
/// Default `store_path` of an `OnDisk` key manager.
pub const DEFAULT_ON_DISK_STORE_PATH: &str = "/var/lib/parsec/mappings";
/// Default `core_settings.body_len_limit` and `core_settings.buffer_size_limit` (1 MiB).
pub const DEFAULT_SIZE_LIMIT: usize = 1 << 20;
/// Default `core_settings.max_key_name_len`, in bytes of UTF-8.
///
/// Every name upstream clients really use fits with room to spare: parsec-tool's and the Go
/// client's are what their users type; Kubernetes object paths
/// (`namespaces/<63>/<kind>/<253>`) stay under 400 bytes; SPIFFE IDs in use are well under
/// 256 bytes; upstream's on-disk key store could not hold names over about 188 bytes.
pub const DEFAULT_MAX_KEY_NAME_LEN: usize = 1024;
/// Default `core_settings.max_keys_per_client`.
///
/// Far above what an ordinary application holds (a handful of keys), and small enough that the
/// ListKeys answer of a client at its quota with names of the maximum length stays under the
/// default `buffer_size_limit` ([`CoreSettings::largest_key_list`]).
pub const DEFAULT_MAX_KEYS_PER_CLIENT: usize = 512;
/// The most a ListKeys entry adds to the answer beyond its key name, in bytes: the entry's
/// tag and length, the provider id, the name's tag and length, and the largest attributes
/// message (about 70 bytes), rounded up.
pub const KEY_LIST_ENTRY_OVERHEAD: usize = 128;
/// Default `core_settings.idle_listener_sleep_duration`, in milliseconds.
pub const DEFAULT_IDLE_LISTENER_SLEEP_MS: u64 = 10;
/// Default `core_settings.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `core_settings.max_requests_in_flight` per CPU.
pub const REQUESTS_IN_FLIGHT_PER_CPU: usize = 4;
/// By default one client may use this fraction (1/N) of `max_connections` and of
/// `max_requests_in_flight` (`core_settings.max_connections_per_client`,
/// `core_settings.max_requests_in_flight_per_client`).
pub const CLIENT_SHARE_DIVISOR: usize = 4;
/// By default one client may have at most this fraction (1/N) of the blocking pool's threads
/// (`thread_pool_size`) in flight, so that whatever one client sends, the others keep at least
/// as many threads as it holds ([`CoreSettings::requests_in_flight_per_client`]).
pub const CLIENT_POOL_SHARE_DIVISOR: usize = 2;
/// The fewest blocking threads of the default `thread_pool_size`, whatever the CPU count: with
/// one thread, one client's request would hold the whole pool.
pub const MIN_DEFAULT_THREAD_POOL_SIZE: usize = 2;
/// File name of the OpenSSL provider's key-encryption key when `kek_path` is not given; the file
/// lives next to the store of the provider's key manager ([`OpenSslConfig::kek_path_or_default`]).
pub const DEFAULT_KEK_FILE_NAME: &str = "openssl-provider.kek";
/// File name of the audit log when `core_settings.audit_log` is not given; the file lives next
/// to the key store ([`CoreSettings::audit_log_or_default`]).
pub const DEFAULT_AUDIT_FILE_NAME: &str = "bulwark-audit.log";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Where in the file something is (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

impl Location {
    /// The location of a byte offset into `text`.
    fn of_offset(text: &str, offset: usize) -> Location {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Location {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// " (line L, column C)" or nothing.
fn at(location: &Option<Location>) -> String {
    location.map(|l| format!(" ({l})")).unwrap_or_default()
}

/// Why a configuration could not be loaded. The message names the key and the reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("TOML syntax error{}: {message}", at(location))]
    Syntax {
        /// Where the parser stopped.
        location: Option<Location>,
        /// What the parser expected.
        message: String,
    },
    /// A value has the wrong type, a required key is missing, or a value is not one of those
    /// accepted.
    #[error("{key}: {message}{}", at(location))]
    Type {
        /// Path of the key, e.g. `listener.timeout` or `provider[1].slot_number`.
        key: String,
        /// What is wrong.
        message: String,
        /// Where the value (or the table missing the key) is.
        location: Option<Location>,
    },
    /// The file is well-formed but inconsistent (see [`Config::validate`]).
    #[error("{key}: {reason}")]
    Invalid {
        /// Path of the key, e.g. `provider[1].key_info_manager`.
        key: String,
        /// What is wrong, in one sentence.
        reason: String,
    },
}

impl ConfigError {
    /// The path of the offending key, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Type { key, .. } | ConfigError::Invalid { key, .. } => Some(key),
            ConfigError::Read { .. } | ConfigError::Syntax { .. } => None,
        }
    }

    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// A secret string of the file: wiped from memory on drop, shown by `Debug` as `<redacted>`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

/// A `hex:` secret whose digits are not valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the \"hex:\" prefix must be followed by an even number of hexadecimal digits")]
pub struct BadHexSecret;

impl SecretString {
    /// Wraps a string; it is moved, not copied.
    pub fn new(secret: String) -> Self {
        SecretString(Zeroizing::new(secret))
    }

    /// The secret text, exactly as written in the file (prefix included).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret's bytes, following Parsec's prefixes: `str:abc` → `abc`, `hex:0a0b` → bytes
    /// 0x0a 0x0b, anything else → the text's own UTF-8 bytes.
    pub fn decode(&self) -> Result<Zeroizing<Vec<u8>>, BadHexSecret> {
        let text: &str = &self.0;
        if let Some(rest) = text.strip_prefix("str:") {
            return Ok(Zeroizing::new(rest.as_bytes().to_vec()));
        }
        let Some(digits) = text.strip_prefix("hex:") else {
            return Ok(Zeroizing::new(text.as_bytes().to_vec()));
        };
        if digits.len() % 2 != 0 {
            return Err(BadHexSecret);
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
        for pair in digits.as_bytes().chunks_exact(2) {
            let high = hex_digit(pair[0]).ok_or(BadHexSecret)?;
            let low = hex_digit(pair[1]).ok_or(BadHexSecret)?;
            bytes.push((high << 4) | low);
        }
        Ok(bytes)
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        SecretString::new(secret)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(SecretString::new)
    }
}

// ---------------------------------------------------------------------------------------------
// The configuration
// ---------------------------------------------------------------------------------------------

/// A parsed and validated configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `[core_settings]`.
    pub core_settings: CoreSettings,
    /// `[listener]`.
    pub listener: ListenerConfig,
    /// `[authenticator]` (upstream's one table), or `[[authenticator]]` (several, in file
    /// order: the order ListAuthenticators lists them in); never empty, at most one per
    /// `auth_type`.
    pub authenticators: Vec<AuthenticatorConfig>,
    /// `[[key_manager]]`, in file order.
    pub key_manager: Vec<KeyManagerConfig>,
    /// `[[provider]]`, in file order = priority; the first is the clients' default provider.
    pub provider: Vec<ProviderConfig>,
    /// Keys of the file that the service ignores, as paths such as `core_settings.foo` or
    /// `provider[0].library_path`, in the order found. Not an error (upstream ignores them
    /// silently); the daemon warns "ignoring unknown key …".
    pub unknown_keys: Vec<String>,
}

/// `[core_settings]`. Every key is optional; the defaults are applied while parsing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CoreSettings {
    /// Permit running as UID 0 (checked at start-up only). Default false.
    #[serde(default)]
    pub allow_root: bool,
    /// Number of blocking worker threads (the threads that run provider operations). Default:
    /// the number of CPUs, at least [`MIN_DEFAULT_THREAD_POOL_SIZE`].
    #[serde(default = "default_thread_pool_size")]
    pub thread_pool_size: usize,
    /// Upstream: milliseconds the listener sleeps when no connection is pending. Accepted for
    /// compatibility and without effect: Bulwark's accept waits for connections and never
    /// polls. Default 10.
    #[serde(default = "default_idle_listener_sleep_duration")]
    pub idle_listener_sleep_duration: u64,
    /// Global log filter; `None` = follow `RUST_LOG`. Accepted in any letter case, like
    /// upstream.
    #[serde(default)]
    pub log_level: Option<LogLevel>,
    /// Timestamps in log lines. Default false.
    #[serde(default)]
    pub log_timestamp: bool,
    /// Largest request body accepted, in bytes (larger → BodySizeExceedsLimit). Default 1 MiB.
    #[serde(default = "default_size_limit")]
    pub body_len_limit: usize,
    /// Include possibly sensitive details (key and application names) in error logs. Default
    /// false.
    #[serde(default)]
    pub log_error_details: bool,
    /// Largest buffer a response may carry, in bytes (larger → ResponseTooLarge). Default 1 MiB.
    #[serde(default = "default_size_limit")]
    pub buffer_size_limit: usize,
    /// Allow PsaGenerateKey with deprecated primitives. Default false.
    #[serde(default)]
    pub allow_deprecated: bool,
    /// Bulwark: most client connections served at once; further ones wait to be accepted.
    /// Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Bulwark: most requests being processed at once, across connections. Default 4 × the
    /// number of CPUs.
    #[serde(default = "default_max_requests_in_flight")]
    pub max_requests_in_flight: usize,
    /// Bulwark: most connections one client (the uid of the socket's peer) may have open at
    /// once; a further one is closed as soon as it is accepted, with a warning. `None`: a
    /// quarter of `max_connections`, at least 1 ([`CoreSettings::connections_per_client`]).
    #[serde(default)]
    pub max_connections_per_client: Option<usize>,
    /// Bulwark: most requests of one client (the uid of the socket's peer) processed at once;
    /// its further requests wait, without holding up other clients. `None`: a quarter of
    /// `max_requests_in_flight` but no more than half of `thread_pool_size`, at least 1
    /// ([`CoreSettings::requests_in_flight_per_client`]).
    #[serde(default)]
    pub max_requests_in_flight_per_client: Option<usize>,
    /// Bulwark: longest key name accepted, in bytes of UTF-8; a longer name is refused with
    /// PsaErrorInvalidArgument by every operation that takes one, before the key store is
    /// read. Announced to clients in ListProviders. Default [`DEFAULT_MAX_KEY_NAME_LEN`].
    #[serde(default = "default_max_key_name_len")]
    pub max_key_name_len: usize,
    /// Bulwark: most keys one application (one authenticator and application name) may hold,
    /// over all providers; a further creation is refused with PsaErrorInsufficientStorage.
    /// Default [`DEFAULT_MAX_KEYS_PER_CLIENT`].
    #[serde(default = "default_max_keys_per_client")]
    pub max_keys_per_client: usize,
    /// Bulwark: format of log lines. Default text.
    #[serde(default)]
    pub log_format: LogFormat,
    /// Bulwark: where the audit log goes; `None` = [`DEFAULT_AUDIT_FILE_NAME`] next to the key
    /// store (see [`CoreSettings::audit_log_or_default`]).
    #[serde(default)]
    pub audit_log: Option<AuditLogSetting>,
    /// Bulwark: where Prometheus metrics are served, `"127.0.0.1:9464"` (loopback only) or
    /// `"unix:/path"`; `None` (the default): no metrics (see [`crate::metrics`]).
    #[serde(default)]
    pub metrics_endpoint: Option<crate::metrics::Endpoint>,
}

impl CoreSettings {
    /// `audit_log`, or a file [`DEFAULT_AUDIT_FILE_NAME`] in the directory of `key_manager`'s
    /// store (owner-only like the store itself).
    pub fn audit_log_or_default(&self, key_manager: &KeyManagerConfig) -> AuditLogSetting {
        match &self.audit_log {
            Some(setting) => setting.clone(),
            None => AuditLogSetting::File(key_manager.store_dir().join(DEFAULT_AUDIT_FILE_NAME)),
        }
    }
}

/// `core_settings.audit_log` (Bulwark): `"off"`, `"journal"` or a file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditLogSetting {
    /// No audit log.
    Off,
    /// Records on standard error (the journal under systemd).
    Journal,
    /// Records appended to this file (created with mode 0600).
    File(PathBuf),
}

impl<'de> Deserialize<'de> for AuditLogSetting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AuditVisitor;

        impl Visitor<'_> for AuditVisitor {
            type Value = AuditLogSetting;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"off\", \"journal\" or the path of a file")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<AuditLogSetting, E> {
                if value.eq_ignore_ascii_case("off") {
                    Ok(AuditLogSetting::Off)
                } else if value.eq_ignore_ascii_case("journal") {
                    Ok(AuditLogSetting::Journal)
                } else if value.is_empty() {
                    Err(E::invalid_value(de::Unexpected::Str(value), &self))
                } else {
                    Ok(AuditLogSetting::File(PathBuf::from(value)))
                }
            }
        }

        deserializer.deserialize_str(AuditVisitor)
    }
}

impl Default for CoreSettings {
    fn default() -> Self {
        CoreSettings {
            allow_root: false,
            thread_pool_size: default_thread_pool_size(),
            idle_listener_sleep_duration: default_idle_listener_sleep_duration(),
            log_level: None,
            log_timestamp: false,
            body_len_limit: default_size_limit(),
            log_error_details: false,
            buffer_size_limit: default_size_limit(),
            allow_deprecated: false,
            max_connections: default_max_connections(),
            max_requests_in_flight: default_max_requests_in_flight(),
            max_connections_per_client: None,
            max_requests_in_flight_per_client: None,
            max_key_name_len: default_max_key_name_len(),
            max_keys_per_client: default_max_keys_per_client(),
            log_format: LogFormat::Text,
            audit_log: None,
            metrics_endpoint: None,
        }
    }
}

impl CoreSettings {
    /// `max_connections_per_client`, or a quarter ([`CLIENT_SHARE_DIVISOR`]) of
    /// `max_connections`; at least 1 and at most `max_connections`.
    pub fn connections_per_client(&self) -> usize {
        client_share(
            self.max_connections_per_client,
            self.max_connections,
            usize::MAX,
        )
    }

    /// `max_requests_in_flight_per_client`, or a quarter ([`CLIENT_SHARE_DIVISOR`]) of
    /// `max_requests_in_flight` but no more than half ([`CLIENT_POOL_SHARE_DIVISOR`]) of
    /// `thread_pool_size`; at least 1 and at most `max_requests_in_flight`.
    ///
    /// Every request in flight that may take long runs on the blocking pool (key generation,
    /// large RSA keys, large bodies: [`Service::runs_inline`](crate::service::Service::runs_inline)),
    /// so the default is a fair part of that pool: one client never holds more than half its
    /// threads, and the other clients always have the rest (2 CPUs: a pool of 2 threads, a
    /// share of 1). A pool of one thread (only when configured so) is necessarily shared.
    pub fn requests_in_flight_per_client(&self) -> usize {
        client_share(
            self.max_requests_in_flight_per_client,
            self.max_requests_in_flight,
            self.thread_pool_size / CLIENT_POOL_SHARE_DIVISOR,
        )
    }
}

impl CoreSettings {
    /// The largest ListKeys answer a client can make under these settings, in bytes: its
    /// quota of keys, each with a name of the maximum length. When it exceeds
    /// `buffer_size_limit`, such a client's ListKeys is answered ResponseTooLarge; the daemon
    /// warns at start-up.
    pub fn largest_key_list(&self) -> usize {
        self.max_keys_per_client.saturating_mul(
            self.max_key_name_len
                .saturating_add(KEY_LIST_ENTRY_OVERHEAD),
        )
    }
}

fn client_share(configured: Option<usize>, global: usize, default_cap: usize) -> usize {
    let global = global.max(1);
    configured
        .unwrap_or((global / CLIENT_SHARE_DIVISOR).min(default_cap))
        .clamp(1, global)
}

/// The number of CPUs available to the process (at least 1).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The default `thread_pool_size` on a machine of `cpus` CPUs: one thread per CPU, at least
/// [`MIN_DEFAULT_THREAD_POOL_SIZE`].
pub fn thread_pool_size_for(cpus: usize) -> usize {
    cpus.max(MIN_DEFAULT_THREAD_POOL_SIZE)
}

/// The default `max_requests_in_flight` on a machine of `cpus` CPUs.
pub fn max_requests_in_flight_for(cpus: usize) -> usize {
    REQUESTS_IN_FLIGHT_PER_CPU.saturating_mul(cpus.max(1))
}

fn default_thread_pool_size() -> usize {
    thread_pool_size_for(available_cpus())
}

fn default_idle_listener_sleep_duration() -> u64 {
    DEFAULT_IDLE_LISTENER_SLEEP_MS
}

fn default_size_limit() -> usize {
    DEFAULT_SIZE_LIMIT
}

fn default_max_key_name_len() -> usize {
    DEFAULT_MAX_KEY_NAME_LEN
}

fn default_max_keys_per_client() -> usize {
    DEFAULT_MAX_KEYS_PER_CLIENT
}

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

fn default_max_requests_in_flight() -> usize {
    max_requests_in_flight_for(available_cpus())
}

/// `core_settings.log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// No logging.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Informational messages and above.
    Info,
    /// Debugging messages and above.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// Every level, quietest first.
    pub const ALL: [LogLevel; 6] = [
        LogLevel::Off,
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The lower-case name, also a valid `tracing` / `RUST_LOG` filter directive.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for LogLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LevelVisitor;

        impl Visitor<'_> for LevelVisitor {
            type Value = LogLevel;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\"")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<LogLevel, E> {
                LogLevel::ALL
                    .into_iter()
                    .find(|level| level.as_str().eq_ignore_ascii_case(value))
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Str(value), &self))
            }
        }

        deserializer.deserialize_str(LevelVisitor)
    }
}

/// `core_settings.log_format` (Bulwark).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[listener]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ListenerConfig {
    /// The kind of listener.
    pub listener_type: ListenerType,
    /// Read and write timeout on each accepted connection, in milliseconds (required, > 0).
    pub timeout: u64,
    /// The socket file. Default `/run/parsec/parsec.sock`.
    #[serde(default = "default_socket_path")]
    pub socket_path: PathBuf,
    /// Longest wait, in milliseconds, for the next request on a connection its client asked to
    /// keep open (`FLAG_KEEP_OPEN`); 0 closes every connection after its answer, as upstream
    /// does. Not an upstream key. Default [`DEFAULT_IDLE_TIMEOUT_MS`].
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: u64,
}

/// Default `listener.idle_timeout`, in milliseconds.
///
/// An idle kept-open connection holds a file descriptor and a slot of its client's connection
/// share: long enough for a client's bursts to share connections, short enough that a client
/// which forgot its connections gives the slots back within seconds.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 5_000;

impl ListenerConfig {
    /// `timeout` as a duration.
    pub fn timeout_duration(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }

    /// `idle_timeout` as a duration; zero when connections are never kept open.
    pub fn idle_timeout_duration(&self) -> Duration {
        Duration::from_millis(self.idle_timeout)
    }
}

fn default_idle_timeout() -> u64 {
    DEFAULT_IDLE_TIMEOUT_MS
}

fn default_socket_path() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET_PATH)
}

/// `listener.listener_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ListenerType {
    /// A Unix domain stream socket.
    DomainSocket,
}

/// `[authenticator]`, or one `[[authenticator]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuthenticatorConfig {
    /// What the authenticator checks.
    pub auth_type: AuthenticatorType,
    /// Applications allowed to call ListClients and DeleteClient, named as the authenticator
    /// names them (decimal UIDs for UnixPeerCredentials, SPIFFE IDs for JwtSvid).
    #[serde(default)]
    pub admins: Vec<Admin>,
    /// The SPIFFE Workload API endpoint, e.g. `unix:///run/spire/sockets/agent.sock`; required
    /// for JwtSvid, ignored otherwise.
    #[serde(default)]
    pub workload_endpoint: Option<String>,
    /// Bulwark, Direct only: accept Direct beside other authenticators. Any client may claim
    /// any Direct name, so beside an authenticator that checks identities it is refused
    /// unless this says so (and start-up then warns).
    #[serde(default)]
    pub allow_with_other_authenticators: bool,
    /// Bulwark, JwtSvid and Jwt: the audience a token's `aud` must contain. Default
    /// [`DEFAULT_TOKEN_AUDIENCE`]. For Jwt, the default of each `issuers` entry.
    #[serde(default)]
    pub audience: Option<String>,
    /// Bulwark, JwtSvid and Jwt: clock skew allowed on `exp` and `nbf`, in seconds. Default
    /// [`DEFAULT_TOKEN_LEEWAY`].
    #[serde(default)]
    pub leeway: Option<u64>,
    /// Bulwark, JwtSvid and Jwt: most validated tokens remembered until they expire. Default
    /// [`DEFAULT_TOKEN_CACHE_SIZE`]; 0 validates every token every time.
    #[serde(default)]
    pub token_cache_size: Option<usize>,
    /// Bulwark, JwtSvid: JWT bundles read from files, one per trust domain, for deployments
    /// without a Workload API (or beside it).
    #[serde(default)]
    pub bundles: Vec<TrustBundleConfig>,
    /// Bulwark, Jwt: the one issuer, written in the table itself (`issuer`, `jwks_path` or
    /// `public_key_path`, `audience`, `identity_claim`); `issuers` lists several.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Bulwark, Jwt: the JWKS file of `issuer`.
    #[serde(default)]
    pub jwks_path: Option<PathBuf>,
    /// Bulwark, Jwt: the PEM public key of `issuer` (instead of `jwks_path`).
    #[serde(default)]
    pub public_key_path: Option<PathBuf>,
    /// Bulwark, Jwt: the claim naming the application in `issuer`'s tokens. Default `sub`.
    #[serde(default)]
    pub identity_claim: Option<String>,
    /// Bulwark, Jwt: the issuers whose tokens are accepted, beside `issuer`.
    #[serde(default)]
    pub issuers: Vec<IssuerConfig>,
}

/// Default `audience` of the token authenticators (upstream's JWT-SVID audience).
pub const DEFAULT_TOKEN_AUDIENCE: &str = "parsec";
/// Default `leeway` of the token authenticators, in seconds.
pub const DEFAULT_TOKEN_LEEWAY: u64 = 5;
/// Default `token_cache_size` of the token authenticators.
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 4096;

/// One entry of `authenticator.bundles` (JwtSvid).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TrustBundleConfig {
    /// The trust domain, e.g. `example.org`.
    pub trust_domain: String,
    /// Its JWT bundle: a JWKS document (a SPIFFE bundle is one).
    pub jwks_path: PathBuf,
}

/// One entry of `authenticator.issuers` (Jwt).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuerConfig {
    /// The issuer, compared exactly with the token's `iss`; never contains `#`.
    pub issuer: String,
    /// Its public keys, a JWKS file.
    #[serde(default)]
    pub jwks_path: Option<PathBuf>,
    /// Its public key, a PEM file (instead of `jwks_path`).
    #[serde(default)]
    pub public_key_path: Option<PathBuf>,
    /// The audience its tokens must name; default the authenticator's `audience`.
    #[serde(default)]
    pub audience: Option<String>,
    /// The claim naming the application; default `sub`.
    #[serde(default)]
    pub identity_claim: Option<String>,
}

impl AuthenticatorConfig {
    /// A table of `auth_type` with nothing else set.
    pub fn new(auth_type: AuthenticatorType) -> Self {
        AuthenticatorConfig {
            auth_type,
            admins: Vec::new(),
            workload_endpoint: None,
            allow_with_other_authenticators: false,
            audience: None,
            leeway: None,
            token_cache_size: None,
            bundles: Vec::new(),
            issuer: None,
            jwks_path: None,
            public_key_path: None,
            identity_claim: None,
            issuers: Vec::new(),
        }
    }

    /// The issuers of a Jwt table: the one written in the table, then `issuers`, with the
    /// defaults applied (`audience` the table's or [`DEFAULT_TOKEN_AUDIENCE`], `identity_claim`
    /// `sub`).
    pub fn all_issuers(&self) -> Vec<IssuerConfig> {
        let single = self.issuer.as_ref().map(|issuer| IssuerConfig {
            issuer: issuer.clone(),
            jwks_path: self.jwks_path.clone(),
            public_key_path: self.public_key_path.clone(),
            audience: None,
            identity_claim: self.identity_claim.clone(),
        });
        single
            .into_iter()
            .chain(self.issuers.iter().cloned())
            .map(|mut i| {
                i.audience = Some(
                    i.audience
                        .or_else(|| self.audience.clone())
                        .unwrap_or_else(|| DEFAULT_TOKEN_AUDIENCE.to_owned()),
                );
                i.identity_claim.get_or_insert_with(|| "sub".to_owned());
                i
            })
            .collect()
    }

    /// Checks one table's token settings; `key` gives a key's path in messages.
    fn validate_tokens(&self, key: impl Fn(&str) -> String) -> Result<(), ConfigError> {
        let token_type = matches!(
            self.auth_type,
            AuthenticatorType::JwtSvid | AuthenticatorType::Jwt
        );
        let set = |name: &str, is_set: bool| -> Result<(), ConfigError> {
            if is_set {
                return Err(ConfigError::invalid(
                    key(name),
                    format!("means nothing when auth_type is \"{}\"", self.auth_type),
                ));
            }
            Ok(())
        };
        if !token_type {
            set("audience", self.audience.is_some())?;
            set("leeway", self.leeway.is_some())?;
            set("token_cache_size", self.token_cache_size.is_some())?;
        }
        if self.auth_type != AuthenticatorType::JwtSvid {
            set("bundles", !self.bundles.is_empty())?;
        }
        if self.auth_type != AuthenticatorType::Jwt {
            set("issuer", self.issuer.is_some())?;
            set("jwks_path", self.jwks_path.is_some())?;
            set("public_key_path", self.public_key_path.is_some())?;
            set("identity_claim", self.identity_claim.is_some())?;
            set("issuers", !self.issuers.is_empty())?;
        }
        if self.audience.as_deref() == Some("") {
            return Err(ConfigError::invalid(key("audience"), "must not be empty"));
        }
        match self.auth_type {
            AuthenticatorType::JwtSvid => {
                if self.workload_endpoint.as_deref().is_none_or(str::is_empty)
                    && self.bundles.is_empty()
                {
                    return Err(ConfigError::invalid(
                        key("workload_endpoint"),
                        "is required when auth_type is \"JwtSvid\" (the SPIFFE Workload API \
                         endpoint, e.g. \"unix:///run/spire/sockets/agent.sock\"), unless \
                         bundles names the trust domains' JWT bundle files",
                    ));
                }
                for (i, bundle) in self.bundles.iter().enumerate() {
                    let domain = &bundle.trust_domain;
                    let id = format!("spiffe://{domain}");
                    if crate::auth::token::spiffe_trust_domain(&id) != Some(domain.as_str()) {
                        return Err(ConfigError::invalid(
                            key(&format!("bundles[{i}].trust_domain")),
                            format!("{domain:?} is not a trust domain name (lower-case letters, digits, '.', '-', '_')"),
                        ));
                    }
                    if self.bundles[..i].iter().any(|b| &b.trust_domain == domain) {
                        return Err(ConfigError::invalid(
                            key(&format!("bundles[{i}].trust_domain")),
                            format!("{domain:?} has two bundles"),
                        ));
                    }
                }
            }
            AuthenticatorType::Jwt => {
                let issuers = self.all_issuers();
                if issuers.is_empty() {
                    return Err(ConfigError::invalid(
                        key("issuer"),
                        "is required when auth_type is \"Jwt\" (or issuers: the identity \
                         providers whose tokens are accepted)",
                    ));
                }
                let offset = usize::from(self.issuer.is_some());
                for (i, issuer) in issuers.iter().enumerate() {
                    let at = |name: &str| match i.checked_sub(offset) {
                        Some(j) => key(&format!("issuers[{j}].{name}")),
                        None => key(name),
                    };
                    if issuer.issuer.is_empty() || issuer.issuer.contains('#') {
                        return Err(ConfigError::invalid(
                            at("issuer"),
                            "must be non-empty and without '#' (identities are \
                             \"<issuer>#<claim>\")",
                        ));
                    }
                    if issuers[..i]
                        .iter()
                        .any(|other| other.issuer == issuer.issuer)
                    {
                        return Err(ConfigError::invalid(
                            at("issuer"),
                            format!("{:?} is configured twice", issuer.issuer),
                        ));
                    }
                    if issuer.jwks_path.is_some() == issuer.public_key_path.is_some() {
                        return Err(ConfigError::invalid(
                            at("jwks_path"),
                            "exactly one of jwks_path and public_key_path gives the issuer's keys",
                        ));
                    }
                    if issuer.audience.as_deref() == Some("") {
                        return Err(ConfigError::invalid(at("audience"), "must not be empty"));
                    }
                    if issuer.identity_claim.as_deref() == Some("") {
                        return Err(ConfigError::invalid(
                            at("identity_claim"),
                            "must not be empty",
                        ));
                    }
                }
            }
            AuthenticatorType::Direct | AuthenticatorType::UnixPeerCredentials => {}
        }
        Ok(())
    }
}

/// The path of `key` of the `index`th of `count` authenticators, as messages name it:
/// `authenticator.key` for upstream's one table, `authenticator[index].key` among several.
fn authenticator_key(count: usize, index: usize, key: &str) -> String {
    if count == 1 {
        format!("authenticator.{key}")
    } else {
        format!("authenticator[{index}].{key}")
    }
}

/// A table or an array of tables of `T`: `[authenticator]` as upstream writes it, or
/// `[[authenticator]]`.
struct OneOrMany<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TableOrArray<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for TableOrArray<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table or an array of tables")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|one| OneOrMany(vec![one]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(OneOrMany)
            }
        }
        deserializer.deserialize_any(TableOrArray(std::marker::PhantomData))
    }
}

/// One entry of `authenticator.admins`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Admin {
    /// The application name, compared exactly.
    pub name: String,
}

/// `authenticator.auth_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum AuthenticatorType {
    /// The auth bytes are the application name.
    Direct,
    /// The caller's UID, checked against the socket peer.
    UnixPeerCredentials,
    /// A JWT-SVID checked against its trust domain's JWT bundle (from files or the SPIFFE
    /// Workload API).
    JwtSvid,
    /// Bulwark: a token (JWT) signed by a configured identity provider (auth type 2).
    Jwt,
}

impl AuthenticatorType {
    /// The header `auth_type` this authenticator serves.
    pub const fn auth_type(self) -> AuthType {
        match self {
            AuthenticatorType::Direct => AuthType::Direct,
            AuthenticatorType::UnixPeerCredentials => AuthType::UnixPeerCredentials,
            AuthenticatorType::JwtSvid => AuthType::JwtSvid,
            AuthenticatorType::Jwt => AuthType::Jwt,
        }
    }

    /// The name used in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthenticatorType::Direct => "Direct",
            AuthenticatorType::UnixPeerCredentials => "UnixPeerCredentials",
            AuthenticatorType::JwtSvid => "JwtSvid",
            AuthenticatorType::Jwt => "Jwt",
        }
    }
}

impl fmt::Display for AuthenticatorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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

/// One `[[provider]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The name given in the file, if any; see [`ProviderConfig::name`] for the effective one.
    pub name: Option<String>,
    /// The `[[key_manager]]` holding this provider's key mappings.
    pub key_info_manager: String,
    /// `provider_type` and the keys specific to it.
    pub kind: ProviderKind,
}

impl ProviderConfig {
    /// The effective name: the configured one, or the type's default. Part of every key's
    /// identity.
    pub fn name(&self) -> &str {
        self.name
            .as_deref()
            .unwrap_or_else(|| self.provider_type().default_name())
    }

    /// `provider_type`.
    pub fn provider_type(&self) -> ProviderType {
        match self.kind {
            ProviderKind::MbedCrypto => ProviderType::MbedCrypto,
            ProviderKind::Pkcs11(_) => ProviderType::Pkcs11,
            ProviderKind::Tpm(_) => ProviderType::Tpm,
            ProviderKind::CryptoAuthLib(_) => ProviderType::CryptoAuthLib,
            ProviderKind::TrustedService => ProviderType::TrustedService,
            ProviderKind::OpenSsl(_) => ProviderType::OpenSsl,
        }
    }

    /// The provider id requests use to address this provider.
    pub fn provider_id(&self) -> ProviderId {
        self.provider_type().provider_id()
    }
}

/// `provider_type` with the keys specific to each type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Mbed Crypto (PSA Crypto reference implementation); no keys of its own.
    MbedCrypto,
    /// A PKCS #11 token.
    Pkcs11(Pkcs11Config),
    /// A TPM 2.0.
    Tpm(TpmConfig),
    /// Microchip ATECCx08 through CryptoAuthLib.
    CryptoAuthLib(CryptoAuthLibConfig),
    /// The Crypto Trusted Service; no keys of its own.
    TrustedService,
    /// Bulwark's OpenSSL software provider (answers as provider id 1, like Mbed Crypto).
    OpenSsl(OpenSslConfig),
}

/// Keys of a `Pkcs11` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Config {
    /// The PKCS #11 library (required).
    pub library_path: PathBuf,
    /// The slot to use.
    pub slot_number: Option<u64>,
    /// Serial number of the token to use (preferred over `slot_number`).
    pub serial_number: Option<String>,
    /// The user PIN (`str:`/`hex:` prefixes allowed); `None` → sessions are not logged in.
    pub user_pin: Option<SecretString>,
    /// Do public-key operations (verify, encrypt) in software. Default false.
    pub software_public_operations: bool,
    /// Allow keys with the export flag. Default true.
    pub allow_export: bool,
}

/// Keys of a `Tpm` provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmConfig {
    /// The TCTI, e.g. `device:/dev/tpmrm0`, `mssim:host=localhost,port=2321` (required).
    pub tcti: String,
    /// Owner hierarchy auth value (required, may be empty; `str:`/`hex:` prefixes allowed).
    pub owner_hierarchy_auth: SecretString,
    /// Endorsement hierarchy auth value, for attestation with the EK.
    pub endorsement_hierarchy_auth: Option<SecretString>,
    /// Leave the provider out silently when the TCTI cannot be opened. Default false.
    pub skip_if_no_tpm: bool,
}

/// Keys of a `CryptoAuthLib` provider. Values are passed to the library as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAuthLibConfig {
    /// `atecc508a`, `atecc608a`, `always-fail`, `always-success` or `fail-unimplemented`
    /// (required).
    pub device_type: String,
    /// `i2c` or `test-interface` (required).
    pub iface_type: String,
    /// Wake delay.
    pub wake_delay: Option<u16>,
    /// Receive retries.
    pub rx_retries: Option<i32>,
    /// I²C address.
    pub slave_address: Option<u8>,
    /// I²C bus.
    pub bus: Option<u8>,
    /// Bus speed.
    pub baud: Option<u32>,
    /// File of slot access keys.
    pub access_key_file_name: Option<PathBuf>,
}

/// Keys of Bulwark's `OpenSsl` provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenSslConfig {
    /// The key-encryption-key file; `None` → [`DEFAULT_KEK_FILE_NAME`] next to the key
    /// manager's store (see [`OpenSslConfig::kek_path_or_default`]).
    pub kek_path: Option<PathBuf>,
}

impl OpenSslConfig {
    /// `kek_path`, or [`DEFAULT_KEK_FILE_NAME`] in the directory of `key_manager`'s store (the
    /// SQLite database's directory; for OnDisk, the directory containing the mapping
    /// directory).
    pub fn kek_path_or_default(&self, key_manager: &KeyManagerConfig) -> PathBuf {
        match &self.kek_path {
            Some(path) => path.clone(),
            None => key_manager.store_dir().join(DEFAULT_KEK_FILE_NAME),
        }
    }
}

/// `provider.provider_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum ProviderType {
    /// See [`ProviderKind::MbedCrypto`].
    MbedCrypto,
    /// See [`ProviderKind::Pkcs11`].
    Pkcs11,
    /// See [`ProviderKind::Tpm`].
    Tpm,
    /// See [`ProviderKind::CryptoAuthLib`].
    CryptoAuthLib,
    /// See [`ProviderKind::TrustedService`].
    TrustedService,
    /// See [`ProviderKind::OpenSsl`].
    OpenSsl,
}

impl ProviderType {
    /// Every type, in the order of the documentation.
    pub const ALL: [ProviderType; 6] = [
        ProviderType::MbedCrypto,
        ProviderType::Pkcs11,
        ProviderType::Tpm,
        ProviderType::CryptoAuthLib,
        ProviderType::TrustedService,
        ProviderType::OpenSsl,
    ];

    /// The name used in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            ProviderType::MbedCrypto => "MbedCrypto",
            ProviderType::Pkcs11 => "Pkcs11",
            ProviderType::Tpm => "Tpm",
            ProviderType::CryptoAuthLib => "CryptoAuthLib",
            ProviderType::TrustedService => "TrustedService",
            ProviderType::OpenSsl => "OpenSsl",
        }
    }

    /// The provider name used when `name` is not given.
    pub const fn default_name(self) -> &'static str {
        match self {
            ProviderType::MbedCrypto => "mbed-crypto-provider",
            ProviderType::Pkcs11 => "pkcs11-provider",
            ProviderType::Tpm => "tpm-provider",
            ProviderType::CryptoAuthLib => "cryptoauthlib-provider",
            ProviderType::TrustedService => "trusted-service-provider",
            ProviderType::OpenSsl => "openssl-provider",
        }
    }

    /// The provider id: MbedCrypto and OpenSsl both answer as id 1.
    pub const fn provider_id(self) -> ProviderId {
        match self {
            ProviderType::MbedCrypto | ProviderType::OpenSsl => ProviderId::MbedCrypto,
            ProviderType::Pkcs11 => ProviderId::Pkcs11,
            ProviderType::Tpm => ProviderId::Tpm,
            ProviderType::TrustedService => ProviderId::TrustedService,
            ProviderType::CryptoAuthLib => ProviderId::CryptoAuthLib,
        }
    }

    /// The keys this type reads besides `provider_type`, `name` and `key_info_manager`.
    pub const fn specific_keys(self) -> &'static [&'static str] {
        match self {
            ProviderType::MbedCrypto | ProviderType::TrustedService => &[],
            ProviderType::Pkcs11 => &[
                "library_path",
                "slot_number",
                "serial_number",
                "user_pin",
                "software_public_operations",
                "allow_export",
            ],
            ProviderType::Tpm => &[
                "tcti",
                "owner_hierarchy_auth",
                "endorsement_hierarchy_auth",
                "skip_if_no_tpm",
            ],
            ProviderType::CryptoAuthLib => &[
                "device_type",
                "iface_type",
                "wake_delay",
                "rx_retries",
                "slave_address",
                "bus",
                "baud",
                "access_key_file_name",
            ],
            ProviderType::OpenSsl => &["kek_path"],
        }
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Parses and validates a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let toml_de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            location: e.span().map(|span| Location::of_offset(text, span.start)),
            message: e.message().to_owned(),
        })?;

        let mut unknown_keys = Vec::new();
        let mut on_ignored = |path: serde_ignored::Path<'_>| {
            let mut key = String::new();
            write_ignored_path(&mut key, &path);
            unknown_keys.push(key);
        };
        let raw: RawConfig = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            toml_de,
            &mut on_ignored,
        ))
        .map_err(|e| type_error(text, e))?;

        let config = raw.into_config(unknown_keys)?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text)
    }

    /// The built-in default configuration ([`EMBEDDED_DEFAULT`], parsed): a DomainSocket
    /// listener at `/run/parsec/parsec.sock` with a 200 ms timeout, the UnixPeerCredentials
    /// authenticator without admins, one SQLite key manager `sqlite-manager` at the default
    /// path, one OpenSsl provider (KEK at its default path), `allow_root = false`.
    pub fn embedded_default() -> Config {
        // The text is tested to parse to exactly `builtin_default()`; the fallback only avoids
        // a panic path.
        Config::parse(EMBEDDED_DEFAULT).unwrap_or_else(|_| Config::builtin_default())
    }

    /// [`EMBEDDED_DEFAULT`], built in code.
    fn builtin_default() -> Config {
        Config {
            core_settings: CoreSettings::default(),
            listener: ListenerConfig {
                listener_type: ListenerType::DomainSocket,
                timeout: 200,
                socket_path: default_socket_path(),
                idle_timeout: DEFAULT_IDLE_TIMEOUT_MS,
            },
            authenticators: vec![AuthenticatorConfig::new(
                AuthenticatorType::UnixPeerCredentials,
            )],
            key_manager: vec![KeyManagerConfig {
                name: "sqlite-manager".to_owned(),
                manager_type: KeyManagerType::SQLite,
                sqlite_db_path: PathBuf::from(DEFAULT_SQLITE_DB_PATH),
                store_path: PathBuf::from(DEFAULT_ON_DISK_STORE_PATH),
            }],
            provider: vec![ProviderConfig {
                name: None,
                key_info_manager: "sqlite-manager".to_owned(),
                kind: ProviderKind::OpenSsl(OpenSslConfig::default()),
            }],
            unknown_keys: Vec::new(),
        }
    }

    /// The admin application names of every authenticator (`authenticator.admins`), in file
    /// order.
    pub fn admins(&self) -> Vec<String> {
        self.authenticators
            .iter()
            .flat_map(|auth| auth.admins.iter().map(|admin| admin.name.clone()))
            .collect()
    }

    /// The path of `key` of the `index`th authenticator in messages: `authenticator.key` with
    /// one authenticator (upstream's table), `authenticator[index].key` with several.
    pub fn authenticator_key(&self, index: usize, key: &str) -> String {
        authenticator_key(self.authenticators.len(), index, key)
    }

    /// The `[[key_manager]]` called `name`.
    pub fn key_manager(&self, name: &str) -> Option<&KeyManagerConfig> {
        self.key_manager.iter().find(|km| km.name == name)
    }

    /// The `[[key_manager]]` a provider uses (always `Some` in a validated configuration).
    pub fn key_manager_of(&self, provider: &ProviderConfig) -> Option<&KeyManagerConfig> {
        self.key_manager(&provider.key_info_manager)
    }

    /// Checks the rules that serde cannot: positive sizes and timeout, JwtSvid endpoint, unique
    /// key manager and provider names, at least one provider, at most one of MbedCrypto and
    /// OpenSsl, `key_info_manager` naming a key manager, well-formed `hex:` secrets. Called by
    /// [`Config::parse`]; useful for configurations built in code.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let core = &self.core_settings;
        if self.listener.timeout == 0 {
            return Err(ConfigError::invalid(
                "listener.timeout",
                "must be greater than 0 (it is in milliseconds)",
            ));
        }
        for (key, value) in [
            ("body_len_limit", core.body_len_limit),
            ("thread_pool_size", core.thread_pool_size),
            ("max_connections", core.max_connections),
            ("max_requests_in_flight", core.max_requests_in_flight),
            ("max_key_name_len", core.max_key_name_len),
            ("max_keys_per_client", core.max_keys_per_client),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    format!("core_settings.{key}"),
                    "must be greater than 0",
                ));
            }
        }
        for (key, value) in [
            (
                "max_connections_per_client",
                core.max_connections_per_client,
            ),
            (
                "max_requests_in_flight_per_client",
                core.max_requests_in_flight_per_client,
            ),
        ] {
            if value == Some(0) {
                return Err(ConfigError::invalid(
                    format!("core_settings.{key}"),
                    "must be greater than 0",
                ));
            }
        }

        for (i, auth) in self.authenticators.iter().enumerate() {
            auth.validate_tokens(|key| self.authenticator_key(i, key))?;
            if let Some(first) = self.authenticators[..i]
                .iter()
                .position(|other| other.auth_type == auth.auth_type)
            {
                return Err(ConfigError::invalid(
                    self.authenticator_key(i, "auth_type"),
                    format!(
                        "{} is configured twice (also authenticator[{first}]): one \
                         authenticator per auth type",
                        auth.auth_type
                    ),
                ));
            }
            if auth.auth_type == AuthenticatorType::Direct
                && self.authenticators.len() > 1
                && !auth.allow_with_other_authenticators
            {
                return Err(ConfigError::invalid(
                    self.authenticator_key(i, "auth_type"),
                    "Direct beside other authenticators lets any client claim any Direct name; \
                     set allow_with_other_authenticators = true in this table to accept that",
                ));
            }
        }

        let mut km_names: HashMap<&str, usize> = HashMap::new();
        for (i, km) in self.key_manager.iter().enumerate() {
            if let Some(first) = km_names.insert(&km.name, i) {
                return Err(ConfigError::invalid(
                    format!("key_manager[{i}].name"),
                    format!(
                        "\"{}\" is already the name of key_manager[{first}]; key manager names \
                         must be unique",
                        km.name
                    ),
                ));
            }
        }

        if self.provider.is_empty() {
            return Err(ConfigError::invalid(
                "provider",
                "at least one [[provider]] is required",
            ));
        }
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut id_one: Option<(usize, ProviderType)> = None;
        for (i, provider) in self.provider.iter().enumerate() {
            let ty = provider.provider_type();
            let name = provider.name();
            if provider.name.is_some() && name.is_empty() {
                return Err(ConfigError::invalid(
                    format!("provider[{i}].name"),
                    "must not be empty",
                ));
            }
            if let Some(first) = names.insert(name, i) {
                let reason = match provider.name {
                    Some(_) => format!(
                        "\"{name}\" is already the name of provider[{first}]; provider names \
                         must be unique"
                    ),
                    None => format!(
                        "the default name \"{name}\" of provider_type \"{ty}\" is already the \
                         name of provider[{first}]; give this provider a distinct name, as \
                         provider names must be unique"
                    ),
                };
                return Err(ConfigError::invalid(format!("provider[{i}].name"), reason));
            }
            if ty.provider_id() == ProviderId::MbedCrypto {
                if let Some((first, first_ty)) = id_one {
                    return Err(ConfigError::invalid(
                        format!("provider[{i}].provider_type"),
                        format!(
                            "\"{ty}\" cannot be configured together with provider[{first}] \
                             (\"{first_ty}\"): both answer as provider id 1, so at most one \
                             MbedCrypto or OpenSsl provider is allowed"
                        ),
                    ));
                }
                id_one = Some((i, ty));
            }
            if self.key_manager_of(provider).is_none() {
                return Err(ConfigError::invalid(
                    format!("provider[{i}].key_info_manager"),
                    format!(
                        "names key manager \"{}\", but no [[key_manager]] has that name",
                        provider.key_info_manager
                    ),
                ));
            }
            provider.validate_secrets(i)?;
        }
        Ok(())
    }
}

impl ProviderConfig {
    fn validate_secrets(&self, index: usize) -> Result<(), ConfigError> {
        let secrets: Vec<(&str, &SecretString)> = match &self.kind {
            ProviderKind::Pkcs11(p) => p.user_pin.iter().map(|s| ("user_pin", s)).collect(),
            ProviderKind::Tpm(t) => {
                std::iter::once(("owner_hierarchy_auth", &t.owner_hierarchy_auth))
                    .chain(
                        t.endorsement_hierarchy_auth
                            .iter()
                            .map(|s| ("endorsement_hierarchy_auth", s)),
                    )
                    .collect()
            }
            _ => Vec::new(),
        };
        for (key, secret) in secrets {
            if let Err(e) = secret.decode() {
                return Err(ConfigError::invalid(
                    format!("provider[{index}].{key}"),
                    e.to_string(),
                ));
            }
        }
        Ok(())
    }
}

/// The file as serde reads it; providers and key managers get their type-specific shape after.
#[derive(Deserialize)]
struct RawConfig {
    core_settings: CoreSettings,
    listener: ListenerConfig,
    authenticator: OneOrMany<AuthenticatorConfig>,
    #[serde(default)]
    key_manager: Vec<RawKeyManager>,
    #[serde(default)]
    provider: Vec<RawProvider>,
}

#[derive(Deserialize)]
struct RawKeyManager {
    name: String,
    manager_type: KeyManagerType,
    #[serde(default)]
    sqlite_db_path: Option<PathBuf>,
    #[serde(default)]
    store_path: Option<PathBuf>,
}

/// Every key any provider type reads; `provider_type` decides which matter.
#[derive(Deserialize)]
struct RawProvider {
    provider_type: ProviderType,
    #[serde(default)]
    name: Option<String>,
    key_info_manager: String,
    // Pkcs11
    #[serde(default)]
    library_path: Option<PathBuf>,
    #[serde(default)]
    slot_number: Option<u64>,
    #[serde(default)]
    serial_number: Option<String>,
    #[serde(default)]
    user_pin: Option<SecretString>,
    #[serde(default)]
    software_public_operations: Option<bool>,
    #[serde(default)]
    allow_export: Option<bool>,
    // Tpm
    #[serde(default)]
    tcti: Option<String>,
    #[serde(default)]
    owner_hierarchy_auth: Option<SecretString>,
    #[serde(default)]
    endorsement_hierarchy_auth: Option<SecretString>,
    #[serde(default)]
    skip_if_no_tpm: Option<bool>,
    // CryptoAuthLib
    #[serde(default)]
    device_type: Option<String>,
    #[serde(default)]
    iface_type: Option<String>,
    #[serde(default)]
    wake_delay: Option<u16>,
    #[serde(default)]
    rx_retries: Option<i32>,
    #[serde(default)]
    slave_address: Option<u8>,
    #[serde(default)]
    bus: Option<u8>,
    #[serde(default)]
    baud: Option<u32>,
    #[serde(default)]
    access_key_file_name: Option<PathBuf>,
    // OpenSsl
    #[serde(default)]
    kek_path: Option<PathBuf>,
}

impl RawConfig {
    fn into_config(self, mut unknown_keys: Vec<String>) -> Result<Config, ConfigError> {
        let authenticators = self.authenticator.0;
        let path = |i: usize, key: &str| authenticator_key(authenticators.len(), i, key);
        for (i, auth) in authenticators.iter().enumerate() {
            if auth.auth_type != AuthenticatorType::JwtSvid && auth.workload_endpoint.is_some() {
                unknown_keys.push(path(i, "workload_endpoint"));
            }
            if auth.auth_type != AuthenticatorType::Direct && auth.allow_with_other_authenticators {
                unknown_keys.push(path(i, "allow_with_other_authenticators"));
            }
        }
        let key_manager = self
            .key_manager
            .into_iter()
            .enumerate()
            .map(|(i, km)| km.into_config(i, &mut unknown_keys))
            .collect();
        let provider = self
            .provider
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.into_config(i, &mut unknown_keys))
            .collect::<Result<_, _>>()?;
        // serde_ignored reports in the deserializer's order, not the file's: sort for a stable
        // list.
        unknown_keys.sort();
        Ok(Config {
            core_settings: self.core_settings,
            listener: self.listener,
            authenticators,
            key_manager,
            provider,
            unknown_keys,
        })
    }
}

impl RawKeyManager {
    fn into_config(self, index: usize, unknown_keys: &mut Vec<String>) -> KeyManagerConfig {
        let unused = match self.manager_type {
            KeyManagerType::SQLite => self.store_path.as_ref().map(|_| "store_path"),
            KeyManagerType::OnDisk => self.sqlite_db_path.as_ref().map(|_| "sqlite_db_path"),
        };
        if let Some(key) = unused {
            unknown_keys.push(format!("key_manager[{index}].{key}"));
        }
        KeyManagerConfig {
            name: self.name,
            manager_type: self.manager_type,
            sqlite_db_path: self
                .sqlite_db_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_DB_PATH)),
            store_path: self
                .store_path
                .unwrap_or_else(|| PathBuf::from(DEFAULT_ON_DISK_STORE_PATH)),
        }
    }
}

impl RawProvider {
    fn into_config(
        self,
        index: usize,
        unknown_keys: &mut Vec<String>,
    ) -> Result<ProviderConfig, ConfigError> {
        let ty = self.provider_type;
        let present = [
            ("library_path", self.library_path.is_some()),
            ("slot_number", self.slot_number.is_some()),
            ("serial_number", self.serial_number.is_some()),
            ("user_pin", self.user_pin.is_some()),
            (
                "software_public_operations",
                self.software_public_operations.is_some(),
            ),
            ("allow_export", self.allow_export.is_some()),
            ("tcti", self.tcti.is_some()),
            ("owner_hierarchy_auth", self.owner_hierarchy_auth.is_some()),
            (
                "endorsement_hierarchy_auth",
                self.endorsement_hierarchy_auth.is_some(),
            ),
            ("skip_if_no_tpm", self.skip_if_no_tpm.is_some()),
            ("device_type", self.device_type.is_some()),
            ("iface_type", self.iface_type.is_some()),
            ("wake_delay", self.wake_delay.is_some()),
            ("rx_retries", self.rx_retries.is_some()),
            ("slave_address", self.slave_address.is_some()),
            ("bus", self.bus.is_some()),
            ("baud", self.baud.is_some()),
            ("access_key_file_name", self.access_key_file_name.is_some()),
            ("kek_path", self.kek_path.is_some()),
        ];
        for (key, is_present) in present {
            if is_present && !ty.specific_keys().contains(&key) {
                unknown_keys.push(format!("provider[{index}].{key}"));
            }
        }

        let required = |key: &str| {
            ConfigError::invalid(
                format!("provider[{index}].{key}"),
                format!("is required when provider_type is \"{ty}\", but it is missing"),
            )
        };
        let kind = match ty {
            ProviderType::MbedCrypto => ProviderKind::MbedCrypto,
            ProviderType::TrustedService => ProviderKind::TrustedService,
            ProviderType::Pkcs11 => ProviderKind::Pkcs11(Pkcs11Config {
                library_path: self.library_path.ok_or_else(|| required("library_path"))?,
                slot_number: self.slot_number,
                serial_number: self.serial_number,
                user_pin: self.user_pin,
                software_public_operations: self.software_public_operations.unwrap_or(false),
                allow_export: self.allow_export.unwrap_or(true),
            }),
            ProviderType::Tpm => ProviderKind::Tpm(TpmConfig {
                tcti: self.tcti.ok_or_else(|| required("tcti"))?,
                owner_hierarchy_auth: self
                    .owner_hierarchy_auth
                    .ok_or_else(|| required("owner_hierarchy_auth"))?,
                endorsement_hierarchy_auth: self.endorsement_hierarchy_auth,
                skip_if_no_tpm: self.skip_if_no_tpm.unwrap_or(false),
            }),
            ProviderType::CryptoAuthLib => ProviderKind::CryptoAuthLib(CryptoAuthLibConfig {
                device_type: self.device_type.ok_or_else(|| required("device_type"))?,
                iface_type: self.iface_type.ok_or_else(|| required("iface_type"))?,
                wake_delay: self.wake_delay,
                rx_retries: self.rx_retries,
                slave_address: self.slave_address,
                bus: self.bus,
                baud: self.baud,
                access_key_file_name: self.access_key_file_name,
            }),
            ProviderType::OpenSsl => ProviderKind::OpenSsl(OpenSslConfig {
                kek_path: self.kek_path,
            }),
        };
        Ok(ProviderConfig {
            name: self.name,
            key_info_manager: self.key_info_manager,
            kind,
        })
    }
}

/// A serde error, with the key's path and the value's location.
fn type_error(text: &str, error: serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    let mut key = String::new();
    for segment in error.path() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                let _ = write!(key, "[{index}]");
            }
            serde_path_to_error::Segment::Map { key: name } => push_key(&mut key, name),
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    let inner = error.inner();
    let location = inner
        .span()
        .map(|span| Location::of_offset(text, span.start));
    let message = inner.message();
    // serde says "missing field `timeout`" at the table; name the key itself instead.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'));
    match missing {
        Some(field) => {
            push_key(&mut key, field);
            ConfigError::Type {
                key,
                message: "this required key is missing".to_owned(),
                location,
            }
        }
        None => ConfigError::Type {
            key: if key.is_empty() { ".".to_owned() } else { key },
            message: plain_serde_message(message),
            location,
        },
    }
}

/// serde's wording with Rust names replaced by the file's notions.
fn plain_serde_message(message: &str) -> String {
    let message = match message.strip_prefix("unknown variant ") {
        Some(rest) => format!("unknown value {rest}"),
        None => message.to_owned(),
    };
    match message.find("expected struct ") {
        Some(at) => format!("{}expected a table", &message[..at]),
        None => message,
    }
}

/// Appends `.name` (or `name` at the start), quoting names that are not bare TOML keys.
fn push_key(path: &mut String, name: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        path.push_str(name);
    } else {
        let _ = write!(path, "{name:?}");
    }
}

fn write_ignored_path(out: &mut String, path: &serde_ignored::Path<'_>) {
    match path {
        serde_ignored::Path::Root => {}
        serde_ignored::Path::Seq { parent, index } => {
            write_ignored_path(out, parent);
            let _ = write!(out, "[{index}]");
        }
        serde_ignored::Path::Map { parent, key } => {
            write_ignored_path(out, parent);
            push_key(out, key);
        }
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => write_ignored_path(out, parent),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Upstream Parsec 1.5.0's config.toml as shipped (abridged comments), plus an unknown key.
    const UPSTREAM_SAMPLE: &str = r#"
# Parsec Configuration File

# (Required) Core settings apply to the service as a whole rather than to individual components within it.
[core_settings]
# Whether or not to allow the service to run as the root user. If this is false, the service will refuse to
# start if it is run as root. If this is true, then the check is skipped.
#allow_root = false
# Size of the thread pool used for processing requests. Defaults to the number of processors on
# the machine.
#thread_pool_size = 8

# Duration of sleep between polls of the listener. A sleep is necessary for the polling
# thread to allow other threads to run.
#idle_listener_sleep_duration = 10 # in milliseconds

# Log level to be applied across the service. Can be overwritten for certain modules which have the same
# configuration key. Possible values: "debug", "info", "warn", "error", "trace"
# WARNING: This option will not be updated if the configuration is reloaded with a different one.
#log_level = "warn"

# Control whether log entries contain a timestamp.
#log_timestamp = false

# Decide how large (in bytes) request bodies can be before they get rejected automatically.
# Defaults to 1MB.
#body_len_limit = 1048576

# Decide whether detailed information about errors occuring should be included in log messages.
# WARNING: the details might include sensitive information about the keys used by Parsec clients,
# such as key names or policies
#log_error_details = false

# Decide how large (in bytes) buffers inside responses from this provider can be. Requests that ask
# for buffers larger than this threshold will be rejected. Defaults to 1MB.
#buffer_size_limit = 1048576

# Allow the service to generate keys with deprecated primitives.
#allow_deprecated = false

# Not an upstream key: accepted and reported.
foo = "bar"

# (Required) Configuration for the service IPC listener component.
[listener]
# (Required) Type of IPC that the service will support.
listener_type = "DomainSocket"

# (Required) Timeout of the read and write operations on the IPC channel. After the
# timeout expires, the connection is dropped.
timeout = 200 # in milliseconds

# Specify the Unix Domain Socket path. The path is fixed and should not be changed. Before changing it please
# read the following note.
#socket_path = "/run/parsec/parsec.sock"

# (Required) Authenticator configuration.
# WARNING: the authenticator MUST NOT be changed if you already have keys stored in Parsec.
[authenticator]
# (Required) Type of authenticator that will be used to authenticate clients' authentication
# payloads.
# Possible values: "Direct", "UnixPeerCredentials" and "JwtSvid".
auth_type = "UnixPeerCredentials"

# List of admins to be identified by the authenticator.
#admins = [ { name = "admin_1" }, { name = "admin_2" } ]

# (Required only for JwtSvid) Location of the Workload API endpoint
#workload_endpoint="unix:///run/spire/sockets/agent.sock"

# (Required) Configuration for the components managing key info for providers.
# Defined as an array of tables: https://github.com/toml-lang/toml#user-content-array-of-tables
[[key_manager]]
# (Required) Name of the key info manager. Used to tie providers to the manager supporting them.
name = "sqlite-manager"

# (Required) Type of key info manager to be used.
# Possible values: "SQLite", "OnDisk"
# NOTE: The SQLite KIM is now the recommended type, with the OnDisk KIM to be deprecated at some
# point in the future.
manager_type = "SQLite"

# Path to the location where the database will be persisted
#store_path = "/var/lib/parsec/kim-mappings/sqlite/sqlite-key-info-manager.sqlite3"

# Example of an on-disk KIM manager configuration.
#[[key_manager]]
#name = "on-disk-manager"
#manager_type = "OnDisk"
#store_path = "/var/lib/parsec/mappings"

# Provider configs
[[provider]]
# WARNING: Provider name cannot change.
#name = "mbed-crypto-provider"

# (Required) Type of provider.
provider_type = "MbedCrypto"

# (Required) Name of key info manager that will support this provider.
key_info_manager = "sqlite-manager"

# Example of a PKCS 11 provider configuration
#[[provider]]
#provider_type = "Pkcs11"
#key_info_manager = "sqlite-manager"
#library_path = "/usr/local/lib/softhsm/libsofthsm2.so"
#slot_number = 123456789
#serial_number = "4b0e9ee7b3ee6e7c"
#user_pin = "123456"
#software_public_operations = false
#allow_export = true

# Example of a TPM provider configuration
#[[provider]]
#provider_type = "Tpm"
#key_info_manager = "sqlite-manager"
#tcti = "mssim:host=localhost,port=2321"
#owner_hierarchy_auth = ""
#skip_if_no_tpm = false
"#;

    /// Every upstream key set, every provider type but OpenSsl.
    const UPSTREAM_FULL: &str = r#"
[core_settings]
allow_root = true
thread_pool_size = 3
idle_listener_sleep_duration = 25
log_level = "WARN"
log_timestamp = true
body_len_limit = 4096
log_error_details = true
buffer_size_limit = 8192
allow_deprecated = true

[listener]
listener_type = "DomainSocket"
timeout = 50
socket_path = "/tmp/parsec/parsec.sock"

[authenticator]
auth_type = "JwtSvid"
admins = [ { name = "spiffe://example.org/admin" }, { name = "spiffe://example.org/root" } ]
workload_endpoint = "unix:///run/spire/sockets/agent.sock"

[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "/tmp/parsec/kim.sqlite3"
store_path = "/tmp/parsec/ignored"

[[key_manager]]
name = "on-disk-manager"
manager_type = "OnDisk"
store_path = "/tmp/parsec/mappings"

[[provider]]
provider_type = "MbedCrypto"
key_info_manager = "sqlite-manager"

[[provider]]
name = "hsm"
provider_type = "Pkcs11"
key_info_manager = "on-disk-manager"
library_path = "/usr/local/lib/softhsm/libsofthsm2.so"
slot_number = 123456789
serial_number = "4b0e9ee7b3ee6e7c"
user_pin = "917364"
software_public_operations = true
allow_export = false

[[provider]]
provider_type = "Tpm"
key_info_manager = "sqlite-manager"
tcti = "mssim:host=localhost,port=2321"
owner_hierarchy_auth = "hex:74706d5f70617373"
endorsement_hierarchy_auth = "str:ek-secret"
skip_if_no_tpm = true

[[provider]]
provider_type = "CryptoAuthLib"
key_info_manager = "sqlite-manager"
device_type = "atecc608a"
iface_type = "i2c"
wake_delay = 1500
rx_retries = 20
slave_address = 0xc0
bus = 1
baud = 400000
access_key_file_name = "/etc/parsec/cal-access-keys.toml"

[[provider]]
provider_type = "TrustedService"
key_info_manager = "sqlite-manager"
"#;

    const KM: &str = r#"
[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
"#;

    /// A minimal file with `core`, `listener`, `auth` tables and providers appended.
    fn file(core: &str, listener: &str, auth: &str, rest: &str) -> String {
        format!("[core_settings]\n{core}\n[listener]\n{listener}\n[authenticator]\n{auth}\n{rest}")
    }

    fn with_providers(providers: &str) -> String {
        file(
            "",
            "listener_type = \"DomainSocket\"\ntimeout = 200",
            "auth_type = \"UnixPeerCredentials\"",
            &format!("{KM}\n{providers}"),
        )
    }

    const MBED: &str = r#"
[[provider]]
provider_type = "MbedCrypto"
key_info_manager = "sqlite-manager"
"#;

    fn err(text: &str) -> ConfigError {
        match Config::parse(text) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(e) => e,
        }
    }

    fn assert_err(text: &str, key: &str, fragments: &[&str]) {
        let e = err(text);
        let message = e.to_string();
        assert_eq!(e.key(), Some(key), "{message}");
        assert!(message.starts_with(&format!("{key}: ")), "{message}");
        for fragment in fragments {
            assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
        }
    }

    /// A minimal file with `[[authenticator]]` tables (each given as its lines) and Mbed.
    fn with_authenticators(tables: &[&str]) -> String {
        let mut text = String::from(
            "[core_settings]\n[listener]\nlistener_type = \"DomainSocket\"\ntimeout = 200\n",
        );
        for table in tables {
            text.push_str(&format!("[[authenticator]]\n{table}\n"));
        }
        format!("{text}{KM}{MBED}")
    }

    #[test]
    fn several_authenticators_are_kept_in_file_order() {
        let config = Config::parse(&with_authenticators(&[
            "auth_type = \"UnixPeerCredentials\"\nadmins = [{ name = \"0\" }]",
            "auth_type = \"Direct\"\nallow_with_other_authenticators = true\nadmins = [{ name = \"ops\" }]",
        ]))
        .unwrap();
        let types: Vec<_> = config.authenticators.iter().map(|a| a.auth_type).collect();
        assert_eq!(
            types,
            [
                AuthenticatorType::UnixPeerCredentials,
                AuthenticatorType::Direct
            ]
        );
        assert_eq!(config.admins(), ["0", "ops"]);
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        // One table in the array form is the same as upstream's table.
        let one = Config::parse(&with_authenticators(&["auth_type = \"Direct\""])).unwrap();
        let table = Config::parse(&file(
            "",
            "listener_type = \"DomainSocket\"\ntimeout = 200",
            "auth_type = \"Direct\"",
            &format!("{KM}{MBED}"),
        ))
        .unwrap();
        assert_eq!(one, table);
    }

    #[test]
    fn one_authenticator_per_type_and_direct_beside_others_only_when_allowed() {
        assert_err(
            &with_authenticators(&[
                "auth_type = \"UnixPeerCredentials\"",
                "auth_type = \"UnixPeerCredentials\"",
            ]),
            "authenticator[1].auth_type",
            &["configured twice", "authenticator[0]"],
        );
        assert_err(
            &with_authenticators(&[
                "auth_type = \"UnixPeerCredentials\"",
                "auth_type = \"Direct\"",
            ]),
            "authenticator[1].auth_type",
            &[
                "any client claim any Direct name",
                "allow_with_other_authenticators",
            ],
        );
        // The setting means nothing on other authenticators: reported as unknown.
        let config = Config::parse(&with_authenticators(&[
            "auth_type = \"UnixPeerCredentials\"\nallow_with_other_authenticators = true",
            "auth_type = \"Direct\"\nallow_with_other_authenticators = true",
        ]))
        .unwrap();
        assert_eq!(
            config.unknown_keys,
            ["authenticator[0].allow_with_other_authenticators"]
        );
        // Errors inside the array name the table.
        assert_err(
            &with_authenticators(&["auth_type = \"Direct\"", "auth_type = \"Password\""]),
            "authenticator[1].auth_type",
            &["`Password`"],
        );
        assert_err(
            &with_authenticators(&[
                "auth_type = \"UnixPeerCredentials\"",
                "auth_type = \"JwtSvid\"",
            ]),
            "authenticator[1].workload_endpoint",
            &["required when auth_type is \"JwtSvid\""],
        );
    }

    #[test]
    fn upstream_sample_loads_unchanged() {
        let config = Config::parse(UPSTREAM_SAMPLE).unwrap();
        assert_eq!(config.unknown_keys, ["core_settings.foo"]);
        assert_eq!(config.core_settings, CoreSettings::default());
        assert_eq!(config.listener.listener_type, ListenerType::DomainSocket);
        assert_eq!(
            config.listener.timeout_duration(),
            Duration::from_millis(200)
        );
        assert_eq!(config.listener.socket_path, Path::new(DEFAULT_SOCKET_PATH));
        assert_eq!(
            config.authenticators[0].auth_type,
            AuthenticatorType::UnixPeerCredentials
        );
        assert!(config.admins().is_empty());
        assert_eq!(config.key_manager.len(), 1);
        assert_eq!(config.key_manager[0].manager_type, KeyManagerType::SQLite);
        assert_eq!(
            config.key_manager[0].store_location(),
            Path::new(DEFAULT_SQLITE_DB_PATH)
        );
        assert_eq!(config.provider.len(), 1);
        assert_eq!(config.provider[0].name(), "mbed-crypto-provider");
        assert_eq!(config.provider[0].provider_id(), ProviderId::MbedCrypto);
    }

    #[test]
    fn every_upstream_key_is_read() {
        let config = Config::parse(UPSTREAM_FULL).unwrap();
        assert_eq!(
            config.unknown_keys,
            ["key_manager[0].store_path"],
            "store_path means nothing to a SQLite manager"
        );
        let core = &config.core_settings;
        assert!(core.allow_root && core.log_timestamp && core.log_error_details);
        assert!(core.allow_deprecated);
        assert_eq!(core.thread_pool_size, 3);
        assert_eq!(core.idle_listener_sleep_duration, 25);
        assert_eq!(core.log_level, Some(LogLevel::Warn));
        assert_eq!((core.body_len_limit, core.buffer_size_limit), (4096, 8192));
        assert_eq!(config.listener.timeout, 50);
        assert_eq!(
            config.listener.socket_path,
            Path::new("/tmp/parsec/parsec.sock")
        );
        assert_eq!(
            config.authenticators[0].auth_type,
            AuthenticatorType::JwtSvid
        );
        assert_eq!(
            config.authenticators[0].auth_type.auth_type(),
            AuthType::JwtSvid
        );
        assert_eq!(
            config.admins(),
            ["spiffe://example.org/admin", "spiffe://example.org/root"]
        );
        assert_eq!(
            config.authenticators[0].workload_endpoint.as_deref(),
            Some("unix:///run/spire/sockets/agent.sock")
        );

        let on_disk = config.key_manager("on-disk-manager").unwrap();
        assert_eq!(on_disk.store_location(), Path::new("/tmp/parsec/mappings"));
        assert_eq!(
            config.key_manager[0].sqlite_db_path,
            Path::new("/tmp/parsec/kim.sqlite3")
        );

        let names: Vec<&str> = config.provider.iter().map(ProviderConfig::name).collect();
        assert_eq!(
            names,
            [
                "mbed-crypto-provider",
                "hsm",
                "tpm-provider",
                "cryptoauthlib-provider",
                "trusted-service-provider"
            ]
        );
        let ids: Vec<u8> = config
            .provider
            .iter()
            .map(|p| p.provider_id().value())
            .collect();
        assert_eq!(ids, [1, 2, 3, 5, 4]);

        let ProviderKind::Pkcs11(pkcs11) = &config.provider[1].kind else {
            panic!("not PKCS #11")
        };
        assert_eq!(
            config.key_manager_of(&config.provider[1]).unwrap().name,
            "on-disk-manager"
        );
        assert_eq!(
            pkcs11.library_path,
            Path::new("/usr/local/lib/softhsm/libsofthsm2.so")
        );
        assert_eq!(pkcs11.slot_number, Some(123_456_789));
        assert_eq!(pkcs11.serial_number.as_deref(), Some("4b0e9ee7b3ee6e7c"));
        assert_eq!(pkcs11.user_pin.as_ref().unwrap().expose(), "917364");
        assert!(pkcs11.software_public_operations);
        assert!(!pkcs11.allow_export);

        let ProviderKind::Tpm(tpm) = &config.provider[2].kind else {
            panic!("not TPM")
        };
        assert_eq!(tpm.tcti, "mssim:host=localhost,port=2321");
        assert_eq!(&*tpm.owner_hierarchy_auth.decode().unwrap(), b"tpm_pass");
        assert_eq!(
            &*tpm
                .endorsement_hierarchy_auth
                .as_ref()
                .unwrap()
                .decode()
                .unwrap(),
            b"ek-secret"
        );
        assert!(tpm.skip_if_no_tpm);

        let ProviderKind::CryptoAuthLib(cal) = &config.provider[3].kind else {
            panic!("not CAL")
        };
        assert_eq!(
            cal,
            &CryptoAuthLibConfig {
                device_type: "atecc608a".to_owned(),
                iface_type: "i2c".to_owned(),
                wake_delay: Some(1500),
                rx_retries: Some(20),
                slave_address: Some(0xc0),
                bus: Some(1),
                baud: Some(400_000),
                access_key_file_name: Some(PathBuf::from("/etc/parsec/cal-access-keys.toml")),
            }
        );
        assert_eq!(config.provider[4].kind, ProviderKind::TrustedService);
    }

    #[test]
    fn embedded_default_parses_and_matches_its_description() {
        let parsed = Config::parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(parsed, Config::builtin_default());
        assert_eq!(Config::embedded_default(), parsed);
        assert!(parsed.unknown_keys.is_empty());
        assert!(!parsed.core_settings.allow_root);
        assert_eq!(parsed.listener.timeout, 200);
        assert_eq!(
            parsed.listener.socket_path,
            Path::new("/run/parsec/parsec.sock")
        );
        assert_eq!(
            parsed.authenticators[0].auth_type,
            AuthenticatorType::UnixPeerCredentials
        );
        assert_eq!(parsed.key_manager[0].manager_type, KeyManagerType::SQLite);
        assert_eq!(
            parsed.key_manager[0].sqlite_db_path,
            Path::new(DEFAULT_SQLITE_DB_PATH)
        );
        assert_eq!(parsed.provider.len(), 1);
        assert_eq!(parsed.provider[0].provider_type(), ProviderType::OpenSsl);
        assert_eq!(parsed.provider[0].name(), "openssl-provider");
        assert_eq!(
            parsed.provider[0].kind,
            ProviderKind::OpenSsl(OpenSslConfig { kek_path: None })
        );
        assert_eq!(
            OpenSslConfig::default().kek_path_or_default(&parsed.key_manager[0]),
            Path::new(DEFAULT_SQLITE_DB_PATH)
                .parent()
                .unwrap()
                .join(DEFAULT_KEK_FILE_NAME)
        );
    }

    #[test]
    fn defaults_are_applied() {
        let config = Config::parse(&with_providers(MBED)).unwrap();
        let core = &config.core_settings;
        assert!(!core.allow_root);
        assert_eq!(core.thread_pool_size, available_cpus().max(2));
        assert_eq!(core.idle_listener_sleep_duration, 10);
        assert_eq!(core.log_level, None);
        assert!(!core.log_timestamp);
        assert_eq!(core.body_len_limit, 1_048_576);
        assert!(!core.log_error_details);
        assert_eq!(core.buffer_size_limit, 1_048_576);
        assert!(!core.allow_deprecated);
        assert_eq!(core.max_connections, 1024);
        assert_eq!(core.max_requests_in_flight, 4 * available_cpus());
        assert_eq!(core.log_format, LogFormat::Text);
        assert_eq!(config.listener.socket_path, Path::new(DEFAULT_SOCKET_PATH));
        assert!(config.authenticators[0].admins.is_empty());
        assert_eq!(config.authenticators[0].workload_endpoint, None);
        let km = &config.key_manager[0];
        assert_eq!(km.sqlite_db_path, Path::new(DEFAULT_SQLITE_DB_PATH));
        assert_eq!(km.store_path, Path::new(DEFAULT_ON_DISK_STORE_PATH));
        assert!(config.unknown_keys.is_empty());

        let pkcs11 = Config::parse(&with_providers(
            r#"
[[provider]]
provider_type = "Pkcs11"
key_info_manager = "sqlite-manager"
library_path = "/lib/p11.so"
"#,
        ))
        .unwrap();
        let ProviderKind::Pkcs11(p) = &pkcs11.provider[0].kind else {
            panic!("not PKCS #11")
        };
        assert!(p.allow_export);
        assert!(!p.software_public_operations);
        assert_eq!((p.slot_number, p.user_pin.as_ref()), (None, None));
    }

    #[test]
    fn bulwark_core_settings_are_read() {
        let config = Config::parse(&file(
            "max_connections = 7\nmax_requests_in_flight = 9\nlog_format = \"json\"\nlog_level = \"Debug\"",
            "listener_type = \"DomainSocket\"\ntimeout = 1",
            "auth_type = \"Direct\"\nadmins = [{ name = \"alice\" }]",
            &format!("{KM}{MBED}"),
        ))
        .unwrap();
        let core = &config.core_settings;
        assert_eq!((core.max_connections, core.max_requests_in_flight), (7, 9));
        assert_eq!(core.log_format, LogFormat::Json);
        assert_eq!(core.log_level, Some(LogLevel::Debug));
        assert_eq!(config.admins(), ["alice"]);
    }

    #[test]
    fn audit_log_is_off_journal_or_a_file_next_to_the_store_by_default() {
        let parse = |core: &str| {
            Config::parse(&file(
                core,
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                &format!("{KM}{MBED}"),
            ))
        };
        let audit = |core: &str| {
            let config = parse(core).unwrap();
            let km = config.key_manager_of(&config.provider[0]).unwrap().clone();
            config.core_settings.audit_log_or_default(&km)
        };
        assert_eq!(
            audit(""),
            AuditLogSetting::File(PathBuf::from(
                "/var/lib/parsec/kim-mappings/sqlite/bulwark-audit.log"
            ))
        );
        assert_eq!(audit("audit_log = \"off\""), AuditLogSetting::Off);
        assert_eq!(audit("audit_log = \"Journal\""), AuditLogSetting::Journal);
        assert_eq!(
            audit("audit_log = \"/var/log/bulwark/audit.log\""),
            AuditLogSetting::File(PathBuf::from("/var/log/bulwark/audit.log"))
        );
        let e = parse("audit_log = \"\"").unwrap_err();
        assert_eq!(e.key(), Some("core_settings.audit_log"), "{e}");
        assert!(e.to_string().contains("\"journal\""), "{e}");
        assert!(parse("audit_log = \"off\"")
            .unwrap()
            .unknown_keys
            .is_empty());
    }

    #[test]
    fn openssl_provider_and_its_kek_path() {
        let config = Config::parse(&with_providers(
            r#"
[[provider]]
provider_type = "OpenSsl"
key_info_manager = "sqlite-manager"
"#,
        ))
        .unwrap();
        let provider = &config.provider[0];
        assert_eq!(provider.name(), "openssl-provider");
        assert_eq!(provider.provider_id(), ProviderId::MbedCrypto);
        let ProviderKind::OpenSsl(openssl) = &provider.kind else {
            panic!("not OpenSSL")
        };
        let km = config.key_manager_of(provider).unwrap();
        assert_eq!(
            openssl.kek_path_or_default(km),
            Path::new("/var/lib/parsec/kim-mappings/sqlite/openssl-provider.kek")
        );

        let explicit = Config::parse(&with_providers(
            r#"
[[provider]]
provider_type = "OpenSsl"
key_info_manager = "sqlite-manager"
kek_path = "/etc/bulwark/kek"
"#,
        ))
        .unwrap();
        let ProviderKind::OpenSsl(openssl) = &explicit.provider[0].kind else {
            panic!("not OpenSSL")
        };
        assert_eq!(
            openssl.kek_path.as_deref(),
            Some(Path::new("/etc/bulwark/kek"))
        );
    }

    #[test]
    fn provider_ids_follow_the_spec() {
        let ids: Vec<(ProviderType, u8)> = ProviderType::ALL
            .into_iter()
            .map(|t| (t, t.provider_id().value()))
            .collect();
        assert_eq!(
            ids,
            [
                (ProviderType::MbedCrypto, 1),
                (ProviderType::Pkcs11, 2),
                (ProviderType::Tpm, 3),
                (ProviderType::CryptoAuthLib, 5),
                (ProviderType::TrustedService, 4),
                (ProviderType::OpenSsl, 1),
            ]
        );
    }

    #[test]
    fn keys_of_other_types_and_nested_unknown_keys_are_reported() {
        let text = file(
            "",
            "listener_type = \"DomainSocket\"\ntimeout = 200\nbacklog = 5",
            "auth_type = \"Direct\"\nworkload_endpoint = \"unix:///x\"\nadmins = [{ name = \"a\", role = \"x\" }]",
            &format!(
                "{KM}\n[[provider]]\nprovider_type = \"MbedCrypto\"\nkey_info_manager = \"sqlite-manager\"\nlibrary_path = \"/x.so\"\n\"odd key\" = 1\n\n[extra]\nx = 1\n"
            ),
        );
        let config = Config::parse(&text).unwrap();
        assert_eq!(
            config.unknown_keys,
            [
                "authenticator.admins[0].role",
                "authenticator.workload_endpoint",
                "extra",
                "listener.backlog",
                "provider[0].\"odd key\"",
                "provider[0].library_path",
            ]
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let config = Config::parse(UPSTREAM_FULL).unwrap();
        let debug = format!("{config:?}");
        for secret in ["917364", "74706d5f70617373", "ek-secret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("user_pin: Some(<redacted>)"), "{debug}");
        assert!(
            debug.contains("owner_hierarchy_auth: <redacted>"),
            "{debug}"
        );
        assert_eq!(
            format!("{:?}", SecretString::new("hunter2".to_owned())),
            "<redacted>"
        );
        let pretty = format!("{config:#?}");
        assert!(!pretty.contains("917364") && !pretty.contains("ek-secret"));
    }

    #[test]
    fn secrets_decode_with_prefixes() {
        let s = |t: &str| SecretString::new(t.to_owned());
        assert_eq!(&*s("plain").decode().unwrap(), b"plain");
        assert_eq!(&*s("str:hex:00").decode().unwrap(), b"hex:00");
        assert_eq!(&*s("hex:00fF").decode().unwrap(), &[0x00, 0xff]);
        assert_eq!(&*s("").decode().unwrap(), b"");
        assert_eq!(s("hex:0").decode(), Err(BadHexSecret));
        assert_eq!(s("hex:zz").decode(), Err(BadHexSecret));
    }

    #[test]
    fn syntax_errors_keep_line_and_column() {
        let e = err("[core_settings]\nallow_root = \n");
        let ConfigError::Syntax { location, .. } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(location.map(|l| l.line), Some(2), "{e}");
        assert!(
            e.to_string()
                .starts_with("TOML syntax error (line 2, column"),
            "{e}"
        );
        assert_eq!(e.key(), None);

        let duplicate = err("[core_settings]\nallow_root = true\nallow_root = false\n");
        assert!(
            matches!(duplicate, ConfigError::Syntax { .. }),
            "{duplicate}"
        );
    }

    #[test]
    fn type_errors_name_the_key_and_place() {
        let text = with_providers(
            r#"
[[provider]]
provider_type = "Pkcs11"
key_info_manager = "sqlite-manager"
library_path = "/lib/p11.so"
slot_number = "one"
"#,
        );
        let e = err(&text);
        assert_eq!(e.key(), Some("provider[0].slot_number"), "{e}");
        let line = text
            .lines()
            .position(|l| l.starts_with("slot_number"))
            .unwrap()
            + 1;
        assert!(
            e.to_string().contains(&format!("(line {line}, column 15)")),
            "{e}"
        );
        assert!(e.to_string().contains("invalid type"), "{e}");

        let listener = "listener_type = \"DomainSocket\"\ntimeout = 1";
        assert_err(
            &file(
                "thread_pool_size = -1",
                listener,
                "auth_type = \"Direct\"",
                "",
            ),
            "core_settings.thread_pool_size",
            &["invalid value"],
        );
        assert_err(
            &file(
                "log_level = \"loud\"",
                listener,
                "auth_type = \"Direct\"",
                "",
            ),
            "core_settings.log_level",
            &["\"loud\"", "\"off\"", "\"trace\""],
        );
        assert_err(
            &file(
                "log_format = \"xml\"",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                "",
            ),
            "core_settings.log_format",
            &["`text`", "`json`"],
        );
    }

    #[test]
    fn missing_required_keys_are_named() {
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"",
                "auth_type = \"Direct\"",
                "",
            ),
            "listener.timeout",
            &["required key is missing"],
        );
        assert_err(
            "[listener]\nlistener_type = \"DomainSocket\"\ntimeout = 1\n",
            "core_settings",
            &["required key is missing"],
        );
        assert_err(
            &with_providers("[[provider]]\nprovider_type = \"MbedCrypto\"\n"),
            "provider[0].key_info_manager",
            &["required key is missing"],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\n",
            ),
            "provider[0].library_path",
            &["required when provider_type is \"Pkcs11\""],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\ntcti = \"device\"\n",
            ),
            "provider[0].owner_hierarchy_auth",
            &["required when provider_type is \"Tpm\""],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"CryptoAuthLib\"\nkey_info_manager = \"sqlite-manager\"\ndevice_type = \"always-success\"\n",
            ),
            "provider[0].iface_type",
            &["required"],
        );
    }

    #[test]
    fn unknown_type_names_list_the_accepted_ones() {
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Password\"",
                "",
            ),
            "authenticator.auth_type",
            &[
                "`Password`",
                "`Direct`",
                "`UnixPeerCredentials`",
                "`JwtSvid`",
            ],
        );
        assert_err(
            &file(
                "",
                "listener_type = \"Tcp\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                "",
            ),
            "listener.listener_type",
            &["`Tcp`", "`DomainSocket`"],
        );
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                "[[key_manager]]\nname = \"k\"\nmanager_type = \"Redis\"\n",
            ),
            "key_manager[0].manager_type",
            &["`Redis`", "`SQLite`", "`OnDisk`"],
        );
        assert_err(
            &with_providers(
                "[[provider]]\nprovider_type = \"Hsm\"\nkey_info_manager = \"sqlite-manager\"\n",
            ),
            "provider[0].provider_type",
            &[
                "`Hsm`",
                "`MbedCrypto`",
                "`Pkcs11`",
                "`Tpm`",
                "`CryptoAuthLib`",
                "`TrustedService`",
                "`OpenSsl`",
            ],
        );
    }

    #[test]
    fn provider_names_must_be_unique() {
        let tpm = |name: &str| {
            format!(
                "[[provider]]\n{name}provider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\ntcti = \"device\"\nowner_hierarchy_auth = \"\"\n"
            )
        };
        assert_err(
            &with_providers(&format!("{}{}", tpm(""), tpm(""))),
            "provider[1].name",
            &["default name \"tpm-provider\"", "provider[0]", "unique"],
        );
        assert_err(
            &with_providers(&format!(
                "{MBED}{}",
                tpm("name = \"mbed-crypto-provider\"\n")
            )),
            "provider[1].name",
            &["\"mbed-crypto-provider\" is already the name of provider[0]"],
        );
        assert_err(
            &with_providers(&tpm("name = \"\"\n")),
            "provider[0].name",
            &["must not be empty"],
        );
        // Same type, distinct names: accepted, like upstream.
        let two = Config::parse(&with_providers(&format!(
            "{}{}",
            tpm(""),
            tpm("name = \"tpm2\"\n")
        )))
        .unwrap();
        assert_eq!(two.provider[1].name(), "tpm2");
    }

    #[test]
    fn at_least_one_provider() {
        assert_err(
            &with_providers(""),
            "provider",
            &["at least one [[provider]] is required"],
        );
    }

    #[test]
    fn mbed_crypto_and_openssl_exclude_each_other() {
        let openssl =
            "[[provider]]\nprovider_type = \"OpenSsl\"\nkey_info_manager = \"sqlite-manager\"\n";
        assert_err(
            &with_providers(&format!("{MBED}{openssl}")),
            "provider[1].provider_type",
            &[
                "\"OpenSsl\"",
                "provider[0] (\"MbedCrypto\")",
                "provider id 1",
            ],
        );
        assert_err(
            &with_providers(&format!("{MBED}name = \"one\"\n{MBED}name = \"two\"\n")),
            "provider[1].provider_type",
            &["provider id 1"],
        );
    }

    #[test]
    fn key_info_manager_must_exist() {
        let e = err(&with_providers(
            "[[provider]]\nprovider_type = \"MbedCrypto\"\nkey_info_manager = \"foo\"\n",
        ));
        assert_eq!(
            e.to_string(),
            "provider[0].key_info_manager: names key manager \"foo\", but no [[key_manager]] \
             has that name"
        );
        assert_err(
            &format!("{}{KM}", with_providers(MBED)),
            "key_manager[1].name",
            &["\"sqlite-manager\" is already the name of key_manager[0]"],
        );
    }

    #[test]
    fn jwt_svid_needs_a_workload_endpoint() {
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"JwtSvid\"",
                &format!("{KM}{MBED}"),
            ),
            "authenticator.workload_endpoint",
            &["required when auth_type is \"JwtSvid\""],
        );
    }

    #[test]
    fn by_default_one_client_holds_at_most_half_the_pool_on_every_core_count() {
        for (cpus, pool, share) in [(1, 2, 1), (2, 2, 1), (3, 3, 1), (4, 4, 2), (64, 64, 32)] {
            let core = CoreSettings {
                thread_pool_size: thread_pool_size_for(cpus),
                max_requests_in_flight: max_requests_in_flight_for(cpus),
                ..CoreSettings::default()
            };
            assert_eq!(core.thread_pool_size, pool, "{cpus} CPUs");
            let own = core.requests_in_flight_per_client();
            assert_eq!(own, share, "{cpus} CPUs");
            // The others always keep at least as many threads as one client can hold.
            assert!(pool - own >= own, "{cpus} CPUs: {own} of {pool}");
            assert!(own <= core.max_requests_in_flight, "{cpus} CPUs");
        }
    }

    #[test]
    fn client_shares_default_to_a_quarter_of_the_global_limits() {
        let parse = |core: &str| {
            Config::parse(&file(
                core,
                "listener_type = \"DomainSocket\"\ntimeout = 1",
                "auth_type = \"Direct\"",
                &format!("{KM}{MBED}"),
            ))
        };
        let shares = |core: &str| {
            let core = parse(core).unwrap().core_settings;
            (
                core.connections_per_client(),
                core.requests_in_flight_per_client(),
            )
        };
        let defaults = parse("").unwrap().core_settings;
        assert_eq!(defaults.max_connections_per_client, None);
        assert_eq!(defaults.max_requests_in_flight_per_client, None);
        assert_eq!(
            shares(""),
            (256, thread_pool_size_for(available_cpus()) / 2),
            "a quarter of 1024, and half the pool (a quarter of 4 x CPUs is more)"
        );
        assert_eq!(
            shares("max_connections = 3\nmax_requests_in_flight = 2"),
            (1, 1),
            "at least 1"
        );
        assert_eq!(
            shares("max_connections = 100\nmax_requests_in_flight = 40\nthread_pool_size = 32"),
            (25, 10)
        );
        assert_eq!(
            shares("max_requests_in_flight = 40\nthread_pool_size = 3"),
            (256, 1),
            "by default no more than half the pool's threads"
        );
        assert_eq!(
            shares("max_requests_in_flight_per_client = 7\nthread_pool_size = 3"),
            (256, 7.min(4 * available_cpus())),
            "unless configured"
        );
        assert_eq!(
            shares("max_connections_per_client = 7\nmax_requests_in_flight_per_client = 3"),
            (7, 3)
        );
        assert_eq!(
            shares(
                "max_connections = 10\nmax_connections_per_client = 50\n\
                 max_requests_in_flight = 4\nmax_requests_in_flight_per_client = 9"
            ),
            (10, 4),
            "at most the global limit"
        );
        assert!(parse("max_connections_per_client = 7")
            .unwrap()
            .unknown_keys
            .is_empty());
        for key in [
            "max_connections_per_client",
            "max_requests_in_flight_per_client",
        ] {
            let e = parse(&format!("{key} = 0")).unwrap_err();
            assert_eq!(
                e.key(),
                Some(format!("core_settings.{key}").as_str()),
                "{e}"
            );
            assert!(e.to_string().contains("greater than 0"), "{e}");
        }
    }

    #[test]
    fn listener_idle_timeout_is_a_key_with_a_safe_default() {
        let rest = format!("{KM}{MBED}");
        let parse = |listener: &str| {
            Config::parse(&file("", listener, "auth_type = \"Direct\"", &rest)).unwrap()
        };
        let config = parse("listener_type = \"DomainSocket\"\ntimeout = 200");
        assert_eq!(config.listener.idle_timeout, DEFAULT_IDLE_TIMEOUT_MS);
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        let config = parse("listener_type = \"DomainSocket\"\ntimeout = 200\nidle_timeout = 750");
        assert_eq!(
            config.listener.idle_timeout_duration(),
            Duration::from_millis(750)
        );
        assert!(config.unknown_keys.is_empty(), "{:?}", config.unknown_keys);
        // 0 is valid: connections are then never kept open.
        let config = parse("listener_type = \"DomainSocket\"\ntimeout = 200\nidle_timeout = 0");
        assert!(config.listener.idle_timeout_duration().is_zero());
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 200\nidle_timeout = \"5s\"",
                "auth_type = \"Direct\"",
                &rest,
            ),
            "listener.idle_timeout",
            &[],
        );
        assert_eq!(
            Config::embedded_default().listener.idle_timeout,
            DEFAULT_IDLE_TIMEOUT_MS
        );
    }

    #[test]
    fn sizes_and_timeout_must_be_positive() {
        let listener = "listener_type = \"DomainSocket\"\ntimeout = 1";
        let rest = format!("{KM}{MBED}");
        assert_err(
            &file(
                "",
                "listener_type = \"DomainSocket\"\ntimeout = 0",
                "auth_type = \"Direct\"",
                &rest,
            ),
            "listener.timeout",
            &["greater than 0"],
        );
        for key in [
            "body_len_limit",
            "thread_pool_size",
            "max_connections",
            "max_requests_in_flight",
        ] {
            assert_err(
                &file(
                    &format!("{key} = 0"),
                    listener,
                    "auth_type = \"Direct\"",
                    &rest,
                ),
                &format!("core_settings.{key}"),
                &["greater than 0"],
            );
        }
    }

    #[test]
    fn malformed_hex_secrets_are_refused_without_showing_them() {
        let e = err(&with_providers(
            "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\nlibrary_path = \"/p.so\"\nuser_pin = \"hex:12345\"\n",
        ));
        assert_eq!(e.key(), Some("provider[0].user_pin"));
        assert!(!e.to_string().contains("12345"), "{e}");
    }

    #[test]
    fn load_reads_a_file_and_reports_read_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, EMBEDDED_DEFAULT).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Config::embedded_default());

        let missing = dir.path().join("missing.toml");
        let e = Config::load(&missing).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }
}
