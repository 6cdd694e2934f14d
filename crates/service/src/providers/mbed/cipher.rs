//! Unauthenticated ciphers: PsaCipherEncrypt and PsaCipherDecrypt.
//!
//! Encryption draws a random IV (none for ECB) and returns `IV ‖ encrypted data`; decryption
//! splits the IV off the front. Bad PKCS#7 padding gives `InvalidPadding`.

use bulwark_interface::ops::{
    psa_cipher_decrypt, psa_cipher_encrypt, PsaCipherDecrypt, PsaCipherEncrypt,
};
use psa_crypto::operations::other::generate_random;
use psa_crypto::types::algorithm::Cipher;
use psa_crypto::types::key::Type;
use psa_crypto::types::status::Error as PsaError;

use super::{buffer, ffi, into_secret, psa_key_id, secret_buffer, MbedProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The largest cipher block (AES, Camellia): the most a cipher operation adds to its input.
const MAX_BLOCK: usize = 16;

/// The IV length of `alg` with a key of `key_type` (docs/protocol.md#output-sizes).
fn iv_length(key_type: Type, alg: Cipher) -> usize {
    match (key_type, alg) {
        (_, Cipher::EcbNoPadding) => 0,
        // ChaCha20 takes a 96-bit nonce; ARC4 takes nothing.
        (Type::Chacha20, Cipher::StreamCipher) => 12,
        (_, Cipher::StreamCipher) => 0,
        #[allow(deprecated)]
        (Type::Des, _) => 8,
        _ => MAX_BLOCK,
    }
}

impl Handles<PsaCipherEncrypt> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_cipher_encrypt::Request,
    ) -> Result<psa_cipher_encrypt::Response, ProviderError> {
        let record = key.record();
        let raw_id = psa_key_id(&record.key_id)?;
        let alg = request.alg;
        let iv_len = iv_length(record.attributes.key_type, alg);
        let plaintext = &request.plaintext[..];
        let ciphertext = self.with_key(ctx.client(), record, |guard, _, _| {
            let mut output = buffer(iv_len + plaintext.len() + MAX_BLOCK);
            let (iv, data) = output.split_at_mut(iv_len);
            if !iv.is_empty() {
                generate_random(iv)?;
            }
            let length = ffi::cipher(guard, true, raw_id, alg, iv, plaintext, data)?;
            output.truncate(iv_len + length);
            Ok(output)
        })?;
        Ok(psa_cipher_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaCipherDecrypt> for MbedProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_cipher_decrypt::Request,
    ) -> Result<psa_cipher_decrypt::Response, ProviderError> {
        let record = key.record();
        let raw_id = psa_key_id(&record.key_id)?;
        let alg = request.alg;
        let iv_len = iv_length(record.attributes.key_type, alg);
        if request.ciphertext.len() < iv_len {
            return Err(PsaError::InvalidArgument.into());
        }
        let (iv, data) = request.ciphertext.split_at(iv_len);
        let plaintext = self.with_key(ctx.client(), record, |guard, _, _| {
            let mut plaintext = secret_buffer(data.len() + MAX_BLOCK);
            let length = ffi::cipher(guard, false, raw_id, alg, iv, data, &mut plaintext)?;
            plaintext.truncate(length);
            Ok(plaintext)
        })?;
        Ok(psa_cipher_decrypt::Response {
            plaintext: into_secret(plaintext),
        })
    }
}
