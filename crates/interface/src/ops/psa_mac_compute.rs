//! PsaMacCompute (0x0016): compute the MAC of a message with a named key. Contract only: the
//! reference service does not implement it.

use psa_crypto::types::algorithm::Mac;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_mac_compute as proto;

/// Compute the MAC of `input` with the key `key_name` using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the MAC key, in the caller's namespace.
    pub key_name: String,
    /// MAC algorithm, truncation included; must equal the key's policy algorithm.
    pub alg: Mac,
    /// The message to authenticate.
    pub input: Vec<u8>,
}

/// The MAC of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The MAC bytes: digest size for HMAC, block size for CMAC/CBC-MAC, `mac_length` when
    /// truncated.
    pub mac: Vec<u8>,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#symmetric-operations).
    ///
    /// The usage flag is `sign_message` (the book's rule; PSA's `psa_mac_compute` needs the same).
    /// Native flags set with `set_sign_hash` carry `sign_message` too.
    ///
    /// # Errors
    /// `NotPermitted` when the key's usage flags lack `sign_message`, its policy algorithm is not
    /// `alg`, or `alg` does not fit the key type.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        if !attributes.policy.usage_flags.sign_message() {
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
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response { mac: result.mac })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result { mac: response.mac })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{FullLengthMac, Hash};
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaMacCompute,
    };
    use crate::proto::psa_algorithm::algorithm as pa;

    const HMAC_SHA256: Mac = Mac::FullLength(FullLengthMac::Hmac {
        hash_alg: Hash::Sha256,
    });

    fn hmac_key(alg: Mac) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_sign_message();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::Hmac,
            bits: 256,
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
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaMacCompute>(request(HMAC_SHA256)).unwrap();
        // alg = full_length(1) { hmac(1) { hash_alg: SHA_256 } }
        assert_eq!(
            body.as_slice(),
            hex::decode("0a016b12060a040a0208071a03616263")
                .unwrap()
                .as_slice()
        );
        assert_eq!(
            decode_request::<PsaMacCompute>(&body).unwrap(),
            request(HMAC_SHA256)
        );
        let truncated = Mac::Truncated {
            mac_alg: FullLengthMac::Cmac,
            mac_length: 8,
        };
        let body = encode_request::<PsaMacCompute>(request(truncated)).unwrap();
        assert_eq!(
            decode_request::<PsaMacCompute>(&body).unwrap(),
            request(truncated)
        );
    }

    #[test]
    fn response_round_trips() {
        let response = Response {
            mac: vec![0x4D; 32],
        };
        let body = encode_response::<PsaMacCompute>(response.clone()).unwrap();
        assert_eq!(&body[..2], [0x0a, 0x20]);
        assert_eq!(decode_response::<PsaMacCompute>(&body).unwrap(), response);
    }

    #[test]
    fn missing_or_malformed_algorithm_is_invalid_encoding() {
        let op = proto::Operation {
            key_name: "k".into(),
            alg: None,
            input: vec![1],
        };
        assert_eq!(
            decode_request::<PsaMacCompute>(&op.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg"))
        );
        let op = proto::Operation {
            alg: Some(pa::Mac { variant: None }),
            ..op
        };
        assert_eq!(
            decode_request::<PsaMacCompute>(&op.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg.variant"))
        );
        // full_length { hmac { hash_alg: HASH_NONE } }
        let body = hex::decode("0a016b12040a020a00").unwrap();
        assert_eq!(
            decode_request::<PsaMacCompute>(&body),
            Err(BodyError::InvalidEncoding("alg.full_length.hmac.hash_alg"))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(request(HMAC_SHA256).validate(hmac_key(HMAC_SHA256)), Ok(()));
        let cmac = Mac::FullLength(FullLengthMac::Cmac);
        let mut aes = hmac_key(cmac);
        aes.key_type = Type::Aes;
        assert_eq!(request(cmac).validate(aes), Ok(()));
        // sign_hash's setter also grants sign_message.
        let mut attributes = hmac_key(HMAC_SHA256);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_sign_hash();
        assert_eq!(request(HMAC_SHA256).validate(attributes), Ok(()));
    }

    #[test]
    fn validate_needs_the_sign_message_flag() {
        let mut attributes = hmac_key(HMAC_SHA256);
        attributes.policy.usage_flags = UsageFlags::default();
        assert_eq!(
            request(HMAC_SHA256).validate(attributes),
            Err(PsaError::NotPermitted)
        );
        attributes
            .policy
            .usage_flags
            .set_verify_message()
            .set_verify_hash()
            .set_encrypt();
        assert_eq!(
            request(HMAC_SHA256).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_exactly_the_policy_algorithm() {
        let sha512 = Mac::FullLength(FullLengthMac::Hmac {
            hash_alg: Hash::Sha512,
        });
        assert_eq!(
            request(sha512).validate(hmac_key(HMAC_SHA256)),
            Err(PsaError::NotPermitted)
        );
        let truncated = Mac::Truncated {
            mac_alg: FullLengthMac::Hmac {
                hash_alg: Hash::Sha256,
            },
            mac_length: 16,
        };
        assert_eq!(
            request(truncated).validate(hmac_key(HMAC_SHA256)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = hmac_key(HMAC_SHA256);
        attributes.key_type = Type::Aes;
        assert_eq!(
            request(HMAC_SHA256).validate(attributes),
            Err(PsaError::NotPermitted)
        );
        let cmac = Mac::FullLength(FullLengthMac::Cmac);
        assert_eq!(
            request(cmac).validate(hmac_key(cmac)),
            Err(PsaError::NotPermitted)
        );
    }
}
