//! Asymmetric encryption: PsaAsymmetricEncrypt and PsaAsymmetricDecrypt (RSA PKCS#1 v1.5 and
//! OAEP with MGF1 on the same hash; the request's salt is the OAEP label).
//!
//! Decryption answers `InvalidPadding` for every failure of the decryption itself, whatever
//! OpenSSL's reason, and never logs the reason: a caller learns nothing about why a ciphertext
//! was refused (no padding oracle). Only what the ciphertext shows without the private key is
//! reported otherwise: a length other than the modulus length, or a value not below the modulus
//! (`InvalidArgument`, as the reference provider reports both).

use ::openssl::bn::BigNum;
use ::openssl::pkey::PKeyRef;
use ::openssl::pkey_ctx::PkeyCtx;
use ::openssl::rsa::Padding;
use bulwark_interface::ops::{
    psa_asymmetric_decrypt, psa_asymmetric_encrypt, PsaAsymmetricDecrypt, PsaAsymmetricEncrypt,
};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::algorithm::AsymmetricEncryption;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::material::{Material, RsaMaterial};
use super::{error, hash, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The label to use: none when absent or empty.
fn label(salt: Option<&[u8]>) -> Option<&[u8]> {
    salt.filter(|salt| !salt.is_empty())
}

/// The RSA material of a key, refusing other types (the policy checks already did).
fn rsa(material: &Material) -> Result<&RsaMaterial, PsaError> {
    match material {
        Material::Rsa(rsa) => Ok(rsa),
        _ => Err(PsaError::InvalidArgument),
    }
}

/// Sets the padding of `alg` on `ctx`; returns the most plaintext bytes it carries with a key
/// of `modulus_bytes`.
fn configure<T>(
    ctx: &mut PkeyCtx<T>,
    alg: AsymmetricEncryption,
    label: Option<&[u8]>,
    modulus_bytes: usize,
) -> Result<usize, PsaError> {
    match alg {
        AsymmetricEncryption::RsaPkcs1v15Crypt => {
            ctx.set_rsa_padding(Padding::PKCS1)
                .map_err(error::internal)?;
            Ok(modulus_bytes.saturating_sub(11))
        }
        AsymmetricEncryption::RsaOaep { hash_alg } => {
            let md = hash::digest(hash_alg)?;
            let capacity = modulus_bytes
                .checked_sub(2 * md.size() + 2)
                .ok_or(PsaError::InvalidArgument)?;
            ctx.set_rsa_padding(Padding::PKCS1_OAEP)
                .map_err(error::internal)?;
            ctx.set_rsa_oaep_md(md).map_err(error::internal)?;
            ctx.set_rsa_mgf1_md(md).map_err(error::internal)?;
            if let Some(label) = label {
                ctx.set_rsa_oaep_label(label).map_err(error::internal)?;
            }
            Ok(capacity)
        }
    }
}

fn encrypt(
    rsa: &RsaMaterial,
    alg: AsymmetricEncryption,
    plaintext: &[u8],
    label: Option<&[u8]>,
) -> Result<Vec<u8>, PsaError> {
    let mut ctx = PkeyCtx::new(&rsa.public).map_err(error::internal)?;
    ctx.encrypt_init().map_err(error::internal)?;
    let capacity = configure(&mut ctx, alg, label, rsa.modulus_bytes)?;
    if plaintext.len() > capacity {
        return Err(PsaError::InvalidArgument);
    }
    let mut ciphertext = Vec::with_capacity(rsa.modulus_bytes);
    ctx.encrypt_to_vec(plaintext, &mut ciphertext)
        .map_err(error::internal)?;
    Ok(ciphertext)
}

fn decrypt(
    private: &PKeyRef<::openssl::pkey::Private>,
    rsa: &RsaMaterial,
    alg: AsymmetricEncryption,
    ciphertext: &[u8],
    label: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    if ciphertext.len() != rsa.modulus_bytes {
        return Err(PsaError::InvalidArgument);
    }
    let value = BigNum::from_slice(ciphertext).map_err(error::internal)?;
    if value.ucmp(&rsa.modulus).is_ge() {
        return Err(PsaError::InvalidArgument);
    }
    let mut ctx = PkeyCtx::new(private).map_err(error::internal)?;
    ctx.decrypt_init().map_err(error::internal)?;
    configure(&mut ctx, alg, label, rsa.modulus_bytes)?;
    let mut plaintext = Zeroizing::new(vec![0; rsa.modulus_bytes]);
    let length = ctx
        .decrypt(ciphertext, Some(&mut plaintext[..]))
        .map_err(error::decrypt)?;
    plaintext.truncate(length);
    Ok(plaintext)
}

impl Handles<PsaAsymmetricEncrypt> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_encrypt::Request,
    ) -> Result<psa_asymmetric_encrypt::Response, ProviderError> {
        let key = self.load(&key)?;
        let ciphertext = encrypt(
            rsa(&key.material)?,
            request.alg,
            &request.plaintext,
            label(request.salt.as_deref()),
        )?;
        Ok(psa_asymmetric_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaAsymmetricDecrypt> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_decrypt::Request,
    ) -> Result<psa_asymmetric_decrypt::Response, ProviderError> {
        let key = self.load(&key)?;
        let rsa = rsa(&key.material)?;
        let private = rsa.private.as_ref().ok_or(PsaError::InvalidArgument)?;
        let mut plaintext = decrypt(
            private,
            rsa,
            request.alg,
            &request.ciphertext,
            label(request.salt.as_deref()),
        )?;
        Ok(psa_asymmetric_decrypt::Response {
            plaintext: SecretBytes::new(std::mem::take(&mut *plaintext)),
        })
    }
}
