//! CanDoCrypto (0x0020): ask whether a provider supports keys with given attributes.

use psa_crypto::types::key::Attributes;

use crate::error::BodyError;
use crate::proto::can_do_crypto as proto;

/// What the caller intends to do with a key of the given attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckType {
    /// Use an existing key with the policy's algorithm (wire value 1).
    Use,
    /// Generate such a key, then use it if the policy names an algorithm (wire value 2).
    Generate,
    /// Import such a key, then use it if the policy names an algorithm (wire value 3).
    Import,
    /// Derive such a key (wire value 4); no provider supports it.
    Derive,
}

/// Check whether the provider supports `check_type` on a key with `attributes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The intended use.
    pub check_type: CheckType,
    /// The key's type, size (0 = any size) and policy.
    pub attributes: Attributes,
}

/// CanDoCrypto returns nothing: Success means supported, PsaErrorNotSupported means not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl TryFrom<i32> for CheckType {
    type Error = BodyError;
    /// `CHECKTYPE_NONE` (0) and unknown values are rejected.
    fn try_from(value: i32) -> Result<Self, BodyError> {
        match proto::CheckType::try_from(value) {
            Ok(proto::CheckType::Use) => Ok(CheckType::Use),
            Ok(proto::CheckType::Generate) => Ok(CheckType::Generate),
            Ok(proto::CheckType::Import) => Ok(CheckType::Import),
            Ok(proto::CheckType::Derive) => Ok(CheckType::Derive),
            Ok(proto::CheckType::ChecktypeNone) | Err(_) => {
                Err(BodyError::InvalidEncoding("check_type"))
            }
        }
    }
}

impl From<CheckType> for i32 {
    fn from(check_type: CheckType) -> Self {
        let value = match check_type {
            CheckType::Use => proto::CheckType::Use,
            CheckType::Generate => proto::CheckType::Generate,
            CheckType::Import => proto::CheckType::Import,
            CheckType::Derive => proto::CheckType::Derive,
        };
        value.into()
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            check_type: op.check_type.try_into()?,
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
            check_type: request.check_type.into(),
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
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Algorithm, AsymmetricEncryption};
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, CanDoCrypto,
    };

    /// The RSA-2048 PKCS#1 v1.5 encryption key of docs/protocol.md#example-encodings.
    fn rsa_encryption_key() -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_encrypt().set_decrypt();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::RsaKeyPair,
            bits: 2048,
            policy: Policy {
                usage_flags,
                permitted_algorithms: Algorithm::AsymmetricEncryption(
                    AsymmetricEncryption::RsaPkcs1v15Crypt,
                ),
            },
        }
    }

    const RSA_ATTRIBUTES: &str = "0a0252001080101a0c0a042001280112043a020a00";

    #[test]
    fn each_check_type_has_its_wire_value() {
        let cases = [
            (CheckType::Use, 1),
            (CheckType::Generate, 2),
            (CheckType::Import, 3),
            (CheckType::Derive, 4),
        ];
        for (check_type, value) in cases {
            let request = Request {
                check_type,
                attributes: rsa_encryption_key(),
            };
            let body = encode_request::<CanDoCrypto>(request).unwrap();
            let expected = hex::decode(format!("080{value}1215{RSA_ATTRIBUTES}")).unwrap();
            assert_eq!(body.as_slice(), expected.as_slice(), "{check_type:?}");
            assert_eq!(decode_request::<CanDoCrypto>(&body).unwrap(), request);
        }
    }

    #[test]
    fn checktype_none_and_unknown_values_are_invalid_encoding() {
        let attributes = Some(rsa_encryption_key().try_into().unwrap());
        for check_type in [0, 5, -1] {
            let body = proto::Operation {
                check_type,
                attributes,
            }
            .encode_to_vec();
            assert_eq!(
                decode_request::<CanDoCrypto>(&body),
                Err(BodyError::InvalidEncoding("check_type")),
                "{check_type}"
            );
        }
    }

    #[test]
    fn missing_attributes_are_invalid_encoding() {
        let body = proto::Operation {
            check_type: 1,
            attributes: None,
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<CanDoCrypto>(&body),
            Err(BodyError::InvalidEncoding("attributes"))
        );
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<CanDoCrypto>(Response).unwrap().is_empty());
        assert_eq!(decode_response::<CanDoCrypto>(&[]), Ok(Response));
    }
}
