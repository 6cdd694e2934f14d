//! `[authenticator]` (upstream's one table) or `[[authenticator]]` (several): how clients
//! prove who they are, and who the administrators are.

use std::fmt;

use bulwark_interface::ids::AuthType;
use serde::Deserialize;

use super::{Config, ConfigError};

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
}

/// The path of `key` of the `index`th of `count` authenticators, as messages name it:
/// `authenticator.key` for upstream's one table, `authenticator[index].key` among several.
pub(super) fn authenticator_key(count: usize, index: usize, key: &str) -> String {
    if count == 1 {
        format!("authenticator.{key}")
    } else {
        format!("authenticator[{index}].{key}")
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
    /// A JWT-SVID checked through the SPIFFE Workload API.
    JwtSvid,
}

impl AuthenticatorType {
    /// The header `auth_type` this authenticator serves.
    pub const fn auth_type(self) -> AuthType {
        match self {
            AuthenticatorType::Direct => AuthType::Direct,
            AuthenticatorType::UnixPeerCredentials => AuthType::UnixPeerCredentials,
            AuthenticatorType::JwtSvid => AuthType::JwtSvid,
        }
    }

    /// The name used in the file.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthenticatorType::Direct => "Direct",
            AuthenticatorType::UnixPeerCredentials => "UnixPeerCredentials",
            AuthenticatorType::JwtSvid => "JwtSvid",
        }
    }
}

impl fmt::Display for AuthenticatorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Config {
    /// The authenticators' part of [`Config::validate`]: a JwtSvid endpoint, one authenticator
    /// per type, and Direct beside others only when its table says so.
    pub(super) fn validate_authenticators(&self) -> Result<(), ConfigError> {
        for (i, auth) in self.authenticators.iter().enumerate() {
            if auth.auth_type == AuthenticatorType::JwtSvid
                && auth.workload_endpoint.as_deref().is_none_or(str::is_empty)
            {
                return Err(ConfigError::invalid(
                    self.authenticator_key(i, "workload_endpoint"),
                    "is required when auth_type is \"JwtSvid\" (the SPIFFE Workload API endpoint, \
                     e.g. \"unix:///run/spire/sockets/agent.sock\")",
                ));
            }
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
        Ok(())
    }
}

/// Adds to `unknown_keys` the keys of `authenticators` that mean nothing for their type.
pub(super) fn unused_keys(authenticators: &[AuthenticatorConfig], unknown_keys: &mut Vec<String>) {
    let path = |i: usize, key: &str| authenticator_key(authenticators.len(), i, key);
    for (i, auth) in authenticators.iter().enumerate() {
        if auth.auth_type != AuthenticatorType::JwtSvid && auth.workload_endpoint.is_some() {
            unknown_keys.push(path(i, "workload_endpoint"));
        }
        if auth.auth_type != AuthenticatorType::Direct && auth.allow_with_other_authenticators {
            unknown_keys.push(path(i, "allow_with_other_authenticators"));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use crate::config::testing::*;
    use crate::config::*;

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
}
