//! Asymmetric signatures: PsaSignHash, PsaVerifyHash, PsaSignMessage and PsaVerifyMessage.
//!
//! RSA PKCS#1 v1.5 (with a hash, or raw), RSA-PSS (MGF1 with the same hash, salt as long as the
//! hash, or as long as the key allows) and randomised ECDSA. ECDSA signatures are `r ‖ s`, each
//! as long as the curve's field. Deterministic ECDSA is `NotSupported`: OpenSSL 3.0 has no
//! RFC 6979 nonces. Verification uses only the public half of a key pair. Messages are hashed
//! with the hash the scheme names, then signed or verified as a hash.

use ::openssl::bn::BigNum;
use ::openssl::ecdsa::EcdsaSig;
use ::openssl::pkey_ctx::{PkeyCtx, PkeyCtxRef};
use ::openssl::rsa::Padding;
use ::openssl::sign::RsaPssSaltlen;
use bulwark_interface::ops::{
    psa_sign_hash, psa_sign_message, psa_verify_hash, psa_verify_message, PsaSignHash,
    PsaSignMessage, PsaVerifyHash, PsaVerifyMessage,
};
use psa_crypto::types::algorithm::{AsymmetricSignature, SignHash};
use psa_crypto::types::status::Error as PsaError;

use super::material::{to_padded, EcMaterial, LoadedKey, Material, RsaMaterial};
use super::{error, hash, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The RSA-PSS salt length for a `modulus_bytes` key and a `hash_len` hash: the hash length,
/// or what room the key leaves if less (as the reference provider signs and expects).
///
/// # Errors
/// `InvalidArgument` when the key is too small for the hash.
fn pss_salt_len(modulus_bytes: usize, hash_len: usize) -> Result<RsaPssSaltlen, PsaError> {
    let room = modulus_bytes
        .checked_sub(2 + hash_len)
        .ok_or(PsaError::InvalidArgument)?;
    let salt = i32::try_from(room.min(hash_len)).map_err(|_| PsaError::InvalidArgument)?;
    Ok(RsaPssSaltlen::custom(salt))
}

/// The most bytes a raw PKCS#1 v1.5 signature can carry with a key of `modulus_bytes`.
fn raw_capacity(modulus_bytes: usize) -> usize {
    modulus_bytes.saturating_sub(11)
}

/// A context for `alg` on `key`, initialised by `init` (signing or verification).
fn rsa_context<T>(
    key: &::openssl::pkey::PKeyRef<T>,
    modulus_bytes: usize,
    alg: AsymmetricSignature,
    hash: &[u8],
    init: impl FnOnce(&mut PkeyCtxRef<T>) -> Result<(), ::openssl::error::ErrorStack>,
) -> Result<PkeyCtx<T>, PsaError> {
    let mut ctx = PkeyCtx::new(key).map_err(error::internal)?;
    init(&mut ctx).map_err(error::internal)?;
    match alg {
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: SignHash::Specific(hash_alg),
        } => {
            ctx.set_rsa_padding(Padding::PKCS1)
                .map_err(error::internal)?;
            ctx.set_signature_md(hash::digest(hash_alg)?)
                .map_err(error::internal)?;
        }
        AsymmetricSignature::RsaPkcs1v15SignRaw => {
            if hash.len() > raw_capacity(modulus_bytes) {
                return Err(PsaError::InvalidArgument);
            }
            ctx.set_rsa_padding(Padding::PKCS1)
                .map_err(error::internal)?;
        }
        AsymmetricSignature::RsaPss {
            hash_alg: SignHash::Specific(hash_alg),
        } => {
            let md = hash::digest(hash_alg)?;
            let salt = pss_salt_len(modulus_bytes, md.size())?;
            ctx.set_rsa_padding(Padding::PKCS1_PSS)
                .map_err(error::internal)?;
            ctx.set_signature_md(md).map_err(error::internal)?;
            ctx.set_rsa_mgf1_md(md).map_err(error::internal)?;
            ctx.set_rsa_pss_saltlen(salt).map_err(error::internal)?;
        }
        _ => return Err(PsaError::InvalidArgument),
    }
    Ok(ctx)
}

fn rsa_sign(rsa: &RsaMaterial, alg: AsymmetricSignature, hash: &[u8]) -> Result<Vec<u8>, PsaError> {
    let private = rsa.private.as_ref().ok_or(PsaError::InvalidArgument)?;
    let mut ctx = rsa_context(private, rsa.modulus_bytes, alg, hash, PkeyCtxRef::sign_init)?;
    let mut signature = Vec::with_capacity(rsa.modulus_bytes);
    ctx.sign_to_vec(hash, &mut signature)
        .map_err(error::internal)?;
    Ok(signature)
}

fn rsa_verify(
    rsa: &RsaMaterial,
    alg: AsymmetricSignature,
    hash: &[u8],
    signature: &[u8],
) -> Result<(), PsaError> {
    if signature.len() != rsa.modulus_bytes {
        return Err(PsaError::InvalidSignature);
    }
    // Not a signature value at all (as the reference provider reports it).
    let value = BigNum::from_slice(signature).map_err(error::internal)?;
    if value.ucmp(&rsa.modulus).is_ge() {
        return Err(PsaError::InvalidArgument);
    }
    if alg == AsymmetricSignature::RsaPkcs1v15SignRaw {
        // The signed bytes are recovered and compared: this also covers an empty input, which
        // OpenSSL's verification refuses.
        let mut ctx = rsa_context(
            &rsa.public,
            rsa.modulus_bytes,
            alg,
            hash,
            PkeyCtxRef::verify_recover_init,
        )?;
        let mut recovered = vec![0; rsa.modulus_bytes];
        let length = ctx
            .verify_recover(signature, Some(&mut recovered))
            .map_err(error::verify)?;
        return match recovered.get(..length) {
            Some(recovered) if recovered == hash => Ok(()),
            _ => Err(PsaError::InvalidSignature),
        };
    }
    let mut ctx = rsa_context(
        &rsa.public,
        rsa.modulus_bytes,
        alg,
        hash,
        PkeyCtxRef::verify_init,
    )?;
    match ctx.verify(hash, signature) {
        Ok(true) => Ok(()),
        Ok(false) => Err(PsaError::InvalidSignature),
        Err(errors) => Err(error::verify(errors)),
    }
}

fn ecdsa_sign(ec: &EcMaterial, alg: AsymmetricSignature, hash: &[u8]) -> Result<Vec<u8>, PsaError> {
    if matches!(alg, AsymmetricSignature::DeterministicEcdsa { .. }) {
        return Err(PsaError::NotSupported);
    }
    let private = ec.private.as_ref().ok_or(PsaError::InvalidArgument)?;
    let signature = EcdsaSig::sign(hash, private).map_err(error::internal)?;
    let len = ec.curve.bytes();
    let mut encoded = Vec::with_capacity(2 * len);
    encoded.extend_from_slice(&to_padded(signature.r(), len)?);
    encoded.extend_from_slice(&to_padded(signature.s(), len)?);
    Ok(encoded)
}

fn ecdsa_verify(
    ec: &EcMaterial,
    alg: AsymmetricSignature,
    hash: &[u8],
    signature: &[u8],
) -> Result<(), PsaError> {
    if matches!(alg, AsymmetricSignature::DeterministicEcdsa { .. }) {
        return Err(PsaError::NotSupported);
    }
    let len = ec.curve.bytes();
    if signature.len() != 2 * len {
        return Err(PsaError::InvalidSignature);
    }
    let (r, s) = signature.split_at(len);
    let r = BigNum::from_slice(r).map_err(error::internal)?;
    let s = BigNum::from_slice(s).map_err(error::internal)?;
    let signature = EcdsaSig::from_private_components(r, s).map_err(error::internal)?;
    match signature.verify(hash, &ec.public) {
        Ok(true) => Ok(()),
        Ok(false) => Err(PsaError::InvalidSignature),
        Err(errors) => Err(error::verify(errors)),
    }
}

/// Signs `hash` with `key`; the request was validated.
pub(super) fn sign(
    key: &LoadedKey,
    alg: AsymmetricSignature,
    hash: &[u8],
) -> Result<Vec<u8>, PsaError> {
    match &key.material {
        Material::Rsa(rsa) if alg.is_rsa_alg() => rsa_sign(rsa, alg, hash),
        Material::Ec(ec) if alg.is_ecc_alg() => ecdsa_sign(ec, alg, hash),
        _ => Err(PsaError::InvalidArgument),
    }
}

/// Verifies `signature` of `hash` with the public half of `key`; the request was validated.
pub(super) fn verify(
    key: &LoadedKey,
    alg: AsymmetricSignature,
    hash: &[u8],
    signature: &[u8],
) -> Result<(), PsaError> {
    match &key.material {
        Material::Rsa(rsa) if alg.is_rsa_alg() => rsa_verify(rsa, alg, hash, signature),
        Material::Ec(ec) if alg.is_ecc_alg() => ecdsa_verify(ec, alg, hash, signature),
        _ => Err(PsaError::InvalidArgument),
    }
}

/// The hash of `message` with the hash `alg` names.
///
/// # Errors
/// `NotSupported` for a scheme that names no specific hash (raw PKCS#1 v1.5, ECDSA-any) or a
/// hash OpenSSL lacks.
fn message_hash(alg: AsymmetricSignature, message: &[u8]) -> Result<Vec<u8>, PsaError> {
    let Some(SignHash::Specific(hash_alg)) = alg.hash() else {
        return Err(PsaError::NotSupported);
    };
    hash::compute(hash_alg, message)
}

impl Handles<PsaSignHash> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_sign_hash::Request,
    ) -> Result<psa_sign_hash::Response, ProviderError> {
        let key = self.load(&key)?;
        let signature = sign(&key, request.alg, &request.hash)?;
        Ok(psa_sign_hash::Response { signature })
    }
}

impl Handles<PsaVerifyHash> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_verify_hash::Request,
    ) -> Result<psa_verify_hash::Response, ProviderError> {
        let key = self.load(&key)?;
        verify(&key, request.alg, &request.hash, &request.signature)?;
        Ok(psa_verify_hash::Response)
    }
}

impl Handles<PsaSignMessage> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_sign_message::Request,
    ) -> Result<psa_sign_message::Response, ProviderError> {
        let key = self.load(&key)?;
        let hash = message_hash(request.alg, &request.message)?;
        let signature = sign(&key, request.alg, &hash)?;
        Ok(psa_sign_message::Response { signature })
    }
}

impl Handles<PsaVerifyMessage> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_verify_message::Request,
    ) -> Result<psa_verify_message::Response, ProviderError> {
        let key = self.load(&key)?;
        let hash = message_hash(request.alg, &request.message)?;
        verify(&key, request.alg, &hash, &request.signature)?;
        Ok(psa_verify_message::Response)
    }
}
