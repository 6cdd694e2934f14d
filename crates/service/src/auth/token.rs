//! Token authenticators: JWT-SVIDs (auth type 4) and authentication tokens from configured
//! issuers (auth type 2), validated locally.
//!
//! A token is a JWS in compact serialization. [`TokenValidator::validate`] accepts it only if
//! all of these hold, and otherwise refuses it with [`AuthError::Rejected`]:
//!
//! - its header names an algorithm of [`ALLOWED_ALGORITHMS`] (never `none`, never HMAC) and,
//!   for a JWT-SVID, `typ` is absent, `JWT` or `JOSE`;
//! - its trust anchor is known: for a JWT-SVID the trust domain of `sub`, a valid SPIFFE ID;
//!   for a token, the issuer `iss`;
//! - its key is one of the anchor's, chosen by `kid` (required for JWT-SVIDs; a token without
//!   a `kid`, or with one, from an issuer whose one key has none, a PEM key, uses that key),
//!   and that key verifies the algorithm;
//! - the signature verifies (the `jsonwebtoken` crate does it);
//! - `aud` contains the anchor's audience; `exp` is present and not past, `nbf` (if present)
//!   not in the future, both within the configured leeway;
//! - for a token, the identity claim is a non-empty string.
//!
//! The identity is the SPIFFE ID for a JWT-SVID, and `<issuer>#<claim value>` for a token: an
//! issuer never contains `#` (configuration refuses it), so two issuers never produce the same
//! name.
//!
//! A validated token's identity is cached ([`TokenCache`]) until its `exp` plus the leeway; the
//! cache is emptied whenever the anchors change ([`TokenValidator::replace_anchors`]).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde::Deserialize;

use super::cache::TokenCache;
use super::keys::TrustedKey;
pub use super::keys::ALLOWED_ALGORITHMS;
use crate::error::AuthError;

/// Which kind of token a validator accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// JWT-SVIDs: anchors are trust domains, the identity is `sub`.
    JwtSvid,
    /// Tokens of identity providers: anchors are issuers, the identity is
    /// `<issuer>#<identity claim>`.
    Issued,
}

/// What tokens of one trust domain or one issuer must satisfy.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// The keys that may have signed them.
    pub keys: Vec<TrustedKey>,
    /// The audience `aud` must contain.
    pub audience: String,
    /// The claim naming the application (`sub` for JWT-SVIDs).
    pub identity_claim: String,
}

/// Trust domain (JWT-SVID) or issuer (token) → what its tokens must satisfy.
pub type Anchors = HashMap<String, Anchor>;

/// Validates the tokens of one authenticator.
#[derive(Debug)]
pub struct TokenValidator {
    kind: TokenKind,
    leeway: u64,
    anchors: RwLock<Arc<Anchors>>,
    cache: TokenCache,
}

/// The claims read before the signature is checked, only to find the anchor.
#[derive(Deserialize)]
struct Routing {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iss: Option<String>,
}

/// Why a token is refused, by the crate's error kind (never the token itself).
fn refusal(kind: &ErrorKind) -> AuthError {
    AuthError::Rejected(match kind {
        ErrorKind::ExpiredSignature => "token expired",
        ErrorKind::ImmatureSignature => "token not yet valid",
        ErrorKind::InvalidAudience => "token is not for this audience",
        ErrorKind::InvalidIssuer => "token issuer mismatch",
        ErrorKind::InvalidSignature => "token signature does not verify",
        ErrorKind::InvalidAlgorithm => "token algorithm does not match its key",
        ErrorKind::MissingRequiredClaim(_) => "token lacks a required claim",
        _ => "malformed token",
    })
}

impl TokenValidator {
    /// A validator of `kind` tokens trusting `anchors`, allowing `leeway` seconds of clock
    /// skew, caching up to `cache_size` validated tokens.
    pub fn new(kind: TokenKind, anchors: Anchors, leeway: u64, cache_size: usize) -> Self {
        TokenValidator {
            kind,
            leeway,
            anchors: RwLock::new(Arc::new(anchors)),
            cache: TokenCache::new(cache_size),
        }
    }

    /// The kind of tokens accepted.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// Trusts `anchors` from now on instead of the previous ones, and forgets every cached
    /// token (one validated with a key now removed is refused from the next request on).
    pub fn replace_anchors(&self, anchors: Anchors) {
        let mut guard = self
            .anchors
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::new(anchors);
        // Cleared while the write lock is held: a validation that read the old anchors cannot
        // insert after the clear (it inserts under the read lock, below).
        self.cache.clear();
    }

    /// The anchors trusted now.
    pub fn anchors(&self) -> Arc<Anchors> {
        Arc::clone(
            &self
                .anchors
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// The identity a token proves.
    ///
    /// # Errors
    /// [`AuthError::Rejected`] naming the first check that failed.
    pub fn validate(&self, token: &str) -> Result<String, AuthError> {
        let digest = TokenCache::digest(token);
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(name) = self.cache.get(&digest, now) {
            return Ok(name);
        }
        let anchors = self
            .anchors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (name, exp) = self.verify(token, &anchors)?;
        self.cache
            .insert(digest, name.clone(), exp.saturating_add(self.leeway), now);
        drop(anchors);
        Ok(name)
    }

    /// Full validation, without the cache: the identity and the token's `exp`.
    fn verify(&self, token: &str, anchors: &Anchors) -> Result<(String, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| refusal(e.kind()))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(AuthError::Rejected("token algorithm not allowed"));
        }
        let routing = jsonwebtoken::dangerous::insecure_decode::<Routing>(token)
            .map_err(|e| refusal(e.kind()))?
            .claims;
        let (anchor_name, anchor) = match self.kind {
            TokenKind::JwtSvid => {
                if header
                    .typ
                    .as_deref()
                    .is_some_and(|typ| typ != "JWT" && typ != "JOSE")
                {
                    return Err(AuthError::Rejected("JWT-SVID type must be JWT or JOSE"));
                }
                let sub = routing
                    .sub
                    .as_deref()
                    .ok_or(AuthError::Rejected("JWT-SVID has no sub"))?;
                let trust_domain = spiffe_trust_domain(sub)
                    .ok_or(AuthError::Rejected("JWT-SVID sub is not a SPIFFE ID"))?;
                let anchor = anchors
                    .get(trust_domain)
                    .ok_or(AuthError::Rejected("unknown trust domain"))?;
                (trust_domain.to_owned(), anchor)
            }
            TokenKind::Issued => {
                let iss = routing.iss.ok_or(AuthError::Rejected("token has no iss"))?;
                let anchor = anchors
                    .get(&iss)
                    .ok_or(AuthError::Rejected("unknown issuer"))?;
                (iss, anchor)
            }
        };
        let key = match header.kid.as_deref() {
            Some(kid) => match anchor.keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
                Some(key) => key,
                // An issuer configured with one PEM key names it no id: that key is the one.
                None => match anchor.keys.as_slice() {
                    [only] if only.kid.is_none() && self.kind == TokenKind::Issued => only,
                    _ => return Err(AuthError::Rejected("unknown key id")),
                },
            },
            None if self.kind == TokenKind::JwtSvid => {
                return Err(AuthError::Rejected("JWT-SVID has no kid"));
            }
            None => match anchor.keys.as_slice() {
                [only] => only,
                _ => return Err(AuthError::Rejected("token has no kid")),
            },
        };
        if !key.allows(header.alg) {
            return Err(AuthError::Rejected(
                "token algorithm does not match its key",
            ));
        }

        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.set_audience(&[&anchor.audience]);
        match self.kind {
            TokenKind::JwtSvid => validation.set_required_spec_claims(&["exp", "aud", "sub"]),
            TokenKind::Issued => {
                validation.set_required_spec_claims(&["exp", "aud", "iss"]);
                validation.set_issuer(&[&anchor_name]);
            }
        }
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.key,
            &validation,
        )
        .map_err(|e| refusal(e.kind()))?
        .claims;
        let exp = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .ok_or(AuthError::Rejected("token exp is not a number of seconds"))?;
        let value = claims
            .get(&anchor.identity_claim)
            .and_then(serde_json::Value::as_str)
            .filter(|v| !v.is_empty())
            .ok_or(AuthError::Rejected("token lacks the identity claim"))?;
        let name = match self.kind {
            // The signed sub is the one the trust domain was read from (one payload).
            TokenKind::JwtSvid => value.to_owned(),
            TokenKind::Issued => format!("{anchor_name}#{value}"),
        };
        Ok((name, exp))
    }

    /// How many validated tokens are cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}

/// The trust domain of a SPIFFE ID, if `id` is one: `spiffe://` (lower case), a non-empty
/// trust domain of lower-case letters, digits, `.`, `-` and `_`, then optionally a path of
/// non-empty segments of letters, digits, `.`, `-` and `_` that are neither `.` nor `..`, with
/// no trailing `/`; 2048 bytes at most; no query, fragment, port or user info.
pub fn spiffe_trust_domain(id: &str) -> Option<&str> {
    if id.len() > 2048 {
        return None;
    }
    let rest = id.strip_prefix("spiffe://")?;
    let (trust_domain, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if trust_domain.is_empty()
        || !trust_domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return None;
    }
    if !path.is_empty() {
        for segment in path[1..].split('/') {
            if segment.is_empty()
                || segment == "."
                || segment == ".."
                || !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return None;
            }
        }
    }
    Some(trust_domain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::parse_jwks;
    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use serde_json::json;

    /// A P-256 signing key, its JWK (with `kid`) and the key to sign with.
    struct Signer {
        kid: String,
        alg: Algorithm,
        key: EncodingKey,
        jwk: serde_json::Value,
    }

    impl Signer {
        fn ec(kid: &str) -> Signer {
            let ec = openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap();
            let pem = openssl::pkey::PKey::from_ec_key(ec)
                .unwrap()
                .private_key_to_pem_pkcs8()
                .unwrap();
            Signer::from_pem(
                kid,
                Algorithm::ES256,
                EncodingKey::from_ec_pem(&pem).unwrap(),
            )
        }

        fn rsa(kid: &str) -> Signer {
            let pem = openssl::rsa::Rsa::generate(2048)
                .unwrap()
                .private_key_to_pem()
                .unwrap();
            Signer::from_pem(
                kid,
                Algorithm::PS256,
                EncodingKey::from_rsa_pem(&pem).unwrap(),
            )
        }

        fn from_pem(kid: &str, alg: Algorithm, key: EncodingKey) -> Signer {
            let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
            jwk["kid"] = json!(kid);
            jwk.as_object_mut().unwrap().remove("alg");
            Signer {
                kid: kid.to_owned(),
                alg,
                key,
                jwk,
            }
        }

        fn sign(&self, claims: &serde_json::Value) -> String {
            let mut header = Header::new(self.alg);
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.key).unwrap()
        }
    }

    fn anchor(signers: &[&Signer], audience: &str, claim: &str) -> Anchor {
        let doc = json!({ "keys": signers.iter().map(|s| s.jwk.clone()).collect::<Vec<_>>() });
        let (keys, skipped) = parse_jwks(&doc.to_string(), "jwt-svid").unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        Anchor {
            keys,
            audience: audience.to_owned(),
            identity_claim: claim.to_owned(),
        }
    }

    fn now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    fn svid_validator(signer: &Signer) -> TokenValidator {
        let anchors =
            HashMap::from([("example.org".to_owned(), anchor(&[signer], "parsec", "sub"))]);
        TokenValidator::new(TokenKind::JwtSvid, anchors, 5, 16)
    }

    #[test]
    fn a_valid_jwt_svid_names_its_spiffe_id_and_is_cached() {
        let signer = Signer::ec("k1");
        let v = svid_validator(&signer);
        let token = signer.sign(&json!({
            "sub": "spiffe://example.org/app", "aud": ["parsec", "other"], "exp": now() + 60
        }));
        assert_eq!(v.validate(&token).unwrap(), "spiffe://example.org/app");
        assert_eq!(v.cached(), 1);
        assert_eq!(v.validate(&token).unwrap(), "spiffe://example.org/app");
        // Anchors replaced by ones without the key: the cached token is refused at once.
        v.replace_anchors(Anchors::new());
        assert_eq!(v.cached(), 0);
        assert!(v.validate(&token).is_err());
    }

    #[test]
    fn jwt_svid_refusals() {
        let signer = Signer::ec("k1");
        let stranger = Signer::ec("k1");
        let v = svid_validator(&signer);
        let claims = |sub: &str, aud: &str, exp: i64| json!({"sub": sub, "aud": aud, "exp": now() as i64 + exp});
        let cases: Vec<(&str, String)> = vec![
            (
                "expired",
                signer.sign(&claims("spiffe://example.org/a", "parsec", -60)),
            ),
            (
                "audience",
                signer.sign(&claims("spiffe://example.org/a", "other", 60)),
            ),
            (
                "trust domain",
                signer.sign(&claims("spiffe://elsewhere.org/a", "parsec", 60)),
            ),
            (
                "not spiffe",
                signer.sign(&claims("https://example.org/a", "parsec", 60)),
            ),
            (
                "bad path",
                signer.sign(&claims("spiffe://example.org/a/../b", "parsec", 60)),
            ),
            (
                "foreign key, same kid",
                stranger.sign(&claims("spiffe://example.org/a", "parsec", 60)),
            ),
            (
                "not yet valid",
                signer.sign(&json!({"sub": "spiffe://example.org/a", "aud": "parsec",
                    "exp": now() + 600, "nbf": now() + 300})),
            ),
            (
                "no exp",
                signer.sign(&json!({"sub": "spiffe://example.org/a", "aud": "parsec"})),
            ),
        ];
        for (what, token) in cases {
            assert!(
                matches!(v.validate(&token), Err(AuthError::Rejected(_))),
                "{what} accepted"
            );
        }
        let good = signer.sign(&claims("spiffe://example.org/a", "parsec", 60));
        assert!(v.validate(&good[..good.len() - 3]).is_err(), "truncated");
        assert_eq!(v.cached(), 0, "refused tokens are never cached");
    }

    #[test]
    fn none_and_hmac_are_refused_whatever_the_key() {
        let signer = Signer::rsa("k1");
        let v = svid_validator(&signer);
        let claims = json!({"sub": "spiffe://example.org/a", "aud": "parsec", "exp": now() + 60});
        // HS256 keyed with the public key's JWK text, the classic confusion.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let hs = jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(signer.jwk.to_string().as_bytes()),
        )
        .unwrap();
        assert_eq!(
            v.validate(&hs),
            Err(AuthError::Rejected("token algorithm not allowed"))
        );
        // alg none, built by hand since no library signs with it.
        let b64 = |v: &serde_json::Value| {
            openssl::base64::encode_block(v.to_string().as_bytes())
                .trim_end_matches('=')
                .replace('+', "-")
                .replace('/', "_")
        };
        let none = format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "kid": "k1"})),
            b64(&claims)
        );
        assert!(matches!(v.validate(&none), Err(AuthError::Rejected(_))));
    }

    #[test]
    fn issued_tokens_are_namespaced_by_issuer() {
        let a = Signer::ec("a");
        let b = Signer::rsa("b");
        let anchors = HashMap::from([
            (
                "https://a.example".to_owned(),
                anchor(&[&a], "parsec", "sub"),
            ),
            (
                "https://b.example".to_owned(),
                anchor(&[&b], "bulwark", "app"),
            ),
        ]);
        let v = TokenValidator::new(TokenKind::Issued, anchors, 5, 16);
        let ta = a.sign(
            &json!({"iss": "https://a.example", "sub": "x", "aud": "parsec", "exp": now() + 60}),
        );
        let tb = b.sign(
            &json!({"iss": "https://b.example", "app": "x", "aud": "bulwark", "exp": now() + 60}),
        );
        assert_eq!(v.validate(&ta).unwrap(), "https://a.example#x");
        assert_eq!(v.validate(&tb).unwrap(), "https://b.example#x");
        // A key of one issuer does not vouch for the other.
        let forged = a.sign(
            &json!({"iss": "https://b.example", "app": "x", "aud": "bulwark", "exp": now() + 60}),
        );
        assert!(v.validate(&forged).is_err());
        let unknown = a.sign(
            &json!({"iss": "https://c.example", "sub": "x", "aud": "parsec", "exp": now() + 60}),
        );
        assert_eq!(
            v.validate(&unknown),
            Err(AuthError::Rejected("unknown issuer"))
        );
        let no_claim = b.sign(
            &json!({"iss": "https://b.example", "sub": "x", "aud": "bulwark", "exp": now() + 60}),
        );
        assert!(v.validate(&no_claim).is_err());
    }

    #[test]
    fn spiffe_ids() {
        for good in [
            "spiffe://example.org",
            "spiffe://example.org/a",
            "spiffe://ex-ample_1.org/A/b.c/d-e_f",
        ] {
            assert!(spiffe_trust_domain(good).is_some(), "{good}");
        }
        for bad in [
            "spiffe://",
            "spiffe:///a",
            "SPIFFE://example.org/a",
            "spiffe://Example.org/a",
            "spiffe://example.org/",
            "spiffe://example.org//a",
            "spiffe://example.org/./a",
            "spiffe://example.org/a/..",
            "spiffe://example.org:8080/a",
            "spiffe://user@example.org/a",
            "spiffe://example.org/a?q",
            "spiffe://example.org/a#f",
        ] {
            assert!(spiffe_trust_domain(bad).is_none(), "{bad}");
        }
    }
}
