//! The public keys a token authenticator trusts: read from JWKS documents (a SPIFFE JWT bundle
//! is one) or PEM files, parsed by the `jsonwebtoken` crate.
//!
//! Only keys that can verify an algorithm of [`ALLOWED_ALGORITHMS`] are kept: RSA and EC
//! public keys. Symmetric (`oct`) keys, Ed25519 keys, and keys whose `use` says they are for
//! something else (encryption, X.509-SVIDs) are left out, so no token can be verified with a
//! shared secret, whatever its header says.

use std::path::Path;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

/// The signature algorithms accepted: the asymmetric ones the JWT-SVID standard allows (RSA
/// PKCS #1 v1.5, RSA-PSS and ECDSA) that the `jsonwebtoken` crate implements (ES512 is not).
/// `none` and the HMAC algorithms are not among them.
pub const ALLOWED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// One trusted public key.
#[derive(Clone)]
pub struct TrustedKey {
    /// The JWK's `kid`; `None` for a PEM key.
    pub kid: Option<String>,
    /// The algorithms this key verifies.
    algorithms: Vec<Algorithm>,
    /// The key, ready for verification.
    pub key: DecodingKey,
}

impl std::fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .finish_non_exhaustive()
    }
}

impl TrustedKey {
    /// Whether the key may verify a token signed with `alg`.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithms.contains(&alg)
    }

    /// A key of a JWK, or why it is left out.
    fn from_jwk(jwk: &Jwk, wanted_use: &str) -> Result<TrustedKey, String> {
        match &jwk.common.public_key_use {
            None | Some(PublicKeyUse::Signature) => {}
            Some(PublicKeyUse::Other(other)) if other == wanted_use => {}
            Some(other) => return Err(format!("its use is {other:?}")),
        }
        let algorithms: Vec<Algorithm> = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => ALLOWED_ALGORITHMS
                .into_iter()
                .filter(|a| a.family() == AlgorithmFamily::Rsa)
                .collect(),
            AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                EllipticCurve::P256 => vec![Algorithm::ES256],
                EllipticCurve::P384 => vec![Algorithm::ES384],
                _ => return Err(format!("curve {:?} is not supported", ec.curve)),
            },
            AlgorithmParameters::OctetKey(_) => {
                return Err("it is a symmetric key".to_owned());
            }
            AlgorithmParameters::OctetKeyPair(_) => {
                return Err("Ed25519 is not an algorithm of the standard".to_owned());
            }
        };
        let algorithms = match jwk.common.key_algorithm {
            None => algorithms,
            Some(declared) => {
                let declared: Algorithm = declared
                    .to_string()
                    .parse()
                    .map_err(|_| format!("its algorithm {declared} is not a signature one"))?;
                if !algorithms.contains(&declared) {
                    return Err(format!("its algorithm {declared:?} is not accepted"));
                }
                vec![declared]
            }
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("it cannot be read: {e}"))?;
        Ok(TrustedKey {
            kid: jwk.common.key_id.clone(),
            algorithms,
            key,
        })
    }
}

/// The usable keys of a JWKS document. `wanted_use` is the `use` value accepted beside `sig`
/// (`jwt-svid` in a SPIFFE bundle). Keys that cannot be used are reported in the second list,
/// with the reason, so the caller can log them.
///
/// # Errors
/// The document is not JSON or has no `keys` array.
pub fn parse_jwks(text: &str, wanted_use: &str) -> Result<(Vec<TrustedKey>, Vec<String>), String> {
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let entries = document
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("not a JWKS document: no \"keys\" array")?;
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let kid = entry
            .get("kid")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned();
        let outcome = serde_json::from_value::<Jwk>(entry.clone())
            .map_err(|e| format!("it is not a JWK: {e}"))
            .and_then(|jwk| TrustedKey::from_jwk(&jwk, wanted_use));
        match outcome {
            Ok(key) => keys.push(key),
            Err(why) => skipped.push(format!("key {i} (kid {kid:?}) left out: {why}")),
        }
    }
    Ok((keys, skipped))
}

/// The key of one JWK in JSON (an authority of a JWT bundle from the Workload API), or why it
/// cannot be used; `wanted_use` as for [`parse_jwks`].
///
/// # Errors
/// The text is not a JWK, or not a key of [`ALLOWED_ALGORITHMS`] for that use.
pub fn key_of_jwk_json(json: &[u8], wanted_use: &str) -> Result<TrustedKey, String> {
    let jwk: Jwk = serde_json::from_slice(json).map_err(|e| format!("it is not a JWK: {e}"))?;
    TrustedKey::from_jwk(&jwk, wanted_use)
}

/// The keys of a JWKS file that has at least one usable key.
///
/// # Errors
/// The file cannot be read, is not JWKS, or holds no usable key.
pub fn load_jwks(path: &Path, wanted_use: &str) -> Result<Vec<TrustedKey>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (keys, skipped) =
        parse_jwks(&text, wanted_use).map_err(|e| format!("{}: {e}", path.display()))?;
    for line in &skipped {
        tracing::warn!(file = %path.display(), "{line}");
    }
    if keys.is_empty() {
        return Err(format!(
            "{} holds no RSA or EC public key usable for signatures",
            path.display()
        ));
    }
    Ok(keys)
}

/// The public key of a PEM file (an RSA or EC public key, `BEGIN PUBLIC KEY` or
/// `BEGIN RSA PUBLIC KEY`).
///
/// # Errors
/// The file cannot be read or holds no RSA or EC public key.
pub fn load_pem(path: &Path) -> Result<TrustedKey, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok(TrustedKey {
            kid: None,
            algorithms: ALLOWED_ALGORITHMS
                .into_iter()
                .filter(|a| a.family() == AlgorithmFamily::Rsa)
                .collect(),
            key,
        });
    }
    let ec = openssl::pkey::PKey::public_key_from_pem(&pem)
        .ok()
        .and_then(|k| k.ec_key().ok());
    let algorithm = match ec.as_ref().and_then(|k| k.group().curve_name()) {
        Some(openssl::nid::Nid::X9_62_PRIME256V1) => Algorithm::ES256,
        Some(openssl::nid::Nid::SECP384R1) => Algorithm::ES384,
        _ => {
            return Err(format!(
                "{} holds no RSA or EC (P-256, P-384) public key in PEM",
                path.display()
            ))
        }
    };
    let key = DecodingKey::from_ec_pem(&pem)
        .map_err(|e| format!("{}: the EC key cannot be read: {e}", path.display()))?;
    Ok(TrustedKey {
        kid: None,
        algorithms: vec![algorithm],
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::EncodingKey;

    fn ec_jwk() -> serde_json::Value {
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap(),
        )
        .unwrap();
        let pem = openssl::pkey::PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        let key = EncodingKey::from_ec_pem(&pem).unwrap();
        let mut jwk =
            serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256).unwrap()).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    }

    fn with(mut jwk: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
        for (k, v) in extra.as_object().unwrap() {
            jwk[k] = v.clone();
        }
        jwk
    }

    #[test]
    fn symmetric_and_foreign_keys_are_left_out() {
        let ec = ec_jwk();
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            with(ec.clone(), serde_json::json!({"kid": "x509", "use": "x509-svid"})),
            with(ec.clone(), serde_json::json!({"kid": "good", "use": "jwt-svid"})),
            with(ec.clone(), serde_json::json!({"kid": "hs", "alg": "HS256"})),
            with(ec, serde_json::json!({"kid": "enc", "use": "enc"})),
        ]});
        let (keys, skipped) = parse_jwks(&doc.to_string(), "jwt-svid").unwrap();
        assert_eq!(keys.len(), 1, "{skipped:?}");
        assert_eq!(keys[0].kid.as_deref(), Some("good"));
        assert!(keys[0].allows(Algorithm::ES256));
        assert!(!keys[0].allows(Algorithm::HS256));
        assert!(!keys[0].allows(Algorithm::ES384));
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        assert!(parse_jwks("{}", "x").is_err());
        assert!(parse_jwks("not json", "x").is_err());
    }

    #[test]
    fn pem_public_keys_of_both_families_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let ec = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        let path = dir.path().join("ec.pem");
        std::fs::write(&path, ec.public_key_to_pem().unwrap()).unwrap();
        let key = load_pem(&path).unwrap();
        assert!(key.allows(Algorithm::ES384) && !key.allows(Algorithm::ES256));
        assert!(!key.allows(Algorithm::RS256));
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        std::fs::write(&path, rsa.public_key_to_pem().unwrap()).unwrap();
        let key = load_pem(&path).unwrap();
        assert!(key.allows(Algorithm::PS256) && !key.allows(Algorithm::ES256));
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_pem(&path).is_err());
    }
}
