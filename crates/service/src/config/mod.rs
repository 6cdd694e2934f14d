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

mod authenticator;
mod core;
mod de;
mod error;
mod key_manager;
mod listener;
mod provider;
mod secret;
#[cfg(test)]
mod testing;
mod validate;

use std::path::{Path, PathBuf};

pub use self::authenticator::{
    Admin, AuthenticatorConfig, AuthenticatorType, IssuerConfig, TrustBundleConfig,
    DEFAULT_TOKEN_AUDIENCE, DEFAULT_TOKEN_CACHE_SIZE, DEFAULT_TOKEN_LEEWAY,
};
pub use self::core::{
    available_cpus, max_requests_in_flight_for, thread_pool_size_for, AuditLogSetting,
    CoreSettings, LogFormat, LogLevel, CLIENT_POOL_SHARE_DIVISOR, CLIENT_SHARE_DIVISOR,
    DEFAULT_AUDIT_FILE_NAME, DEFAULT_IDLE_LISTENER_SLEEP_MS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_KEYS_PER_CLIENT, DEFAULT_MAX_KEY_NAME_LEN, DEFAULT_SIZE_LIMIT,
    KEY_LIST_ENTRY_OVERHEAD, MIN_DEFAULT_THREAD_POOL_SIZE, REQUESTS_IN_FLIGHT_PER_CPU,
};
pub use self::error::{ConfigError, Location};
pub use self::key_manager::{
    KeyManagerConfig, KeyManagerType, DEFAULT_ON_DISK_STORE_PATH, DEFAULT_SQLITE_DB_PATH,
};
pub use self::listener::{
    ListenerConfig, ListenerType, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_SOCKET_PATH,
};
pub use self::provider::{
    CryptoAuthLibConfig, OpenSslConfig, Pkcs11Config, ProviderConfig, ProviderKind, TpmConfig,
    DEFAULT_KEK_FILE_NAME,
};
pub use self::secret::{BadHexSecret, SecretString};

/// The built-in default configuration, as TOML text (what `bulwarkd --print-default-config`
/// prints). [`Config::embedded_default`] is this text parsed.
pub const EMBEDDED_DEFAULT: &str = include_str!("../default_config.toml");

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

impl Config {
    /// Parses and validates a configuration file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config = de::read(text)?;
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
                socket_path: PathBuf::from(DEFAULT_SOCKET_PATH),
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
        authenticator::authenticator_key(self.authenticators.len(), index, key)
    }

    /// The `[[key_manager]]` called `name`.
    pub fn key_manager(&self, name: &str) -> Option<&KeyManagerConfig> {
        self.key_manager.iter().find(|km| km.name == name)
    }

    /// The `[[key_manager]]` a provider uses (always `Some` in a validated configuration).
    pub fn key_manager_of(&self, provider: &ProviderConfig) -> Option<&KeyManagerConfig> {
        self.key_manager(&provider.key_info_manager)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use bulwark_interface::ids::{AuthType, ProviderId};

    use crate::config::testing::*;
    use crate::config::*;

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
        assert_eq!(parsed.provider[0].provider_type(), "OpenSsl");
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
