//! Hashes: PsaHashCompute and PsaHashCompare, and the hash of each PSA algorithm for the other
//! families. No key and no identity involved.
//!
//! Every hash OpenSSL 3's default provider has is available: MD5, RIPEMD-160, SHA-1, SHA-224 to
//! SHA-512, SHA-512/224, SHA-512/256 and SHA3-224 to SHA3-512. MD2 and MD4 are `NotSupported`.
//! Comparisons are constant-time.

use ::openssl::hash::MessageDigest;
use ::openssl::md::{Md, MdRef};
use ::openssl::md_ctx::MdCtx;
use bulwark_interface::ops::{psa_hash_compare, psa_hash_compute, PsaHashCompare, PsaHashCompute};
use psa_crypto::types::algorithm::Hash;
use psa_crypto::types::status::Error as PsaError;

use super::{error, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext};

/// The OpenSSL digest of a PSA hash.
///
/// # Errors
/// `NotSupported` for MD2 and MD4 (not in OpenSSL 3's default provider).
#[allow(deprecated)]
pub(super) fn digest(hash: Hash) -> Result<&'static MdRef, PsaError> {
    let by_name = |name: &str| {
        MessageDigest::from_name(name)
            .and_then(|md| Md::from_nid(md.type_()))
            .ok_or(PsaError::NotSupported)
    };
    match hash {
        Hash::Md2 | Hash::Md4 => Err(PsaError::NotSupported),
        Hash::Md5 => Ok(Md::md5()),
        Hash::Ripemd160 => Ok(Md::ripemd160()),
        Hash::Sha1 => Ok(Md::sha1()),
        Hash::Sha224 => Ok(Md::sha224()),
        Hash::Sha256 => Ok(Md::sha256()),
        Hash::Sha384 => Ok(Md::sha384()),
        Hash::Sha512 => Ok(Md::sha512()),
        Hash::Sha512_224 => by_name("SHA512-224"),
        Hash::Sha512_256 => by_name("SHA512-256"),
        Hash::Sha3_224 => Ok(Md::sha3_224()),
        Hash::Sha3_256 => Ok(Md::sha3_256()),
        Hash::Sha3_384 => Ok(Md::sha3_384()),
        Hash::Sha3_512 => Ok(Md::sha3_512()),
    }
}

/// The hash of `input` with `alg`.
///
/// # Errors
/// `NotSupported` for a hash OpenSSL lacks; an OpenSSL failure.
pub(super) fn compute(alg: Hash, input: &[u8]) -> Result<Vec<u8>, PsaError> {
    let md = digest(alg)?;
    let mut ctx = MdCtx::new().map_err(error::internal)?;
    ctx.digest_init(md).map_err(error::internal)?;
    ctx.digest_update(input).map_err(error::internal)?;
    let mut hash = vec![0; md.size()];
    let length = ctx.digest_final(&mut hash).map_err(error::internal)?;
    hash.truncate(length);
    Ok(hash)
}

impl Handles<PsaHashCompute> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: psa_hash_compute::Request,
    ) -> Result<psa_hash_compute::Response, ProviderError> {
        let hash = compute(request.alg, &request.input)?;
        Ok(psa_hash_compute::Response { hash })
    }
}

impl Handles<PsaHashCompare> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        _: (),
        request: psa_hash_compare::Request,
    ) -> Result<psa_hash_compare::Response, ProviderError> {
        // An unsupported algorithm is reported as such before a digest of the wrong length.
        let md = digest(request.alg)?;
        if request.hash.len() != md.size() {
            return Err(PsaError::InvalidArgument.into());
        }
        let hash = compute(request.alg, &request.input)?;
        if !::openssl::memcmp::eq(&hash, &request.hash) {
            return Err(PsaError::InvalidSignature.into());
        }
        Ok(psa_hash_compare::Response)
    }
}
