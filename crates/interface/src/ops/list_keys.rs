//! ListKeys (0x001A): every key the caller owns, across the crypto providers.

use psa_crypto::types::key::Attributes;

use crate::error::BodyError;
use crate::ids::ProviderId;
use crate::proto::list_keys as proto;

/// ListKeys takes no argument; the caller's identity selects the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The caller's keys, grouped by provider in configuration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// One entry per key.
    pub keys: Vec<KeyInfo>,
}

/// One key of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The provider holding the key.
    pub provider_id: ProviderId,
    /// The key's name in the caller's namespace.
    pub name: String,
    /// The attributes recorded when the key was created.
    pub attributes: Attributes,
}

impl KeyInfo {
    /// The bytes this entry adds to an encoded ListKeys answer, without encoding it: a service
    /// can stop building an answer as soon as it would outgrow its limit.
    pub fn encoded_len(&self) -> usize {
        use prost::encoding::encoded_len_varint;
        use prost::Message;

        let without_name = proto::KeyInfo {
            provider_id: self.provider_id.value().into(),
            name: String::new(),
            attributes: self.attributes.try_into().ok(),
        }
        .encoded_len();
        let name = self.name.len();
        let name_field = if name == 0 {
            0
        } else {
            1 + encoded_len_varint(name as u64) + name
        };
        let entry = without_name + name_field;
        1 + encoded_len_varint(entry as u64) + entry
    }
}

impl TryFrom<proto::KeyInfo> for KeyInfo {
    type Error = BodyError;
    fn try_from(info: proto::KeyInfo) -> Result<Self, BodyError> {
        let provider_id = u8::try_from(info.provider_id)
            .ok()
            .and_then(|v| ProviderId::try_from(v).ok())
            .ok_or(BodyError::ProviderDoesNotExist(info.provider_id))?;
        // Optional in proto3, but a key without attributes tells the client nothing usable.
        let attributes = info
            .attributes
            .ok_or(BodyError::InvalidEncoding("attributes"))?;
        Ok(KeyInfo {
            provider_id,
            name: info.name,
            attributes: attributes.try_into()?,
        })
    }
}

impl TryFrom<KeyInfo> for proto::KeyInfo {
    type Error = BodyError;
    fn try_from(info: KeyInfo) -> Result<Self, BodyError> {
        Ok(proto::KeyInfo {
            provider_id: info.provider_id.value().into(),
            name: info.name,
            attributes: Some(info.attributes.try_into()?),
        })
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(_: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request)
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(_: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {})
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        let keys = result
            .keys
            .into_iter()
            .map(KeyInfo::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Response { keys })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        let keys = response
            .keys
            .into_iter()
            .map(TryInto::try_into)
            .collect::<Result<_, _>>()?;
        Ok(proto::Result { keys })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{Algorithm, AsymmetricSignature, Hash};
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{decode_request, decode_response, encode_request, encode_response, ListKeys};

    /// Response line of `testdata/vectors/direct-11-list-keys.hex`.
    const CAPTURED_RESPONSE: &str = "10a7c05e1e00010000000000000000000000000000003100000000001a000000000000000a2f0801120a766563746f722d6b65791a1f0a045a0208021080021a140a0830013801400148011208320622040a021007";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    /// The ECC P-256 ECDSA-SHA-256 signing key `parsec-tool create-ecc-key` makes.
    fn ecc_p256_signing_key() -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_sign_hash().set_verify_hash();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::EccKeyPair {
                curve_family: EccFamily::SecpR1,
            },
            bits: 256,
            policy: Policy {
                usage_flags,
                permitted_algorithms: Algorithm::AsymmetricSignature(AsymmetricSignature::Ecdsa {
                    hash_alg: Hash::Sha256.into(),
                }),
            },
        }
    }

    #[test]
    fn captured_response_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<ListKeys>(&body).unwrap();
        assert_eq!(
            response.keys,
            vec![KeyInfo {
                provider_id: ProviderId::MbedCrypto,
                name: "vector-key".into(),
                attributes: ecc_p256_signing_key(),
            }]
        );
        assert_eq!(
            encode_response::<ListKeys>(response).unwrap().as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn empty_list_and_empty_request_are_empty_bodies() {
        let body = encode_response::<ListKeys>(Response { keys: vec![] }).unwrap();
        assert!(body.is_empty());
        assert_eq!(decode_response::<ListKeys>(&body).unwrap().keys, vec![]);
        assert!(encode_request::<ListKeys>(Request).unwrap().is_empty());
        assert_eq!(decode_request::<ListKeys>(&[]), Ok(Request));
    }

    #[test]
    fn missing_attributes_are_invalid_encoding() {
        let body = proto::Result {
            keys: vec![proto::KeyInfo {
                provider_id: 1,
                name: "k".into(),
                attributes: None,
            }],
        }
        .encode_to_vec();
        assert_eq!(
            decode_response::<ListKeys>(&body),
            Err(BodyError::InvalidEncoding("attributes"))
        );
    }

    #[test]
    fn provider_ids_above_five_do_not_exist() {
        let attributes = Some(ecc_p256_signing_key().try_into().unwrap());
        for id in [6, 256, u32::MAX] {
            let body = proto::Result {
                keys: vec![proto::KeyInfo {
                    provider_id: id,
                    name: "k".into(),
                    attributes,
                }],
            }
            .encode_to_vec();
            assert_eq!(
                decode_response::<ListKeys>(&body),
                Err(BodyError::ProviderDoesNotExist(id))
            );
        }
    }

    #[test]
    fn encoded_len_is_what_each_entry_adds_to_the_answer() {
        let mut keys = Vec::new();
        let mut total = 0;
        for name in [
            "",
            "k",
            &"n".repeat(127),
            &"x".repeat(128),
            &"é".repeat(3000),
        ] {
            keys.push(KeyInfo {
                provider_id: ProviderId::Pkcs11,
                name: name.to_owned(),
                attributes: ecc_p256_signing_key(),
            });
            total += keys.last().unwrap().encoded_len();
            let body = encode_response::<ListKeys>(Response { keys: keys.clone() }).unwrap();
            assert_eq!(total, body.len(), "after {} entries", keys.len());
        }
    }
}
