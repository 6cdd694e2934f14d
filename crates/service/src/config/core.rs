//! `[core_settings]`: limits, logging and the shares of the service one client may hold.

use std::fmt;
use std::path::PathBuf;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::KeyManagerConfig;

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
/// File name of the audit log when `core_settings.audit_log` is not given; the file lives next
/// to the key store ([`CoreSettings::audit_log_or_default`]).
pub const DEFAULT_AUDIT_FILE_NAME: &str = "bulwark-audit.log";

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::config::testing::*;
    use crate::config::*;

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
}
