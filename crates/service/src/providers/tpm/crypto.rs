//! Cryptography in the TPM: PsaSignHash, PsaVerifyHash, PsaAsymmetricEncrypt,
//! PsaAsymmetricDecrypt and PsaGenerateRandom.
//!
//! Signatures: RSA PKCS#1 v1.5 (`TPM2_Sign` with RSASSA) and ECDSA, `r ‖ s` with each half as
//! long as the curve's field. Verification and encryption are done by the TPM too, with the key
//! pair or the imported public key loaded as an external object.

use bulwark_interface::ops::{
    psa_asymmetric_decrypt, psa_asymmetric_encrypt, psa_generate_random, psa_sign_hash,
    psa_verify_hash, PsaAsymmetricDecrypt, PsaAsymmetricEncrypt, PsaGenerateRandom, PsaSignHash,
    PsaVerifyHash,
};
use bulwark_interface::secret::SecretBytes;
use psa_crypto::types::algorithm::{AsymmetricEncryption, AsymmetricSignature, Hash};
use psa_crypto::types::status::Error as PsaError;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Data, Digest, EccParameter, EccSignature, HashScheme, HashcheckTicket, Public, PublicKeyRsa,
    RsaDecryptionScheme, RsaSignature, Signature, SignatureScheme,
};
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use zeroize::Zeroizing;

use super::blob::KeyBlob;
use super::device::Failure;
use super::keys::{curve_bits, field_bytes, padded};
use super::{with_key, TpmProvider};
use crate::error::ProviderError;
use crate::providers::{Handles, RequestContext, ResolvedKey};

/// Most bytes asked of `TPM2_GetRandom` at once (a digest's size).
const RANDOM_CHUNK: usize = 64;

/// Length of each half of an ECDSA signature with `public`, or the RSA modulus length.
fn signature_part_len(public: &Public) -> Result<usize, PsaError> {
    match public {
        Public::Rsa { unique, .. } => Ok(unique.value().len()),
        Public::Ecc { parameters, .. } => Ok(field_bytes(curve_bits(parameters.ecc_curve())?)),
        _ => Err(PsaError::DataCorrupt),
    }
}

impl TpmProvider {
    /// The TPM signature scheme of `alg` for a hash of `hash_len` bytes, or `NotSupported`.
    ///
    /// ECDSA without a named hash signs the input as given: the TPM is told the hash whose
    /// length it has (SHA-1, SHA-256, SHA-384 or SHA-512), which only sets the expected size.
    fn scheme(
        &self,
        alg: AsymmetricSignature,
        hash_len: usize,
    ) -> Result<(SignatureScheme, HashingAlgorithm), PsaError> {
        match alg {
            AsymmetricSignature::EcdsaAny => {
                #[allow(deprecated)]
                let hash = match hash_len {
                    20 => Hash::Sha1,
                    32 => Hash::Sha256,
                    48 => Hash::Sha384,
                    64 => Hash::Sha512,
                    _ => return Err(PsaError::NotSupported),
                };
                let hash = self.capabilities.hash(hash).ok_or(PsaError::NotSupported)?;
                Ok((
                    SignatureScheme::EcDsa {
                        hash_scheme: HashScheme::new(hash),
                    },
                    hash,
                ))
            }
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg } => {
                let hash = self
                    .capabilities
                    .sign_hash(hash_alg)
                    .ok_or(PsaError::NotSupported)?;
                Ok((
                    SignatureScheme::RsaSsa {
                        hash_scheme: HashScheme::new(hash),
                    },
                    hash,
                ))
            }
            AsymmetricSignature::Ecdsa { hash_alg } => {
                let hash = self
                    .capabilities
                    .sign_hash(hash_alg)
                    .ok_or(PsaError::NotSupported)?;
                Ok((
                    SignatureScheme::EcDsa {
                        hash_scheme: HashScheme::new(hash),
                    },
                    hash,
                ))
            }
            _ => Err(PsaError::NotSupported),
        }
    }
}

/// A null hash-check ticket: the digest was not made by the TPM.
fn null_ticket() -> Result<HashcheckTicket, PsaError> {
    HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
        tag: TPM2_ST_HASHCHECK,
        hierarchy: TPM2_RH_NULL,
        digest: Default::default(),
    })
    .map_err(|_| PsaError::GenericError)
}

impl Handles<PsaSignHash> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_sign_hash::Request,
    ) -> Result<psa_sign_hash::Response, ProviderError> {
        let blob = KeyBlob::decode(key.key_id())?;
        if matches!(blob, KeyBlob::Public { .. }) {
            return Err(PsaError::NotPermitted.into());
        }
        let (scheme, _) = self.scheme(request.alg, request.hash.len())?;
        let part = signature_part_len(blob.public())?;
        let digest =
            Digest::try_from(request.hash.clone()).map_err(|_| PsaError::InvalidArgument)?;
        let ticket = null_ticket()?;
        let signature = self.run(
            |session| {
                with_key(session, &blob, |session, key| {
                    let (digest, ticket) = (digest.clone(), ticket.clone());
                    Ok(session
                        .context
                        .execute_with_session(Some(AuthSession::Password), |ctx| {
                            ctx.sign(key, digest, scheme, ticket)
                        })?)
                })
            },
            |_| None,
        )?;
        let signature = match signature {
            Signature::RsaSsa(rsa) => rsa.signature().value().to_vec(),
            Signature::EcDsa(ecc) => {
                let mut out = padded(ecc.signature_r().value(), part);
                out.extend(padded(ecc.signature_s().value(), part));
                out
            }
            _ => return Err(PsaError::GenericError.into()),
        };
        Ok(psa_sign_hash::Response { signature })
    }
}

impl Handles<PsaVerifyHash> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_verify_hash::Request,
    ) -> Result<psa_verify_hash::Response, ProviderError> {
        let blob = KeyBlob::decode(key.key_id())?;
        let (scheme, hash) = self.scheme(request.alg, request.hash.len())?;
        let part = signature_part_len(blob.public())?;
        let signature = match scheme {
            SignatureScheme::RsaSsa { .. } => {
                if request.signature.len() != part {
                    return Err(PsaError::InvalidSignature.into());
                }
                let value = PublicKeyRsa::try_from(request.signature.clone())
                    .map_err(|_| PsaError::InvalidSignature)?;
                Signature::RsaSsa(
                    RsaSignature::create(hash, value).map_err(|_| PsaError::InvalidArgument)?,
                )
            }
            _ => {
                if request.signature.len() != 2 * part {
                    return Err(PsaError::InvalidSignature.into());
                }
                let (r, s) = request.signature.split_at(part);
                let r =
                    EccParameter::try_from(r.to_vec()).map_err(|_| PsaError::InvalidSignature)?;
                let s =
                    EccParameter::try_from(s.to_vec()).map_err(|_| PsaError::InvalidSignature)?;
                Signature::EcDsa(
                    EccSignature::create(hash, r, s).map_err(|_| PsaError::InvalidArgument)?,
                )
            }
        };
        let digest =
            Digest::try_from(request.hash.clone()).map_err(|_| PsaError::InvalidArgument)?;
        self.run(
            |session| {
                with_key(session, &blob, |session, key| {
                    let (digest, signature) = (digest.clone(), signature.clone());
                    session.context.execute_without_session(|ctx| {
                        ctx.verify_signature(key, digest, signature)
                    })?;
                    Ok(())
                })
            },
            // An ECDSA value out of range is a wrong signature, not a wrong argument.
            |kind| match kind {
                Tss2ResponseCodeKind::Signature | Tss2ResponseCodeKind::Value => {
                    Some(PsaError::InvalidSignature)
                }
                _ => None,
            },
        )?;
        Ok(psa_verify_hash::Response)
    }
}

/// The TPM scheme and label of an encryption request.
fn encryption(
    provider: &TpmProvider,
    alg: AsymmetricEncryption,
    salt: Option<&[u8]>,
) -> Result<(RsaDecryptionScheme, Data), PsaError> {
    let scheme = match alg {
        AsymmetricEncryption::RsaPkcs1v15Crypt => RsaDecryptionScheme::RsaEs,
        AsymmetricEncryption::RsaOaep { hash_alg } => RsaDecryptionScheme::Oaep(HashScheme::new(
            provider
                .capabilities
                .hash(hash_alg)
                .ok_or(PsaError::NotSupported)?,
        )),
    };
    let label = match salt {
        None | Some([]) => Data::default(),
        // The TPM appends a zero byte to a label without one: such a label would not be the
        // one the application meant.
        Some(label) if label.last() == Some(&0) => {
            Data::try_from(label.to_vec()).map_err(|_| PsaError::InvalidArgument)?
        }
        Some(_) => return Err(PsaError::NotSupported),
    };
    Ok((scheme, label))
}

impl Handles<PsaAsymmetricEncrypt> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_encrypt::Request,
    ) -> Result<psa_asymmetric_encrypt::Response, ProviderError> {
        let blob = KeyBlob::decode(key.key_id())?;
        let (scheme, label) = encryption(self, request.alg, request.salt.as_deref())?;
        // The longest message the padding leaves room for (libtpms answers TPM_RC_FAILURE
        // rather than TPM_RC_VALUE to a longer one).
        let modulus = signature_part_len(blob.public())?;
        let overhead = match request.alg {
            AsymmetricEncryption::RsaPkcs1v15Crypt => 11,
            AsymmetricEncryption::RsaOaep { hash_alg } => 2 * hash_alg.hash_length() + 2,
        };
        if request.plaintext.len() + overhead > modulus {
            return Err(PsaError::InvalidArgument.into());
        }
        let message = PublicKeyRsa::try_from(request.plaintext.to_vec())
            .map_err(|_| PsaError::InvalidArgument)?;
        let ciphertext = self.run(
            |session| {
                with_key(session, &blob, |session, key| {
                    let (message, scheme, label) = (message.clone(), scheme, label.clone());
                    Ok(session.context.execute_without_session(|ctx| {
                        ctx.rsa_encrypt(key, message, scheme, label)
                    })?)
                })
            },
            |_| None,
        )?;
        Ok(psa_asymmetric_encrypt::Response {
            ciphertext: ciphertext.value().to_vec(),
        })
    }
}

impl Handles<PsaAsymmetricDecrypt> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        request: psa_asymmetric_decrypt::Request,
    ) -> Result<psa_asymmetric_decrypt::Response, ProviderError> {
        let blob = KeyBlob::decode(key.key_id())?;
        if matches!(blob, KeyBlob::Public { .. }) {
            return Err(PsaError::NotPermitted.into());
        }
        let (scheme, label) = encryption(self, request.alg, request.salt.as_deref())?;
        if request.ciphertext.len() != signature_part_len(blob.public())? {
            return Err(PsaError::InvalidArgument.into());
        }
        let ciphertext = PublicKeyRsa::try_from(request.ciphertext.clone())
            .map_err(|_| PsaError::InvalidArgument)?;
        let plaintext = self.run(
            |session| {
                with_key(session, &blob, |session, key| {
                    let (ciphertext, scheme, label) = (ciphertext.clone(), scheme, label.clone());
                    Ok(session
                        .context
                        .execute_with_session(Some(AuthSession::Password), |ctx| {
                            ctx.rsa_decrypt(key, ciphertext, scheme, label)
                        })?)
                })
            },
            // libtpms answers TPM_RC_FAILURE, not TPM_RC_VALUE, when the padding is wrong (and
            // stays operational).
            |kind| match kind {
                Tss2ResponseCodeKind::Value | Tss2ResponseCodeKind::Failure => {
                    Some(PsaError::InvalidPadding)
                }
                _ => None,
            },
        )?;
        let plaintext = Zeroizing::new(plaintext.value().to_vec());
        Ok(psa_asymmetric_decrypt::Response {
            plaintext: SecretBytes::from(plaintext.as_slice()),
        })
    }
}

impl Handles<PsaGenerateRandom> for TpmProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        _: (),
        request: psa_generate_random::Request,
    ) -> Result<psa_generate_random::Response, ProviderError> {
        if request.size > ctx.settings().buffer_size_limit {
            return Err(ProviderError::ResponseTooLarge);
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(request.size));
        while bytes.len() < request.size {
            let want = (request.size - bytes.len()).min(RANDOM_CHUNK);
            let chunk = self.run(|session| Ok(session.context.get_random(want)?), |_| None)?;
            if chunk.value().is_empty() {
                return Err(PsaError::InsufficientEntropy.into());
            }
            bytes.extend_from_slice(chunk.value());
        }
        bytes.truncate(request.size);
        Ok(psa_generate_random::Response {
            random_bytes: SecretBytes::new(std::mem::take(&mut *bytes)),
        })
    }
}

/// Failures of this module's own checks, for `Failure::Psa`.
impl From<Failure> for ProviderError {
    fn from(failure: Failure) -> Self {
        super::status(failure, |_| None).into()
    }
}
