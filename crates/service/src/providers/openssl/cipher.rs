//! Unauthenticated ciphers: PsaCipherEncrypt and PsaCipherDecrypt: CTR, CFB (128-bit), OFB,
//! ECB and CBC without padding, and CBC with PKCS#7 padding, on AES and Camellia keys; the
//! ChaCha20 stream cipher (12-byte nonce, counter from 0) on ChaCha20 keys. XTS is
//! `NotSupported`.
//!
//! As in the reference provider, encryption draws a random IV (none for ECB) and returns
//! `IV ‖ encrypted data`; decryption splits the IV off the front. ECB and CBC without padding
//! need whole blocks (`InvalidArgument`); bad PKCS#7 padding gives `InvalidPadding`.

use ::openssl::cipher::Cipher;
use ::openssl::cipher_ctx::CipherCtx;
use bulwark_interface::ops::{
    psa_cipher_decrypt, psa_cipher_encrypt, PsaCipherDecrypt, PsaCipherEncrypt,
};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::algorithm::Cipher as CipherAlg;
use psa_crypto::types::key::Type;
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::material::{LoadedKey, Material};
use super::{error, OpenSslProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// The block size of AES and Camellia.
const BLOCK: usize = 16;

/// ChaCha20's nonce in PSA (RFC 7539); OpenSSL's IV adds a 4-byte block counter in front.
const CHACHA20_NONCE: usize = 12;

/// How `alg` runs with a key.
struct Mode {
    /// OpenSSL's name of the cipher.
    name: String,
    /// Length of the IV carried in front of the ciphertext.
    iv_len: usize,
    /// PKCS#7 padding.
    padding: bool,
    /// Input must be whole blocks.
    whole_blocks: bool,
}

/// The mode of `alg` with `key`.
///
/// # Errors
/// `NotSupported` for XTS or a key/mode pair OpenSSL lacks; `InvalidArgument` for a non-cipher
/// key.
fn mode(key: &LoadedKey, alg: CipherAlg) -> Result<(Mode, &[u8]), PsaError> {
    let Material::Symmetric(bytes) = &key.material else {
        return Err(PsaError::InvalidArgument);
    };
    let family = match key.key_type {
        Type::Aes => "AES",
        Type::Camellia => "CAMELLIA",
        Type::Chacha20 if alg == CipherAlg::StreamCipher => {
            let mode = Mode {
                name: "ChaCha20".to_owned(),
                iv_len: CHACHA20_NONCE,
                padding: false,
                whole_blocks: false,
            };
            return Ok((mode, bytes));
        }
        _ => return Err(PsaError::NotSupported),
    };
    let (suffix, iv_len, padding, whole_blocks) = match alg {
        CipherAlg::Ctr => ("CTR", BLOCK, false, false),
        CipherAlg::Cfb => ("CFB", BLOCK, false, false),
        CipherAlg::Ofb => ("OFB", BLOCK, false, false),
        CipherAlg::EcbNoPadding => ("ECB", 0, false, true),
        CipherAlg::CbcNoPadding => ("CBC", BLOCK, false, true),
        CipherAlg::CbcPkcs7 => ("CBC", BLOCK, true, false),
        CipherAlg::Xts | CipherAlg::StreamCipher => return Err(PsaError::NotSupported),
    };
    let mode = Mode {
        name: format!("{family}-{}-{suffix}", bytes.len() * 8),
        iv_len,
        padding,
        whole_blocks,
    };
    Ok((mode, bytes))
}

/// Runs the cipher over `input` into a buffer wiped on drop.
fn run(
    mode: &Mode,
    encrypt: bool,
    key: &[u8],
    iv: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    let cipher = Cipher::fetch(None, &mode.name, None).map_err(error::internal)?;
    if cipher.key_length() != key.len() {
        return Err(PsaError::NotSupported);
    }
    // ChaCha20 in OpenSSL takes the 32-bit block counter, then the nonce.
    let chacha_iv;
    let iv = if mode.name == "ChaCha20" {
        let mut full = [0; 4 + CHACHA20_NONCE];
        full[4..].copy_from_slice(iv);
        chacha_iv = full;
        &chacha_iv[..]
    } else {
        iv
    };
    let iv = (!iv.is_empty()).then_some(iv);
    if cipher.iv_length() != iv.map_or(0, <[u8]>::len) {
        return Err(PsaError::InvalidArgument);
    }
    let mut ctx = CipherCtx::new().map_err(error::internal)?;
    if encrypt {
        ctx.encrypt_init(Some(&cipher), Some(key), iv)
    } else {
        ctx.decrypt_init(Some(&cipher), Some(key), iv)
    }
    .map_err(error::internal)?;
    ctx.set_padding(mode.padding);
    let mut output = Zeroizing::new(vec![0; input.len() + 2 * BLOCK]);
    let updated = ctx
        .cipher_update(input, Some(&mut output[..]))
        .map_err(error::internal)?;
    let rest = output
        .get_mut(updated..)
        .ok_or(PsaError::CorruptionDetected)?;
    let finished = ctx.cipher_final(rest).map_err(|errors| {
        if mode.padding && !encrypt {
            PsaError::InvalidPadding
        } else {
            error::internal(errors)
        }
    })?;
    output.truncate(updated + finished);
    Ok(output)
}

impl Handles<PsaCipherEncrypt> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_cipher_encrypt::Request,
    ) -> Result<psa_cipher_encrypt::Response, ProviderError> {
        let key = self.load(&key)?;
        let (mode, key_bytes) = mode(&key, request.alg)?;
        if mode.whole_blocks && request.plaintext.len() % BLOCK != 0 {
            return Err(PsaError::InvalidArgument.into());
        }
        let mut iv = vec![0; mode.iv_len];
        ::openssl::rand::rand_bytes(&mut iv).map_err(error::internal)?;
        let encrypted = run(&mode, true, key_bytes, &iv, &request.plaintext)?;
        let mut ciphertext = iv;
        ciphertext.extend_from_slice(&encrypted);
        Ok(psa_cipher_encrypt::Response { ciphertext })
    }
}

impl Handles<PsaCipherDecrypt> for OpenSslProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_cipher_decrypt::Request,
    ) -> Result<psa_cipher_decrypt::Response, ProviderError> {
        let key = self.load(&key)?;
        let (mode, key_bytes) = mode(&key, request.alg)?;
        if request.ciphertext.len() < mode.iv_len {
            return Err(PsaError::InvalidArgument.into());
        }
        let (iv, data) = request.ciphertext.split_at(mode.iv_len);
        let blocks_needed = mode.whole_blocks || mode.padding;
        if blocks_needed && (data.len() % BLOCK != 0 || mode.padding && data.is_empty()) {
            return Err(PsaError::InvalidArgument.into());
        }
        let mut plaintext = run(&mode, false, key_bytes, iv, data)?;
        Ok(psa_cipher_decrypt::Response {
            plaintext: SecretBytes::new(std::mem::take(&mut *plaintext)),
        })
    }
}
