//! PsaSignMessage (0x0018): hash a message and sign the hash with a named key, in one call.

use psa_crypto::types::algorithm::AsymmetricSignature;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_sign_message as proto;

/// Sign `message` with the key `key_name` using `alg` (which names the hash to apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the signing key, in the caller's namespace.
    pub key_name: String,
    /// Signature scheme; must be permitted by the key's policy.
    pub alg: AsymmetricSignature,
    /// The message to hash and sign.
    pub message: Vec<u8>,
}

/// The signature, in the format of docs/protocol.md#output-sizes (`r ‖ s` for ECDSA).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#signatures).
    ///
    /// The usage rule is `sign_message` or `sign_hash`: permission to sign hashes implies
    /// permission to sign messages. psa-crypto's `can_sign_message` accepts exactly either flag.
    ///
    /// # Errors
    /// `NotPermitted` when the key has neither signing flag, its policy does not permit `alg`,
    /// or `alg` does not fit the key type.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_sign_message()?;
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
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            signature: result.signature,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            signature: response.signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Hash, SignHash};
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaSignMessage,
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
            key_type: Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags,
                permitted_algorithms: ecdsa_sha256().into(),
            },
        }
    }

    fn sign_message_only() -> UsageFlags {
        let mut flags = UsageFlags::default();
        flags.set_sign_message();
        flags
    }

    fn request() -> Request {
        Request {
            key_name: "k".into(),
            alg: ecdsa_sha256(),
            message: b"abc".to_vec(),
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaSignMessage>(request()).unwrap();
        assert_eq!(
            body.as_slice(),
            hex::decode("0a016b120622040a0210071a03616263")
                .unwrap()
                .as_slice()
        );
        assert_eq!(decode_request::<PsaSignMessage>(&body).unwrap(), request());
    }

    #[test]
    fn response_round_trips() {
        let response = Response {
            signature: vec![0x5A; 64],
        };
        let body = encode_response::<PsaSignMessage>(response.clone()).unwrap();
        assert_eq!(&body[..2], [0x0a, 0x40]);
        assert_eq!(decode_response::<PsaSignMessage>(&body).unwrap(), response);
    }

    #[test]
    fn missing_algorithm_is_invalid_encoding() {
        let body = proto::Operation {
            key_name: "k".into(),
            alg: None,
            message: vec![1],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaSignMessage>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
        // ECDSA with hash_alg.specific = HASH_NONE.
        let body = hex::decode("0a016b120622040a021000").unwrap();
        assert_eq!(
            decode_request::<PsaSignMessage>(&body),
            Err(BodyError::InvalidEncoding("alg.ecdsa.hash_alg.specific"))
        );
    }

    #[test]
    fn validate_accepts_either_signing_flag() {
        assert_eq!(request().validate(p256_key(sign_message_only())), Ok(()));
        let mut hash_flag = UsageFlags::default();
        hash_flag.set_sign_hash();
        assert_eq!(request().validate(p256_key(hash_flag)), Ok(()));
        // A key whose wire flags carry sign_hash alone is accepted as well.
        let wire = pk::UsageFlags {
            sign_hash: true,
            ..Default::default()
        };
        assert_eq!(request().validate(p256_key(wire.into())), Ok(()));
    }

    #[test]
    fn validate_refuses_a_key_without_signing_flag() {
        assert_eq!(
            request().validate(p256_key(UsageFlags::default())),
            Err(PsaError::NotPermitted)
        );
        let mut verify_only = UsageFlags::default();
        verify_only.set_verify_hash().set_encrypt();
        assert_eq!(
            request().validate(p256_key(verify_only)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_permitted_algorithm() {
        let other = Request {
            alg: AsymmetricSignature::DeterministicEcdsa {
                hash_alg: SignHash::Specific(Hash::Sha256),
            },
            ..request()
        };
        assert_eq!(
            other.validate(p256_key(sign_message_only())),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = p256_key(sign_message_only());
        attributes.key_type = Type::RsaKeyPair;
        attributes.bits = 2048;
        assert_eq!(request().validate(attributes), Err(PsaError::NotPermitted));
        let rsa = AsymmetricSignature::RsaPss {
            hash_alg: SignHash::Specific(Hash::Sha256),
        };
        let mut attributes = p256_key(sign_message_only());
        attributes.policy.permitted_algorithms = rsa.into();
        assert_eq!(
            Request {
                alg: rsa,
                ..request()
            }
            .validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }
}
