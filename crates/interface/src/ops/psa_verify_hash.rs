//! PsaVerifyHash (0x0005): check a signature over an already computed hash with a named key.

use psa_crypto::types::algorithm::AsymmetricSignature;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_verify_hash as proto;

/// Verify `signature` over `hash` with the key `key_name` using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the verifying key (a key pair or a public key), in the caller's namespace.
    pub key_name: String,
    /// Signature scheme; must be permitted by the key's policy.
    pub alg: AsymmetricSignature,
    /// The signed hash; its length must match the hash named in `alg`.
    pub hash: Vec<u8>,
    /// The signature to check, in the format of docs/protocol.md#output-sizes.
    pub signature: Vec<u8>,
}

/// PsaVerifyHash returns nothing: Success when the signature is good, InvalidSignature otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#signatures).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not verify hashes, its policy does not permit `alg`, or
    /// `alg` does not fit the key type; `InvalidArgument` when the hash length is wrong.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_verify_hash()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        if !self.alg.is_hash_len_permitted(self.hash.len()) {
            return Err(PsaError::InvalidArgument);
        }
        Ok(())
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            key_name: op.key_name,
            alg: op
                .alg
                .ok_or(BodyError::InvalidEncoding("alg"))?
                .try_into()?,
            hash: op.hash,
            signature: op.signature,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.into()),
            hash: request.hash,
            signature: request.signature,
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
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Algorithm, AsymmetricEncryption, Hash, SignHash};
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaVerifyHash,
    };
    use crate::proto::psa_algorithm::algorithm as pa;

    /// Request frame of `direct-09-verify-hash.hex` (upstream service 1.5.0, parsec-client 0.16.0):
    /// header, body, then the auth field "vector-app".
    const CAPTURED_REQUEST: &str = "10a7c05e1e0001000000010000000000000000000001780000000a00050000000000\
        00000a0a766563746f722d6b6579120622040a0210071a20ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4\
        10ff61f20015ad22400443de3d059f73f28fe31951c08e015e4fb37ba01f5f83dea02c7b4e85959beea313c8e3f014fb77\
        55641b31e22bef0edcee4eec72c30378b153b7d71f6acd0a766563746f722d617070";

    fn ecdsa_sha256() -> AsymmetricSignature {
        AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Specific(Hash::Sha256),
        }
    }

    fn p256_verify_key() -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_verify_hash();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::EccPublicKey {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags,
                permitted_algorithms: ecdsa_sha256().into(),
            },
        }
    }

    fn request() -> Request {
        Request {
            key_name: "k".into(),
            alg: ecdsa_sha256(),
            hash: vec![0xAB; 32],
            signature: vec![0xCD; 64],
        }
    }

    /// The body of a captured request frame: `body_len` is the u32 LE at header offset 22 and the
    /// body follows the 36-byte fixed header.
    fn captured_body() -> Vec<u8> {
        let frame = hex::decode(CAPTURED_REQUEST).unwrap();
        let body_len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + body_len].to_vec()
    }

    #[test]
    fn decodes_and_reencodes_the_captured_request() {
        let body = captured_body();
        assert_eq!(body.len(), 120);
        let request = decode_request::<PsaVerifyHash>(&body).unwrap();
        assert_eq!(request.key_name, "vector-key");
        assert_eq!(request.alg, ecdsa_sha256());
        // SHA-256("abc")
        assert_eq!(
            request.hash,
            hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap()
        );
        assert_eq!(request.signature.len(), 64);
        assert_eq!(
            encode_request::<PsaVerifyHash>(request).unwrap().as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaVerifyHash>(request()).unwrap();
        let mut expected = hex::decode("0a016b120622040a0210071a20").unwrap();
        expected.extend([0xAB; 32]);
        expected.extend([0x22, 0x40]);
        expected.extend([0xCD; 64]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(decode_request::<PsaVerifyHash>(&body).unwrap(), request());
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaVerifyHash>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaVerifyHash>(&[]), Ok(Response));
    }

    #[test]
    fn missing_algorithm_is_invalid_encoding() {
        let body = proto::Operation {
            key_name: "k".into(),
            alg: None,
            hash: vec![1],
            signature: vec![2],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaVerifyHash>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
    }

    #[test]
    fn unset_scheme_and_hash_none_are_invalid_encoding() {
        let unset = proto::Operation {
            key_name: "k".into(),
            alg: Some(pa::AsymmetricSignature { variant: None }),
            ..Default::default()
        };
        assert_eq!(
            decode_request::<PsaVerifyHash>(&unset.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg.variant"))
        );
        // ECDSA with hash_alg.specific = HASH_NONE (0), emitted because it is a oneof member.
        let body = hex::decode("0a016b120622040a021000").unwrap();
        assert_eq!(
            decode_request::<PsaVerifyHash>(&body),
            Err(BodyError::InvalidEncoding("alg.ecdsa.hash_alg.specific"))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(request().validate(p256_verify_key()), Ok(()));
        // Verification also works with a key pair.
        let mut attributes = p256_verify_key();
        attributes.key_type = Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        };
        assert_eq!(request().validate(attributes), Ok(()));
    }

    #[test]
    fn validate_needs_the_verify_hash_flag() {
        let mut attributes = p256_verify_key();
        attributes.policy.usage_flags = UsageFlags::default();
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
        // verify_message alone is not enough for a hash.
        attributes.policy.usage_flags.set_verify_message();
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
        // The signing flag is not the verifying one.
        let mut attributes = p256_verify_key();
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_sign_hash();
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
    }

    #[test]
    fn validate_needs_a_permitted_algorithm() {
        let mut other = request();
        other.alg = AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Specific(Hash::Sha384),
        };
        other.hash = vec![0; 48];
        assert_eq!(
            other.validate(p256_verify_key()),
            Err(PsaError::NotPermitted)
        );
        // A request naming the `Any` wildcard is never permitted, even by an `Any` policy.
        let mut attributes = p256_verify_key();
        let any = AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Any,
        };
        attributes.policy.permitted_algorithms = any.into();
        assert_eq!(request().validate(attributes), Ok(()));
        let wildcard = Request {
            alg: any,
            ..request()
        };
        assert_eq!(wildcard.validate(attributes), Err(PsaError::NotPermitted));
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = p256_verify_key();
        attributes.key_type = Type::RsaPublicKey;
        attributes.bits = 2048;
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
        let mut attributes = p256_verify_key();
        attributes.policy.permitted_algorithms =
            Algorithm::AsymmetricEncryption(AsymmetricEncryption::RsaPkcs1v15Crypt);
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
    }

    #[test]
    fn validate_rejects_a_wrong_hash_length() {
        for len in [0, 31, 33, 64] {
            let wrong = Request {
                hash: vec![0; len],
                ..request()
            };
            assert_eq!(
                wrong.validate(p256_verify_key()),
                Err(PsaError::InvalidArgument),
                "{len}"
            );
        }
        // EcdsaAny takes a hash of any length.
        let mut attributes = p256_verify_key();
        attributes.policy.permitted_algorithms = AsymmetricSignature::EcdsaAny.into();
        let any_len = Request {
            alg: AsymmetricSignature::EcdsaAny,
            hash: vec![0; 20],
            ..request()
        };
        assert_eq!(any_len.validate(attributes), Ok(()));
    }
}
