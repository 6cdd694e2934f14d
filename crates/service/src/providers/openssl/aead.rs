//! Authenticated encryption: PsaAeadEncrypt and PsaAeadDecrypt: AES-GCM, AES-CCM and
//! ChaCha20-Poly1305, with the default 16-byte tag or a shortened one.
//!
//! The ciphertext is the encrypted data followed by the tag; a tag that does not verify gives
//! `InvalidSignature`. Nonce and tag lengths are checked as the reference provider checks them:
//! GCM takes any non-empty nonce and tags of 4 to 16 bytes; CCM nonces of 7 to 13 bytes and
//! tags of 4, 6, ..., 16 bytes; ChaCha20-Poly1305 a 12-byte nonce (8: `NotSupported`) and, here,
//! tags of 4 to 16 bytes (the reference provider supports only 16). Camellia keys have no AEAD
//! mode in OpenSSL: `NotSupported`.

use ::openssl::cipher::Cipher;
use ::openssl::cipher_ctx::{CipherCtx, CipherCtxRef};
use bulwark_interface::ops::{psa_aead_decrypt, psa_aead_encrypt, PsaAeadDecrypt, PsaAeadEncrypt};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::algorithm::{Aead, AeadWithDefaultLengthTag};
use psa_crypto::types::key::Type;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::material::{LoadedKey, Material};
use super::{error, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// Default (and largest) tag length.
const FULL_TAG: usize = 16;

/// How an AEAD algorithm runs with a key.
struct Parameters {
    /// OpenSSL's name of the cipher.
    name: &'static str,
    /// CCM: the tag length and the data length are set before the data.
    ccm: bool,
    /// Length of the tag.
    tag_len: usize,
}

/// The OpenSSL cipher and tag length of `alg` with `key`, after checking the nonce length.
fn parameters(key: &LoadedKey, alg: Aead, nonce_len: usize) -> Result<Parameters, PsaError> {
    let (base, tag_len) = match alg {
        Aead::AeadWithDefaultLengthTag(base) => (base, FULL_TAG),
        Aead::AeadWithShortenedTag {
            aead_alg,
            tag_length,
        } => (aead_alg, tag_length),
    };
    let nonce_ok = match base {
        AeadWithDefaultLengthTag::Gcm => nonce_len != 0,
        AeadWithDefaultLengthTag::Ccm => (7..=13).contains(&nonce_len),
        AeadWithDefaultLengthTag::Chacha20Poly1305 if nonce_len == 8 => {
            return Err(PsaError::NotSupported)
        }
        AeadWithDefaultLengthTag::Chacha20Poly1305 => nonce_len == 12,
    };
    if !nonce_ok {
        return Err(PsaError::InvalidArgument);
    }
    let Material::Symmetric(bytes) = &key.material else {
        return Err(PsaError::InvalidArgument);
    };
    let name = match (base, key.key_type, bytes.len()) {
        (AeadWithDefaultLengthTag::Gcm, Type::Aes, 16) => "AES-128-GCM",
        (AeadWithDefaultLengthTag::Gcm, Type::Aes, 24) => "AES-192-GCM",
        (AeadWithDefaultLengthTag::Gcm, Type::Aes, 32) => "AES-256-GCM",
        (AeadWithDefaultLengthTag::Ccm, Type::Aes, 16) => "AES-128-CCM",
        (AeadWithDefaultLengthTag::Ccm, Type::Aes, 24) => "AES-192-CCM",
        (AeadWithDefaultLengthTag::Ccm, Type::Aes, 32) => "AES-256-CCM",
        (AeadWithDefaultLengthTag::Chacha20Poly1305, Type::Chacha20, 32) => "ChaCha20-Poly1305",
        _ => return Err(PsaError::NotSupported),
    };
    let tag_ok = match base {
        AeadWithDefaultLengthTag::Ccm => (4..=FULL_TAG).contains(&tag_len) && tag_len % 2 == 0,
        AeadWithDefaultLengthTag::Gcm | AeadWithDefaultLengthTag::Chacha20Poly1305 => {
            (4..=FULL_TAG).contains(&tag_len)
        }
    };
    if !tag_ok {
        return Err(PsaError::InvalidArgument);
    }
    Ok(Parameters {
        name,
        ccm: base == AeadWithDefaultLengthTag::Ccm,
        tag_len,
    })
}

/// A context for `parameters` with `key` and `nonce`, set up to take `data_len` bytes after
/// the additional data `ad`; for decryption, `tag` is the expected tag.
fn context(
    parameters: &Parameters,
    key: &[u8],
    nonce: &[u8],
    ad: &[u8],
    data_len: usize,
    tag: Option<&[u8]>,
) -> Result<CipherCtx, PsaError> {
    let cipher = Cipher::fetch(None, parameters.name, None).map_err(error::internal)?;
    if cipher.key_length() != key.len() {
        return Err(PsaError::NotSupported);
    }
    let mut ctx = CipherCtx::new().map_err(error::internal)?;
    let init = if tag.is_some() {
        CipherCtxRef::decrypt_init
    } else {
        CipherCtxRef::encrypt_init
    };
    init(&mut ctx, Some(&cipher), None, None).map_err(error::internal)?;
    ctx.set_iv_length(nonce.len()).map_err(error::internal)?;
    if parameters.ccm {
        match tag {
            Some(tag) => ctx.set_tag(tag),
            None => ctx.set_tag_length(parameters.tag_len),
        }
        .map_err(error::internal)?;
    }
    init(&mut ctx, None, Some(key), Some(nonce)).map_err(error::internal)?;
    if parameters.ccm {
        ctx.set_data_len(data_len).map_err(error::internal)?;
    }
    if !ad.is_empty() || parameters.ccm {
        ctx.cipher_update(ad, None).map_err(error::internal)?;
    }
    Ok(ctx)
}

/// Encrypts `plaintext`: the encrypted data followed by the tag.
fn seal(
    parameters: &Parameters,
    key: &[u8],
    nonce: &[u8],
    ad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, PsaError> {
    let mut ctx = context(parameters, key, nonce, ad, plaintext.len(), None)?;
    let mut output = vec![0; plaintext.len() + FULL_TAG];
    let updated = ctx
        .cipher_update(plaintext, Some(&mut output))
        .map_err(error::internal)?;
    let rest = output
        .get_mut(updated..)
        .ok_or(PsaError::CorruptionDetected)?;
    let finished = ctx.cipher_final(rest).map_err(error::internal)?;
    let length = updated + finished;
    let tag = output
        .get_mut(length..length + parameters.tag_len)
        .ok_or(PsaError::CorruptionDetected)?;
    ctx.tag(tag).map_err(error::internal)?;
    output.truncate(length + parameters.tag_len);
    Ok(output)
}

/// Decrypts `data` and checks `tag`.
///
/// # Errors
/// `InvalidSignature` when the tag does not verify.
fn open(
    parameters: &Parameters,
    key: &[u8],
    nonce: &[u8],
    ad: &[u8],
    data: &[u8],
    tag: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    let mut ctx = context(parameters, key, nonce, ad, data.len(), Some(tag))?;
    let mut plaintext = Zeroizing::new(vec![0; data.len() + FULL_TAG]);
    // CCM checks the tag here; GCM and ChaCha20-Poly1305 when finishing.
    let updated = ctx
        .cipher_update(data, Some(&mut plaintext[..]))
        .map_err(error::tag)?;
    let finished = if parameters.ccm {
        0
    } else {
        ctx.set_tag(tag).map_err(error::internal)?;
        let rest = plaintext
            .get_mut(updated..)
            .ok_or(PsaError::CorruptionDetected)?;
        ctx.cipher_final(rest).map_err(error::tag)?
    };
    plaintext.truncate(updated + finished);
    Ok(plaintext)
}

fn key_bytes(key: &LoadedKey) -> Result<&[u8], PsaError> {
    match &key.material {
        Material::Symmetric(bytes) => Ok(bytes),
        _ => Err(PsaError::InvalidArgument),
    }
}

impl Handles<PsaAeadEncrypt> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_aead_encrypt::Request,
    ) -> Result<psa_aead_encrypt::Response, ProviderError> {
        let key = self.load(&key)?;
        let parameters = parameters(&key, request.alg, request.nonce.len())?;
        let ciphertext = seal(
            &parameters,
            key_bytes(&key)?,
            &request.nonce,
            &request.additional_data,
            &request.plaintext,
        )?;
        Ok(psa_aead_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaAeadDecrypt> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_aead_decrypt::Request,
    ) -> Result<psa_aead_decrypt::Response, ProviderError> {
        let key = self.load(&key)?;
        let parameters = parameters(&key, request.alg, request.nonce.len())?;
        let data_len = request
            .ciphertext
            .len()
            .checked_sub(parameters.tag_len)
            .ok_or(PsaError::InvalidArgument)?;
        let (data, tag) = request.ciphertext.split_at(data_len);
        let mut plaintext = open(
            &parameters,
            key_bytes(&key)?,
            &request.nonce,
            &request.additional_data,
            data,
            tag,
        )?;
        Ok(psa_aead_decrypt::Response {
            plaintext: SecretBytes::new(std::mem::take(&mut *plaintext)),
        })
    }
}
