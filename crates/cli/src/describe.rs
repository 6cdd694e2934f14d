//! Names of keys, algorithms, providers and authenticators for tables and JSON.

use bulwark_client::psa::key::Type;
use bulwark_client::{
    Algorithm, AsymmetricEncryption, AsymmetricSignature, AuthType, Hash, ProviderId, ProviderInfo,
    SignHash, UsageFlags,
};
use serde_json::{json, Value};

/// The UUID bulwarkd's OpenSSL provider reports in ListProviders (it answers as provider 1,
/// the id of upstream's Mbed Crypto provider).
const OPENSSL_PROVIDER_UUID: &str = "9037cba9-4ba6-4809-8c49-d946ef684d7d";

/// The name of the provider the service describes in `info`: a provider is known by its UUID,
/// since two providers may answer under the same id (bulwarkd's OpenSSL and Mbed Crypto
/// providers are both provider 1). parsec-tool's output names the id instead.
pub(crate) fn provider_name(info: &ProviderInfo) -> String {
    if info.uuid.to_string() == OPENSSL_PROVIDER_UUID {
        "OpenSSL provider".to_owned()
    } else {
        info.id.to_string()
    }
}

/// The name of provider `id` among `providers` (a ListProviders answer); the id's name if the
/// service did not list it.
pub(crate) fn provider_name_of(id: ProviderId, providers: &[ProviderInfo]) -> String {
    providers
        .iter()
        .find(|p| p.id == id)
        .map_or_else(|| id.to_string(), provider_name)
}

/// The authenticator's name as upstream parsec-tool prints it.
pub(crate) fn auth_type(auth: AuthType) -> &'static str {
    match auth {
        AuthType::NoAuth => "No authentication",
        AuthType::Direct => "Direct authentication",
        AuthType::Jwt => "JSON Web Tokens authentication",
        AuthType::UnixPeerCredentials => "Unix Peer Credentials authentication",
        AuthType::JwtSvid => "JWT SPIFFE Verifiable Identity Document authentication",
    }
}

/// The hash's usual name (`SHA-256`), or its PSA name.
pub(crate) fn hash(hash: Hash) -> String {
    match hash {
        Hash::Sha224 => "SHA-224".into(),
        Hash::Sha256 => "SHA-256".into(),
        Hash::Sha384 => "SHA-384".into(),
        Hash::Sha512 => "SHA-512".into(),
        Hash::Sha512_224 => "SHA-512/224".into(),
        Hash::Sha512_256 => "SHA-512/256".into(),
        Hash::Sha3_224 => "SHA3-224".into(),
        Hash::Sha3_256 => "SHA3-256".into(),
        Hash::Sha3_384 => "SHA3-384".into(),
        Hash::Sha3_512 => "SHA3-512".into(),
        Hash::Ripemd160 => "RIPEMD-160".into(),
        other => format!("{other:?}"),
    }
}

fn sign_hash(h: SignHash) -> String {
    match h {
        SignHash::Any => "any hash".into(),
        SignHash::Specific(h) => hash(h),
    }
}

/// A short description of an algorithm (`ECDSA SHA-256`), or its PSA debug form.
pub(crate) fn algorithm(alg: Algorithm) -> String {
    match alg {
        Algorithm::None => "none".into(),
        Algorithm::AsymmetricSignature(sig) => match sig {
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg } => {
                format!("RSA PKCS#1 v1.5 signature, {}", sign_hash(hash_alg))
            }
            AsymmetricSignature::RsaPkcs1v15SignRaw => "RSA PKCS#1 v1.5 signature, raw".into(),
            AsymmetricSignature::RsaPss { hash_alg } => {
                format!("RSA-PSS signature, {}", sign_hash(hash_alg))
            }
            AsymmetricSignature::Ecdsa { hash_alg } => format!("ECDSA, {}", sign_hash(hash_alg)),
            AsymmetricSignature::EcdsaAny => "ECDSA, any hash length".into(),
            AsymmetricSignature::DeterministicEcdsa { hash_alg } => {
                format!("deterministic ECDSA, {}", sign_hash(hash_alg))
            }
        },
        Algorithm::AsymmetricEncryption(enc) => match enc {
            AsymmetricEncryption::RsaPkcs1v15Crypt => "RSA PKCS#1 v1.5 encryption".into(),
            AsymmetricEncryption::RsaOaep { hash_alg } => {
                format!("RSA OAEP encryption, {}", hash(hash_alg))
            }
        },
        other => format!("{other:?}"),
    }
}

/// The key type's variant name (`EccKeyPair`).
pub(crate) fn key_type_name(key_type: Type) -> String {
    let text = format!("{key_type:?}");
    match text.split_once(' ') {
        Some((name, _)) => name.to_owned(),
        None => text,
    }
}

/// A short description of a key type (`ECC key pair SecpR1`).
pub(crate) fn key_type(key_type: Type) -> String {
    match key_type {
        Type::RsaKeyPair => "RSA key pair".into(),
        Type::RsaPublicKey => "RSA public key".into(),
        Type::EccKeyPair { curve_family } => format!("ECC key pair {curve_family:?}"),
        Type::EccPublicKey { curve_family } => format!("ECC public key {curve_family:?}"),
        Type::DhKeyPair { group_family } => format!("DH key pair {group_family:?}"),
        Type::DhPublicKey { group_family } => format!("DH public key {group_family:?}"),
        other => format!("{other:?}"),
    }
}

/// The usage flags set, by their PSA names.
pub(crate) fn usage_flags(flags: UsageFlags) -> Vec<&'static str> {
    [
        (flags.export(), "export"),
        (flags.copy(), "copy"),
        (flags.cache(), "cache"),
        (flags.encrypt(), "encrypt"),
        (flags.decrypt(), "decrypt"),
        (flags.sign_message(), "sign_message"),
        (flags.verify_message(), "verify_message"),
        (flags.sign_hash(), "sign_hash"),
        (flags.verify_hash(), "verify_hash"),
        (flags.derive(), "derive"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect()
}

/// The family field of a key type for JSON (`{"curve_family": "SecpR1"}`), if it has one.
pub(crate) fn family(key_type: Type) -> Option<(&'static str, Value)> {
    match key_type {
        Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
            Some(("curve_family", json!(format!("{curve_family:?}"))))
        }
        Type::DhKeyPair { group_family } | Type::DhPublicKey { group_family } => {
            Some(("group_family", json!(format!("{group_family:?}"))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulwark_client::EccFamily;

    #[test]
    fn names_are_short_and_stable() {
        let ecc = Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        };
        assert_eq!(key_type_name(ecc), "EccKeyPair");
        assert_eq!(key_type_name(Type::RsaKeyPair), "RsaKeyPair");
        assert_eq!(key_type(ecc), "ECC key pair SecpR1");
        assert_eq!(
            algorithm(Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                hash_alg: Hash::Sha256.into()
            })),
            "ECDSA, SHA-256"
        );
        assert_eq!(auth_type(AuthType::Direct), "Direct authentication");
    }
}
