//! Message authentication codes: PsaMacCompute and PsaMacVerify: HMAC with every supported
//! hash, and CMAC on AES and Camellia keys, full length or truncated (to at least 4 bytes).
//! CBC-MAC is `NotSupported`, as in the reference provider. Verification compares in constant
//! time.

use ::openssl::md_ctx::MdCtx;
use ::openssl::pkey::PKey;
use ::openssl::symm::Cipher;
use bulwark_interface::ops::{psa_mac_compute, psa_mac_verify, PsaMacCompute, PsaMacVerify};
use psa_crypto::types::algorithm::{FullLengthMac, Mac};
use psa_crypto::types::key::Type;
use psa_crypto::types::status::Error as PsaError;

use super::material::{LoadedKey, Material};
use super::{error, hash, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The shortest MAC this provider makes (as the reference provider).
const MIN_MAC: usize = 4;

/// The MAC of `input` with `key`, truncated as `alg` says.
///
/// # Errors
/// `NotSupported` for CBC-MAC, an unsupported hash or a MAC shorter than 4 bytes;
/// `InvalidArgument` for a truncation longer than the MAC.
pub(super) fn compute(key: &LoadedKey, alg: Mac, input: &[u8]) -> Result<Vec<u8>, PsaError> {
    let (full, length) = match alg {
        Mac::FullLength(full) => (full, None),
        Mac::Truncated {
            mac_alg,
            mac_length,
        } => (mac_alg, Some(mac_length).filter(|&length| length != 0)),
    };
    let Material::Symmetric(bytes) = &key.material else {
        return Err(PsaError::InvalidArgument);
    };
    let (pkey, md) = match full {
        FullLengthMac::Hmac { hash_alg } => {
            let md = hash::digest(hash_alg)?;
            (PKey::hmac(bytes).map_err(error::internal)?, Some(md))
        }
        FullLengthMac::Cmac => {
            let cipher = match (key.key_type, bytes.len()) {
                (Type::Aes, 16) => Cipher::aes_128_cbc(),
                (Type::Aes, 24) => Cipher::aes_192_cbc(),
                (Type::Aes, 32) => Cipher::aes_256_cbc(),
                (Type::Camellia, 16) => Cipher::camellia_128_cbc(),
                (Type::Camellia, 24) => Cipher::camellia_192_cbc(),
                (Type::Camellia, 32) => Cipher::camellia_256_cbc(),
                _ => return Err(PsaError::NotSupported),
            };
            (PKey::cmac(&cipher, bytes).map_err(error::internal)?, None)
        }
        FullLengthMac::CbcMac => return Err(PsaError::NotSupported),
    };
    let full_length = md.map_or(16, |md| md.size());
    let length = length.unwrap_or(full_length);
    if length < MIN_MAC {
        return Err(PsaError::NotSupported);
    }
    if length > full_length {
        return Err(PsaError::InvalidArgument);
    }
    let mut ctx = MdCtx::new().map_err(error::internal)?;
    ctx.digest_sign_init(md, &pkey).map_err(error::internal)?;
    ctx.digest_sign_update(input).map_err(error::internal)?;
    let mut mac = vec![0; full_length];
    let written = ctx
        .digest_sign_final(Some(&mut mac))
        .map_err(error::internal)?;
    if written != full_length {
        return Err(PsaError::CorruptionDetected);
    }
    mac.truncate(length);
    Ok(mac)
}

impl Handles<PsaMacCompute> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_mac_compute::Request,
    ) -> Result<psa_mac_compute::Response, ProviderError> {
        let key = self.load(&key)?;
        let mac = compute(&key, request.alg, &request.input)?;
        Ok(psa_mac_compute::Response { mac })
    }
}

impl Handles<PsaMacVerify> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_mac_verify::Request,
    ) -> Result<psa_mac_verify::Response, ProviderError> {
        let key = self.load(&key)?;
        let mac = compute(&key, request.alg, &request.input)?;
        if mac.len() != request.mac.len() || !::openssl::memcmp::eq(&mac, &request.mac) {
            return Err(PsaError::InvalidSignature.into());
        }
        Ok(psa_mac_verify::Response)
    }
}
