//! PsaAeadDecrypt (0x0012): check the tag of an authenticated message and decrypt it with a
//! named symmetric key.

use psa_crypto::types::algorithm::Aead;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_aead_decrypt as proto;
use crate::secret::SecretBytes;

/// Authenticate `ciphertext` and `additional_data`, then decrypt `ciphertext`, with the key
/// `key_name`, `alg` and `nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the symmetric key, in the caller's namespace.
    pub key_name: String,
    /// AEAD algorithm, tag length included; must equal the key's policy algorithm.
    pub alg: Aead,
    /// The nonce used for encryption.
    pub nonce: Vec<u8>,
    /// Data authenticated but not encrypted.
    pub additional_data: Vec<u8>,
    /// Encrypted data ‖ tag.
    pub ciphertext: Vec<u8>,
}

/// The decrypted message; only returned when the tag is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The plaintext; secret.
    pub plaintext: SecretBytes,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#symmetric-operations).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not decrypt, its policy algorithm is not exactly `alg`,
    /// or `alg` does not fit the key type; `InvalidArgument` when the ciphertext or the nonce
    /// is empty.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_decrypt_message()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        if self.ciphertext.is_empty() || self.nonce.is_empty() {
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
            nonce: op.nonce,
            additional_data: op.additional_data,
            ciphertext: op.ciphertext,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.try_into()?),
            nonce: request.nonce,
            additional_data: request.additional_data,
            ciphertext: request.ciphertext,
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            plaintext: SecretBytes::new(result.plaintext),
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(mut response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            plaintext: response.plaintext.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::AeadWithDefaultLengthTag;
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaAeadDecrypt,
    };

    const CCM: Aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Ccm);

    fn camellia_key(alg: Aead) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_decrypt();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::Camellia,
            bits: 128,
            policy: Policy {
                usage_flags,
                permitted_algorithms: alg.into(),
            },
        }
    }

    fn request(alg: Aead) -> Request {
        Request {
            key_name: "k".into(),
            alg,
            nonce: vec![0x0d; 13],
            additional_data: Vec::new(),
            ciphertext: vec![0xC1; 24],
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaAeadDecrypt>(request(CCM)).unwrap();
        let mut expected = hex::decode("0a016b120208011a0d").unwrap();
        expected.extend([0x0d; 13]);
        // additional_data is empty, so absent; ciphertext is field 5.
        expected.extend([0x2a, 0x18]);
        expected.extend([0xC1; 24]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaAeadDecrypt>(&body).unwrap(),
            request(CCM)
        );
    }

    #[test]
    fn response_round_trips_and_hides_the_plaintext() {
        let response = Response {
            plaintext: SecretBytes::from(&b"opened"[..]),
        };
        let body = encode_response::<PsaAeadDecrypt>(response.clone()).unwrap();
        assert_eq!(body.as_slice(), b"\x0a\x06opened");
        let decoded = decode_response::<PsaAeadDecrypt>(&body).unwrap();
        assert_eq!(decoded, response);
        let shown = format!("{decoded:?}");
        assert!(
            !shown.contains("111, 112") && shown.contains("6 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn missing_or_none_algorithm_is_invalid_encoding() {
        let op = proto::Operation {
            key_name: "k".into(),
            ciphertext: vec![1],
            ..Default::default()
        };
        assert_eq!(
            decode_request::<PsaAeadDecrypt>(&op.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg"))
        );
        // aead_with_shortened_tag { aead_alg: NONE, tag_length: 8 }
        let body = hex::decode("0a016b120412021008").unwrap();
        assert_eq!(
            decode_request::<PsaAeadDecrypt>(&body),
            Err(BodyError::InvalidEncoding(
                "alg.aead_with_shortened_tag.aead_alg"
            ))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(request(CCM).validate(camellia_key(CCM)), Ok(()));
    }

    #[test]
    fn validate_needs_the_decrypt_flag() {
        let mut attributes = camellia_key(CCM);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_encrypt();
        assert_eq!(
            request(CCM).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_exactly_the_policy_algorithm() {
        let short = Aead::AeadWithShortenedTag {
            aead_alg: AeadWithDefaultLengthTag::Ccm,
            tag_length: 8,
        };
        assert_eq!(
            request(short).validate(camellia_key(CCM)),
            Err(PsaError::NotPermitted)
        );
        assert_eq!(request(short).validate(camellia_key(short)), Ok(()));
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = camellia_key(CCM);
        attributes.key_type = Type::Des;
        assert_eq!(
            request(CCM).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_refuses_an_empty_ciphertext_or_nonce() {
        let no_ciphertext = Request {
            ciphertext: Vec::new(),
            ..request(CCM)
        };
        assert_eq!(
            no_ciphertext.validate(camellia_key(CCM)),
            Err(PsaError::InvalidArgument)
        );
        let no_nonce = Request {
            nonce: Vec::new(),
            ..request(CCM)
        };
        assert_eq!(
            no_nonce.validate(camellia_key(CCM)),
            Err(PsaError::InvalidArgument)
        );
    }
}
