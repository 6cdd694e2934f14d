//! PsaMacVerify (0x0017): check the MAC of a message with a named key. Contract only: the
//! reference service does not implement it.

use psa_crypto::types::algorithm::Mac;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_mac_verify as proto;

/// Check that `mac` is the MAC of `input` under the key `key_name` and `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the MAC key, in the caller's namespace.
    pub key_name: String,
    /// MAC algorithm, truncation included; must equal the key's policy algorithm.
    pub alg: Mac,
    /// The authenticated message.
    pub input: Vec<u8>,
    /// The expected MAC.
    pub mac: Vec<u8>,
}

/// PsaMacVerify returns nothing: Success on a match, InvalidSignature otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#symmetric-operations).
    ///
    /// The usage flag is `verify_message` (the book's rule; PSA's `psa_mac_verify` needs the
    /// same). Native flags set with `set_verify_hash` carry `verify_message` too.
    ///
    /// # Errors
    /// `NotPermitted` when the key's usage flags lack `verify_message`, its policy algorithm is
    /// not `alg`, or `alg` does not fit the key type.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        if !attributes.policy.usage_flags.verify_message() {
            return Err(PsaError::NotPermitted);
        }
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
            input: op.input,
            mac: op.mac,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.try_into()?),
            input: request.input,
            mac: request.mac,
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
    use psa_crypto::types::algorithm::{FullLengthMac, Hash};
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaMacVerify,
    };

    const CMAC: Mac = Mac::FullLength(FullLengthMac::Cmac);

    fn aes_key(alg: Mac) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_verify_message();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::Aes,
            bits: 128,
            policy: Policy {
                usage_flags,
                permitted_algorithms: alg.into(),
            },
        }
    }

    fn request(alg: Mac) -> Request {
        Request {
            key_name: "k".into(),
            alg,
            input: b"abc".to_vec(),
            mac: vec![0x4D; 16],
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaMacVerify>(request(CMAC)).unwrap();
        // alg = full_length(1) { cmac(3) {} }
        let mut expected = hex::decode("0a016b12040a021a001a036162632210").unwrap();
        expected.extend([0x4D; 16]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaMacVerify>(&body).unwrap(),
            request(CMAC)
        );
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaMacVerify>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaMacVerify>(&[]), Ok(Response));
    }

    #[test]
    fn missing_or_malformed_algorithm_is_invalid_encoding() {
        let op = proto::Operation {
            key_name: "k".into(),
            alg: None,
            input: vec![1],
            mac: vec![2],
        };
        assert_eq!(
            decode_request::<PsaMacVerify>(&op.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg"))
        );
        // truncated {} with no mac_alg
        let body = hex::decode("0a016b12021200").unwrap();
        assert_eq!(
            decode_request::<PsaMacVerify>(&body),
            Err(BodyError::InvalidEncoding("alg.truncated.mac_alg"))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(request(CMAC).validate(aes_key(CMAC)), Ok(()));
        let mut attributes = aes_key(CMAC);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_verify_hash();
        assert_eq!(request(CMAC).validate(attributes), Ok(()));
    }

    #[test]
    fn validate_needs_the_verify_message_flag() {
        let mut attributes = aes_key(CMAC);
        attributes.policy.usage_flags = UsageFlags::default();
        assert_eq!(
            request(CMAC).validate(attributes),
            Err(PsaError::NotPermitted)
        );
        attributes
            .policy
            .usage_flags
            .set_sign_message()
            .set_sign_hash()
            .set_decrypt();
        assert_eq!(
            request(CMAC).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_exactly_the_policy_algorithm() {
        let cbc_mac = Mac::FullLength(FullLengthMac::CbcMac);
        assert_eq!(
            request(cbc_mac).validate(aes_key(CMAC)),
            Err(PsaError::NotPermitted)
        );
        let truncated = Mac::Truncated {
            mac_alg: FullLengthMac::Cmac,
            mac_length: 8,
        };
        assert_eq!(
            request(truncated).validate(aes_key(CMAC)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = aes_key(CMAC);
        attributes.key_type = Type::Hmac;
        assert_eq!(
            request(CMAC).validate(attributes),
            Err(PsaError::NotPermitted)
        );
        let hmac = Mac::FullLength(FullLengthMac::Hmac {
            hash_alg: Hash::Sha256,
        });
        assert_eq!(
            request(hmac).validate(aes_key(hmac)),
            Err(PsaError::NotPermitted)
        );
    }
}
