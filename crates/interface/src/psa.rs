//! Conversions between the protobuf PSA types ([`crate::proto::psa_key_attributes`] and
//! [`crate::proto::psa_algorithm`]) and the native `psa-crypto` types
//! ([`psa_crypto::types::key`] and [`psa_crypto::types::algorithm`]).
//!
//! This module owns the wire rules of those two packages: a missing mandatory sub-message, an
//! unset `oneof`, an unknown enum number or a `*_NONE` placeholder (0) is rejected with
//! [`BodyError::InvalidEncoding`] naming the offending field. Native values that cannot be put
//! on the wire (a size that does not fit in `uint32`) give [`BodyError::Serialize`].
//!
//! Field paths in errors are written as the field appears in an operation body: key attributes
//! start with `attributes`, an algorithm embedded directly in an operation starts with `alg`, and
//! the algorithm of a key policy starts with `attributes.key_policy.key_algorithm`.

use prost::Message as _;

use crate::error::BodyError;
use crate::proto::psa_algorithm::{algorithm as pa, Algorithm as ProtoAlgorithm};
use crate::proto::psa_key_attributes as pk;
use psa_crypto::types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, Hash, KeyAgreement, KeyDerivation, Mac, RawKeyAgreement, SignHash,
};
use psa_crypto::types::key::{Attributes, DhFamily, EccFamily, Lifetime, Policy, Type, UsageFlags};

fn invalid(field: &'static str) -> BodyError {
    BodyError::InvalidEncoding(field)
}

/// Where an algorithm message sits in a body; selects the prefix of error field paths.
#[derive(Clone, Copy)]
enum At {
    /// Directly in an operation's `alg` field.
    Alg,
    /// Inside `attributes.key_policy.key_algorithm`, under the named `oneof` member.
    Policy,
}

/// Builds a `&'static str` field path for an algorithm sub-message at `$at`; `$member` is the
/// member of the `Algorithm` oneof that holds it in a key policy.
macro_rules! at_path {
    ($at:expr, $member:literal, $($suffix:literal),+) => {
        match $at {
            At::Alg => concat!("alg", $($suffix),+),
            At::Policy => concat!("attributes.key_policy.key_algorithm.", $member, $($suffix),+),
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Enumerations carried as i32
// ---------------------------------------------------------------------------------------------

/// Converts an `Algorithm.Hash` enum value; 0 (`HASH_NONE`) and unknown numbers are rejected
/// with `InvalidEncoding(field)`.
#[allow(deprecated)]
pub fn hash_from_proto(value: i32, field: &'static str) -> Result<Hash, BodyError> {
    use pa::Hash as P;
    Ok(match P::try_from(value).map_err(|_| invalid(field))? {
        P::None => return Err(invalid(field)),
        P::Md2 => Hash::Md2,
        P::Md4 => Hash::Md4,
        P::Md5 => Hash::Md5,
        P::Ripemd160 => Hash::Ripemd160,
        P::Sha1 => Hash::Sha1,
        P::Sha224 => Hash::Sha224,
        P::Sha256 => Hash::Sha256,
        P::Sha384 => Hash::Sha384,
        P::Sha512 => Hash::Sha512,
        P::Sha512224 => Hash::Sha512_224,
        P::Sha512256 => Hash::Sha512_256,
        P::Sha3224 => Hash::Sha3_224,
        P::Sha3256 => Hash::Sha3_256,
        P::Sha3384 => Hash::Sha3_384,
        P::Sha3512 => Hash::Sha3_512,
    })
}

/// Converts a native hash to its `Algorithm.Hash` enum value.
#[allow(deprecated)]
pub fn hash_to_proto(hash: Hash) -> i32 {
    use pa::Hash as P;
    let p = match hash {
        Hash::Md2 => P::Md2,
        Hash::Md4 => P::Md4,
        Hash::Md5 => P::Md5,
        Hash::Ripemd160 => P::Ripemd160,
        Hash::Sha1 => P::Sha1,
        Hash::Sha224 => P::Sha224,
        Hash::Sha256 => P::Sha256,
        Hash::Sha384 => P::Sha384,
        Hash::Sha512 => P::Sha512,
        Hash::Sha512_224 => P::Sha512224,
        Hash::Sha512_256 => P::Sha512256,
        Hash::Sha3_224 => P::Sha3224,
        Hash::Sha3_256 => P::Sha3256,
        Hash::Sha3_384 => P::Sha3384,
        Hash::Sha3_512 => P::Sha3512,
    };
    p as i32
}

/// Converts an `Algorithm.Cipher` enum value; 0 (`CIPHER_NONE`) and unknown numbers are rejected
/// with `InvalidEncoding(field)`.
pub fn cipher_from_proto(value: i32, field: &'static str) -> Result<Cipher, BodyError> {
    use pa::Cipher as P;
    Ok(match P::try_from(value).map_err(|_| invalid(field))? {
        P::None => return Err(invalid(field)),
        P::StreamCipher => Cipher::StreamCipher,
        P::Ctr => Cipher::Ctr,
        P::Cfb => Cipher::Cfb,
        P::Ofb => Cipher::Ofb,
        P::Xts => Cipher::Xts,
        P::EcbNoPadding => Cipher::EcbNoPadding,
        P::CbcNoPadding => Cipher::CbcNoPadding,
        P::CbcPkcs7 => Cipher::CbcPkcs7,
    })
}

/// Converts a native cipher mode to its `Algorithm.Cipher` enum value.
pub fn cipher_to_proto(cipher: Cipher) -> i32 {
    use pa::Cipher as P;
    let p = match cipher {
        Cipher::StreamCipher => P::StreamCipher,
        Cipher::Ctr => P::Ctr,
        Cipher::Cfb => P::Cfb,
        Cipher::Ofb => P::Ofb,
        Cipher::Xts => P::Xts,
        Cipher::EcbNoPadding => P::EcbNoPadding,
        Cipher::CbcNoPadding => P::CbcNoPadding,
        Cipher::CbcPkcs7 => P::CbcPkcs7,
    };
    p as i32
}

/// Converts an `Algorithm.KeyAgreement.Raw` enum value; 0 (`RAW_NONE`) and unknown numbers are
/// rejected with `InvalidEncoding(field)`.
pub fn raw_key_agreement_from_proto(
    value: i32,
    field: &'static str,
) -> Result<RawKeyAgreement, BodyError> {
    use pa::key_agreement::Raw as P;
    Ok(match P::try_from(value).map_err(|_| invalid(field))? {
        P::None => return Err(invalid(field)),
        P::Ffdh => RawKeyAgreement::Ffdh,
        P::Ecdh => RawKeyAgreement::Ecdh,
    })
}

/// Converts a native raw key agreement to its `Algorithm.KeyAgreement.Raw` enum value.
pub fn raw_key_agreement_to_proto(alg: RawKeyAgreement) -> i32 {
    use pa::key_agreement::Raw as P;
    let p = match alg {
        RawKeyAgreement::Ffdh => P::Ffdh,
        RawKeyAgreement::Ecdh => P::Ecdh,
    };
    p as i32
}

/// Converts an `Algorithm.Aead.AeadWithDefaultLengthTag` enum value; 0 and unknown numbers are
/// rejected with `InvalidEncoding(field)`.
pub fn aead_with_default_length_tag_from_proto(
    value: i32,
    field: &'static str,
) -> Result<AeadWithDefaultLengthTag, BodyError> {
    use pa::aead::AeadWithDefaultLengthTag as P;
    Ok(match P::try_from(value).map_err(|_| invalid(field))? {
        P::None => return Err(invalid(field)),
        P::Ccm => AeadWithDefaultLengthTag::Ccm,
        P::Gcm => AeadWithDefaultLengthTag::Gcm,
        P::Chacha20Poly1305 => AeadWithDefaultLengthTag::Chacha20Poly1305,
    })
}

/// Converts a native AEAD base algorithm to its `Algorithm.Aead.AeadWithDefaultLengthTag` value.
pub fn aead_with_default_length_tag_to_proto(alg: AeadWithDefaultLengthTag) -> i32 {
    use pa::aead::AeadWithDefaultLengthTag as P;
    let p = match alg {
        AeadWithDefaultLengthTag::Ccm => P::Ccm,
        AeadWithDefaultLengthTag::Gcm => P::Gcm,
        AeadWithDefaultLengthTag::Chacha20Poly1305 => P::Chacha20Poly1305,
    };
    p as i32
}

// ---------------------------------------------------------------------------------------------
// Algorithm sub-messages, wire -> native
// ---------------------------------------------------------------------------------------------

fn full_length_mac_from_proto(
    mac: Option<pa::mac::FullLength>,
    missing: &'static str,
    variant: &'static str,
    hmac_hash: &'static str,
) -> Result<FullLengthMac, BodyError> {
    use pa::mac::full_length::Variant as V;
    Ok(
        match mac
            .ok_or(invalid(missing))?
            .variant
            .ok_or(invalid(variant))?
        {
            V::Hmac(hmac) => FullLengthMac::Hmac {
                hash_alg: hash_from_proto(hmac.hash_alg, hmac_hash)?,
            },
            V::CbcMac(_) => FullLengthMac::CbcMac,
            V::Cmac(_) => FullLengthMac::Cmac,
        },
    )
}

fn mac_from_proto(mac: pa::Mac, at: At) -> Result<Mac, BodyError> {
    use pa::mac::Variant as V;
    macro_rules! path {
        ($($s:literal),+) => { at_path!(at, "mac", $($s),+) };
    }
    Ok(match mac.variant.ok_or(invalid(path!(".variant")))? {
        V::FullLength(full) => Mac::FullLength(full_length_mac_from_proto(
            Some(full),
            path!(".full_length"),
            path!(".full_length.variant"),
            path!(".full_length.hmac.hash_alg"),
        )?),
        V::Truncated(truncated) => Mac::Truncated {
            mac_alg: full_length_mac_from_proto(
                truncated.mac_alg,
                path!(".truncated.mac_alg"),
                path!(".truncated.mac_alg.variant"),
                path!(".truncated.mac_alg.hmac.hash_alg"),
            )?,
            mac_length: usize::try_from(truncated.mac_length)
                .map_err(|_| invalid(path!(".truncated.mac_length")))?,
        },
    })
}

fn aead_from_proto(aead: pa::Aead, at: At) -> Result<Aead, BodyError> {
    use pa::aead::Variant as V;
    macro_rules! path {
        ($($s:literal),+) => { at_path!(at, "aead", $($s),+) };
    }
    Ok(match aead.variant.ok_or(invalid(path!(".variant")))? {
        V::AeadWithDefaultLengthTag(alg) => Aead::AeadWithDefaultLengthTag(
            aead_with_default_length_tag_from_proto(alg, path!(".aead_with_default_length_tag"))?,
        ),
        V::AeadWithShortenedTag(shortened) => Aead::AeadWithShortenedTag {
            aead_alg: aead_with_default_length_tag_from_proto(
                shortened.aead_alg,
                path!(".aead_with_shortened_tag.aead_alg"),
            )?,
            tag_length: usize::try_from(shortened.tag_length)
                .map_err(|_| invalid(path!(".aead_with_shortened_tag.tag_length")))?,
        },
    })
}

fn sign_hash_from_proto(
    hash: Option<pa::asymmetric_signature::SignHash>,
    missing: &'static str,
    variant: &'static str,
    specific: &'static str,
) -> Result<SignHash, BodyError> {
    use pa::asymmetric_signature::sign_hash::Variant as V;
    Ok(
        match hash
            .ok_or(invalid(missing))?
            .variant
            .ok_or(invalid(variant))?
        {
            V::Any(_) => SignHash::Any,
            V::Specific(h) => SignHash::Specific(hash_from_proto(h, specific)?),
        },
    )
}

fn signature_from_proto(
    sig: pa::AsymmetricSignature,
    at: At,
) -> Result<AsymmetricSignature, BodyError> {
    use pa::asymmetric_signature::Variant as V;
    macro_rules! path {
        ($($s:literal),+) => { at_path!(at, "asymmetric_signature", $($s),+) };
    }
    // `hash_alg` of the scheme named `$member`.
    macro_rules! hash_alg {
        ($msg:expr, $member:literal) => {
            sign_hash_from_proto(
                $msg.hash_alg,
                path!(".", $member, ".hash_alg"),
                path!(".", $member, ".hash_alg.variant"),
                path!(".", $member, ".hash_alg.specific"),
            )?
        };
    }
    Ok(match sig.variant.ok_or(invalid(path!(".variant")))? {
        V::RsaPkcs1v15Sign(s) => AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: hash_alg!(s, "rsa_pkcs1v15_sign"),
        },
        V::RsaPkcs1v15SignRaw(_) => AsymmetricSignature::RsaPkcs1v15SignRaw,
        V::RsaPss(s) => AsymmetricSignature::RsaPss {
            hash_alg: hash_alg!(s, "rsa_pss"),
        },
        V::Ecdsa(s) => AsymmetricSignature::Ecdsa {
            hash_alg: hash_alg!(s, "ecdsa"),
        },
        V::EcdsaAny(_) => AsymmetricSignature::EcdsaAny,
        V::DeterministicEcdsa(s) => AsymmetricSignature::DeterministicEcdsa {
            hash_alg: hash_alg!(s, "deterministic_ecdsa"),
        },
    })
}

fn encryption_from_proto(
    enc: pa::AsymmetricEncryption,
    at: At,
) -> Result<AsymmetricEncryption, BodyError> {
    use pa::asymmetric_encryption::Variant as V;
    macro_rules! path {
        ($($s:literal),+) => { at_path!(at, "asymmetric_encryption", $($s),+) };
    }
    Ok(match enc.variant.ok_or(invalid(path!(".variant")))? {
        V::RsaPkcs1v15Crypt(_) => AsymmetricEncryption::RsaPkcs1v15Crypt,
        V::RsaOaep(oaep) => AsymmetricEncryption::RsaOaep {
            hash_alg: hash_from_proto(oaep.hash_alg, path!(".rsa_oaep.hash_alg"))?,
        },
    })
}

/// Field paths for a `KeyDerivation` message, which appears in two places.
struct KdfPaths {
    missing: &'static str,
    variant: &'static str,
    hkdf: &'static str,
    tls12_prf: &'static str,
    tls12_psk_to_ms: &'static str,
}

fn kdf_from_proto(
    kdf: Option<pa::KeyDerivation>,
    paths: &KdfPaths,
) -> Result<KeyDerivation, BodyError> {
    use pa::key_derivation::Variant as V;
    let variant = kdf.ok_or(invalid(paths.missing))?.variant;
    Ok(match variant.ok_or(invalid(paths.variant))? {
        V::Hkdf(k) => KeyDerivation::Hkdf {
            hash_alg: hash_from_proto(k.hash_alg, paths.hkdf)?,
        },
        V::Tls12Prf(k) => KeyDerivation::Tls12Prf {
            hash_alg: hash_from_proto(k.hash_alg, paths.tls12_prf)?,
        },
        V::Tls12PskToMs(k) => KeyDerivation::Tls12PskToMs {
            hash_alg: hash_from_proto(k.hash_alg, paths.tls12_psk_to_ms)?,
        },
    })
}

fn key_derivation_from_proto(kdf: pa::KeyDerivation, at: At) -> Result<KeyDerivation, BodyError> {
    macro_rules! path {
        ($($s:literal),+) => { at_path!(at, "key_derivation", $($s),+) };
    }
    kdf_from_proto(
        Some(kdf),
        &KdfPaths {
            missing: path!(""),
            variant: path!(".variant"),
            hkdf: path!(".hkdf.hash_alg"),
            tls12_prf: path!(".tls12_prf.hash_alg"),
            tls12_psk_to_ms: path!(".tls12_psk_to_ms.hash_alg"),
        },
    )
}

fn key_agreement_from_proto(ka: pa::KeyAgreement, at: At) -> Result<KeyAgreement, BodyError> {
    use pa::key_agreement::Variant as V;
    macro_rules! path {
        ($($s:literal),+) => { at_path!(at, "key_agreement", $($s),+) };
    }
    Ok(match ka.variant.ok_or(invalid(path!(".variant")))? {
        V::Raw(raw) => KeyAgreement::Raw(raw_key_agreement_from_proto(raw, path!(".raw"))?),
        V::WithKeyDerivation(with) => KeyAgreement::WithKeyDerivation {
            ka_alg: raw_key_agreement_from_proto(
                with.ka_alg,
                path!(".with_key_derivation.ka_alg"),
            )?,
            kdf_alg: kdf_from_proto(
                with.kdf_alg,
                &KdfPaths {
                    missing: path!(".with_key_derivation.kdf_alg"),
                    variant: path!(".with_key_derivation.kdf_alg.variant"),
                    hkdf: path!(".with_key_derivation.kdf_alg.hkdf.hash_alg"),
                    tls12_prf: path!(".with_key_derivation.kdf_alg.tls12_prf.hash_alg"),
                    tls12_psk_to_ms: path!(".with_key_derivation.kdf_alg.tls12_psk_to_ms.hash_alg"),
                },
            )?,
        },
    })
}

/// Error paths start with `alg` (the field name every operation uses).
impl TryFrom<pa::Mac> for Mac {
    type Error = BodyError;
    fn try_from(mac: pa::Mac) -> Result<Self, Self::Error> {
        mac_from_proto(mac, At::Alg)
    }
}

/// Error paths start with `alg` (the field name every operation uses).
impl TryFrom<pa::Aead> for Aead {
    type Error = BodyError;
    fn try_from(aead: pa::Aead) -> Result<Self, Self::Error> {
        aead_from_proto(aead, At::Alg)
    }
}

/// Error paths start with `alg` (the field name every operation uses). A `SignHash::Any` hash is
/// accepted here; whether it is allowed is a policy question, not an encoding one.
impl TryFrom<pa::AsymmetricSignature> for AsymmetricSignature {
    type Error = BodyError;
    fn try_from(sig: pa::AsymmetricSignature) -> Result<Self, Self::Error> {
        signature_from_proto(sig, At::Alg)
    }
}

/// Error paths start with `alg` (the field name every operation uses).
impl TryFrom<pa::AsymmetricEncryption> for AsymmetricEncryption {
    type Error = BodyError;
    fn try_from(enc: pa::AsymmetricEncryption) -> Result<Self, Self::Error> {
        encryption_from_proto(enc, At::Alg)
    }
}

/// Error paths start with `alg`.
impl TryFrom<pa::KeyAgreement> for KeyAgreement {
    type Error = BodyError;
    fn try_from(ka: pa::KeyAgreement) -> Result<Self, Self::Error> {
        key_agreement_from_proto(ka, At::Alg)
    }
}

/// Error paths start with `alg`.
impl TryFrom<pa::KeyDerivation> for KeyDerivation {
    type Error = BodyError;
    fn try_from(kdf: pa::KeyDerivation) -> Result<Self, Self::Error> {
        key_derivation_from_proto(kdf, At::Alg)
    }
}

/// A full `Algorithm` only appears in a key policy, so error paths start with
/// `attributes.key_policy.key_algorithm`.
impl TryFrom<ProtoAlgorithm> for Algorithm {
    type Error = BodyError;
    fn try_from(alg: ProtoAlgorithm) -> Result<Self, Self::Error> {
        use pa::Variant as V;
        const AT: At = At::Policy;
        Ok(
            match alg
                .variant
                .ok_or(invalid("attributes.key_policy.key_algorithm.variant"))?
            {
                V::None(_) => Algorithm::None,
                V::Hash(h) => Algorithm::Hash(hash_from_proto(
                    h,
                    "attributes.key_policy.key_algorithm.hash",
                )?),
                V::Mac(mac) => Algorithm::Mac(mac_from_proto(mac, AT)?),
                V::Cipher(c) => Algorithm::Cipher(cipher_from_proto(
                    c,
                    "attributes.key_policy.key_algorithm.cipher",
                )?),
                V::Aead(aead) => Algorithm::Aead(aead_from_proto(aead, AT)?),
                V::AsymmetricSignature(sig) => {
                    Algorithm::AsymmetricSignature(signature_from_proto(sig, AT)?)
                }
                V::AsymmetricEncryption(enc) => {
                    Algorithm::AsymmetricEncryption(encryption_from_proto(enc, AT)?)
                }
                V::KeyAgreement(ka) => Algorithm::KeyAgreement(key_agreement_from_proto(ka, AT)?),
                V::KeyDerivation(kdf) => {
                    Algorithm::KeyDerivation(key_derivation_from_proto(kdf, AT)?)
                }
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Algorithm sub-messages, native -> wire
// ---------------------------------------------------------------------------------------------

fn full_length_mac_to_proto(mac: FullLengthMac) -> pa::mac::FullLength {
    use pa::mac::full_length::{CbcMac, Cmac, Hmac, Variant as V};
    let variant = match mac {
        FullLengthMac::Hmac { hash_alg } => V::Hmac(Hmac {
            hash_alg: hash_to_proto(hash_alg),
        }),
        FullLengthMac::CbcMac => V::CbcMac(CbcMac {}),
        FullLengthMac::Cmac => V::Cmac(Cmac {}),
    };
    pa::mac::FullLength {
        variant: Some(variant),
    }
}

/// Fails with [`BodyError::Serialize`] when a truncated `mac_length` does not fit in `uint32`.
impl TryFrom<Mac> for pa::Mac {
    type Error = BodyError;
    fn try_from(mac: Mac) -> Result<Self, Self::Error> {
        use pa::mac::{Truncated, Variant as V};
        let variant = match mac {
            Mac::FullLength(full) => V::FullLength(full_length_mac_to_proto(full)),
            Mac::Truncated {
                mac_alg,
                mac_length,
            } => V::Truncated(Truncated {
                mac_alg: Some(full_length_mac_to_proto(mac_alg)),
                mac_length: u32::try_from(mac_length).map_err(|_| BodyError::Serialize)?,
            }),
        };
        Ok(Self {
            variant: Some(variant),
        })
    }
}

/// Fails with [`BodyError::Serialize`] when a shortened `tag_length` does not fit in `uint32`.
impl TryFrom<Aead> for pa::Aead {
    type Error = BodyError;
    fn try_from(aead: Aead) -> Result<Self, Self::Error> {
        use pa::aead::{AeadWithShortenedTag, Variant as V};
        let variant = match aead {
            Aead::AeadWithDefaultLengthTag(alg) => {
                V::AeadWithDefaultLengthTag(aead_with_default_length_tag_to_proto(alg))
            }
            Aead::AeadWithShortenedTag {
                aead_alg,
                tag_length,
            } => V::AeadWithShortenedTag(AeadWithShortenedTag {
                aead_alg: aead_with_default_length_tag_to_proto(aead_alg),
                tag_length: u32::try_from(tag_length).map_err(|_| BodyError::Serialize)?,
            }),
        };
        Ok(Self {
            variant: Some(variant),
        })
    }
}

fn sign_hash_to_proto(hash: SignHash) -> Option<pa::asymmetric_signature::SignHash> {
    use pa::asymmetric_signature::sign_hash::{Any, Variant as V};
    let variant = match hash {
        SignHash::Any => V::Any(Any {}),
        SignHash::Specific(h) => V::Specific(hash_to_proto(h)),
    };
    Some(pa::asymmetric_signature::SignHash {
        variant: Some(variant),
    })
}

impl From<AsymmetricSignature> for pa::AsymmetricSignature {
    fn from(sig: AsymmetricSignature) -> Self {
        use pa::asymmetric_signature::{
            DeterministicEcdsa, Ecdsa, EcdsaAny, RsaPkcs1v15Sign, RsaPkcs1v15SignRaw, RsaPss,
            Variant as V,
        };
        let variant = match sig {
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg } => {
                V::RsaPkcs1v15Sign(RsaPkcs1v15Sign {
                    hash_alg: sign_hash_to_proto(hash_alg),
                })
            }
            AsymmetricSignature::RsaPkcs1v15SignRaw => V::RsaPkcs1v15SignRaw(RsaPkcs1v15SignRaw {}),
            AsymmetricSignature::RsaPss { hash_alg } => V::RsaPss(RsaPss {
                hash_alg: sign_hash_to_proto(hash_alg),
            }),
            AsymmetricSignature::Ecdsa { hash_alg } => V::Ecdsa(Ecdsa {
                hash_alg: sign_hash_to_proto(hash_alg),
            }),
            AsymmetricSignature::EcdsaAny => V::EcdsaAny(EcdsaAny {}),
            AsymmetricSignature::DeterministicEcdsa { hash_alg } => {
                V::DeterministicEcdsa(DeterministicEcdsa {
                    hash_alg: sign_hash_to_proto(hash_alg),
                })
            }
        };
        Self {
            variant: Some(variant),
        }
    }
}

impl From<AsymmetricEncryption> for pa::AsymmetricEncryption {
    fn from(enc: AsymmetricEncryption) -> Self {
        use pa::asymmetric_encryption::{RsaOaep, RsaPkcs1v15Crypt, Variant as V};
        let variant = match enc {
            AsymmetricEncryption::RsaPkcs1v15Crypt => V::RsaPkcs1v15Crypt(RsaPkcs1v15Crypt {}),
            AsymmetricEncryption::RsaOaep { hash_alg } => V::RsaOaep(RsaOaep {
                hash_alg: hash_to_proto(hash_alg),
            }),
        };
        Self {
            variant: Some(variant),
        }
    }
}

impl From<KeyDerivation> for pa::KeyDerivation {
    fn from(kdf: KeyDerivation) -> Self {
        use pa::key_derivation::{Hkdf, Tls12Prf, Tls12PskToMs, Variant as V};
        let variant = match kdf {
            KeyDerivation::Hkdf { hash_alg } => V::Hkdf(Hkdf {
                hash_alg: hash_to_proto(hash_alg),
            }),
            KeyDerivation::Tls12Prf { hash_alg } => V::Tls12Prf(Tls12Prf {
                hash_alg: hash_to_proto(hash_alg),
            }),
            KeyDerivation::Tls12PskToMs { hash_alg } => V::Tls12PskToMs(Tls12PskToMs {
                hash_alg: hash_to_proto(hash_alg),
            }),
        };
        Self {
            variant: Some(variant),
        }
    }
}

impl From<KeyAgreement> for pa::KeyAgreement {
    fn from(ka: KeyAgreement) -> Self {
        use pa::key_agreement::{Variant as V, WithKeyDerivation};
        let variant = match ka {
            KeyAgreement::Raw(raw) => V::Raw(raw_key_agreement_to_proto(raw)),
            KeyAgreement::WithKeyDerivation { ka_alg, kdf_alg } => {
                V::WithKeyDerivation(WithKeyDerivation {
                    ka_alg: raw_key_agreement_to_proto(ka_alg),
                    kdf_alg: Some(kdf_alg.into()),
                })
            }
        };
        Self {
            variant: Some(variant),
        }
    }
}

/// Fails with [`BodyError::Serialize`] only for a MAC or AEAD length that does not fit in
/// `uint32`.
impl TryFrom<Algorithm> for ProtoAlgorithm {
    type Error = BodyError;
    fn try_from(alg: Algorithm) -> Result<Self, Self::Error> {
        use pa::Variant as V;
        let variant = match alg {
            Algorithm::None => V::None(pa::None {}),
            Algorithm::Hash(h) => V::Hash(hash_to_proto(h)),
            Algorithm::Mac(mac) => V::Mac(mac.try_into()?),
            Algorithm::Cipher(c) => V::Cipher(cipher_to_proto(c)),
            Algorithm::Aead(aead) => V::Aead(aead.try_into()?),
            Algorithm::AsymmetricSignature(sig) => V::AsymmetricSignature(sig.into()),
            Algorithm::AsymmetricEncryption(enc) => V::AsymmetricEncryption(enc.into()),
            Algorithm::KeyAgreement(ka) => V::KeyAgreement(ka.into()),
            Algorithm::KeyDerivation(kdf) => V::KeyDerivation(kdf.into()),
        };
        Ok(Self {
            variant: Some(variant),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Key type, usage flags, policy and attributes
// ---------------------------------------------------------------------------------------------

#[allow(deprecated)]
fn ecc_family_from_proto(value: i32, field: &'static str) -> Result<EccFamily, BodyError> {
    use pk::key_type::EccFamily as P;
    Ok(match P::try_from(value).map_err(|_| invalid(field))? {
        P::None => return Err(invalid(field)),
        P::SecpK1 => EccFamily::SecpK1,
        P::SecpR1 => EccFamily::SecpR1,
        P::SecpR2 => EccFamily::SecpR2,
        P::SectK1 => EccFamily::SectK1,
        P::SectR1 => EccFamily::SectR1,
        P::SectR2 => EccFamily::SectR2,
        P::BrainpoolPR1 => EccFamily::BrainpoolPR1,
        P::Frp => EccFamily::Frp,
        P::Montgomery => EccFamily::Montgomery,
    })
}

#[allow(deprecated)]
fn ecc_family_to_proto(family: EccFamily) -> i32 {
    use pk::key_type::EccFamily as P;
    let p = match family {
        EccFamily::SecpK1 => P::SecpK1,
        EccFamily::SecpR1 => P::SecpR1,
        EccFamily::SecpR2 => P::SecpR2,
        EccFamily::SectK1 => P::SectK1,
        EccFamily::SectR1 => P::SectR1,
        EccFamily::SectR2 => P::SectR2,
        EccFamily::BrainpoolPR1 => P::BrainpoolPR1,
        EccFamily::Frp => P::Frp,
        EccFamily::Montgomery => P::Montgomery,
    };
    p as i32
}

// RFC7919 is value 0 on the wire and is a real family, so only unknown numbers are rejected.
fn dh_family_from_proto(value: i32, field: &'static str) -> Result<DhFamily, BodyError> {
    use pk::key_type::DhFamily as P;
    Ok(match P::try_from(value).map_err(|_| invalid(field))? {
        P::Rfc7919 => DhFamily::Rfc7919,
    })
}

fn dh_family_to_proto(family: DhFamily) -> i32 {
    use pk::key_type::DhFamily as P;
    let p = match family {
        DhFamily::Rfc7919 => P::Rfc7919,
    };
    p as i32
}

/// Key types only appear in key attributes, so error paths start with `attributes.key_type`.
impl TryFrom<pk::KeyType> for Type {
    type Error = BodyError;
    fn try_from(key_type: pk::KeyType) -> Result<Self, Self::Error> {
        use pk::key_type::Variant as V;
        Ok(
            match key_type
                .variant
                .ok_or(invalid("attributes.key_type.variant"))?
            {
                V::RawData(_) => Type::RawData,
                V::Hmac(_) => Type::Hmac,
                V::Derive(_) => Type::Derive,
                V::Aes(_) => Type::Aes,
                V::Des(_) => Type::Des,
                V::Camellia(_) => Type::Camellia,
                V::Arc4(_) => Type::Arc4,
                V::Chacha20(_) => Type::Chacha20,
                V::RsaPublicKey(_) => Type::RsaPublicKey,
                V::RsaKeyPair(_) => Type::RsaKeyPair,
                V::EccKeyPair(k) => Type::EccKeyPair {
                    curve_family: ecc_family_from_proto(
                        k.curve_family,
                        "attributes.key_type.ecc_key_pair.curve_family",
                    )?,
                },
                V::EccPublicKey(k) => Type::EccPublicKey {
                    curve_family: ecc_family_from_proto(
                        k.curve_family,
                        "attributes.key_type.ecc_public_key.curve_family",
                    )?,
                },
                V::DhKeyPair(k) => Type::DhKeyPair {
                    group_family: dh_family_from_proto(
                        k.group_family,
                        "attributes.key_type.dh_key_pair.group_family",
                    )?,
                },
                V::DhPublicKey(k) => Type::DhPublicKey {
                    group_family: dh_family_from_proto(
                        k.group_family,
                        "attributes.key_type.dh_public_key.group_family",
                    )?,
                },
            },
        )
    }
}

impl From<Type> for pk::KeyType {
    fn from(key_type: Type) -> Self {
        use pk::key_type::{
            Aes, Arc4, Camellia, Chacha20, Derive, Des, DhKeyPair, DhPublicKey, EccKeyPair,
            EccPublicKey, Hmac, RawData, RsaKeyPair, RsaPublicKey, Variant as V,
        };
        let variant = match key_type {
            Type::RawData => V::RawData(RawData {}),
            Type::Hmac => V::Hmac(Hmac {}),
            Type::Derive => V::Derive(Derive {}),
            Type::Aes => V::Aes(Aes {}),
            Type::Des => V::Des(Des {}),
            Type::Camellia => V::Camellia(Camellia {}),
            Type::Arc4 => V::Arc4(Arc4 {}),
            Type::Chacha20 => V::Chacha20(Chacha20 {}),
            Type::RsaPublicKey => V::RsaPublicKey(RsaPublicKey {}),
            Type::RsaKeyPair => V::RsaKeyPair(RsaKeyPair {}),
            Type::EccKeyPair { curve_family } => V::EccKeyPair(EccKeyPair {
                curve_family: ecc_family_to_proto(curve_family),
            }),
            Type::EccPublicKey { curve_family } => V::EccPublicKey(EccPublicKey {
                curve_family: ecc_family_to_proto(curve_family),
            }),
            Type::DhKeyPair { group_family } => V::DhKeyPair(DhKeyPair {
                group_family: dh_family_to_proto(group_family),
            }),
            Type::DhPublicKey { group_family } => V::DhPublicKey(DhPublicKey {
                group_family: dh_family_to_proto(group_family),
            }),
        };
        Self {
            variant: Some(variant),
        }
    }
}

/// The native flags have private fields, so they are built with the setters. PSA normalisation
/// applies: `set_sign_hash` also sets `sign_message` and `set_verify_hash` also sets
/// `verify_message`, so a wire `sign_hash` (or `verify_hash`) alone comes back with the matching
/// message flag set too. That is accepted: a hash permission implies the message permission.
impl From<pk::UsageFlags> for UsageFlags {
    fn from(flags: pk::UsageFlags) -> Self {
        let mut native = UsageFlags::default();
        if flags.export {
            native.set_export();
        }
        if flags.copy {
            native.set_copy();
        }
        if flags.cache {
            native.set_cache();
        }
        if flags.encrypt {
            native.set_encrypt();
        }
        if flags.decrypt {
            native.set_decrypt();
        }
        if flags.sign_message {
            native.set_sign_message();
        }
        if flags.verify_message {
            native.set_verify_message();
        }
        if flags.sign_hash {
            native.set_sign_hash();
        }
        if flags.verify_hash {
            native.set_verify_hash();
        }
        if flags.derive {
            native.set_derive();
        }
        native
    }
}

impl From<UsageFlags> for pk::UsageFlags {
    fn from(flags: UsageFlags) -> Self {
        Self {
            export: flags.export(),
            copy: flags.copy(),
            cache: flags.cache(),
            encrypt: flags.encrypt(),
            decrypt: flags.decrypt(),
            sign_message: flags.sign_message(),
            verify_message: flags.verify_message(),
            sign_hash: flags.sign_hash(),
            verify_hash: flags.verify_hash(),
            derive: flags.derive(),
        }
    }
}

/// Both sub-messages are mandatory; error paths start with `attributes.key_policy`.
impl TryFrom<pk::KeyPolicy> for Policy {
    type Error = BodyError;
    fn try_from(policy: pk::KeyPolicy) -> Result<Self, Self::Error> {
        let usage_flags = policy
            .key_usage_flags
            .ok_or(invalid("attributes.key_policy.key_usage_flags"))?;
        let algorithm = policy
            .key_algorithm
            .ok_or(invalid("attributes.key_policy.key_algorithm"))?;
        Ok(Policy {
            usage_flags: usage_flags.into(),
            permitted_algorithms: algorithm.try_into()?,
        })
    }
}

/// Fails with [`BodyError::Serialize`] only for a MAC or AEAD length that does not fit in
/// `uint32`.
impl TryFrom<Policy> for pk::KeyPolicy {
    type Error = BodyError;
    fn try_from(policy: Policy) -> Result<Self, Self::Error> {
        Ok(Self {
            key_usage_flags: Some(policy.usage_flags.into()),
            key_algorithm: Some(policy.permitted_algorithms.try_into()?),
        })
    }
}

/// The lifetime is not on the wire: every key is [`Lifetime::Persistent`]. `key_bits` 0 is kept
/// as 0 ("from the data" / "any size"). Error paths start with `attributes`.
impl TryFrom<pk::KeyAttributes> for Attributes {
    type Error = BodyError;
    fn try_from(attributes: pk::KeyAttributes) -> Result<Self, Self::Error> {
        let key_type = attributes.key_type.ok_or(invalid("attributes.key_type"))?;
        let policy = attributes
            .key_policy
            .ok_or(invalid("attributes.key_policy"))?;
        Ok(Attributes {
            lifetime: Lifetime::Persistent,
            key_type: key_type.try_into()?,
            bits: usize::try_from(attributes.key_bits)
                .map_err(|_| invalid("attributes.key_bits"))?,
            policy: policy.try_into()?,
        })
    }
}

/// The lifetime is dropped (it is not on the wire). Fails with [`BodyError::Serialize`] when
/// `bits` does not fit in `uint32`, or for a MAC or AEAD length that does not.
impl TryFrom<Attributes> for pk::KeyAttributes {
    type Error = BodyError;
    fn try_from(attributes: Attributes) -> Result<Self, Self::Error> {
        Ok(Self {
            key_type: Some(attributes.key_type.into()),
            key_bits: u32::try_from(attributes.bits).map_err(|_| BodyError::Serialize)?,
            key_policy: Some(attributes.policy.try_into()?),
        })
    }
}

/// Key attributes as the bytes of their protobuf form (`psa_key_attributes.KeyAttributes`): the
/// form they are kept in at rest (the service's key store rows, and the associated data that
/// binds a wrapped key to its attributes). The same attributes always give the same bytes, so
/// the form can be authenticated.
///
/// # Errors
/// [`BodyError::Serialize`] for attributes that have no protobuf form.
pub fn encode_attributes(attributes: Attributes) -> Result<Vec<u8>, BodyError> {
    Ok(pk::KeyAttributes::try_from(attributes)?.encode_to_vec())
}

/// Key attributes from the bytes [`encode_attributes`] wrote.
///
/// # Errors
/// [`BodyError::Deserialize`] for bytes that are no `KeyAttributes` message, and the
/// conversion's errors ([`BodyError::InvalidEncoding`]) for a message that holds no valid
/// attributes.
pub fn decode_attributes(bytes: &[u8]) -> Result<Attributes, BodyError> {
    let proto = pk::KeyAttributes::decode(bytes).map_err(|_| BodyError::Deserialize)?;
    Attributes::try_from(proto)
}

#[cfg(test)]
mod tests {
    #![allow(deprecated, clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::proto::{
        psa_aead_encrypt, psa_asymmetric_encrypt, psa_cipher_encrypt, psa_generate_key,
        psa_hash_compute, psa_raw_key_agreement, psa_sign_hash,
    };
    use prost::Message;

    // ----- fixtures -----------------------------------------------------------------------

    const HASHES: [Hash; 15] = [
        Hash::Md2,
        Hash::Md4,
        Hash::Md5,
        Hash::Ripemd160,
        Hash::Sha1,
        Hash::Sha224,
        Hash::Sha256,
        Hash::Sha384,
        Hash::Sha512,
        Hash::Sha512_224,
        Hash::Sha512_256,
        Hash::Sha3_224,
        Hash::Sha3_256,
        Hash::Sha3_384,
        Hash::Sha3_512,
    ];

    const CIPHERS: [Cipher; 8] = [
        Cipher::StreamCipher,
        Cipher::Ctr,
        Cipher::Cfb,
        Cipher::Ofb,
        Cipher::Xts,
        Cipher::EcbNoPadding,
        Cipher::CbcNoPadding,
        Cipher::CbcPkcs7,
    ];

    const ECC_FAMILIES: [EccFamily; 9] = [
        EccFamily::SecpK1,
        EccFamily::SecpR1,
        EccFamily::SecpR2,
        EccFamily::SectK1,
        EccFamily::SectR1,
        EccFamily::SectR2,
        EccFamily::BrainpoolPR1,
        EccFamily::Frp,
        EccFamily::Montgomery,
    ];

    const AEADS: [AeadWithDefaultLengthTag; 3] = [
        AeadWithDefaultLengthTag::Ccm,
        AeadWithDefaultLengthTag::Gcm,
        AeadWithDefaultLengthTag::Chacha20Poly1305,
    ];

    const RAWS: [RawKeyAgreement; 2] = [RawKeyAgreement::Ffdh, RawKeyAgreement::Ecdh];

    fn key_types() -> Vec<Type> {
        let mut types = vec![
            Type::RawData,
            Type::Hmac,
            Type::Derive,
            Type::Aes,
            Type::Des,
            Type::Camellia,
            Type::Arc4,
            Type::Chacha20,
            Type::RsaPublicKey,
            Type::RsaKeyPair,
            Type::DhKeyPair {
                group_family: DhFamily::Rfc7919,
            },
            Type::DhPublicKey {
                group_family: DhFamily::Rfc7919,
            },
        ];
        for curve_family in ECC_FAMILIES {
            types.push(Type::EccKeyPair { curve_family });
            types.push(Type::EccPublicKey { curve_family });
        }
        types
    }

    fn sign_hashes() -> Vec<SignHash> {
        let mut all = vec![SignHash::Any];
        all.extend(HASHES.iter().map(|&h| SignHash::Specific(h)));
        all
    }

    fn signatures() -> Vec<AsymmetricSignature> {
        let mut all = vec![
            AsymmetricSignature::RsaPkcs1v15SignRaw,
            AsymmetricSignature::EcdsaAny,
        ];
        for hash_alg in sign_hashes() {
            all.push(AsymmetricSignature::RsaPkcs1v15Sign { hash_alg });
            all.push(AsymmetricSignature::RsaPss { hash_alg });
            all.push(AsymmetricSignature::Ecdsa { hash_alg });
            all.push(AsymmetricSignature::DeterministicEcdsa { hash_alg });
        }
        all
    }

    fn encryptions() -> Vec<AsymmetricEncryption> {
        let mut all = vec![AsymmetricEncryption::RsaPkcs1v15Crypt];
        all.extend(
            HASHES
                .iter()
                .map(|&hash_alg| AsymmetricEncryption::RsaOaep { hash_alg }),
        );
        all
    }

    fn full_length_macs() -> Vec<FullLengthMac> {
        let mut all = vec![FullLengthMac::CbcMac, FullLengthMac::Cmac];
        all.extend(
            HASHES
                .iter()
                .map(|&hash_alg| FullLengthMac::Hmac { hash_alg }),
        );
        all
    }

    fn macs() -> Vec<Mac> {
        let mut all = Vec::new();
        for mac_alg in full_length_macs() {
            all.push(Mac::FullLength(mac_alg));
            for mac_length in [0, 4, 16, 32] {
                all.push(Mac::Truncated {
                    mac_alg,
                    mac_length,
                });
            }
        }
        all
    }

    fn aeads() -> Vec<Aead> {
        let mut all = Vec::new();
        for aead_alg in AEADS {
            all.push(Aead::AeadWithDefaultLengthTag(aead_alg));
            for tag_length in [0, 4, 8, 12, 16] {
                all.push(Aead::AeadWithShortenedTag {
                    aead_alg,
                    tag_length,
                });
            }
        }
        all
    }

    fn kdfs() -> Vec<KeyDerivation> {
        let mut all = Vec::new();
        for hash_alg in HASHES {
            all.push(KeyDerivation::Hkdf { hash_alg });
            all.push(KeyDerivation::Tls12Prf { hash_alg });
            all.push(KeyDerivation::Tls12PskToMs { hash_alg });
        }
        all
    }

    fn key_agreements() -> Vec<KeyAgreement> {
        let mut all = Vec::new();
        for ka_alg in RAWS {
            all.push(KeyAgreement::Raw(ka_alg));
            for kdf_alg in kdfs() {
                all.push(KeyAgreement::WithKeyDerivation { ka_alg, kdf_alg });
            }
        }
        all
    }

    fn algorithms() -> Vec<Algorithm> {
        let mut all = vec![Algorithm::None];
        all.extend(HASHES.map(Algorithm::Hash));
        all.extend(macs().into_iter().map(Algorithm::Mac));
        all.extend(CIPHERS.map(Algorithm::Cipher));
        all.extend(aeads().into_iter().map(Algorithm::Aead));
        all.extend(signatures().into_iter().map(Algorithm::AsymmetricSignature));
        all.extend(
            encryptions()
                .into_iter()
                .map(Algorithm::AsymmetricEncryption),
        );
        all.extend(key_agreements().into_iter().map(Algorithm::KeyAgreement));
        all.extend(kdfs().into_iter().map(Algorithm::KeyDerivation));
        all
    }

    fn attributes(
        key_type: Type,
        bits: usize,
        usage_flags: UsageFlags,
        alg: Algorithm,
    ) -> Attributes {
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type,
            bits,
            policy: Policy {
                usage_flags,
                permitted_algorithms: alg,
            },
        }
    }

    /// A proto value re-parsed from its own encoding, so tests go through the real wire format.
    fn reencode<M: Message + Default>(msg: &M) -> M {
        M::decode(msg.encode_to_vec().as_slice()).unwrap()
    }

    fn bytes(hex_text: &str) -> Vec<u8> {
        hex::decode(hex_text.replace(' ', "")).unwrap()
    }

    fn invalid_path<T: core::fmt::Debug>(result: Result<T, BodyError>) -> &'static str {
        match result {
            Err(BodyError::InvalidEncoding(path)) => path,
            other => panic!("expected InvalidEncoding, got {other:?}"),
        }
    }

    /// Valid ECDSA key attributes as a proto message, to be broken by the rejection tests.
    fn valid_proto_attributes() -> pk::KeyAttributes {
        let mut flags = UsageFlags::default();
        flags.set_sign_hash();
        let alg = Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
            hash_alg: Hash::Sha256.into(),
        });
        let native = attributes(
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            256,
            flags,
            alg,
        );
        native.try_into().unwrap()
    }

    // ----- round trips ----------------------------------------------------------------------

    #[test]
    fn every_key_type_round_trips() {
        for key_type in key_types() {
            let wire = reencode(&pk::KeyType::from(key_type));
            assert_eq!(Type::try_from(wire).unwrap(), key_type);
        }
    }

    #[test]
    fn every_algorithm_round_trips() {
        for alg in algorithms() {
            let wire = reencode(&ProtoAlgorithm::try_from(alg).unwrap());
            assert_eq!(Algorithm::try_from(wire).unwrap(), alg, "{alg:?}");
        }
    }

    #[test]
    fn attributes_at_rest_are_their_protobuf_form() {
        let proto = valid_proto_attributes();
        let native = Attributes::try_from(proto).unwrap();
        let bytes = encode_attributes(native).unwrap();
        assert_eq!(bytes, proto.encode_to_vec());
        assert_eq!(decode_attributes(&bytes).unwrap(), native);
        assert_eq!(decode_attributes(&[0xFF]), Err(BodyError::Deserialize));
        assert_eq!(
            decode_attributes(&[]),
            Err(BodyError::InvalidEncoding("attributes.key_type"))
        );
    }

    #[test]
    fn enum_helpers_round_trip() {
        for (i, hash) in HASHES.into_iter().enumerate() {
            let value = hash_to_proto(hash);
            assert_eq!(value, i32::try_from(i + 1).unwrap());
            assert_eq!(hash_from_proto(value, "alg").unwrap(), hash);
        }
        for (i, cipher) in CIPHERS.into_iter().enumerate() {
            let value = cipher_to_proto(cipher);
            assert_eq!(value, i32::try_from(i + 1).unwrap());
            assert_eq!(cipher_from_proto(value, "alg").unwrap(), cipher);
        }
        for (i, raw) in RAWS.into_iter().enumerate() {
            let value = raw_key_agreement_to_proto(raw);
            assert_eq!(value, i32::try_from(i + 1).unwrap());
            assert_eq!(raw_key_agreement_from_proto(value, "alg").unwrap(), raw);
        }
        for (i, aead) in AEADS.into_iter().enumerate() {
            let value = aead_with_default_length_tag_to_proto(aead);
            assert_eq!(value, i32::try_from(i + 1).unwrap());
            assert_eq!(
                aead_with_default_length_tag_from_proto(value, "alg").unwrap(),
                aead
            );
        }
    }

    #[test]
    fn operation_sub_types_round_trip() {
        for sig in signatures() {
            let wire = reencode(&pa::AsymmetricSignature::from(sig));
            assert_eq!(AsymmetricSignature::try_from(wire).unwrap(), sig);
        }
        for enc in encryptions() {
            let wire = reencode(&pa::AsymmetricEncryption::from(enc));
            assert_eq!(AsymmetricEncryption::try_from(wire).unwrap(), enc);
        }
        for mac in macs() {
            let wire = reencode(&pa::Mac::try_from(mac).unwrap());
            assert_eq!(Mac::try_from(wire).unwrap(), mac);
        }
        for aead in aeads() {
            let wire = reencode(&pa::Aead::try_from(aead).unwrap());
            assert_eq!(Aead::try_from(wire).unwrap(), aead);
        }
        for ka in key_agreements() {
            let wire = reencode(&pa::KeyAgreement::from(ka));
            assert_eq!(KeyAgreement::try_from(wire).unwrap(), ka);
        }
        for kdf in kdfs() {
            let wire = reencode(&pa::KeyDerivation::from(kdf));
            assert_eq!(KeyDerivation::try_from(wire).unwrap(), kdf);
        }
    }

    #[test]
    fn attributes_round_trip_and_lifetime_is_persistent() {
        let mut flags = UsageFlags::default();
        flags.set_export().set_copy().set_cache().set_derive();
        for key_type in key_types() {
            for bits in [0, 1, 256, 521, u32::MAX as usize] {
                let mut native = attributes(key_type, bits, flags, Algorithm::None);
                native.lifetime = Lifetime::Volatile;
                let wire = reencode(&pk::KeyAttributes::try_from(native).unwrap());
                let back = Attributes::try_from(wire).unwrap();
                native.lifetime = Lifetime::Persistent;
                assert_eq!(back, native);
            }
        }
    }

    #[test]
    fn usage_flags_each_bit_and_hash_normalisation() {
        let single = |set: fn(&mut pk::UsageFlags)| {
            let mut flags = pk::UsageFlags::default();
            set(&mut flags);
            flags
        };
        // Flags whose setter touches nothing else survive unchanged.
        let independent: [fn(&mut pk::UsageFlags); 8] = [
            |f| f.export = true,
            |f| f.copy = true,
            |f| f.cache = true,
            |f| f.encrypt = true,
            |f| f.decrypt = true,
            |f| f.sign_message = true,
            |f| f.verify_message = true,
            |f| f.derive = true,
        ];
        for set in independent {
            let wire = single(set);
            assert_eq!(pk::UsageFlags::from(UsageFlags::from(wire)), wire);
        }
        // sign_hash / verify_hash imply the message flags after a native round trip.
        let native = UsageFlags::from(single(|f| f.sign_hash = true));
        assert!(native.sign_hash() && native.sign_message() && !native.verify_message());
        let native = UsageFlags::from(single(|f| f.verify_hash = true));
        assert!(native.verify_hash() && native.verify_message() && !native.sign_message());
        // Absent flags are false.
        assert_eq!(
            UsageFlags::from(pk::UsageFlags::default()),
            UsageFlags::default()
        );
    }

    // ----- docs/protocol.md#example-encodings encodings ---------------------------------------------------------

    const ECC_P256_ATTRIBUTES: &str =
        "0a 04 5a 02 08 02 10 80 02 1a 14 0a 08 30 01 38 01 40 01 48 01 12 08 32 06 22 04 0a 02 10 07";
    const RSA_2048_ATTRIBUTES: &str =
        "0a 02 52 00 10 80 10 1a 0c 0a 04 20 01 28 01 12 04 3a 02 0a 00";

    fn ecc_p256_native() -> Attributes {
        let mut flags = UsageFlags::default();
        flags.set_sign_hash().set_verify_hash();
        attributes(
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            256,
            flags,
            Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(Hash::Sha256),
            }),
        )
    }

    fn rsa_2048_native() -> Attributes {
        let mut flags = UsageFlags::default();
        flags.set_encrypt().set_decrypt();
        attributes(
            Type::RsaKeyPair,
            2048,
            flags,
            Algorithm::AsymmetricEncryption(AsymmetricEncryption::RsaPkcs1v15Crypt),
        )
    }

    #[test]
    fn spec_example_attribute_encodings() {
        for (hex_text, native, len) in [
            (ECC_P256_ATTRIBUTES, ecc_p256_native(), 31),
            (RSA_2048_ATTRIBUTES, rsa_2048_native(), 21),
        ] {
            let wire = bytes(hex_text);
            assert_eq!(wire.len(), len);
            let decoded = pk::KeyAttributes::decode(wire.as_slice()).unwrap();
            assert_eq!(Attributes::try_from(decoded).unwrap(), native);
            let encoded = pk::KeyAttributes::try_from(native).unwrap().encode_to_vec();
            assert_eq!(encoded, wire);
        }
    }

    #[test]
    fn spec_example_generate_key_body() {
        let wire = bytes(&format!(
            "0a 06 6d 79 2d 6b 65 79 12 1f {ECC_P256_ATTRIBUTES}"
        ));
        let op = psa_generate_key::Operation::decode(wire.as_slice()).unwrap();
        assert_eq!(op.key_name, "my-key");
        let native = Attributes::try_from(op.attributes.unwrap()).unwrap();
        assert_eq!(native, ecc_p256_native());
        let encoded = psa_generate_key::Operation {
            key_name: "my-key".into(),
            attributes: Some(native.try_into().unwrap()),
        }
        .encode_to_vec();
        assert_eq!(encoded, wire);
    }

    #[test]
    fn spec_example_sign_hash_body() {
        let hash = [0xabu8; 32];
        let mut wire = bytes("0a 01 6b 12 06 22 04 0a 02 10 07 1a 20");
        wire.extend_from_slice(&hash);
        let op = psa_sign_hash::Operation::decode(wire.as_slice()).unwrap();
        assert_eq!(op.key_name, "k");
        assert_eq!(op.hash, hash);
        let alg = AsymmetricSignature::try_from(op.alg.unwrap()).unwrap();
        assert_eq!(
            alg,
            AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(Hash::Sha256)
            }
        );
        let encoded = psa_sign_hash::Operation {
            key_name: "k".into(),
            alg: Some(alg.into()),
            hash: hash.to_vec(),
        }
        .encode_to_vec();
        assert_eq!(encoded, wire);
    }

    #[test]
    fn spec_example_aead_encoding() {
        let gcm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
        let wire = pa::Aead::decode(bytes("08 02").as_slice()).unwrap();
        assert_eq!(Aead::try_from(wire).unwrap(), gcm);
        assert_eq!(
            pa::Aead::try_from(gcm).unwrap().encode_to_vec(),
            bytes("08 02")
        );
        // A oneof enum member set to 0 is still on the wire and is rejected.
        let none = pa::Aead::decode(bytes("08 00").as_slice()).unwrap();
        assert_eq!(
            invalid_path(Aead::try_from(none)),
            "alg.aead_with_default_length_tag"
        );
    }

    // ----- rejections ---------------------------------------------------------------------------

    #[test]
    fn rejects_missing_attribute_sub_messages() {
        let mut attrs = valid_proto_attributes();
        attrs.key_type = None;
        assert_eq!(
            invalid_path(Attributes::try_from(attrs)),
            "attributes.key_type"
        );

        let mut attrs = valid_proto_attributes();
        attrs.key_type = Some(pk::KeyType::default());
        assert_eq!(
            invalid_path(Attributes::try_from(attrs)),
            "attributes.key_type.variant"
        );

        let mut attrs = valid_proto_attributes();
        attrs.key_policy = None;
        assert_eq!(
            invalid_path(Attributes::try_from(attrs)),
            "attributes.key_policy"
        );

        let mut attrs = valid_proto_attributes();
        if let Some(policy) = attrs.key_policy.as_mut() {
            policy.key_usage_flags = None;
        }
        assert_eq!(
            invalid_path(Attributes::try_from(attrs)),
            "attributes.key_policy.key_usage_flags"
        );

        let mut attrs = valid_proto_attributes();
        if let Some(policy) = attrs.key_policy.as_mut() {
            policy.key_algorithm = None;
        }
        assert_eq!(
            invalid_path(Attributes::try_from(attrs)),
            "attributes.key_policy.key_algorithm"
        );

        let mut attrs = valid_proto_attributes();
        if let Some(policy) = attrs.key_policy.as_mut() {
            policy.key_algorithm = Some(ProtoAlgorithm::default());
        }
        assert_eq!(
            invalid_path(Attributes::try_from(attrs)),
            "attributes.key_policy.key_algorithm.variant"
        );
    }

    #[test]
    fn rejects_bad_curve_and_group_families() {
        use pk::key_type::{DhKeyPair, DhPublicKey, EccKeyPair, EccPublicKey, Variant as V};
        let cases = [
            (
                V::EccKeyPair(EccKeyPair { curve_family: 0 }),
                "attributes.key_type.ecc_key_pair.curve_family",
            ),
            (
                V::EccPublicKey(EccPublicKey { curve_family: 0 }),
                "attributes.key_type.ecc_public_key.curve_family",
            ),
            (
                V::EccKeyPair(EccKeyPair { curve_family: 10 }),
                "attributes.key_type.ecc_key_pair.curve_family",
            ),
            (
                V::EccPublicKey(EccPublicKey { curve_family: -1 }),
                "attributes.key_type.ecc_public_key.curve_family",
            ),
            (
                V::DhKeyPair(DhKeyPair { group_family: 1 }),
                "attributes.key_type.dh_key_pair.group_family",
            ),
            (
                V::DhPublicKey(DhPublicKey { group_family: 7 }),
                "attributes.key_type.dh_public_key.group_family",
            ),
        ];
        for (variant, path) in cases {
            let key_type = pk::KeyType {
                variant: Some(variant),
            };
            assert_eq!(invalid_path(Type::try_from(key_type)), path);
        }
        // DhFamily 0 is RFC 7919, a valid family (and omitted on the wire).
        let dh = pk::KeyType {
            variant: Some(V::DhKeyPair(DhKeyPair { group_family: 0 })),
        };
        assert_eq!(dh.encode_to_vec(), bytes("6a 00"));
        assert_eq!(
            Type::try_from(dh).unwrap(),
            Type::DhKeyPair {
                group_family: DhFamily::Rfc7919
            }
        );
    }

    #[test]
    fn rejects_none_and_unknown_enum_values() {
        for value in [0, 16, -1, i32::MAX] {
            assert_eq!(invalid_path(hash_from_proto(value, "alg")), "alg");
        }
        for value in [0, 9, -3] {
            assert_eq!(invalid_path(cipher_from_proto(value, "alg")), "alg");
        }
        for value in [0, 3] {
            assert_eq!(
                invalid_path(raw_key_agreement_from_proto(value, "alg")),
                "alg"
            );
        }
        for value in [0, 4] {
            assert_eq!(
                invalid_path(aead_with_default_length_tag_from_proto(value, "alg")),
                "alg"
            );
        }
    }

    /// Every `Algorithm` variant with a zero, an unknown or a missing part, and the field path the
    /// error must name (in a key policy).
    #[test]
    fn rejects_bad_policy_algorithms() {
        use pa::Variant as V;
        const P: &str = "attributes.key_policy.key_algorithm";
        let full = |variant| pa::mac::FullLength {
            variant: Some(variant),
        };
        let hmac =
            |hash_alg| pa::mac::full_length::Variant::Hmac(pa::mac::full_length::Hmac { hash_alg });
        let sign_hash = |specific| {
            Some(pa::asymmetric_signature::SignHash {
                variant: Some(pa::asymmetric_signature::sign_hash::Variant::Specific(
                    specific,
                )),
            })
        };
        let hkdf = |hash_alg| pa::KeyDerivation {
            variant: Some(pa::key_derivation::Variant::Hkdf(
                pa::key_derivation::Hkdf { hash_alg },
            )),
        };
        let cases: Vec<(V, String)> = vec![
            (V::Hash(0), format!("{P}.hash")),
            (V::Hash(99), format!("{P}.hash")),
            (V::Cipher(0), format!("{P}.cipher")),
            (V::Cipher(42), format!("{P}.cipher")),
            (V::Mac(pa::Mac::default()), format!("{P}.mac.variant")),
            (
                V::Mac(pa::Mac {
                    variant: Some(pa::mac::Variant::FullLength(pa::mac::FullLength::default())),
                }),
                format!("{P}.mac.full_length.variant"),
            ),
            (
                V::Mac(pa::Mac {
                    variant: Some(pa::mac::Variant::FullLength(full(hmac(0)))),
                }),
                format!("{P}.mac.full_length.hmac.hash_alg"),
            ),
            (
                V::Mac(pa::Mac {
                    variant: Some(pa::mac::Variant::Truncated(pa::mac::Truncated {
                        mac_alg: None,
                        mac_length: 8,
                    })),
                }),
                format!("{P}.mac.truncated.mac_alg"),
            ),
            (
                V::Mac(pa::Mac {
                    variant: Some(pa::mac::Variant::Truncated(pa::mac::Truncated {
                        mac_alg: Some(full(hmac(77))),
                        mac_length: 8,
                    })),
                }),
                format!("{P}.mac.truncated.mac_alg.hmac.hash_alg"),
            ),
            (V::Aead(pa::Aead::default()), format!("{P}.aead.variant")),
            (
                V::Aead(pa::Aead {
                    variant: Some(pa::aead::Variant::AeadWithShortenedTag(
                        pa::aead::AeadWithShortenedTag {
                            aead_alg: 0,
                            tag_length: 8,
                        },
                    )),
                }),
                format!("{P}.aead.aead_with_shortened_tag.aead_alg"),
            ),
            (
                V::AsymmetricSignature(pa::AsymmetricSignature::default()),
                format!("{P}.asymmetric_signature.variant"),
            ),
            (
                V::AsymmetricSignature(pa::AsymmetricSignature {
                    variant: Some(pa::asymmetric_signature::Variant::RsaPss(
                        pa::asymmetric_signature::RsaPss { hash_alg: None },
                    )),
                }),
                format!("{P}.asymmetric_signature.rsa_pss.hash_alg"),
            ),
            (
                V::AsymmetricSignature(pa::AsymmetricSignature {
                    variant: Some(pa::asymmetric_signature::Variant::Ecdsa(
                        pa::asymmetric_signature::Ecdsa {
                            hash_alg: Some(pa::asymmetric_signature::SignHash::default()),
                        },
                    )),
                }),
                format!("{P}.asymmetric_signature.ecdsa.hash_alg.variant"),
            ),
            (
                V::AsymmetricSignature(pa::AsymmetricSignature {
                    variant: Some(pa::asymmetric_signature::Variant::DeterministicEcdsa(
                        pa::asymmetric_signature::DeterministicEcdsa {
                            hash_alg: sign_hash(0),
                        },
                    )),
                }),
                format!("{P}.asymmetric_signature.deterministic_ecdsa.hash_alg.specific"),
            ),
            (
                V::AsymmetricSignature(pa::AsymmetricSignature {
                    variant: Some(pa::asymmetric_signature::Variant::RsaPkcs1v15Sign(
                        pa::asymmetric_signature::RsaPkcs1v15Sign {
                            hash_alg: sign_hash(16),
                        },
                    )),
                }),
                format!("{P}.asymmetric_signature.rsa_pkcs1v15_sign.hash_alg.specific"),
            ),
            (
                V::AsymmetricEncryption(pa::AsymmetricEncryption::default()),
                format!("{P}.asymmetric_encryption.variant"),
            ),
            (
                V::AsymmetricEncryption(pa::AsymmetricEncryption {
                    variant: Some(pa::asymmetric_encryption::Variant::RsaOaep(
                        pa::asymmetric_encryption::RsaOaep { hash_alg: 0 },
                    )),
                }),
                format!("{P}.asymmetric_encryption.rsa_oaep.hash_alg"),
            ),
            (
                V::KeyAgreement(pa::KeyAgreement::default()),
                format!("{P}.key_agreement.variant"),
            ),
            (
                V::KeyAgreement(pa::KeyAgreement {
                    variant: Some(pa::key_agreement::Variant::Raw(0)),
                }),
                format!("{P}.key_agreement.raw"),
            ),
            (
                V::KeyAgreement(pa::KeyAgreement {
                    variant: Some(pa::key_agreement::Variant::WithKeyDerivation(
                        pa::key_agreement::WithKeyDerivation {
                            ka_alg: 2,
                            kdf_alg: None,
                        },
                    )),
                }),
                format!("{P}.key_agreement.with_key_derivation.kdf_alg"),
            ),
            (
                V::KeyAgreement(pa::KeyAgreement {
                    variant: Some(pa::key_agreement::Variant::WithKeyDerivation(
                        pa::key_agreement::WithKeyDerivation {
                            ka_alg: 0,
                            kdf_alg: Some(hkdf(7)),
                        },
                    )),
                }),
                format!("{P}.key_agreement.with_key_derivation.ka_alg"),
            ),
            (
                V::KeyAgreement(pa::KeyAgreement {
                    variant: Some(pa::key_agreement::Variant::WithKeyDerivation(
                        pa::key_agreement::WithKeyDerivation {
                            ka_alg: 2,
                            kdf_alg: Some(hkdf(0)),
                        },
                    )),
                }),
                format!("{P}.key_agreement.with_key_derivation.kdf_alg.hkdf.hash_alg"),
            ),
            (
                V::KeyDerivation(pa::KeyDerivation::default()),
                format!("{P}.key_derivation.variant"),
            ),
            (
                V::KeyDerivation(pa::KeyDerivation {
                    variant: Some(pa::key_derivation::Variant::Tls12Prf(
                        pa::key_derivation::Tls12Prf { hash_alg: 0 },
                    )),
                }),
                format!("{P}.key_derivation.tls12_prf.hash_alg"),
            ),
            (
                V::KeyDerivation(pa::KeyDerivation {
                    variant: Some(pa::key_derivation::Variant::Tls12PskToMs(
                        pa::key_derivation::Tls12PskToMs { hash_alg: 20 },
                    )),
                }),
                format!("{P}.key_derivation.tls12_psk_to_ms.hash_alg"),
            ),
        ];
        for (variant, path) in cases {
            let alg = ProtoAlgorithm {
                variant: Some(variant),
            };
            // Also through the whole attributes, after a trip over the wire.
            let mut attrs = valid_proto_attributes();
            if let Some(policy) = attrs.key_policy.as_mut() {
                policy.key_algorithm = Some(alg);
            }
            assert_eq!(invalid_path(Algorithm::try_from(alg)), path);
            assert_eq!(invalid_path(Attributes::try_from(reencode(&attrs))), path);
        }
    }

    #[test]
    fn operation_alg_errors_name_the_alg_field() {
        assert_eq!(
            invalid_path(AsymmetricSignature::try_from(
                pa::AsymmetricSignature::default()
            )),
            "alg.variant"
        );
        let ecdsa = pa::AsymmetricSignature {
            variant: Some(pa::asymmetric_signature::Variant::Ecdsa(
                pa::asymmetric_signature::Ecdsa { hash_alg: None },
            )),
        };
        assert_eq!(
            invalid_path(AsymmetricSignature::try_from(ecdsa)),
            "alg.ecdsa.hash_alg"
        );
        assert_eq!(
            invalid_path(AsymmetricEncryption::try_from(
                pa::AsymmetricEncryption::default()
            )),
            "alg.variant"
        );
        assert_eq!(
            invalid_path(Aead::try_from(pa::Aead::default())),
            "alg.variant"
        );
        assert_eq!(
            invalid_path(Mac::try_from(pa::Mac::default())),
            "alg.variant"
        );
        let truncated = pa::Mac {
            variant: Some(pa::mac::Variant::Truncated(pa::mac::Truncated::default())),
        };
        assert_eq!(
            invalid_path(Mac::try_from(truncated)),
            "alg.truncated.mac_alg"
        );
        assert_eq!(
            invalid_path(KeyAgreement::try_from(pa::KeyAgreement::default())),
            "alg.variant"
        );
        assert_eq!(
            invalid_path(KeyDerivation::try_from(pa::KeyDerivation::default())),
            "alg.variant"
        );
    }

    #[test]
    fn wildcard_sign_hash_is_an_encoding_not_an_error() {
        let any = AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Any,
        };
        let wire = pa::AsymmetricSignature::from(any);
        // ecdsa(4) { hash_alg(1) { any(1) {} } }
        assert_eq!(wire.encode_to_vec(), bytes("22 04 0a 02 0a 00"));
        assert_eq!(AsymmetricSignature::try_from(wire).unwrap(), any);
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn unrepresentable_sizes_fail_to_serialize() {
        let too_big = u32::MAX as usize + 1;
        let native = attributes(Type::Aes, too_big, UsageFlags::default(), Algorithm::None);
        assert_eq!(
            pk::KeyAttributes::try_from(native),
            Err(BodyError::Serialize)
        );
        let mac = Mac::Truncated {
            mac_alg: FullLengthMac::Cmac,
            mac_length: too_big,
        };
        assert_eq!(pa::Mac::try_from(mac), Err(BodyError::Serialize));
        let aead = Aead::AeadWithShortenedTag {
            aead_alg: AeadWithDefaultLengthTag::Ccm,
            tag_length: too_big,
        };
        assert_eq!(pa::Aead::try_from(aead), Err(BodyError::Serialize));
        let native = attributes(Type::Aes, 128, UsageFlags::default(), Algorithm::Aead(aead));
        assert_eq!(
            pk::KeyAttributes::try_from(native),
            Err(BodyError::Serialize)
        );
    }

    // ----- cross-check against the reference implementation ------------------------------------

    mod reference {
        use super::*;
        use parsec_interface::operations::{self as ops, Convert, NativeOperation};
        use parsec_interface::operations_protobuf::ProtobufConverter;

        /// The body parsec-interface produces for `op`.
        fn body(op: NativeOperation) -> Vec<u8> {
            ProtobufConverter
                .operation_to_body(op)
                .expect("reference encoding")
                .bytes()
                .to_vec()
        }

        fn generate_key_body(attributes: Attributes) -> Vec<u8> {
            body(NativeOperation::PsaGenerateKey(
                ops::psa_generate_key::Operation {
                    key_name: "key".into(),
                    attributes,
                },
            ))
        }

        fn check_attributes(native: Attributes) {
            let reference = generate_key_body(native);
            let ours = psa_generate_key::Operation {
                key_name: "key".into(),
                attributes: Some(native.try_into().unwrap()),
            };
            assert_eq!(ours.encode_to_vec(), reference, "{native:?}");
            let decoded = psa_generate_key::Operation::decode(reference.as_slice()).unwrap();
            assert_eq!(
                Attributes::try_from(decoded.attributes.unwrap()).unwrap(),
                native
            );
        }

        #[test]
        fn attributes_match_reference_bytes() {
            let mut flags = UsageFlags::default();
            flags.set_sign_hash().set_verify_hash().set_export();
            for key_type in key_types() {
                check_attributes(attributes(key_type, 256, flags, Algorithm::None));
            }
            for alg in algorithms() {
                check_attributes(attributes(Type::RawData, 0, UsageFlags::default(), alg));
            }
        }

        #[test]
        fn operation_algorithms_match_reference_bytes() {
            for alg in signatures() {
                let reference = body(NativeOperation::PsaSignHash(
                    ops::psa_sign_hash::Operation {
                        key_name: "k".into(),
                        alg,
                        hash: vec![1, 2, 3].into(),
                    },
                ));
                let ours = psa_sign_hash::Operation {
                    key_name: "k".into(),
                    alg: Some(alg.into()),
                    hash: vec![1, 2, 3],
                };
                assert_eq!(ours.encode_to_vec(), reference);
            }
            for alg in encryptions() {
                let reference = body(NativeOperation::PsaAsymmetricEncrypt(
                    ops::psa_asymmetric_encrypt::Operation {
                        key_name: "k".into(),
                        alg,
                        plaintext: vec![9].into(),
                        salt: Some(vec![8].into()),
                    },
                ));
                let ours = psa_asymmetric_encrypt::Operation {
                    key_name: "k".into(),
                    alg: Some(alg.into()),
                    plaintext: vec![9],
                    salt: vec![8],
                };
                assert_eq!(ours.encode_to_vec(), reference);
            }
            for alg in aeads() {
                let reference = body(NativeOperation::PsaAeadEncrypt(
                    ops::psa_aead_encrypt::Operation {
                        key_name: "k".into(),
                        alg,
                        nonce: vec![1].into(),
                        additional_data: vec![2].into(),
                        plaintext: vec![3].into(),
                    },
                ));
                let ours = psa_aead_encrypt::Operation {
                    key_name: "k".into(),
                    alg: Some(alg.try_into().unwrap()),
                    nonce: vec![1],
                    additional_data: vec![2],
                    plaintext: vec![3],
                };
                assert_eq!(ours.encode_to_vec(), reference);
            }
            for alg in HASHES {
                let reference = body(NativeOperation::PsaHashCompute(
                    ops::psa_hash_compute::Operation {
                        alg,
                        input: vec![5].into(),
                    },
                ));
                let ours = psa_hash_compute::Operation {
                    alg: hash_to_proto(alg),
                    input: vec![5],
                };
                assert_eq!(ours.encode_to_vec(), reference);
            }
            for alg in CIPHERS {
                let reference = body(NativeOperation::PsaCipherEncrypt(
                    ops::psa_cipher_encrypt::Operation {
                        key_name: "k".into(),
                        alg,
                        plaintext: vec![6].into(),
                    },
                ));
                let ours = psa_cipher_encrypt::Operation {
                    key_name: "k".into(),
                    alg: cipher_to_proto(alg),
                    plaintext: vec![6],
                };
                assert_eq!(ours.encode_to_vec(), reference);
            }
            for alg in RAWS {
                let reference = body(NativeOperation::PsaRawKeyAgreement(
                    ops::psa_raw_key_agreement::Operation {
                        alg,
                        private_key_name: "k".into(),
                        peer_key: vec![4].into(),
                    },
                ));
                let ours = psa_raw_key_agreement::Operation {
                    alg: raw_key_agreement_to_proto(alg),
                    private_key_name: "k".into(),
                    peer_key: vec![4],
                };
                assert_eq!(ours.encode_to_vec(), reference);
            }
        }

        proptest::proptest! {
            /// Random flags, sizes, types and policies encode exactly as the reference does.
            #[test]
            fn random_attributes_match_reference(
                type_index in 0usize..64,
                alg_index in 0usize..4096,
                bits in proptest::prelude::any::<u32>(),
                flag_bits in 0u16..1024,
            ) {
                let types = key_types();
                let algs = algorithms();
                let wire_flags = pk::UsageFlags {
                    export: flag_bits & 1 != 0,
                    copy: flag_bits & 2 != 0,
                    cache: flag_bits & 4 != 0,
                    encrypt: flag_bits & 8 != 0,
                    decrypt: flag_bits & 16 != 0,
                    sign_message: flag_bits & 32 != 0,
                    verify_message: flag_bits & 64 != 0,
                    sign_hash: flag_bits & 128 != 0,
                    verify_hash: flag_bits & 256 != 0,
                    derive: flag_bits & 512 != 0,
                };
                let native = attributes(
                    types[type_index % types.len()],
                    bits as usize,
                    wire_flags.into(),
                    algs[alg_index % algs.len()],
                );
                check_attributes(native);
            }
        }
    }
}
