//! PsaRawKeyAgreement (0x0013): compute the raw shared secret of a named private key and a peer's
//! public key.

use psa_crypto::types::algorithm::{Algorithm, KeyAgreement, RawKeyAgreement};
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_raw_key_agreement as proto;
use crate::psa::{raw_key_agreement_from_proto, raw_key_agreement_to_proto};
use crate::secret::SecretBytes;

/// Agree on a secret between the key pair `private_key_name` and `peer_key` using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Key agreement algorithm: ECDH or FFDH.
    pub alg: RawKeyAgreement,
    /// Name of the caller's own key pair, in the caller's namespace.
    pub private_key_name: String,
    /// The peer's public key, in the public-key import format of the same family
    /// (docs/protocol.md#key-data-formats; an uncompressed point for Weierstrass curves).
    pub peer_key: Vec<u8>,
}

/// The raw shared secret (ECDH: the x-coordinate, ceil(bits/8) bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The shared secret; secret.
    pub shared_secret: SecretBytes,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#key-agreement-and-random).
    ///
    /// The policy must name exactly the raw agreement `alg`: a key whose policy is a key
    /// agreement followed by a key derivation may not hand out the raw secret.
    ///
    /// # Errors
    /// `NotPermitted` when the key may not derive, its policy algorithm is not exactly
    /// `KeyAgreement::Raw(alg)`, or `alg` does not fit the key type (ECDH needs an ECC key,
    /// FFDH a DH key).
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_derive_from()?;
        let alg = Algorithm::KeyAgreement(KeyAgreement::Raw(self.alg));
        if attributes.policy.permitted_algorithms != alg {
            return Err(PsaError::NotPermitted);
        }
        attributes.compatible_with_alg(alg)?;
        Ok(())
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            alg: raw_key_agreement_from_proto(op.alg, "alg")?,
            private_key_name: op.private_key_name,
            peer_key: op.peer_key,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            alg: raw_key_agreement_to_proto(request.alg),
            private_key_name: request.private_key_name,
            peer_key: request.peer_key,
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            shared_secret: SecretBytes::new(result.shared_secret),
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(mut response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            shared_secret: response.shared_secret.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Hash, KeyDerivation};
    use psa_crypto::types::key::{DhFamily, EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaRawKeyAgreement,
    };

    fn raw(alg: RawKeyAgreement) -> Algorithm {
        Algorithm::KeyAgreement(KeyAgreement::Raw(alg))
    }

    fn p256_key(permitted_algorithms: Algorithm) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_derive();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags,
                permitted_algorithms,
            },
        }
    }

    fn request(alg: RawKeyAgreement) -> Request {
        let mut peer_key = vec![0x04];
        peer_key.extend([0x11; 64]);
        Request {
            alg,
            private_key_name: "mine".into(),
            peer_key,
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaRawKeyAgreement>(request(RawKeyAgreement::Ecdh)).unwrap();
        let mut expected = hex::decode("0802 1204 6d696e65 1a4104".replace(' ', "")).unwrap();
        expected.extend([0x11; 64]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaRawKeyAgreement>(&body).unwrap(),
            request(RawKeyAgreement::Ecdh)
        );
        let body = encode_request::<PsaRawKeyAgreement>(request(RawKeyAgreement::Ffdh)).unwrap();
        assert_eq!(body[..2], [0x08, 0x01]);
        assert_eq!(
            decode_request::<PsaRawKeyAgreement>(&body).unwrap(),
            request(RawKeyAgreement::Ffdh)
        );
    }

    #[test]
    fn response_round_trips_and_hides_the_secret() {
        let response = Response {
            shared_secret: SecretBytes::new(vec![0x5E; 32]),
        };
        let body = encode_response::<PsaRawKeyAgreement>(response.clone()).unwrap();
        assert_eq!(body[..2], [0x0a, 0x20]);
        let decoded = decode_response::<PsaRawKeyAgreement>(&body).unwrap();
        assert_eq!(decoded, response);
        let shown = format!("{decoded:?}");
        assert!(
            !shown.contains("94") && shown.contains("32 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn raw_none_and_unknown_algorithms_are_invalid_encoding() {
        for alg in [0, 3, -5] {
            let body = proto::Operation {
                alg,
                private_key_name: "mine".into(),
                peer_key: vec![4],
            }
            .encode_to_vec();
            assert_eq!(
                decode_request::<PsaRawKeyAgreement>(&body),
                Err(BodyError::InvalidEncoding("alg")),
                "{alg}"
            );
        }
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(
            request(RawKeyAgreement::Ecdh).validate(p256_key(raw(RawKeyAgreement::Ecdh))),
            Ok(())
        );
        let mut dh = p256_key(raw(RawKeyAgreement::Ffdh));
        dh.key_type = Type::DhKeyPair {
            group_family: DhFamily::Rfc7919,
        };
        dh.bits = 2048;
        assert_eq!(request(RawKeyAgreement::Ffdh).validate(dh), Ok(()));
    }

    #[test]
    fn validate_needs_the_derive_flag() {
        let mut attributes = p256_key(raw(RawKeyAgreement::Ecdh));
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_sign_hash().set_export();
        assert_eq!(
            request(RawKeyAgreement::Ecdh).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_exactly_the_raw_policy() {
        let with_kdf = Algorithm::KeyAgreement(KeyAgreement::WithKeyDerivation {
            ka_alg: RawKeyAgreement::Ecdh,
            kdf_alg: KeyDerivation::Hkdf {
                hash_alg: Hash::Sha256,
            },
        });
        assert_eq!(
            request(RawKeyAgreement::Ecdh).validate(p256_key(with_kdf)),
            Err(PsaError::NotPermitted)
        );
        assert_eq!(
            request(RawKeyAgreement::Ecdh).validate(p256_key(raw(RawKeyAgreement::Ffdh))),
            Err(PsaError::NotPermitted)
        );
        assert_eq!(
            request(RawKeyAgreement::Ecdh).validate(p256_key(Algorithm::None)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        // FFDH permitted by the policy, but the key is an ECC key.
        assert_eq!(
            request(RawKeyAgreement::Ffdh).validate(p256_key(raw(RawKeyAgreement::Ffdh))),
            Err(PsaError::NotPermitted)
        );
        let mut rsa = p256_key(raw(RawKeyAgreement::Ecdh));
        rsa.key_type = Type::RsaKeyPair;
        rsa.bits = 2048;
        assert_eq!(
            request(RawKeyAgreement::Ecdh).validate(rsa),
            Err(PsaError::NotPermitted)
        );
    }
}
