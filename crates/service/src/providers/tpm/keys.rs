//! Key management: PsaGenerateKey, PsaImportKey, PsaDestroyKey and PsaExportPublicKey.
//!
//! A generated key is made by `TPM2_Create` under the primary key with a random auth value; an
//! imported public key is checked (parsed, point on the curve, loaded once as an external
//! object) and kept as its public area. Either way the key id is the [`KeyBlob`], recorded with
//! [`KeyToCreate::create`]: the TPM holds nothing afterwards.

use ::openssl::bn::{BigNum, BigNumContext};
use ::openssl::ec::{EcGroup, EcPoint};
use ::openssl::nid::Nid;
use ::openssl::rsa::Rsa;
use bulwark_interface::ops::{
    psa_destroy_key, psa_export_public_key, psa_generate_key, psa_import_key, PsaDestroyKey,
    PsaExportPublicKey, PsaGenerateKey, PsaImportKey,
};
use psa_crypto::types::algorithm::Algorithm;
use psa_crypto::types::key::{Attributes, EccFamily, Type};
use psa_crypto::types::status::Error as PsaError;
use tss_esapi::attributes::ObjectAttributesBuilder;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, EccParameter, EccPoint, EccScheme, KeyDerivationFunctionScheme, Public,
    PublicEccParameters, PublicKeyRsa, PublicRsaParameters, RsaExponent, RsaScheme,
    SymmetricDefinitionObject,
};
use zeroize::Zeroizing;

use super::blob::KeyBlob;
use super::device::Failure;
use super::TpmProvider;
use crate::error::ProviderError;
use crate::providers::{Creation, Handles, KeyToCreate, RequestContext, ResolvedKey};

/// Length of a key's random auth value (the size of its name hash, SHA-256).
const AUTH_LEN: usize = 32;

/// The standard RSA public exponent, which the TPM encodes as 0.
const DEFAULT_EXPONENT: u32 = 65537;

/// The TPM object attributes of a key with `attributes`: a decryption key when its policy names
/// an encryption algorithm, else a signing key. `in_tpm` for a key pair made by the TPM.
fn object_attributes(
    attributes: Attributes,
    in_tpm: bool,
) -> Result<tss_esapi::attributes::ObjectAttributes, PsaError> {
    let decrypt = matches!(
        attributes.policy.permitted_algorithms,
        Algorithm::AsymmetricEncryption(_)
    );
    ObjectAttributesBuilder::new()
        .with_fixed_tpm(in_tpm)
        .with_fixed_parent(in_tpm)
        .with_sensitive_data_origin(in_tpm)
        .with_user_with_auth(true)
        .with_decrypt(decrypt)
        .with_sign_encrypt(!decrypt)
        .build()
        .map_err(|_| PsaError::InvalidArgument)
}

/// A public area for an RSA key.
fn rsa_public(
    attributes: Attributes,
    in_tpm: bool,
    bits: RsaKeyBits,
    exponent: u32,
    modulus: Vec<u8>,
) -> Result<Public, PsaError> {
    let exponent = if exponent == DEFAULT_EXPONENT {
        RsaExponent::ZERO_EXPONENT
    } else {
        RsaExponent::create(exponent).map_err(|_| PsaError::NotSupported)?
    };
    Ok(Public::Rsa {
        object_attributes: object_attributes(attributes, in_tpm)?,
        name_hashing_algorithm: HashingAlgorithm::Sha256,
        auth_policy: Digest::default(),
        parameters: PublicRsaParameters::new(
            SymmetricDefinitionObject::Null,
            RsaScheme::Null,
            bits,
            exponent,
        ),
        unique: PublicKeyRsa::try_from(modulus).map_err(|_| PsaError::InvalidArgument)?,
    })
}

/// A public area for an ECC key.
fn ecc_public(
    attributes: Attributes,
    in_tpm: bool,
    curve: EccCurve,
    point: EccPoint,
) -> Result<Public, PsaError> {
    Ok(Public::Ecc {
        object_attributes: object_attributes(attributes, in_tpm)?,
        name_hashing_algorithm: HashingAlgorithm::Sha256,
        auth_policy: Digest::default(),
        parameters: PublicEccParameters::new(
            SymmetricDefinitionObject::Null,
            EccScheme::Null,
            curve,
            KeyDerivationFunctionScheme::Null,
        ),
        unique: point,
    })
}

/// The OpenSSL group of a TPM curve.
fn group(curve: EccCurve) -> Result<EcGroup, PsaError> {
    let nid = match curve {
        EccCurve::NistP192 => Nid::X9_62_PRIME192V1,
        EccCurve::NistP224 => Nid::SECP224R1,
        EccCurve::NistP256 => Nid::X9_62_PRIME256V1,
        EccCurve::NistP384 => Nid::SECP384R1,
        EccCurve::NistP521 => Nid::SECP521R1,
        _ => return Err(PsaError::NotSupported),
    };
    EcGroup::from_curve_name(nid).map_err(|_| PsaError::NotSupported)
}

/// Left-pads `bytes` with zeros to `length` (longer input is returned as is).
pub(super) fn padded(bytes: &[u8], length: usize) -> Vec<u8> {
    let mut out = vec![0; length.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// Byte length of a coordinate on a curve of `bits`.
pub(super) fn field_bytes(bits: usize) -> usize {
    bits.div_ceil(8)
}

/// The public key of `public` in PsaExportPublicKey format: RSAPublicKey DER, or the
/// uncompressed point.
pub(super) fn export_public(public: &Public) -> Result<Vec<u8>, PsaError> {
    match public {
        Public::Rsa {
            parameters, unique, ..
        } => {
            let exponent = match parameters.exponent().value() {
                0 => DEFAULT_EXPONENT,
                value => value,
            };
            let n = BigNum::from_slice(unique.value()).map_err(|_| PsaError::DataCorrupt)?;
            let e = BigNum::from_u32(exponent).map_err(|_| PsaError::DataCorrupt)?;
            Rsa::from_public_components(n, e)
                .and_then(|rsa| rsa.public_key_to_der_pkcs1())
                .map_err(|_| PsaError::DataCorrupt)
        }
        Public::Ecc {
            parameters, unique, ..
        } => {
            let bits = curve_bits(parameters.ecc_curve())?;
            let length = field_bytes(bits);
            let mut point = vec![0x04];
            point.extend(padded(unique.x().value(), length));
            point.extend(padded(unique.y().value(), length));
            Ok(point)
        }
        _ => Err(PsaError::DataCorrupt),
    }
}

/// The size in bits of a TPM curve.
pub(super) fn curve_bits(curve: EccCurve) -> Result<usize, PsaError> {
    Ok(match curve {
        EccCurve::NistP192 => 192,
        EccCurve::NistP224 => 224,
        EccCurve::NistP256 => 256,
        EccCurve::NistP384 => 384,
        EccCurve::NistP521 => 521,
        _ => return Err(PsaError::NotSupported),
    })
}

impl TpmProvider {
    /// The public area of an imported public key, after checking the data.
    fn import_public(
        &self,
        attributes: Attributes,
        data: &[u8],
    ) -> Result<(Public, usize), PsaError> {
        match attributes.key_type {
            Type::RsaPublicKey => {
                let rsa =
                    Rsa::public_key_from_der_pkcs1(data).map_err(|_| PsaError::InvalidArgument)?;
                let bits =
                    usize::try_from(rsa.n().num_bits()).map_err(|_| PsaError::InvalidArgument)?;
                if attributes.bits != 0 && attributes.bits != bits {
                    return Err(PsaError::InvalidArgument);
                }
                let tpm_bits = self.capabilities.rsa(bits).ok_or(PsaError::NotSupported)?;
                let exponent = rsa
                    .e()
                    .to_vec()
                    .iter()
                    .try_fold(0u32, |acc, byte| {
                        acc.checked_mul(256).map(|acc| acc + u32::from(*byte))
                    })
                    .ok_or(PsaError::NotSupported)?;
                let modulus = padded(&rsa.n().to_vec(), bits / 8);
                Ok((
                    rsa_public(attributes, false, tpm_bits, exponent, modulus)?,
                    bits,
                ))
            }
            Type::EccPublicKey {
                curve_family: EccFamily::SecpR1,
            } => {
                let coordinate = match data {
                    [0x04, rest @ ..] if !rest.is_empty() && rest.len() % 2 == 0 => rest.len() / 2,
                    _ => return Err(PsaError::InvalidArgument),
                };
                let bits = match coordinate {
                    24 => 192,
                    28 => 224,
                    32 => 256,
                    48 => 384,
                    66 => 521,
                    _ => return Err(PsaError::InvalidArgument),
                };
                if attributes.bits != 0 && attributes.bits != bits {
                    return Err(PsaError::InvalidArgument);
                }
                let curve = self
                    .capabilities
                    .curve(bits)
                    .ok_or(PsaError::NotSupported)?;
                let group = group(curve)?;
                let mut bn = BigNumContext::new().map_err(|_| PsaError::InsufficientMemory)?;
                EcPoint::from_bytes(&group, data, &mut bn)
                    .map_err(|_| PsaError::InvalidArgument)?;
                let (x, y) = data[1..].split_at(coordinate);
                let point = EccPoint::new(
                    EccParameter::try_from(x.to_vec()).map_err(|_| PsaError::InvalidArgument)?,
                    EccParameter::try_from(y.to_vec()).map_err(|_| PsaError::InvalidArgument)?,
                );
                Ok((ecc_public(attributes, false, curve, point)?, bits))
            }
            Type::EccPublicKey { .. } => Err(PsaError::NotSupported),
            _ => Err(PsaError::NotSupported),
        }
    }
}

impl Handles<PsaGenerateKey> for TpmProvider {
    fn handle(
        &self,
        ctx: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_generate_key::Request,
    ) -> Result<psa_generate_key::Response, ProviderError> {
        let attributes = request.attributes;
        ctx.check_generation(&attributes)?;
        if !self
            .capabilities
            .policy_ok(attributes.policy.permitted_algorithms)
        {
            return Err(PsaError::NotSupported.into());
        }
        let template = match attributes.key_type {
            Type::RsaKeyPair => {
                let bits = self
                    .capabilities
                    .rsa(attributes.bits)
                    .ok_or(PsaError::NotSupported)?;
                rsa_public(attributes, true, bits, DEFAULT_EXPONENT, Vec::new())?
            }
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            } => {
                let curve = self
                    .capabilities
                    .curve(attributes.bits)
                    .ok_or(PsaError::NotSupported)?;
                ecc_public(attributes, true, curve, EccPoint::default())?
            }
            _ => return Err(PsaError::NotSupported.into()),
        };
        key.check_free()?;
        let mut auth = Zeroizing::new(vec![0; AUTH_LEN]);
        ::openssl::rand::rand_priv_bytes(&mut auth).map_err(|_| PsaError::InsufficientEntropy)?;
        let created = self.run(
            |session| {
                let primary = session.primary;
                let auth = Auth::try_from(auth.to_vec()).map_err(|_| PsaError::GenericError)?;
                let template = template.clone();
                session
                    .context
                    .execute_with_session(Some(AuthSession::Password), |ctx| {
                        ctx.create(primary, template, Some(auth), None, None, None)
                    })
                    .map_err(Failure::from)
            },
            |_| None,
        )?;
        let blob = KeyBlob::Pair {
            auth,
            private: created.out_private.value().to_vec(),
            public: created.out_public,
        };
        let key_id = blob.encode()?;
        key.create(
            attributes,
            key_id.to_vec(),
            Creation::Generate,
            || Ok(()),
            |_| Ok(()),
        )?;
        Ok(psa_generate_key::Response)
    }
}

impl Handles<PsaImportKey> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: KeyToCreate<'_>,
        request: psa_import_key::Request,
    ) -> Result<psa_import_key::Response, ProviderError> {
        let mut attributes = request.attributes;
        if !matches!(
            attributes.key_type,
            Type::RsaPublicKey | Type::EccPublicKey { .. }
        ) {
            return Err(PsaError::NotSupported.into());
        }
        if !self
            .capabilities
            .policy_ok(attributes.policy.permitted_algorithms)
        {
            return Err(PsaError::NotSupported.into());
        }
        key.check_free()?;
        let (public, bits) = self.import_public(attributes, &request.data)?;
        // The TPM checks the key too (an RSA modulus it refuses, for instance).
        self.run(
            |session| {
                let handle = session.context.execute_without_session(|ctx| {
                    ctx.load_external_public(public.clone(), Hierarchy::Null)
                })?;
                session.context.flush_context(handle.into())?;
                Ok(())
            },
            |_| Some(PsaError::InvalidArgument),
        )?;
        attributes.bits = bits;
        let blob = KeyBlob::Public { public };
        key.create(
            attributes,
            blob.encode()?.to_vec(),
            Creation::Import,
            || Ok(()),
            |_| Ok(()),
        )?;
        Ok(psa_import_key::Response)
    }
}

impl Handles<PsaDestroyKey> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_destroy_key::Request,
    ) -> Result<psa_destroy_key::Response, ProviderError> {
        // The wrapped key goes with the row; the TPM holds nothing of it.
        key.destroy(|_| Ok(()))?;
        Ok(psa_destroy_key::Response)
    }
}

impl Handles<PsaExportPublicKey> for TpmProvider {
    fn handle(
        &self,
        _: &RequestContext<'_>,
        key: ResolvedKey<'_>,
        _: psa_export_public_key::Request,
    ) -> Result<psa_export_public_key::Response, ProviderError> {
        let blob = KeyBlob::decode(key.key_id())?;
        Ok(psa_export_public_key::Response {
            data: export_public(blob.public())?,
        })
    }
}
