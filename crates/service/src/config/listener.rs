//! `[listener]`: the socket clients connect to and its timeouts.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Default `listener.socket_path`.
pub const DEFAULT_SOCKET_PATH: &str = "/run/parsec/parsec.sock";
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::*;
    use crate::config::*;

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
}
