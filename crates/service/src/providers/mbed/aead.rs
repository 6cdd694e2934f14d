//! Authenticated encryption: PsaAeadEncrypt and PsaAeadDecrypt (CCM, GCM, ChaCha20-Poly1305).
//!
//! The ciphertext is the encrypted data followed by the tag; a tag that does not verify gives
//! `InvalidSignature`.

use bulwark_interface::ops::{psa_aead_decrypt, psa_aead_encrypt, PsaAeadDecrypt, PsaAeadEncrypt};
use psa_crypto::operations::aead;

use super::{buffer, into_secret, secret_buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

impl Handles<PsaAeadEncrypt> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_aead_encrypt::Request,
    ) -> Result<psa_aead_encrypt::Response, ProviderError> {
        let record = key.record();
        let alg = request.alg;
        let ciphertext = self.with_key(ctx.client(), record, |_, id, attributes| {
            let size = attributes.aead_encrypt_output_size(alg, request.plaintext.len())?;
            let mut ciphertext = buffer(size);
            let length = aead::encrypt(
                id,
                alg,
                &request.nonce,
                &request.additional_data,
                &request.plaintext,
                &mut ciphertext,
            )?;
            ciphertext.truncate(length);
            Ok(ciphertext)
        })?;
        Ok(psa_aead_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaAeadDecrypt> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_aead_decrypt::Request,
    ) -> Result<psa_aead_decrypt::Response, ProviderError> {
        let record = key.record();
        let alg = request.alg;
        let plaintext = self.with_key(ctx.client(), record, |_, id, attributes| {
            let size = attributes.aead_decrypt_output_size(alg, request.ciphertext.len())?;
            let mut plaintext = secret_buffer(size);
            let length = aead::decrypt(
                id,
                alg,
                &request.nonce,
                &request.additional_data,
                &request.ciphertext,
                &mut plaintext,
            )?;
            plaintext.truncate(length);
            Ok(plaintext)
        })?;
        Ok(psa_aead_decrypt::Response {
            plaintext: into_secret(plaintext),
        })
    }
}
