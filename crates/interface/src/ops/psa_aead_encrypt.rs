//! PsaAeadEncrypt (0x0011): encrypt and authenticate a message with a named symmetric key.

use psa_crypto::types::algorithm::Aead;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_aead_encrypt as proto;
use crate::secret::SecretBytes;

/// Encrypt `plaintext` and authenticate it together with `additional_data`, with the key
/// `key_name`, `alg` and `nonce`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the symmetric key, in the caller's namespace.
    pub key_name: String,
    /// AEAD algorithm, tag length included; must equal the key's policy algorithm.
    pub alg: Aead,
    /// Nonce; its valid lengths depend on `alg` (docs/protocol.md#output-sizes).
    pub nonce: Vec<u8>,
    /// Data authenticated but not encrypted.
    pub additional_data: Vec<u8>,
    /// The message to encrypt.
    pub plaintext: SecretBytes,
}

/// The encrypted message followed by the authentication tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Encrypted data ‖ tag.
    pub ciphertext: Vec<u8>,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#symmetric-operations).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not encrypt, its policy algorithm is not exactly `alg`,
    /// or `alg` does not fit the key type (CCM/GCM need AES or Camellia, ChaCha20-Poly1305 needs
    /// ChaCha20); `InvalidArgument` when the plaintext or the nonce is empty.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_encrypt_message()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        // Stricter than PSA, which allows an empty message: kept as the reference does it.
        if self.plaintext.is_empty() || self.nonce.is_empty() {
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
            plaintext: SecretBytes::new(op.plaintext),
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(mut request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.try_into()?),
            nonce: request.nonce,
            additional_data: request.additional_data,
            plaintext: request.plaintext.take(),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            ciphertext: result.ciphertext,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            ciphertext: response.ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use psa_crypto::types::algorithm::{AeadWithDefaultLengthTag, Algorithm, Cipher};
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaAeadEncrypt,
    };
    use crate::proto::psa_algorithm::algorithm as pa;

    const GCM: Aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);

    fn aes_key(alg: Aead) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_encrypt();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::Aes,
            bits: 256,
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
            nonce: vec![0x0c; 12],
            additional_data: b"ad".to_vec(),
            plaintext: SecretBytes::from(&b"hello"[..]),
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaAeadEncrypt>(request(GCM)).unwrap();
        // alg = { aead_with_default_length_tag: GCM } = 08 02
        let mut expected = hex::decode("0a016b120208021a0c").unwrap();
        expected.extend([0x0c; 12]);
        expected.extend(hex::decode("220261642a0568656c6c6f").unwrap());
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaAeadEncrypt>(&body).unwrap(),
            request(GCM)
        );

        let shortened = Aead::AeadWithShortenedTag {
            aead_alg: AeadWithDefaultLengthTag::Ccm,
            tag_length: 8,
        };
        let body = encode_request::<PsaAeadEncrypt>(request(shortened)).unwrap();
        assert_eq!(
            decode_request::<PsaAeadEncrypt>(&body).unwrap(),
            request(shortened)
        );
    }

    #[test]
    fn response_round_trips() {
        let response = Response {
            ciphertext: vec![0xEE; 21],
        };
        let body = encode_response::<PsaAeadEncrypt>(response.clone()).unwrap();
        assert_eq!(decode_response::<PsaAeadEncrypt>(&body).unwrap(), response);
    }

    #[test]
    fn plaintext_is_not_shown_by_debug() {
        let shown = format!("{:?}", request(GCM));
        assert!(
            !shown.contains("104, 101") && shown.contains("5 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn missing_algorithm_is_invalid_encoding() {
        let op = proto::Operation {
            key_name: "k".into(),
            alg: None,
            nonce: vec![1],
            ..Default::default()
        };
        assert_eq!(
            decode_request::<PsaAeadEncrypt>(&op.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg"))
        );
        let op = proto::Operation {
            alg: Some(pa::Aead { variant: None }),
            ..op
        };
        assert_eq!(
            decode_request::<PsaAeadEncrypt>(&op.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg.variant"))
        );
    }

    #[test]
    fn aead_none_is_invalid_encoding() {
        // alg = { aead_with_default_length_tag: NONE }, emitted as 08 00.
        let body = hex::decode("0a016b12020800").unwrap();
        assert_eq!(
            decode_request::<PsaAeadEncrypt>(&body),
            Err(BodyError::InvalidEncoding(
                "alg.aead_with_default_length_tag"
            ))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(request(GCM).validate(aes_key(GCM)), Ok(()));
        let chacha = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Chacha20Poly1305);
        let mut attributes = aes_key(chacha);
        attributes.key_type = Type::Chacha20;
        assert_eq!(request(chacha).validate(attributes), Ok(()));
        // Empty additional data is fine.
        let no_ad = Request {
            additional_data: Vec::new(),
            ..request(GCM)
        };
        assert_eq!(no_ad.validate(aes_key(GCM)), Ok(()));
    }

    #[test]
    fn validate_needs_the_encrypt_flag() {
        let mut attributes = aes_key(GCM);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_decrypt();
        assert_eq!(
            request(GCM).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_exactly_the_policy_algorithm() {
        let ccm = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Ccm);
        assert_eq!(
            request(ccm).validate(aes_key(GCM)),
            Err(PsaError::NotPermitted)
        );
        // The tag length is part of the algorithm: no "at least this long" wildcard.
        let short = Aead::AeadWithShortenedTag {
            aead_alg: AeadWithDefaultLengthTag::Gcm,
            tag_length: 12,
        };
        assert_eq!(
            request(short).validate(aes_key(GCM)),
            Err(PsaError::NotPermitted)
        );
        let mut attributes = aes_key(GCM);
        attributes.policy.permitted_algorithms = Algorithm::Cipher(Cipher::Ctr);
        assert_eq!(
            request(GCM).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = aes_key(GCM);
        attributes.key_type = Type::Chacha20;
        assert_eq!(
            request(GCM).validate(attributes),
            Err(PsaError::NotPermitted)
        );
        let chacha = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Chacha20Poly1305);
        assert_eq!(
            request(chacha).validate(aes_key(chacha)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_refuses_an_empty_plaintext_or_nonce() {
        let no_plaintext = Request {
            plaintext: SecretBytes::default(),
            ..request(GCM)
        };
        assert_eq!(
            no_plaintext.validate(aes_key(GCM)),
            Err(PsaError::InvalidArgument)
        );
        let no_nonce = Request {
            nonce: Vec::new(),
            ..request(GCM)
        };
        assert_eq!(
            no_nonce.validate(aes_key(GCM)),
            Err(PsaError::InvalidArgument)
        );
    }
}
