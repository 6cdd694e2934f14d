//! `--make-jwt-svid DIR`: a JWT bundle and a JWT-SVID signed by its key, for measuring the
//! JwtSvid authenticator (bench/auth.sh), and an authentication token of an issuer with the
//! same key. The key is a new P-256 key from OpenSSL; the bundle's
//! JWK and the token are made by the `jsonwebtoken` crate.

use std::path::Path;

use anyhow::{Context, Result};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

/// The trust domain of the bundle.
pub(crate) const TRUST_DOMAIN: &str = "bench.example";
/// The issuer of `idp.token`.
pub(crate) const ISSUER: &str = "https://idp.bench.example";

/// Writes `dir/bundle.jwks` and `dir/svid.token`; `dir/issuer.pem` and `dir/idp.token` (issuer
/// [`ISSUER`], subject `alice`).
///
/// # Errors
/// The key cannot be made or the files written.
pub(crate) fn make(dir: &Path) -> Result<()> {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)?;
    let pkey = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group)?)?;
    let key = EncodingKey::from_ec_pem(&pkey.private_key_to_pem_pkcs8()?)?;
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::ES256)?)?;
    jwk["kid"] = json!("bench-1");
    jwk["use"] = json!("jwt-svid");
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "sub": format!("spiffe://{TRUST_DOMAIN}/load"),
        "aud": ["parsec"],
        "iat": now,
        "exp": now + 86_400,
    });
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench-1".to_owned());
    let token = jsonwebtoken::encode(&header, &claims, &key)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("bundle.jwks"),
        json!({ "keys": [jwk] }).to_string(),
    )?;
    std::fs::write(dir.join("svid.token"), token)?;
    // The same key as an identity provider's, for authentication tokens (auth type 2).
    let claims = json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": "parsec",
        "exp": now + 86_400,
    });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key)?;
    std::fs::write(dir.join("issuer.pem"), pkey.public_key_to_pem()?)?;
    std::fs::write(dir.join("idp.token"), token)?;
    Ok(())
}
