//! Building a token authenticator's validator from its configuration table, and starting to
//! follow the SPIFFE Workload API for it when the table names one.

use std::collections::HashMap;
use std::sync::Arc;

use super::keys::{load_jwks, load_pem};
use super::token::{Anchor, Anchors, TokenKind, TokenValidator};
use crate::config::{
    AuthenticatorConfig, AuthenticatorType, DEFAULT_TOKEN_AUDIENCE, DEFAULT_TOKEN_CACHE_SIZE,
    DEFAULT_TOKEN_LEEWAY,
};

/// The `use` a SPIFFE JWT bundle gives its keys.
pub const JWT_SVID_KEY_USE: &str = "jwt-svid";

/// The anchors of a JwtSvid table's `bundles`: trust domain → its bundle file's keys.
///
/// # Errors
/// The path of the key at fault (as `key` writes it) and why.
pub fn svid_anchors(
    auth: &AuthenticatorConfig,
    key: &impl Fn(&str) -> String,
) -> Result<Anchors, (String, String)> {
    let audience = auth
        .audience
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN_AUDIENCE.to_owned());
    let mut anchors = HashMap::new();
    for (i, bundle) in auth.bundles.iter().enumerate() {
        let keys = load_jwks(&bundle.jwks_path, JWT_SVID_KEY_USE)
            .map_err(|e| (key(&format!("bundles[{i}].jwks_path")), e))?;
        anchors.insert(
            bundle.trust_domain.clone(),
            Anchor {
                keys,
                audience: audience.clone(),
                identity_claim: "sub".to_owned(),
            },
        );
    }
    Ok(anchors)
}

/// The anchors of a Jwt table: issuer → its keys, audience and identity claim.
///
/// # Errors
/// The path of the key at fault (as `key` writes it) and why.
pub fn issuer_anchors(
    auth: &AuthenticatorConfig,
    key: &impl Fn(&str) -> String,
) -> Result<Anchors, (String, String)> {
    let offset = usize::from(auth.issuer.is_some());
    let mut anchors = HashMap::new();
    for (i, issuer) in auth.all_issuers().into_iter().enumerate() {
        let at = |name: &str| match i.checked_sub(offset) {
            Some(j) => key(&format!("issuers[{j}].{name}")),
            None => key(name),
        };
        let keys = match (&issuer.jwks_path, &issuer.public_key_path) {
            (Some(path), _) => load_jwks(path, "sig").map_err(|e| (at("jwks_path"), e))?,
            (None, Some(path)) => vec![load_pem(path).map_err(|e| (at("public_key_path"), e))?],
            (None, None) => {
                return Err((at("jwks_path"), "the issuer has no public key".to_owned()));
            }
        };
        anchors.insert(
            issuer.issuer,
            Anchor {
                keys,
                audience: issuer
                    .audience
                    .unwrap_or_else(|| DEFAULT_TOKEN_AUDIENCE.to_owned()),
                identity_claim: issuer.identity_claim.unwrap_or_else(|| "sub".to_owned()),
            },
        );
    }
    Ok(anchors)
}

/// The validator of a JwtSvid or Jwt table, its keys read from the files it names.
///
/// # Errors
/// The path of the key at fault (as `key` writes it) and why; `None` for a table of another
/// type.
pub fn validator(
    auth: &AuthenticatorConfig,
    key: &impl Fn(&str) -> String,
) -> Result<Option<TokenValidator>, (String, String)> {
    let (kind, anchors) = match auth.auth_type {
        AuthenticatorType::JwtSvid => (TokenKind::JwtSvid, svid_anchors(auth, key)?),
        AuthenticatorType::Jwt => (TokenKind::Issued, issuer_anchors(auth, key)?),
        AuthenticatorType::Direct | AuthenticatorType::UnixPeerCredentials => return Ok(None),
    };
    Ok(Some(TokenValidator::new(
        kind,
        anchors,
        auth.leeway.unwrap_or(DEFAULT_TOKEN_LEEWAY),
        auth.token_cache_size.unwrap_or(DEFAULT_TOKEN_CACHE_SIZE),
    )))
}

/// The validator of a JwtSvid or Jwt table, following the table's `workload_endpoint` (JwtSvid)
/// when it names one.
///
/// # Errors
/// As [`validator`]; an endpoint that cannot be followed (or, in a build without the
/// `workload-api` feature, a table that has no `bundles` beside its endpoint).
pub fn start(
    auth: &AuthenticatorConfig,
    key: &impl Fn(&str) -> String,
) -> Result<Arc<TokenValidator>, (String, String)> {
    let validator = Arc::new(
        validator(auth, key)?
            .ok_or_else(|| (key("auth_type"), "not a token authenticator".to_owned()))?,
    );
    let endpoint = match auth.workload_endpoint.as_deref() {
        Some(endpoint) if auth.auth_type == AuthenticatorType::JwtSvid && !endpoint.is_empty() => {
            endpoint
        }
        _ => return Ok(validator),
    };
    #[cfg(feature = "workload-api")]
    {
        let audience = auth.audience.as_deref().unwrap_or(DEFAULT_TOKEN_AUDIENCE);
        super::workload::follow(endpoint, audience, &validator)
            .map_err(|e| (key("workload_endpoint"), e))?;
    }
    #[cfg(not(feature = "workload-api"))]
    {
        if auth.bundles.is_empty() {
            return Err((
                key("workload_endpoint"),
                "the SPIFFE Workload API is not available in this build (feature workload-api): \
                 name the trust domains' JWT bundle files in bundles"
                    .to_owned(),
            ));
        }
        tracing::warn!(
            endpoint,
            "the SPIFFE Workload API is not available in this build (feature workload-api): \
             only the bundles files are trusted"
        );
    }
    Ok(validator)
}
