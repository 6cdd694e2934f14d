//! Signing and verifying with the algorithm of a key's policy, the hash computed locally as
//! parsec-tool does; and the X.509 signature algorithm of a key, for CSRs.

use bulwark_client::psa::key::Type;
use bulwark_client::{
    Algorithm, AsymmetricSignature, Attributes, Client, EccFamily, Hash, SignHash,
};
use der::asn1::{AnyRef, ObjectIdentifier as Oid};
use der::{Any, Sequence};
use sha2::Digest as _;
use spki::AlgorithmIdentifierOwned;

use crate::error::{Exit, Failure};
use crate::Session;

/// The digest of `data` with `hash`: SHA-2 locally (as parsec-tool), other hashes by the
/// service.
pub(crate) fn digest(session: &Session, data: &[u8], hash: Hash) -> Result<Vec<u8>, Failure> {
    crate::log::info(format_args!("Hashing data with {hash:?}..."));
    Ok(match hash {
        Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
        Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
        Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        other => session.call(|c: &Client| c.hash_compute(other, data))?,
    })
}

/// `alg` with its hash set to `hash`.
fn with_hash(alg: AsymmetricSignature, hash: Hash) -> AsymmetricSignature {
    let hash_alg = SignHash::Specific(hash);
    match alg {
        AsymmetricSignature::RsaPkcs1v15Sign { .. } => {
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg }
        }
        AsymmetricSignature::RsaPss { .. } => AsymmetricSignature::RsaPss { hash_alg },
        AsymmetricSignature::Ecdsa { .. } => AsymmetricSignature::Ecdsa { hash_alg },
        AsymmetricSignature::DeterministicEcdsa { .. } => {
            AsymmetricSignature::DeterministicEcdsa { hash_alg }
        }
        other => other,
    }
}

/// The signature algorithm and hash to use with a key whose attributes are `attributes`:
/// the policy's, with `default_hash` where it allows any hash.
pub(crate) fn policy_algorithm(
    key: &str,
    attributes: &Attributes,
    default_hash: Option<Hash>,
) -> Result<(AsymmetricSignature, Hash), Failure> {
    let policy = attributes.policy.permitted_algorithms;
    let Algorithm::AsymmetricSignature(alg) = policy else {
        return Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "key {key:?} has the algorithm {policy:?}, which cannot be used for signing: \
                 use a signing key (create-ecc-key, or create-rsa-key --for-signing)"
            ),
        ));
    };
    let hash = match (alg.hash(), default_hash) {
        (Some(SignHash::Specific(hash)), _) => hash,
        (Some(SignHash::Any), Some(hash)) => hash,
        (Some(SignHash::Any), None) => {
            return Err(Failure::not_supported(format!(
                "key {key:?} allows any hashing algorithm ({alg:?}) and this command needs a \
                 specific one: create the key with a specific hash"
            )))
        }
        (None, _) => {
            return Err(Failure::not_supported(format!(
                "asymmetric signing algorithm ({alg:?}) of key {key:?} is not supported: it \
                 signs hashes computed elsewhere"
            )))
        }
    };
    Ok((with_hash(alg, hash), hash))
}

/// Signs `message` with key `key` as parsec-tool does: hash locally with the policy's hash,
/// sign the hash, ECDSA re-encoded as DER. Returns the algorithm used and the signature.
pub(crate) fn sign(
    session: &Session,
    key: &str,
    attributes: &Attributes,
    message: &[u8],
    default_hash: Option<Hash>,
) -> Result<(AsymmetricSignature, Vec<u8>), Failure> {
    let (alg, hash) = policy_algorithm(key, attributes, default_hash)?;
    let digest = digest(session, message, hash)?;
    crate::log::info(format_args!("Signing data with {alg:?}..."));
    let signature = session.call(|c: &Client| c.sign_hash(key, alg, &digest))?;
    let signature = if alg.is_ecc_alg() {
        crate::encoding::ecdsa_to_der(&signature)?
    } else {
        signature
    };
    Ok((alg, signature))
}

/// Checks a signature made by [`sign`]. The service says whether it matches.
pub(crate) fn verify(
    session: &Session,
    key: &str,
    attributes: &Attributes,
    message: &[u8],
    signature: &[u8],
) -> Result<AsymmetricSignature, Failure> {
    let (alg, hash) = policy_algorithm(key, attributes, None)?;
    let digest = digest(session, message, hash)?;
    let signature = if alg.is_ecc_alg() {
        crate::encoding::ecdsa_from_der(signature, attributes.bits.div_ceil(8))?
    } else {
        signature.to_vec()
    };
    crate::log::info(format_args!("Verifying signature with {alg:?}..."));
    session.call(|c: &Client| c.verify_hash(key, alg, &digest, &signature))?;
    Ok(alg)
}

/// `RSASSA-PSS-params` with MGF1 over the same hash and a salt as long as the hash.
#[derive(Debug, Sequence)]
struct PssParams {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    hash: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT")]
    mask_gen: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT")]
    salt_length: u32,
}

/// How a CSR is signed: the algorithm the service uses, the hash, the X.509 identifier.
#[derive(Debug)]
pub(crate) struct X509Algorithm {
    /// The PSA algorithm (specific hash).
    pub alg: AsymmetricSignature,
    /// Its hash.
    pub hash: Hash,
    /// The X.509 `AlgorithmIdentifier`.
    pub identifier: AlgorithmIdentifierOwned,
    /// Its usual name, e.g. `ecdsa-with-SHA256`.
    pub name: &'static str,
}

fn oid(text: &str) -> Result<Oid, Failure> {
    Oid::new(text).map_err(|e| Failure::generic(format!("bad OID {text}: {e}")))
}

fn sha_identifier(hash: Hash) -> Result<AlgorithmIdentifierOwned, Failure> {
    let text = match hash {
        Hash::Sha256 => "2.16.840.1.101.3.4.2.1",
        Hash::Sha384 => "2.16.840.1.101.3.4.2.2",
        _ => "2.16.840.1.101.3.4.2.3",
    };
    Ok(AlgorithmIdentifierOwned {
        oid: oid(text)?,
        parameters: Some(Any::from(AnyRef::NULL)),
    })
}

fn unsupported_hash(key: &str, alg: AsymmetricSignature) -> Failure {
    Failure::not_supported(format!(
        "signing key {key:?} requires the hashing algorithm of {alg:?}, which is not supported \
         for certificate requests: use SHA-256 or SHA-384 (SHA-512 for RSA PKCS#1 v1.5)"
    ))
}

/// The CSR signature algorithm of a key, from its policy (docs/protocol.md#parsec-tool): RSA PKCS#1 v1.5
/// with SHA-256/384/512, RSA-PSS with SHA-256/384, ECDSA on P-256 with SHA-256 or P-384 with
/// SHA-384; a policy allowing any hash uses SHA-256 (ECDSA: only on P-256).
pub(crate) fn x509_algorithm(key: &str, attributes: &Attributes) -> Result<X509Algorithm, Failure> {
    let policy = attributes.policy.permitted_algorithms;
    let Algorithm::AsymmetricSignature(alg) = policy else {
        return Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "key {key:?} is not an asymmetric signing key ({policy:?}), which is needed for \
                 certificate requests: use create-ecc-key or create-rsa-key --for-signing"
            ),
        ));
    };
    let hash = match alg.hash() {
        Some(SignHash::Specific(hash)) => hash,
        Some(SignHash::Any) => Hash::Sha256,
        None => {
            return Err(Failure::not_supported(format!(
                "signing key {key:?} specifies raw signing only ({alg:?}), which is not \
                 supported for certificate requests"
            )))
        }
    };
    let specific = with_hash(alg, hash);
    let null = || Some(Any::from(AnyRef::NULL));
    let (oid_text, name, parameters) = match alg {
        AsymmetricSignature::RsaPkcs1v15Sign { .. } => match hash {
            Hash::Sha256 => ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption", null()),
            Hash::Sha384 => ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption", null()),
            Hash::Sha512 => ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption", null()),
            _ => return Err(unsupported_hash(key, alg)),
        },
        AsymmetricSignature::RsaPss { .. } => {
            let hash_len = match hash {
                Hash::Sha256 => 32,
                Hash::Sha384 => 48,
                _ => return Err(unsupported_hash(key, alg)),
            };
            let hash_id = sha_identifier(hash)?;
            let params = PssParams {
                hash: hash_id.clone(),
                mask_gen: AlgorithmIdentifierOwned {
                    oid: oid("1.2.840.113549.1.1.8")?,
                    parameters: Some(Any::encode_from(&hash_id).map_err(|e| {
                        Failure::generic(format!("cannot encode PSS parameters: {e}"))
                    })?),
                },
                salt_length: hash_len,
            };
            let any = Any::encode_from(&params)
                .map_err(|e| Failure::generic(format!("cannot encode PSS parameters: {e}")))?;
            ("1.2.840.113549.1.1.10", "rsassaPss", Some(any))
        }
        AsymmetricSignature::Ecdsa { hash_alg }
        | AsymmetricSignature::DeterministicEcdsa { hash_alg } => {
            if !matches!(
                attributes.key_type,
                Type::EccKeyPair {
                    curve_family: EccFamily::SecpR1
                }
            ) {
                return Err(Failure::not_supported(format!(
                    "signing key {key:?} must use curve family SecpR1 (NIST P-256 or P-384) for \
                     certificate requests"
                )));
            }
            match (hash_alg, hash, attributes.bits) {
                (_, Hash::Sha256, 256) => ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256", None),
                (SignHash::Specific(_), Hash::Sha384, 384) => {
                    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384", None)
                }
                (SignHash::Any, _, bits) => {
                    return Err(Failure::not_supported(format!(
                        "signing key {key:?} allows any hash and has {bits} bits: only 256-bit \
                         keys are supported without a specific hash algorithm"
                    )))
                }
                (_, Hash::Sha256 | Hash::Sha384, bits) => {
                    return Err(Failure::not_supported(format!(
                        "signing key {key:?} should have strength {}, but actually has \
                         strength {bits}",
                        if hash == Hash::Sha256 { 256 } else { 384 }
                    )))
                }
                _ => return Err(unsupported_hash(key, alg)),
            }
        }
        _ => {
            return Err(Failure::not_supported(format!(
                "the algorithm of key {key:?} ({alg:?}) is not supported for certificate \
                 requests"
            )))
        }
    };
    Ok(X509Algorithm {
        alg: specific,
        hash,
        identifier: AlgorithmIdentifierOwned {
            oid: oid(oid_text)?,
            parameters,
        },
        name,
    })
}
