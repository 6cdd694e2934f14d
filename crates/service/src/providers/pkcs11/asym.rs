//! Asymmetric encryption: PsaAsymmetricEncrypt and PsaAsymmetricDecrypt (RSA PKCS#1 v1.5 with
//! `CKM_RSA_PKCS`, OAEP with `CKM_RSA_PKCS_OAEP`, MGF1 on the same hash; the request's salt is
//! the OAEP label).
//!
//! Decryption answers `InvalidPadding` for every failure of the decryption itself, whatever the
//! token's reason (no padding oracle); only what the ciphertext shows without the private key
//! is reported otherwise: a length other than the modulus length or a value not below the
//! modulus (`InvalidArgument`).

use ::openssl::bn::BigNum;
use bulwark_interface::ops::{
    psa_asymmetric_decrypt, psa_asymmetric_encrypt, PsaAsymmetricDecrypt, PsaAsymmetricEncrypt,
};
use bulwark_interface::secret::SecretBytes;
use cryptoki::mechanism::rsa::{PkcsOaepParams, PkcsOaepSource};
use cryptoki::mechanism::Mechanism;
use psa_crypto::types::algorithm::AsymmetricEncryption;
use psa_crypto::types::status::Error as PsaError;

use super::sign::hash_params;
use super::{error, software, Half, Pkcs11Provider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The label to use: none when absent or empty.
fn label(salt: Option<&[u8]>) -> Option<&[u8]> {
    salt.filter(|salt| !salt.is_empty())
}

/// The token mechanism of `alg` with `label`, and the most plaintext bytes it carries with a
/// key of `modulus_bytes`.
fn mechanism(
    alg: AsymmetricEncryption,
    label: Option<&[u8]>,
    modulus_bytes: usize,
) -> Result<(Mechanism<'_>, usize), PsaError> {
    match alg {
        AsymmetricEncryption::RsaPkcs1v15Crypt => {
            Ok((Mechanism::RsaPkcs, modulus_bytes.saturating_sub(11)))
        }
        AsymmetricEncryption::RsaOaep { hash_alg } => {
            let params = hash_params(hash_alg)?;
            let capacity = modulus_bytes
                .checked_sub(2 * params.len + 2)
                .ok_or(PsaError::InvalidArgument)?;
            let source = match label {
                Some(label) => PkcsOaepSource::data_specified(label),
                None => PkcsOaepSource::empty(),
            };
            let oaep = PkcsOaepParams::new(params.mechanism, params.mgf, source);
            Ok((Mechanism::RsaPkcsOaep(oaep), capacity))
        }
    }
}

impl Handles<PsaAsymmetricEncrypt> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_encrypt::Request,
    ) -> Result<psa_asymmetric_encrypt::Response, ProviderError> {
        let record = key.record();
        let public = self.public_key(record)?;
        let label = label(request.salt.as_deref());
        let (mechanism, capacity) = mechanism(request.alg, label, public.size)?;
        if request.plaintext.len() > capacity {
            return Err(PsaError::InvalidArgument.into());
        }
        let ciphertext = if self.software_public_operations {
            software::encrypt(&public, request.alg, &request.plaintext, label)?
        } else {
            self.with_object(record, Half::Public, error::psa, |session, key| {
                session.encrypt(&mechanism, key, &request.plaintext)
            })?
        };
        Ok(psa_asymmetric_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaAsymmetricDecrypt> for Pkcs11Provider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_decrypt::Request,
    ) -> Result<psa_asymmetric_decrypt::Response, ProviderError> {
        let record = key.record();
        if record.attributes.key_type.is_public_key() {
            return Err(PsaError::InvalidArgument.into());
        }
        let public = self.public_key(record)?;
        if request.ciphertext.len() != public.size {
            return Err(PsaError::InvalidArgument.into());
        }
        let rsa = public.pkey.rsa().map_err(|_| PsaError::GenericError)?;
        let value = BigNum::from_slice(&request.ciphertext).map_err(|_| PsaError::GenericError)?;
        if value.ucmp(rsa.n()).is_ge() {
            return Err(PsaError::InvalidArgument.into());
        }
        let (mechanism, _) = mechanism(request.alg, label(request.salt.as_deref()), public.size)?;
        let plaintext =
            self.with_object(record, Half::Private, error::decrypt, |session, key| {
                session.decrypt(&mechanism, key, &request.ciphertext)
            })?;
        Ok(psa_asymmetric_decrypt::Response {
            plaintext: SecretBytes::new(plaintext),
        })
    }
}
