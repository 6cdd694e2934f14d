//! `[authenticator]` (upstream's one table) or `[[authenticator]]` (several): how clients
//! prove who they are, and who the administrators are.

use std::fmt;
use std::path::PathBuf;

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

impl Config {
    /// The authenticators' part of [`Config::validate`]: a JwtSvid endpoint, one authenticator
    /// per type, and Direct beside others only when its table says so.
    pub(super) fn validate_authenticators(&self) -> Result<(), ConfigError> {
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
