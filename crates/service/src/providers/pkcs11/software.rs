//! The public-key operations done with OpenSSL when `software_public_operations` is set:
//! signature verification and encryption with the public key read from the token.

use ::openssl::bn::BigNum;
use ::openssl::ecdsa::EcdsaSig;
use ::openssl::md::{Md, MdRef};
use ::openssl::pkey::Id;
use ::openssl::pkey_ctx::PkeyCtx;
use ::openssl::rsa::Padding;
use ::openssl::sign::RsaPssSaltlen;
use psa_crypto::types::algorithm::{AsymmetricEncryption, AsymmetricSignature, Hash, SignHash};
use psa_crypto::types::status::Error as PsaError;

use super::sign::{hash_params, pss_salt_len};
use super::PublicKey;

fn failed(_: ::openssl::error::ErrorStack) -> PsaError {
    PsaError::GenericError
}

/// The OpenSSL digest of a hash this provider supports.
#[allow(deprecated)] // SHA-1: still verified, as the token does.
fn digest(hash: Hash) -> Result<&'static MdRef, PsaError> {
    hash_params(hash)?;
    Ok(match hash {
        Hash::Sha1 => Md::sha1(),
        Hash::Sha224 => Md::sha224(),
        Hash::Sha256 => Md::sha256(),
        Hash::Sha384 => Md::sha384(),
        _ => Md::sha512(),
    })
}

/// Checks what a signature shows without the key: its length (`InvalidSignature`) and, for
/// RSA, that it is below the modulus (`InvalidArgument`).
pub(super) fn check_signature_form(
    key: &PublicKey,
    alg: AsymmetricSignature,
    signature: &[u8],
) -> Result<(), PsaError> {
    let rsa_key = key.pkey.id() == Id::RSA;
    if rsa_key != alg.is_rsa_alg() {
        return Err(PsaError::InvalidArgument);
    }
    if !rsa_key {
        return if signature.len() == 2 * key.size {
            Ok(())
        } else {
            Err(PsaError::InvalidSignature)
        };
    }
    if signature.len() != key.size {
        return Err(PsaError::InvalidSignature);
    }
    let rsa = key.pkey.rsa().map_err(failed)?;
    let value = BigNum::from_slice(signature).map_err(failed)?;
    if value.ucmp(rsa.n()).is_ge() {
        return Err(PsaError::InvalidArgument);
    }
    Ok(())
}

/// Verifies `signature` of `hash` with `key`; [`check_signature_form`] passed.
pub(super) fn verify(
    key: &PublicKey,
    alg: AsymmetricSignature,
    hash: &[u8],
    signature: &[u8],
) -> Result<(), PsaError> {
    let bad = |_| PsaError::InvalidSignature;
    match alg {
        AsymmetricSignature::Ecdsa { .. } | AsymmetricSignature::EcdsaAny => {
            if let AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(hash_alg),
            } = alg
            {
                hash_params(hash_alg)?;
            }
            let ec = key.pkey.ec_key().map_err(failed)?;
            let (r, s) = signature.split_at(key.size);
            let signature = EcdsaSig::from_private_components(
                BigNum::from_slice(r).map_err(failed)?,
                BigNum::from_slice(s).map_err(failed)?,
            )
            .map_err(failed)?;
            match signature.verify(hash, &ec) {
                Ok(true) => Ok(()),
                Ok(false) | Err(_) => Err(PsaError::InvalidSignature),
            }
        }
        AsymmetricSignature::RsaPkcs1v15SignRaw => {
            if hash.len() > key.size.saturating_sub(11) {
                return Err(PsaError::InvalidArgument);
            }
            let mut ctx = PkeyCtx::new(&key.pkey).map_err(failed)?;
            ctx.verify_recover_init().map_err(failed)?;
            ctx.set_rsa_padding(Padding::PKCS1).map_err(failed)?;
            let mut recovered = vec![0; key.size];
            let length = ctx
                .verify_recover(signature, Some(&mut recovered))
                .map_err(bad)?;
            if recovered.get(..length) == Some(hash) {
                Ok(())
            } else {
                Err(PsaError::InvalidSignature)
            }
        }
        AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: SignHash::Specific(hash_alg),
        }
        | AsymmetricSignature::RsaPss {
            hash_alg: SignHash::Specific(hash_alg),
        } => {
            let md = digest(hash_alg)?;
            let mut ctx = PkeyCtx::new(&key.pkey).map_err(failed)?;
            ctx.verify_init().map_err(failed)?;
            if matches!(alg, AsymmetricSignature::RsaPss { .. }) {
                let salt = pss_salt_len(key.size, md.size())?;
                ctx.set_rsa_padding(Padding::PKCS1_PSS).map_err(failed)?;
                ctx.set_rsa_mgf1_md(md).map_err(failed)?;
                ctx.set_rsa_pss_saltlen(RsaPssSaltlen::custom(salt as i32))
                    .map_err(failed)?;
            } else {
                ctx.set_rsa_padding(Padding::PKCS1).map_err(failed)?;
            }
            ctx.set_signature_md(md).map_err(failed)?;
            match ctx.verify(hash, signature) {
                Ok(true) => Ok(()),
                Ok(false) | Err(_) => Err(PsaError::InvalidSignature),
            }
        }
        AsymmetricSignature::DeterministicEcdsa { .. } => Err(PsaError::NotSupported),
        _ => Err(PsaError::InvalidArgument),
    }
}

/// Encrypts `plaintext` with the RSA `key`; the capacity was checked.
pub(super) fn encrypt(
    key: &PublicKey,
    alg: AsymmetricEncryption,
    plaintext: &[u8],
    label: Option<&[u8]>,
) -> Result<Vec<u8>, PsaError> {
    let mut ctx = PkeyCtx::new(&key.pkey).map_err(failed)?;
    ctx.encrypt_init().map_err(failed)?;
    match alg {
        AsymmetricEncryption::RsaPkcs1v15Crypt => {
            ctx.set_rsa_padding(Padding::PKCS1).map_err(failed)?;
        }
        AsymmetricEncryption::RsaOaep { hash_alg } => {
            let md = digest(hash_alg)?;
            ctx.set_rsa_padding(Padding::PKCS1_OAEP).map_err(failed)?;
            ctx.set_rsa_oaep_md(md).map_err(failed)?;
            ctx.set_rsa_mgf1_md(md).map_err(failed)?;
            if let Some(label) = label {
                ctx.set_rsa_oaep_label(label).map_err(failed)?;
            }
        }
    }
    let mut ciphertext = Vec::with_capacity(key.size);
    ctx.encrypt_to_vec(plaintext, &mut ciphertext)
        .map_err(failed)?;
    Ok(ciphertext)
}
