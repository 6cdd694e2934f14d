//! PsaVerifyMessage (0x0019): hash a message and check a signature over it with a named key.

use psa_crypto::types::algorithm::AsymmetricSignature;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_verify_message as proto;

/// Verify `signature` over `message` with the key `key_name` using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the verifying key (a key pair or a public key), in the caller's namespace.
    pub key_name: String,
    /// Signature scheme; must be permitted by the key's policy.
    pub alg: AsymmetricSignature,
    /// The signed message.
    pub message: Vec<u8>,
    /// The signature to check, in the format of docs/protocol.md#output-sizes.
    pub signature: Vec<u8>,
}

/// PsaVerifyMessage returns nothing: Success when the signature is good, InvalidSignature otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#signatures).
    ///
    /// The usage rule is `verify_message` or `verify_hash`: permission to verify hashes implies
    /// permission to verify messages. psa-crypto's `can_verify_message` accepts exactly either flag.
    ///
    /// # Errors
    /// `NotPermitted` when the key has neither verifying flag, its policy does not permit `alg`,
    /// or `alg` does not fit the key type.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_verify_message()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
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
            message: op.message,
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
            message: request.message,
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
    use psa_crypto::types::algorithm::{Hash, SignHash};
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaVerifyMessage,
    };
    use crate::proto::psa_key_attributes as pk;

    fn ecdsa_sha256() -> AsymmetricSignature {
        AsymmetricSignature::Ecdsa {
            hash_alg: SignHash::Specific(Hash::Sha256),
        }
    }

    fn p256_key(usage_flags: UsageFlags) -> Attributes {
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

    fn verify_message_only() -> UsageFlags {
        let mut flags = UsageFlags::default();
        flags.set_verify_message();
        flags
    }

    fn request() -> Request {
        Request {
            key_name: "k".into(),
            alg: ecdsa_sha256(),
            message: b"abc".to_vec(),
            signature: vec![7; 64],
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaVerifyMessage>(request()).unwrap();
        let mut expected = hex::decode("0a016b120622040a0210071a036162632240").unwrap();
        expected.extend([7; 64]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaVerifyMessage>(&body).unwrap(),
            request()
        );
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaVerifyMessage>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaVerifyMessage>(&[]), Ok(Response));
    }

    #[test]
    fn missing_algorithm_is_invalid_encoding() {
        let body = proto::Operation {
            key_name: "k".into(),
            alg: None,
            message: vec![1],
            signature: vec![2],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaVerifyMessage>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
        let body = hex::decode("0a016b120622040a021000").unwrap();
        assert_eq!(
            decode_request::<PsaVerifyMessage>(&body),
            Err(BodyError::InvalidEncoding("alg.ecdsa.hash_alg.specific"))
        );
    }

    #[test]
    fn validate_accepts_either_verifying_flag() {
        assert_eq!(request().validate(p256_key(verify_message_only())), Ok(()));
        let mut hash_flag = UsageFlags::default();
        hash_flag.set_verify_hash();
        assert_eq!(request().validate(p256_key(hash_flag)), Ok(()));
        let wire = pk::UsageFlags {
            verify_hash: true,
            ..Default::default()
        };
        assert_eq!(request().validate(p256_key(wire.into())), Ok(()));
    }

    #[test]
    fn validate_refuses_a_key_without_verifying_flag() {
        assert_eq!(
            request().validate(p256_key(UsageFlags::default())),
            Err(PsaError::NotPermitted)
        );
        let mut sign_only = UsageFlags::default();
        sign_only.set_sign_hash().set_decrypt();
        assert_eq!(
            request().validate(p256_key(sign_only)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_permitted_algorithm() {
        let other = Request {
            alg: AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(Hash::Sha512),
            },
            ..request()
        };
        assert_eq!(
            other.validate(p256_key(verify_message_only())),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = p256_key(verify_message_only());
        attributes.key_type = Type::RsaPublicKey;
        attributes.bits = 2048;
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
    }
}
