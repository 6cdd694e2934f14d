//! PsaGenerateKey (0x0002): create a new random key under a name, with the given attributes.

use psa_crypto::types::algorithm::{
    Algorithm, AsymmetricEncryption, AsymmetricSignature, FullLengthMac, Hash, KeyAgreement,
    KeyDerivation, Mac, SignHash,
};
use psa_crypto::types::key::{Attributes, EccFamily, Type};

use crate::error::BodyError;
use crate::proto::psa_generate_key as proto;

/// Generate a key named `key_name` with `attributes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the new key, in the caller's namespace (any UTF-8, empty allowed).
    pub key_name: String,
    /// Type, size and policy of the new key.
    pub attributes: Attributes,
}

/// PsaGenerateKey returns nothing; the status says it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

/// Whether `attributes` name a primitive the PSA Crypto API 1.0 deprecates (docs/protocol.md#deprecated-primitives).
///
/// The service refuses such keys in PsaGenerateKey unless deprecated primitives are allowed by
/// configuration, and only logs a warning for PsaImportKey. A key is deprecated when:
/// - its policy algorithm uses MD2, MD4, MD5 or SHA-1 anywhere (a bare hash, HMAC, a signature
///   scheme naming that specific hash, OAEP, a key derivation, or a key agreement through such a
///   derivation; a signature policy with the `Any` wildcard is not deprecated);
/// - its type is DES or ARC4 (any size);
/// - it is an ECC public key on SECP-R2 or SECT-R2 (any size), on SECT-K1 or SECT-R1 with 163
///   bits, or on Brainpool P-R1 with 160 bits.
#[must_use]
pub fn uses_deprecated_primitive(attributes: &Attributes) -> bool {
    is_key_type_deprecated(attributes.key_type, attributes.bits)
        || is_algorithm_deprecated(attributes.policy.permitted_algorithms)
}

#[allow(deprecated)]
fn is_hash_deprecated(hash: Hash) -> bool {
    matches!(hash, Hash::Md2 | Hash::Md4 | Hash::Md5 | Hash::Sha1)
}

fn is_full_length_mac_deprecated(mac: FullLengthMac) -> bool {
    match mac {
        FullLengthMac::Hmac { hash_alg } => is_hash_deprecated(hash_alg),
        FullLengthMac::CbcMac | FullLengthMac::Cmac => false,
    }
}

fn is_key_derivation_deprecated(kdf: KeyDerivation) -> bool {
    match kdf {
        KeyDerivation::Hkdf { hash_alg }
        | KeyDerivation::Tls12Prf { hash_alg }
        | KeyDerivation::Tls12PskToMs { hash_alg } => is_hash_deprecated(hash_alg),
    }
}

fn is_algorithm_deprecated(alg: Algorithm) -> bool {
    // Exhaustive matches: a new variant in psa-crypto must be classified here by hand.
    match alg {
        Algorithm::None | Algorithm::Cipher(_) | Algorithm::Aead(_) => false,
        Algorithm::Hash(hash) => is_hash_deprecated(hash),
        Algorithm::Mac(Mac::FullLength(mac) | Mac::Truncated { mac_alg: mac, .. }) => {
            is_full_length_mac_deprecated(mac)
        }
        Algorithm::AsymmetricSignature(signature) => match signature {
            AsymmetricSignature::RsaPkcs1v15Sign { hash_alg }
            | AsymmetricSignature::RsaPss { hash_alg }
            | AsymmetricSignature::Ecdsa { hash_alg }
            | AsymmetricSignature::DeterministicEcdsa { hash_alg } => match hash_alg {
                SignHash::Specific(hash) => is_hash_deprecated(hash),
                // A wildcard names no hash, so it cannot name a weak one.
                SignHash::Any => false,
            },
            AsymmetricSignature::RsaPkcs1v15SignRaw | AsymmetricSignature::EcdsaAny => false,
        },
        Algorithm::AsymmetricEncryption(encryption) => match encryption {
            AsymmetricEncryption::RsaOaep { hash_alg } => is_hash_deprecated(hash_alg),
            AsymmetricEncryption::RsaPkcs1v15Crypt => false,
        },
        Algorithm::KeyAgreement(agreement) => match agreement {
            KeyAgreement::WithKeyDerivation { kdf_alg, .. } => {
                is_key_derivation_deprecated(kdf_alg)
            }
            KeyAgreement::Raw(_) => false,
        },
        Algorithm::KeyDerivation(kdf) => is_key_derivation_deprecated(kdf),
    }
}

#[allow(deprecated)]
fn is_key_type_deprecated(key_type: Type, bits: usize) -> bool {
    match key_type {
        Type::Des | Type::Arc4 => true,
        // Quirk kept on purpose: the reference service's list only names `EccPublicKey`, so a
        // key pair on the very same weak curves (say sect163k1) is *not* flagged. Bulwark must
        // give the same answers, so `EccKeyPair` falls through to `false` below.
        Type::EccPublicKey { curve_family } => match curve_family {
            EccFamily::SecpR2 | EccFamily::SectR2 => true,
            EccFamily::SectK1 | EccFamily::SectR1 => bits == 163,
            EccFamily::BrainpoolPR1 => bits == 160,
            EccFamily::SecpK1 | EccFamily::SecpR1 | EccFamily::Frp | EccFamily::Montgomery => false,
        },
        Type::RawData
        | Type::Hmac
        | Type::Derive
        | Type::Aes
        | Type::Camellia
        | Type::Chacha20
        | Type::RsaPublicKey
        | Type::RsaKeyPair
        | Type::EccKeyPair { .. }
        | Type::DhKeyPair { .. }
        | Type::DhPublicKey { .. } => false,
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            key_name: op.key_name,
            attributes: op
                .attributes
                .ok_or(BodyError::InvalidEncoding("attributes"))?
                .try_into()?,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            attributes: Some(request.attributes.try_into()?),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(_: proto::Result) -> Result<Self, BodyError> {
        Ok(Response)
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(_: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {})
    }
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use psa_crypto::types::algorithm::{Aead, AeadWithDefaultLengthTag, Cipher, RawKeyAgreement};
    use psa_crypto::types::key::{DhFamily, Lifetime, Policy, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaGenerateKey,
    };

    /// Request line of `testdata/vectors/direct-05-generate-ecc-p256-key.hex`.
    const CAPTURED_REQUEST: &str = "10a7c05e1e00010000000100000000000000000000012d0000000a0002000000000000000a0a766563746f722d6b6579121f0a045a0208021080021a140a0830013801400148011208320622040a021007766563746f722d617070";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    fn attributes(key_type: Type, bits: usize, alg: Algorithm) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_sign_hash().set_verify_hash();
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

    fn ecdsa(hash_alg: SignHash) -> Algorithm {
        Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa { hash_alg })
    }

    fn p256_ecdsa_sha256() -> Attributes {
        let curve_family = EccFamily::SecpR1;
        attributes(
            Type::EccKeyPair { curve_family },
            256,
            ecdsa(Hash::Sha256.into()),
        )
    }

    /// Whether a key of a type that is never deprecated, with policy `alg`, is flagged.
    fn alg_flagged(alg: Algorithm) -> bool {
        uses_deprecated_primitive(&attributes(Type::RawData, 0, alg))
    }

    /// Whether a key of `key_type` and `bits`, with no policy algorithm, is flagged.
    fn key_flagged(key_type: Type, bits: usize) -> bool {
        uses_deprecated_primitive(&attributes(key_type, bits, Algorithm::None))
    }

    const WEAK: [Hash; 4] = [Hash::Md2, Hash::Md4, Hash::Md5, Hash::Sha1];
    const STRONG: [Hash; 11] = [
        Hash::Ripemd160,
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

    /// Every algorithm shape that names a hash, built around `hash`.
    fn algorithms_using(hash: Hash) -> Vec<Algorithm> {
        let hmac = FullLengthMac::Hmac { hash_alg: hash };
        let kdfs = [
            KeyDerivation::Hkdf { hash_alg: hash },
            KeyDerivation::Tls12Prf { hash_alg: hash },
            KeyDerivation::Tls12PskToMs { hash_alg: hash },
        ];
        let specific = SignHash::Specific(hash);
        let mut algs = vec![
            Algorithm::Hash(hash),
            Algorithm::Mac(Mac::FullLength(hmac)),
            Algorithm::Mac(Mac::Truncated {
                mac_alg: hmac,
                mac_length: 10,
            }),
            Algorithm::AsymmetricSignature(AsymmetricSignature::RsaPkcs1v15Sign {
                hash_alg: specific,
            }),
            Algorithm::AsymmetricSignature(AsymmetricSignature::RsaPss { hash_alg: specific }),
            ecdsa(specific),
            Algorithm::AsymmetricSignature(AsymmetricSignature::DeterministicEcdsa {
                hash_alg: specific,
            }),
            Algorithm::AsymmetricEncryption(AsymmetricEncryption::RsaOaep { hash_alg: hash }),
        ];
        for kdf in kdfs {
            algs.push(Algorithm::KeyDerivation(kdf));
            for ka_alg in [RawKeyAgreement::Ecdh, RawKeyAgreement::Ffdh] {
                algs.push(Algorithm::KeyAgreement(KeyAgreement::WithKeyDerivation {
                    ka_alg,
                    kdf_alg: kdf,
                }));
            }
        }
        algs
    }

    #[test]
    fn captured_request_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_REQUEST);
        let request = decode_request::<PsaGenerateKey>(&body).unwrap();
        assert_eq!(request.key_name, "vector-key");
        assert_eq!(request.attributes, p256_ecdsa_sha256());
        assert!(!uses_deprecated_primitive(&request.attributes));
        assert_eq!(
            encode_request::<PsaGenerateKey>(request)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn encodes_as_psa_types_example() {
        let request = Request {
            key_name: "my-key".into(),
            attributes: p256_ecdsa_sha256(),
        };
        let body = encode_request::<PsaGenerateKey>(request).unwrap();
        let expected = hex::decode(concat!(
            "0a066d792d6b6579121f",
            "0a045a0208021080021a140a0830013801400148011208320622040a021007"
        ))
        .unwrap();
        assert_eq!(body.as_slice(), expected.as_slice());
    }

    #[test]
    fn missing_attributes_are_invalid_encoding() {
        assert_eq!(
            decode_request::<PsaGenerateKey>(b"\x0a\x01k"),
            Err(BodyError::InvalidEncoding("attributes"))
        );
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaGenerateKey>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaGenerateKey>(&[]), Ok(Response));
    }

    #[test]
    fn weak_hashes_are_deprecated_in_every_algorithm_that_names_them() {
        for hash in WEAK {
            for alg in algorithms_using(hash) {
                assert!(alg_flagged(alg), "{alg:?}");
            }
        }
    }

    #[test]
    fn strong_hashes_are_not_deprecated() {
        for hash in STRONG {
            for alg in algorithms_using(hash) {
                assert!(!alg_flagged(alg), "{alg:?}");
            }
        }
    }

    #[test]
    fn hashless_algorithms_are_not_deprecated() {
        let algs = [
            Algorithm::None,
            ecdsa(SignHash::Any),
            Algorithm::AsymmetricSignature(AsymmetricSignature::RsaPss {
                hash_alg: SignHash::Any,
            }),
            Algorithm::AsymmetricSignature(AsymmetricSignature::RsaPkcs1v15SignRaw),
            Algorithm::AsymmetricSignature(AsymmetricSignature::EcdsaAny),
            Algorithm::AsymmetricEncryption(AsymmetricEncryption::RsaPkcs1v15Crypt),
            Algorithm::Mac(Mac::FullLength(FullLengthMac::Cmac)),
            Algorithm::Mac(Mac::Truncated {
                mac_alg: FullLengthMac::CbcMac,
                mac_length: 4,
            }),
            Algorithm::Cipher(Cipher::CbcPkcs7),
            Algorithm::Cipher(Cipher::StreamCipher),
            Algorithm::Aead(Aead::AeadWithDefaultLengthTag(
                AeadWithDefaultLengthTag::Ccm,
            )),
            Algorithm::KeyAgreement(KeyAgreement::Raw(RawKeyAgreement::Ecdh)),
            Algorithm::KeyAgreement(KeyAgreement::Raw(RawKeyAgreement::Ffdh)),
        ];
        for alg in algs {
            assert!(!alg_flagged(alg), "{alg:?}");
        }
    }

    #[test]
    fn des_and_arc4_are_deprecated_at_any_size() {
        for bits in [0, 40, 64, 128, 192, 2048] {
            assert!(key_flagged(Type::Des, bits), "DES {bits}");
            assert!(key_flagged(Type::Arc4, bits), "ARC4 {bits}");
        }
    }

    #[test]
    fn other_symmetric_and_rsa_dh_types_are_not_deprecated() {
        let group_family = DhFamily::Rfc7919;
        let types = [
            Type::RawData,
            Type::Hmac,
            Type::Derive,
            Type::Aes,
            Type::Camellia,
            Type::Chacha20,
            Type::RsaPublicKey,
            Type::RsaKeyPair,
            Type::DhKeyPair { group_family },
            Type::DhPublicKey { group_family },
        ];
        for key_type in types {
            for bits in [0, 160, 163, 256, 2048] {
                assert!(!key_flagged(key_type, bits), "{key_type:?} {bits}");
            }
        }
    }

    #[test]
    fn secp_r2_and_sect_r2_public_keys_are_deprecated_at_any_size() {
        for curve_family in [EccFamily::SecpR2, EccFamily::SectR2] {
            for bits in [0, 160, 163, 256] {
                assert!(
                    key_flagged(Type::EccPublicKey { curve_family }, bits),
                    "{curve_family:?} {bits}"
                );
            }
        }
    }

    #[test]
    fn sect_k1_and_sect_r1_public_keys_are_deprecated_only_at_163_bits() {
        for curve_family in [EccFamily::SectK1, EccFamily::SectR1] {
            assert!(
                key_flagged(Type::EccPublicKey { curve_family }, 163),
                "{curve_family:?}"
            );
            for bits in [0, 160, 233, 283, 409, 571] {
                assert!(
                    !key_flagged(Type::EccPublicKey { curve_family }, bits),
                    "{curve_family:?} {bits}"
                );
            }
        }
    }

    #[test]
    fn brainpool_public_keys_are_deprecated_only_at_160_bits() {
        let curve_family = EccFamily::BrainpoolPR1;
        assert!(key_flagged(Type::EccPublicKey { curve_family }, 160));
        for bits in [0, 163, 192, 256, 512] {
            assert!(
                !key_flagged(Type::EccPublicKey { curve_family }, bits),
                "{bits}"
            );
        }
    }

    #[test]
    fn other_curve_families_are_not_deprecated() {
        for curve_family in [
            EccFamily::SecpK1,
            EccFamily::SecpR1,
            EccFamily::Frp,
            EccFamily::Montgomery,
        ] {
            for bits in [0, 160, 163, 256] {
                assert!(
                    !key_flagged(Type::EccPublicKey { curve_family }, bits),
                    "{curve_family:?} {bits}"
                );
            }
        }
    }

    #[test]
    fn key_pairs_on_weak_curves_are_not_flagged_the_reference_quirk() {
        let weak_public_keys = [
            (EccFamily::SecpR2, 160),
            (EccFamily::SectR2, 163),
            (EccFamily::SectK1, 163),
            (EccFamily::SectR1, 163),
            (EccFamily::BrainpoolPR1, 160),
        ];
        for (curve_family, bits) in weak_public_keys {
            assert!(key_flagged(Type::EccPublicKey { curve_family }, bits));
            assert!(
                !key_flagged(Type::EccKeyPair { curve_family }, bits),
                "{curve_family:?} {bits}"
            );
        }
    }

    #[test]
    fn either_a_deprecated_type_or_algorithm_is_enough() {
        let aes_cbc = Algorithm::Cipher(Cipher::CbcNoPadding);
        assert!(!uses_deprecated_primitive(&attributes(
            Type::Aes,
            256,
            aes_cbc
        )));
        assert!(uses_deprecated_primitive(&attributes(
            Type::Des,
            64,
            aes_cbc
        )));
        let rsa_sha1 = Algorithm::AsymmetricSignature(AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: Hash::Sha1.into(),
        });
        assert!(uses_deprecated_primitive(&attributes(
            Type::RsaKeyPair,
            2048,
            rsa_sha1
        )));
    }
}
