//! Asymmetric signatures: PsaSignHash and PsaVerifyHash.
//!
//! RSA PKCS#1 v1.5 signs `DigestInfo ‖ hash` (or the bytes given, for the raw scheme) with
//! `CKM_RSA_PKCS`; RSA-PSS uses `CKM_RSA_PKCS_PSS` with MGF1 on the same hash and a salt as
//! long as the hash (or as the key allows); ECDSA uses `CKM_ECDSA` on the hash and gives
//! `r ‖ s`. Deterministic ECDSA is `NotSupported`. Hashes: SHA-1, SHA-224, SHA-256, SHA-384 and
//! SHA-512.

use bulwark_interface::ops::{psa_sign_hash, psa_verify_hash, PsaSignHash, PsaVerifyHash};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::types::Ulong;
use psa_crypto::types::algorithm::{AsymmetricSignature, Hash, SignHash};
use psa_crypto::types::status::Error as PsaError;

use super::{error, software, Half, Pkcs11Provider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// What the token needs to know of a hash.
#[derive(Debug, Clone, Copy)]
pub(super) struct HashParams {
    pub(super) mechanism: MechanismType,
    pub(super) mgf: PkcsMgfType,
    /// DER `DigestInfo` up to the digest itself.
    pub(super) digest_info: &'static [u8],
    pub(super) len: usize,
}

/// The parameters of `hash`; `NotSupported` for hashes other than SHA-1 and SHA-2.
///
/// The `DigestInfo` prefixes are those of RFC 8017 §9.2, note 1.
#[allow(deprecated)] // SHA-1: the policy checks decide whether it may be used.
pub(super) fn hash_params(hash: Hash) -> Result<HashParams, PsaError> {
    let (mechanism, mgf, digest_info): (_, _, &'static [u8]) = match hash {
        Hash::Sha1 => (
            MechanismType::SHA1,
            PkcsMgfType::MGF1_SHA1,
            b"\x30\x21\x30\x09\x06\x05\x2b\x0e\x03\x02\x1a\x05\x00\x04\x14",
        ),
        Hash::Sha224 => (
            MechanismType::SHA224,
            PkcsMgfType::MGF1_SHA224,
            b"\x30\x2d\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x04\x05\x00\x04\x1c",
        ),
        Hash::Sha256 => (
            MechanismType::SHA256,
            PkcsMgfType::MGF1_SHA256,
            b"\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20",
        ),
        Hash::Sha384 => (
            MechanismType::SHA384,
            PkcsMgfType::MGF1_SHA384,
            b"\x30\x41\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x02\x05\x00\x04\x30",
        ),
        Hash::Sha512 => (
            MechanismType::SHA512,
            PkcsMgfType::MGF1_SHA512,
            b"\x30\x51\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03\x05\x00\x04\x40",
        ),
        _ => return Err(PsaError::NotSupported),
    };
    Ok(HashParams {
        mechanism,
        mgf,
        digest_info,
        len: hash.hash_length(),
    })
}

/// The RSA-PSS salt length for a `modulus_bytes` key and a `hash_len` hash: the hash length,
/// or what room the key leaves if less.
pub(super) fn pss_salt_len(modulus_bytes: usize, hash_len: usize) -> Result<usize, PsaError> {
    let room = modulus_bytes
        .checked_sub(2 + hash_len)
        .ok_or(PsaError::InvalidArgument)?;
    Ok(room.min(hash_len))
}

/// The mechanism and the bytes the token signs or verifies for `alg` and `hash`.
fn mechanism(
    alg: AsymmetricSignature,
    hash: &[u8],
    modulus_bytes: usize,
) -> Result<(Mechanism<'static>, Vec<u8>), PsaError> {
    match alg {
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: SignHash::Specific(hash_alg),
        } => {
            let params = hash_params(hash_alg)?;
            let mut data = params.digest_info.to_vec();
            data.extend_from_slice(hash);
            Ok((Mechanism::RsaPkcs, data))
        }
        AsymmetricSignature::RsaPkcs1v15SignRaw => {
            if hash.len() > modulus_bytes.saturating_sub(11) {
                return Err(PsaError::InvalidArgument);
            }
            Ok((Mechanism::RsaPkcs, hash.to_vec()))
        }
        AsymmetricSignature::RsaPss {
            hash_alg: SignHash::Specific(hash_alg),
        } => {
            let params = hash_params(hash_alg)?;
            let salt = pss_salt_len(modulus_bytes, params.len)?;
            let pss = PkcsPssParams {
                hash_alg: params.mechanism,
                mgf: params.mgf,
                s_len: Ulong::from(salt as u64),
            };
            Ok((Mechanism::RsaPkcsPss(pss), hash.to_vec()))
        }
        AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Specific(hash_alg),
        } => {
            hash_params(hash_alg)?;
            Ok((Mechanism::Ecdsa, hash.to_vec()))
        }
        AsymmetricSignature::EcdsaAny => Ok((Mechanism::Ecdsa, hash.to_vec())),
        AsymmetricSignature::DeterministicEcdsa { .. } => Err(PsaError::NotSupported),
        _ => Err(PsaError::InvalidArgument),
    }
}

impl Handles<PsaSignHash> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_sign_hash::Request,
    ) -> Result<psa_sign_hash::Response, ProviderError> {
        let record = key.record();
        // The modulus size (PSS salt, raw capacity) from the public key, read once.
        let size = self.public_key(record)?.size;
        let (mechanism, data) = mechanism(request.alg, &request.hash, size)?;
        let signature = self.with_object(record, Half::Private, error::psa, |session, key| {
            session.sign(&mechanism, key, &data)
        })?;
        Ok(psa_sign_hash::Response { signature })
    }
}

impl Handles<PsaVerifyHash> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_verify_hash::Request,
    ) -> Result<psa_verify_hash::Response, ProviderError> {
        let record = key.record();
        let public = self.public_key(record)?;
        // What the signature shows without the key, checked as the software providers do.
        software::check_signature_form(&public, request.alg, &request.signature)?;
        if self.software_public_operations {
            software::verify(&public, request.alg, &request.hash, &request.signature)?;
        } else {
            let (mechanism, data) = mechanism(request.alg, &request.hash, public.size)?;
            self.with_object(record, Half::Public, error::psa, |session, key| {
                session.verify(&mechanism, key, &data, &request.signature)
            })?;
        }
        Ok(psa_verify_hash::Response)
    }
}
