//! Configuration texts and helpers shared by the tests of the configuration's modules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{Config, ConfigError};

/// Upstream Parsec 1.5.0's config.toml as shipped (abridged comments), plus an unknown key.
pub(super) const UPSTREAM_SAMPLE: &str = r#"
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
pub(super) const UPSTREAM_FULL: &str = r#"
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

pub(super) const KM: &str = r#"
[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
"#;

/// A minimal file with `core`, `listener`, `auth` tables and providers appended.
pub(super) fn file(core: &str, listener: &str, auth: &str, rest: &str) -> String {
    format!("[core_settings]\n{core}\n[listener]\n{listener}\n[authenticator]\n{auth}\n{rest}")
}

pub(super) fn with_providers(providers: &str) -> String {
    file(
        "",
        "listener_type = \"DomainSocket\"\ntimeout = 200",
        "auth_type = \"UnixPeerCredentials\"",
        &format!("{KM}\n{providers}"),
    )
}

pub(super) const MBED: &str = r#"
[[provider]]
provider_type = "MbedCrypto"
key_info_manager = "sqlite-manager"
"#;

pub(super) fn err(text: &str) -> ConfigError {
    match Config::parse(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e,
    }
}

pub(super) fn assert_err(text: &str, key: &str, fragments: &[&str]) {
    let e = err(text);
    let message = e.to_string();
    assert_eq!(e.key(), Some(key), "{message}");
    assert!(message.starts_with(&format!("{key}: ")), "{message}");
    for fragment in fragments {
        assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
    }
}
