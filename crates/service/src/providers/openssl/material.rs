//! Key material: which key types and sizes this provider holds, how keys are generated,
//! checked on import and parsed from their PSA export format (docs/protocol.md#key-data-formats).
//!
//! | Type | Sizes (bits) |
//! |---|---|
//! | RSA key pair, public key | generated: 1024, 2048, 4096; imported with `key_bits` 0: any multiple of 8 from 1024 to 8192 |
//! | ECC SECP-R1 | 192, 224, 256, 384, 521 |
//! | ECC SECP-K1 | 192, 256 |
//! | ECC Brainpool P-R1 | 192, 224, 256, 320, 384, 512 |
//! | ECC Montgomery | 255 (X25519), 448 (X448) |
//! | AES, Camellia | 128, 192, 256 |
//! | ChaCha20 | 256 |
//! | Raw data, HMAC, derivation | any non-zero multiple of 8 up to 65528 |
//!
//! Other ECC families (SECP-R2, SECT, FRP), secp224k1 (which PSA sizes as 225 bits), DH, DES
//! and ARC4 keys are not supported.

use ::openssl::bn::{BigNum, BigNumContext};
use ::openssl::ec::{EcGroup, EcKey, EcPoint, PointConversionForm};
use ::openssl::nid::Nid;
use ::openssl::pkey::{Id, PKey, Private, Public};
use ::openssl::rsa::Rsa;
use psa_crypto::types::key::{Attributes, EccFamily, Type};
use psa_crypto::types::status::Error as PsaError;
use zeroize::Zeroizing;

use super::error;

use crate::providers::{is_psa_curve_size, RSA_BITS};

/// The RSA sizes an imported key may have when its `key_bits` is 0.
const RSA_IMPORT_BITS: std::ops::RangeInclusive<usize> = 1024..=8192;

/// Largest raw-data, HMAC or derivation key (`PSA_MAX_KEY_BITS`).
const MAX_KEY_BITS: usize = 0xfff8;

/// An elliptic curve this provider supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    /// A short Weierstrass curve of `bits` bits (the field size).
    Weierstrass { nid: Nid, bits: usize },
    /// Curve25519 (X25519), 255 bits.
    X25519,
    /// Curve448 (X448), 448 bits.
    X448,
}

impl Curve {
    /// The curve's size in bits, as PSA counts it.
    pub(super) fn bits(self) -> usize {
        match self {
            Curve::Weierstrass { bits, .. } => bits,
            Curve::X25519 => 255,
            Curve::X448 => 448,
        }
    }

    /// Bytes of a coordinate or scalar: ceil(bits / 8).
    pub(super) fn bytes(self) -> usize {
        self.bits().div_ceil(8)
    }
}

/// The curve of `family` with `bits` bits, if supported here.
#[allow(deprecated)]
pub(super) fn curve(family: EccFamily, bits: usize) -> Option<Curve> {
    let nid = match (family, bits) {
        (EccFamily::SecpR1, 192) => Nid::X9_62_PRIME192V1,
        (EccFamily::SecpR1, 224) => Nid::SECP224R1,
        (EccFamily::SecpR1, 256) => Nid::X9_62_PRIME256V1,
        (EccFamily::SecpR1, 384) => Nid::SECP384R1,
        (EccFamily::SecpR1, 521) => Nid::SECP521R1,
        (EccFamily::SecpK1, 192) => Nid::SECP192K1,
        (EccFamily::SecpK1, 256) => Nid::SECP256K1,
        (EccFamily::BrainpoolPR1, 192) => Nid::BRAINPOOL_P192R1,
        (EccFamily::BrainpoolPR1, 224) => Nid::BRAINPOOL_P224R1,
        (EccFamily::BrainpoolPR1, 256) => Nid::BRAINPOOL_P256R1,
        (EccFamily::BrainpoolPR1, 320) => Nid::BRAINPOOL_P320R1,
        (EccFamily::BrainpoolPR1, 384) => Nid::BRAINPOOL_P384R1,
        (EccFamily::BrainpoolPR1, 512) => Nid::BRAINPOOL_P512R1,
        (EccFamily::Montgomery, 255) => return Some(Curve::X25519),
        (EccFamily::Montgomery, 448) => return Some(Curve::X448),
        _ => return None,
    };
    Some(Curve::Weierstrass { nid, bits })
}

/// The supported curve of `family` whose scalars (or coordinates) are `bytes` long.
fn curve_of_length(family: EccFamily, bytes: usize) -> Option<Curve> {
    let bits = match (family, bytes) {
        (EccFamily::SecpR1, 66) => 521,
        (EccFamily::Montgomery, 32) => 255,
        (EccFamily::Montgomery, 56) => 448,
        (EccFamily::Montgomery, _) => return None,
        (_, bytes) => bytes * 8,
    };
    curve(family, bits)
}

/// Whether this provider can hold a key of `key_type` and `bits` bits (0: some size).
#[allow(deprecated)]
pub(super) fn is_supported(key_type: Type, bits: usize) -> bool {
    match key_type {
        Type::RsaKeyPair | Type::RsaPublicKey => {
            bits == 0 || RSA_BITS.contains(&bits) || is_rsa_import_size(bits)
        }
        Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
            if bits == 0 {
                !matches!(
                    curve_family,
                    EccFamily::SecpR2
                        | EccFamily::SectK1
                        | EccFamily::SectR1
                        | EccFamily::SectR2
                        | EccFamily::Frp
                )
            } else {
                curve(curve_family, bits).is_some()
            }
        }
        Type::Aes | Type::Camellia => matches!(bits, 0 | 128 | 192 | 256),
        Type::Chacha20 => matches!(bits, 0 | 256),
        Type::RawData | Type::Hmac | Type::Derive => bits % 8 == 0 && bits <= MAX_KEY_BITS,
        Type::Des | Type::Arc4 | Type::DhKeyPair { .. } | Type::DhPublicKey { .. } => false,
    }
}

fn is_rsa_import_size(bits: usize) -> bool {
    bits % 8 == 0 && RSA_IMPORT_BITS.contains(&bits)
}

/// The private or public part of an RSA key.
#[derive(Debug)]
pub(super) struct RsaMaterial {
    /// The key pair; `None` for a public key.
    pub(super) private: Option<PKey<Private>>,
    /// The public key, for the operations that need no more.
    pub(super) public: PKey<Public>,
    /// The modulus.
    pub(super) modulus: BigNum,
    /// The modulus length in bytes (the length of signatures and ciphertexts).
    pub(super) modulus_bytes: usize,
}

/// A Weierstrass key.
#[derive(Debug)]
pub(super) struct EcMaterial {
    pub(super) curve: Curve,
    /// The key pair, for ECDSA; `None` for a public key.
    pub(super) private: Option<EcKey<Private>>,
    /// The same key pair as a `PKey`, for ECDH.
    pub(super) private_pkey: Option<PKey<Private>>,
    /// The public key, for verification.
    pub(super) public: EcKey<Public>,
}

/// A Montgomery (X25519 or X448) key.
#[derive(Debug)]
pub(super) struct MontgomeryMaterial {
    pub(super) curve: Curve,
    /// The key pair; `None` for a public key.
    pub(super) private: Option<PKey<Private>>,
}

/// Parsed key material.
pub(super) enum Material {
    /// RSA key pair or public key.
    Rsa(RsaMaterial),
    /// Weierstrass key pair or public key.
    Ec(EcMaterial),
    /// Montgomery key pair or public key.
    Montgomery(MontgomeryMaterial),
    /// The bytes of a symmetric, raw-data, HMAC or derivation key.
    Symmetric(Zeroizing<Vec<u8>>),
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Material::Rsa(rsa) => write!(f, "Rsa({} bytes)", rsa.modulus_bytes),
            Material::Ec(ec) => write!(f, "Ec({:?})", ec.curve),
            Material::Montgomery(m) => write!(f, "Montgomery({:?})", m.curve),
            Material::Symmetric(bytes) => write!(f, "Symmetric([redacted; {} bytes])", bytes.len()),
        }
    }
}

/// A key ready for use: parsed once, shared by the requests that use it.
#[derive(Debug)]
pub(super) struct LoadedKey {
    /// The key's type, as recorded.
    pub(super) key_type: Type,
    /// The parsed key.
    pub(super) material: Material,
    /// The public key in PSA format (docs/protocol.md#key-data-formats); `None` for symmetric keys.
    pub(super) public_export: Option<Vec<u8>>,
}

/// A fresh random key of `attributes`, in its PSA export format.
///
/// # Errors
/// `InvalidArgument` for a public-key type or a size that the type does not have (or 0);
/// `NotSupported` for a type or curve this provider does not hold; an OpenSSL failure.
#[allow(deprecated)]
pub(super) fn generate(attributes: Attributes) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    let bits = attributes.bits;
    match attributes.key_type {
        Type::RsaKeyPair => {
            if !RSA_BITS.contains(&bits) {
                return Err(PsaError::InvalidArgument);
            }
            let bits = u32::try_from(bits).map_err(|_| PsaError::InvalidArgument)?;
            let rsa = Rsa::generate(bits).map_err(error::internal)?;
            Ok(Zeroizing::new(
                rsa.private_key_to_der().map_err(error::internal)?,
            ))
        }
        Type::EccKeyPair { curve_family } => {
            if bits == 0 || !is_psa_curve_size(curve_family, bits) {
                return Err(PsaError::InvalidArgument);
            }
            match curve(curve_family, bits).ok_or(PsaError::NotSupported)? {
                curve @ Curve::Weierstrass { nid, .. } => {
                    let group = EcGroup::from_curve_name(nid).map_err(error::internal)?;
                    let key = EcKey::generate(&group).map_err(error::internal)?;
                    to_padded(key.private_key(), curve.bytes())
                }
                curve @ (Curve::X25519 | Curve::X448) => {
                    let mut scalar = Zeroizing::new(vec![0; curve.bytes()]);
                    ::openssl::rand::rand_priv_bytes(&mut scalar).map_err(error::internal)?;
                    clamp(curve, &mut scalar);
                    Ok(scalar)
                }
            }
        }
        Type::EccPublicKey { .. } | Type::RsaPublicKey => Err(PsaError::InvalidArgument),
        key_type => {
            check_symmetric_size(key_type, bits)?;
            if bits == 0 {
                return Err(PsaError::InvalidArgument);
            }
            let mut bytes = Zeroizing::new(vec![0; bits / 8]);
            ::openssl::rand::rand_priv_bytes(&mut bytes).map_err(error::internal)?;
            Ok(bytes)
        }
    }
}

/// Checks a symmetric (or raw) key size; 0 passes.
#[allow(deprecated)]
fn check_symmetric_size(key_type: Type, bits: usize) -> Result<(), PsaError> {
    match key_type {
        Type::Aes | Type::Camellia if !matches!(bits, 0 | 128 | 192 | 256) => {
            Err(PsaError::InvalidArgument)
        }
        Type::Chacha20 if !matches!(bits, 0 | 256) => Err(PsaError::InvalidArgument),
        Type::Aes | Type::Camellia | Type::Chacha20 => Ok(()),
        Type::RawData | Type::Hmac | Type::Derive => {
            if bits > MAX_KEY_BITS {
                Err(PsaError::NotSupported)
            } else if bits % 8 != 0 {
                Err(PsaError::InvalidArgument)
            } else {
                Ok(())
            }
        }
        _ => Err(PsaError::NotSupported),
    }
}

/// Checks key data for import with `attributes` and returns what is stored: the data, in its
/// PSA export format (Montgomery private keys clamped, as Mbed TLS stores them), and the parsed
/// key.
///
/// # Errors
/// `InvalidArgument` for malformed data or a `key_bits` that does not match it;
/// `NotSupported` for a type, curve or size this provider does not hold.
#[allow(deprecated)]
pub(super) fn import(
    attributes: Attributes,
    data: &[u8],
) -> Result<(Zeroizing<Vec<u8>>, LoadedKey), PsaError> {
    let bits = attributes.bits;
    let key_type = attributes.key_type;
    match key_type {
        Type::RsaKeyPair | Type::RsaPublicKey => {
            let (encoded, modulus_bits) = if key_type == Type::RsaKeyPair {
                let rsa = parse_rsa_key_pair(data)?;
                if !rsa.check_key().map_err(error::parse)? {
                    return Err(PsaError::InvalidArgument);
                }
                let encoded = Zeroizing::new(rsa.private_key_to_der().map_err(error::internal)?);
                (encoded, rsa.n().num_bits())
            } else {
                let rsa = parse_rsa_public_key(data)?;
                let encoded = rsa.public_key_to_der_pkcs1().map_err(error::internal)?;
                (Zeroizing::new(encoded), rsa.n().num_bits())
            };
            let modulus_bits =
                usize::try_from(modulus_bits).map_err(|_| PsaError::InvalidArgument)?;
            if bits != 0 && bits != modulus_bits {
                return Err(PsaError::InvalidArgument);
            }
            if !is_rsa_import_size(modulus_bits) {
                return Err(PsaError::NotSupported);
            }
            let key = load(key_type, &encoded)?;
            Ok((encoded, key))
        }
        Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
            if bits != 0 && !is_psa_curve_size(curve_family, bits) {
                return Err(PsaError::InvalidArgument);
            }
            let public = key_type.is_ecc_public_key();
            let weierstrass_public = public && curve_family != EccFamily::Montgomery;
            let bytes = if weierstrass_public {
                if data.len() % 2 == 0 {
                    return Err(PsaError::InvalidArgument);
                }
                data.len() / 2
            } else {
                data.len()
            };
            let curve = if bits != 0 {
                if bytes != bits.div_ceil(8) {
                    return Err(PsaError::InvalidArgument);
                }
                curve(curve_family, bits)
            } else {
                curve_of_length(curve_family, bytes)
            }
            .ok_or(PsaError::NotSupported)?;
            if weierstrass_public {
                // Only uncompressed points have the length checked above.
                if data.first() != Some(&0x04) {
                    return Err(PsaError::InvalidArgument);
                }
            }
            let mut stored = Zeroizing::new(data.to_vec());
            if !public && matches!(curve, Curve::X25519 | Curve::X448) {
                clamp(curve, &mut stored);
            }
            let key = load_ecc(key_type, curve, &stored, true)?;
            Ok((stored, key))
        }
        _ => {
            if data.is_empty() {
                return Err(PsaError::InvalidArgument);
            }
            let data_bits = data.len().saturating_mul(8);
            if bits != 0 && bits != data_bits {
                return Err(PsaError::InvalidArgument);
            }
            check_symmetric_size(key_type, data_bits)?;
            let stored = Zeroizing::new(data.to_vec());
            let key = load(key_type, &stored)?;
            Ok((stored, key))
        }
    }
}

/// An RSA key pair in DER: PKCS#1 `RSAPrivateKey` (the PSA format), or, as Mbed TLS also
/// takes, PKCS#8 `PrivateKeyInfo`. As Mbed TLS does, bytes after the structure are ignored;
/// the key is kept in PKCS#1 form. Another encoding of the same values (BER) is refused.
fn parse_rsa_key_pair(data: &[u8]) -> Result<Rsa<Private>, PsaError> {
    if let Ok(rsa) = Rsa::private_key_from_der(data) {
        let encoded = Zeroizing::new(rsa.private_key_to_der().map_err(error::internal)?);
        return if data.starts_with(&encoded) {
            Ok(rsa)
        } else {
            Err(PsaError::InvalidArgument)
        };
    }
    let key = PKey::private_key_from_pkcs8(data).map_err(error::parse)?;
    let encoded = Zeroizing::new(key.private_key_to_pkcs8().map_err(error::internal)?);
    if !data.starts_with(&encoded) {
        return Err(PsaError::InvalidArgument);
    }
    key.rsa().map_err(error::parse)
}

/// An RSA public key in DER: PKCS#1 `RSAPublicKey` (the PSA format), or, as Mbed TLS also
/// takes, `SubjectPublicKeyInfo`; kept in PKCS#1 form. Exactly the DER encoding, nothing after.
fn parse_rsa_public_key(data: &[u8]) -> Result<Rsa<Public>, PsaError> {
    let (rsa, encoded) = match Rsa::public_key_from_der_pkcs1(data) {
        Ok(rsa) => {
            let encoded = rsa.public_key_to_der_pkcs1().map_err(error::internal)?;
            (rsa, encoded)
        }
        Err(_) => {
            let rsa = Rsa::public_key_from_der(data).map_err(error::parse)?;
            let encoded = rsa.public_key_to_der().map_err(error::internal)?;
            (rsa, encoded)
        }
    };
    if encoded != data {
        return Err(PsaError::InvalidArgument);
    }
    Ok(rsa)
}

/// Parses a key of `key_type` from its PSA export format, as stored by this provider.
///
/// The data was checked on import (or made here) and authenticated on unwrapping, so only what
/// parsing itself needs is checked.
///
/// # Errors
/// `InvalidArgument` (or `NotSupported`) for data that is not such a key.
#[allow(deprecated)]
pub(super) fn load(key_type: Type, data: &[u8]) -> Result<LoadedKey, PsaError> {
    match key_type {
        Type::RsaKeyPair => {
            let rsa = Rsa::private_key_from_der(data).map_err(error::parse)?;
            let public = Rsa::from_public_components(
                rsa.n().to_owned().map_err(error::internal)?,
                rsa.e().to_owned().map_err(error::internal)?,
            )
            .map_err(error::internal)?;
            let public_export = public.public_key_to_der_pkcs1().map_err(error::internal)?;
            let modulus_bytes = usize::try_from(rsa.size()).map_err(|_| PsaError::DataCorrupt)?;
            let modulus = rsa.n().to_owned().map_err(error::internal)?;
            Ok(LoadedKey {
                key_type,
                material: Material::Rsa(RsaMaterial {
                    modulus,
                    private: Some(PKey::from_rsa(rsa).map_err(error::internal)?),
                    public: PKey::from_rsa(public).map_err(error::internal)?,
                    modulus_bytes,
                }),
                public_export: Some(public_export),
            })
        }
        Type::RsaPublicKey => {
            let rsa = Rsa::public_key_from_der_pkcs1(data).map_err(error::parse)?;
            let modulus_bytes = usize::try_from(rsa.size()).map_err(|_| PsaError::DataCorrupt)?;
            let modulus = rsa.n().to_owned().map_err(error::internal)?;
            Ok(LoadedKey {
                key_type,
                material: Material::Rsa(RsaMaterial {
                    modulus,
                    private: None,
                    public: PKey::from_rsa(rsa).map_err(error::internal)?,
                    modulus_bytes,
                }),
                public_export: Some(data.to_vec()),
            })
        }
        Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
            let public = key_type.is_ecc_public_key();
            let bytes = if public && curve_family != EccFamily::Montgomery {
                data.len() / 2
            } else {
                data.len()
            };
            let curve = curve_of_length(curve_family, bytes).ok_or(PsaError::DataCorrupt)?;
            load_ecc(key_type, curve, data, false)
        }
        Type::Aes | Type::Camellia | Type::Chacha20 | Type::RawData | Type::Hmac | Type::Derive => {
            Ok(LoadedKey {
                key_type,
                material: Material::Symmetric(Zeroizing::new(data.to_vec())),
                public_export: None,
            })
        }
        Type::Des | Type::Arc4 | Type::DhKeyPair { .. } | Type::DhPublicKey { .. } => {
            Err(PsaError::NotSupported)
        }
    }
}

/// Parses an ECC key pair (`private`) or public key of `curve`; `check` adds the checks an
/// imported key needs (scalar range, point on the curve).
fn load_ecc(key_type: Type, curve: Curve, data: &[u8], check: bool) -> Result<LoadedKey, PsaError> {
    let private = !key_type.is_ecc_public_key();
    match curve {
        Curve::Weierstrass { nid, .. } => {
            let group = EcGroup::from_curve_name(nid).map_err(error::internal)?;
            let mut ctx = BigNumContext::new().map_err(error::internal)?;
            let (private_key, point) = if private {
                let scalar = Zeroizing::new(data.to_vec());
                let scalar = SecretBn(BigNum::from_slice(&scalar).map_err(error::internal)?);
                let scalar = &scalar.0;
                if check {
                    let mut order = BigNum::new().map_err(error::internal)?;
                    group.order(&mut order, &mut ctx).map_err(error::internal)?;
                    let zero = BigNum::new().map_err(error::internal)?;
                    if scalar.ucmp(&zero).is_eq() || scalar.ucmp(&order).is_ge() {
                        return Err(PsaError::InvalidArgument);
                    }
                }
                let mut point = EcPoint::new(&group).map_err(error::internal)?;
                point
                    .mul_generator2(&group, scalar, &mut ctx)
                    .map_err(error::internal)?;
                let key =
                    EcKey::from_private_components(&group, scalar, &point).map_err(error::parse)?;
                (Some(key), point)
            } else {
                let point = EcPoint::from_bytes(&group, data, &mut ctx).map_err(error::parse)?;
                (None, point)
            };
            let public = EcKey::from_public_key(&group, &point).map_err(error::parse)?;
            if check {
                public.check_key().map_err(error::parse)?;
            }
            let public_export = point
                .to_bytes(&group, PointConversionForm::UNCOMPRESSED, &mut ctx)
                .map_err(error::internal)?;
            let private_pkey = private_key
                .as_ref()
                .map(|key| PKey::from_ec_key(key.clone()))
                .transpose()
                .map_err(error::internal)?;
            Ok(LoadedKey {
                key_type,
                material: Material::Ec(EcMaterial {
                    curve,
                    private: private_key,
                    private_pkey,
                    public,
                }),
                public_export: Some(public_export),
            })
        }
        Curve::X25519 | Curve::X448 => {
            let id = if curve == Curve::X25519 {
                Id::X25519
            } else {
                Id::X448
            };
            if data.len() != curve.bytes() {
                return Err(PsaError::InvalidArgument);
            }
            let (private_key, public_export) = if private {
                let key = PKey::private_key_from_raw_bytes(data, id).map_err(error::parse)?;
                let public = key.raw_public_key().map_err(error::internal)?;
                (Some(key), public)
            } else {
                PKey::public_key_from_raw_bytes(data, id).map_err(error::parse)?;
                (None, data.to_vec())
            };
            Ok(LoadedKey {
                key_type,
                material: Material::Montgomery(MontgomeryMaterial {
                    curve,
                    private: private_key,
                }),
                public_export: Some(public_export),
            })
        }
    }
}

/// A secret big number, wiped when dropped (OpenSSL's `BN_free`, which `BigNum` calls, does not
/// wipe; the copies OpenSSL keeps inside keys are wiped when the keys are freed).
struct SecretBn(BigNum);

impl Drop for SecretBn {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// Applies RFC 7748's clamping to a Montgomery private key, as Mbed TLS does on import, so that
/// the key exported is the key used.
fn clamp(curve: Curve, scalar: &mut [u8]) {
    let last = scalar.len().saturating_sub(1);
    match curve {
        Curve::X25519 => {
            if let (Some(first), Some(top)) = (scalar.first().copied(), scalar.get(last).copied()) {
                scalar[0] = first & 0xf8;
                scalar[last] = (top & 0x7f) | 0x40;
            }
        }
        Curve::X448 => {
            if let (Some(first), Some(top)) = (scalar.first().copied(), scalar.get(last).copied()) {
                scalar[0] = first & 0xfc;
                scalar[last] = top | 0x80;
            }
        }
        Curve::Weierstrass { .. } => {}
    }
}

/// `value` big-endian on exactly `len` bytes, wiped on drop.
pub(super) fn to_padded(
    value: &::openssl::bn::BigNumRef,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, PsaError> {
    let len = i32::try_from(len).map_err(|_| PsaError::InvalidArgument)?;
    value
        .to_vec_padded(len)
        .map(Zeroizing::new)
        .map_err(error::internal)
}
