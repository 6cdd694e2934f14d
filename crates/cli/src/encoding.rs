//! Key and signature formats: PSA export formats to SubjectPublicKeyInfo and PEM, ECDSA
//! `r ‖ s` to DER and back, the curve and algorithm identifiers of X.509.

use bulwark_client::{psa::key::Type, EccFamily};
use der::asn1::{AnyRef, BitString, ObjectIdentifier as Oid, UintRef};
use der::{Any, Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::error::Failure;

/// rsaEncryption (PKCS #1).
pub(crate) const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey (RFC 5480).
pub(crate) const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");

/// The named-curve OID of an ECC key of `family` with `bits` bits, as parsec-tool knows them.
pub(crate) fn curve_oid(family: EccFamily, bits: usize) -> Option<Oid> {
    let text = match (family, bits) {
        (EccFamily::SecpR1, 192) => "1.2.840.10045.3.1.1",
        (EccFamily::SecpR1, 224) => "1.3.132.0.33",
        (EccFamily::SecpR1, 256) => "1.2.840.10045.3.1.7",
        (EccFamily::SecpR1, 384) => "1.3.132.0.34",
        (EccFamily::SecpR1, 521) => "1.3.132.0.35",
        (EccFamily::SecpK1, 192) => "1.3.132.0.31",
        // secp224k1 is 225 bits in the book, 224 in psa-crypto.
        (EccFamily::SecpK1, 224 | 225) => "1.3.132.0.32",
        (EccFamily::SecpK1, 256) => "1.3.132.0.10",
        (EccFamily::SectK1, 233) => "1.3.132.0.26",
        (EccFamily::SectK1, 283) => "1.3.132.0.16",
        (EccFamily::SectK1, 409) => "1.3.132.0.36",
        (EccFamily::SectK1, 571) => "1.3.132.0.38",
        (EccFamily::SectR1, 233) => "1.3.132.0.27",
        (EccFamily::SectR1, 283) => "1.3.132.0.17",
        (EccFamily::SectR1, 409) => "1.3.132.0.37",
        (EccFamily::SectR1, 571) => "1.3.132.0.39",
        _ => return None,
    };
    Oid::new(text).ok()
}

fn der_failure(what: &str, e: der::Error) -> Failure {
    Failure::generic(format!("cannot encode {what}: {e}"))
}

/// The DER SubjectPublicKeyInfo of a PSA public key export (`RSAPublicKey` for RSA, the
/// uncompressed point for ECC) of a key of type `key_type` with `bits` bits.
pub(crate) fn spki_der(
    key_type: Type,
    bits: usize,
    psa_public_key: &[u8],
) -> Result<Vec<u8>, Failure> {
    let algorithm = match key_type {
        Type::RsaKeyPair | Type::RsaPublicKey => {
            // Checks the export really is an RSAPublicKey before wrapping it.
            RsaPublicKey::from_der(psa_public_key).map_err(|e| {
                Failure::generic(format!(
                    "the service's RSA public key is not a DER RSAPublicKey ({e})"
                ))
            })?;
            AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(Any::from(AnyRef::NULL)),
            }
        }
        Type::EccKeyPair { curve_family } | Type::EccPublicKey { curve_family } => {
            let curve = curve_oid(curve_family, bits).ok_or_else(|| {
                Failure::not_supported(format!(
                    "unsupported number of bits {bits} for Ecc family \"{curve_family}\": no \
                     X.509 curve identifier is known for it"
                ))
            })?;
            AlgorithmIdentifierOwned {
                oid: EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&curve).map_err(|e| der_failure("a curve", e))?),
            }
        }
        other => {
            return Err(Failure::not_supported(format!(
                "unsupported type of key ({other:?}): only RSA and ECC public keys have a PEM \
                 form"
            )))
        }
    };
    let spki = SubjectPublicKeyInfoOwned {
        algorithm,
        subject_public_key: BitString::from_bytes(psa_public_key)
            .map_err(|e| der_failure("a public key", e))?,
    };
    spki.to_der()
        .map_err(|e| der_failure("a SubjectPublicKeyInfo", e))
}

/// PEM with LF line ends and 64-character lines, as parsec-tool writes it.
pub(crate) fn pem(tag: &str, contents: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, contents),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
#[derive(Debug, Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }`.
#[derive(Debug, Sequence)]
struct EcdsaSigValue<'a> {
    r: UintRef<'a>,
    s: UintRef<'a>,
}

/// A PSA ECDSA signature (`r ‖ s`) as a DER `Ecdsa-Sig-Value`.
pub(crate) fn ecdsa_to_der(raw: &[u8]) -> Result<Vec<u8>, Failure> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(Failure::generic(format!(
            "the service's ECDSA signature has an odd length ({} bytes)",
            raw.len()
        )));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let value = EcdsaSigValue {
        r: UintRef::new(r).map_err(|e| der_failure("a signature", e))?,
        s: UintRef::new(s).map_err(|e| der_failure("a signature", e))?,
    };
    value.to_der().map_err(|e| der_failure("a signature", e))
}

/// A DER `Ecdsa-Sig-Value` as the PSA `r ‖ s`, each `scalar_len` bytes.
pub(crate) fn ecdsa_from_der(der: &[u8], scalar_len: usize) -> Result<Vec<u8>, Failure> {
    let invalid = |why: String| {
        Failure::new(
            crate::error::Exit::InvalidSignature,
            format!("the signature is not a DER ECDSA signature for this key: {why}"),
        )
    };
    let value = EcdsaSigValue::from_der(der).map_err(|e| invalid(e.to_string()))?;
    let mut raw = vec![0u8; scalar_len * 2];
    for (i, part) in [value.r.as_bytes(), value.s.as_bytes()].iter().enumerate() {
        if part.len() > scalar_len {
            return Err(invalid(format!(
                "an integer of {} bytes for a {scalar_len}-byte curve",
                part.len()
            )));
        }
        let end = scalar_len * (i + 1);
        raw[end - part.len()..end].copy_from_slice(part);
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signatures_round_trip_through_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero in DER
        raw[31] = 1;
        raw[40] = 7; // s has leading zeros to strip
        let der = ecdsa_to_der(&raw).expect("encodes");
        assert_eq!(&der[..4], &[0x30, der.len() as u8 - 2, 0x02, 33]);
        assert_eq!(ecdsa_from_der(&der, 32).expect("decodes"), raw);
        assert!(ecdsa_from_der(&der, 16).is_err());
        assert!(ecdsa_from_der(b"junk", 32).is_err());
        assert!(ecdsa_to_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn p256_public_keys_get_the_named_curve() {
        let mut point = vec![4u8];
        point.extend_from_slice(&[1u8; 64]);
        let der = spki_der(
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            256,
            &point,
        )
        .expect("encodes");
        // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING }
        let expected_prefix = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        assert_eq!(&der[..expected_prefix.len()], &expected_prefix);
        assert!(spki_der(
            Type::EccKeyPair {
                curve_family: EccFamily::SecpR1
            },
            255,
            &point
        )
        .is_err());
        assert!(spki_der(Type::Aes, 128, &[0; 16]).is_err());
        assert!(spki_der(Type::RsaKeyPair, 2048, b"not der").is_err());
    }

    #[test]
    fn every_curve_parsec_tool_knows_has_an_oid() {
        for (family, bits) in [
            (EccFamily::SecpR1, [192, 224, 256, 384, 521].as_slice()),
            (EccFamily::SecpK1, &[192, 224, 256]),
            (EccFamily::SectK1, &[233, 283, 409, 571]),
            (EccFamily::SectR1, &[233, 283, 409, 571]),
        ] {
            for &b in bits {
                assert!(curve_oid(family, b).is_some(), "{family:?} {b}");
            }
        }
        assert!(curve_oid(EccFamily::BrainpoolPR1, 256).is_none());
    }
}
