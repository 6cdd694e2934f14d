//! Asymmetric encryption: PsaAsymmetricEncrypt and PsaAsymmetricDecrypt (RSA PKCS#1 v1.5 and
//! OAEP; the request's salt is the OAEP label).

use bulwark_interface::ops::{
    psa_asymmetric_decrypt, psa_asymmetric_encrypt, PsaAsymmetricDecrypt, PsaAsymmetricEncrypt,
};
use psa_crypto::operations::asym_encryption;

use super::{buffer, into_secret, secret_buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The label to pass to PSA: none when absent or empty.
fn label(salt: Option<&[u8]>) -> Option<&[u8]> {
    salt.filter(|salt| !salt.is_empty())
}

impl Handles<PsaAsymmetricEncrypt> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_encrypt::Request,
    ) -> Result<psa_asymmetric_encrypt::Response, ProviderError> {
        let record = key.record();
        let alg = request.alg;
        let ciphertext = self.with_key(ctx.client(), record, |_, id, attributes| {
            let mut ciphertext = buffer(attributes.asymmetric_encrypt_output_size(alg)?);
            let length = asym_encryption::encrypt(
                id,
                alg,
                &request.plaintext,
                label(request.salt.as_deref()),
                &mut ciphertext,
            )?;
            ciphertext.truncate(length);
            Ok(ciphertext)
        })?;
        Ok(psa_asymmetric_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaAsymmetricDecrypt> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_decrypt::Request,
    ) -> Result<psa_asymmetric_decrypt::Response, ProviderError> {
        let record = key.record();
        let alg = request.alg;
        let plaintext = self.with_key(ctx.client(), record, |_, id, attributes| {
            let mut plaintext = secret_buffer(attributes.asymmetric_decrypt_output_size(alg)?);
            let length = asym_encryption::decrypt(
                id,
                alg,
                &request.ciphertext,
                label(request.salt.as_deref()),
                &mut plaintext,
            )?;
            plaintext.truncate(length);
            Ok(plaintext)
        })?;
        Ok(psa_asymmetric_decrypt::Response {
            plaintext: into_secret(plaintext),
        })
    }
}
