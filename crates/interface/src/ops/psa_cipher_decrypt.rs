//! PsaCipherDecrypt (0x0015): decrypt an IV-prefixed message with a named symmetric key and an
//! unauthenticated cipher mode.

use psa_crypto::types::algorithm::Cipher;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_cipher_decrypt as proto;
use crate::psa::{cipher_from_proto, cipher_to_proto};
use crate::secret::SecretBytes;

/// Decrypt `ciphertext` with the key `key_name` using the cipher mode `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the symmetric key, in the caller's namespace.
    pub key_name: String,
    /// Cipher mode; must equal the key's policy algorithm.
    pub alg: Cipher,
    /// IV ‖ encrypted data, as returned by PsaCipherEncrypt.
    pub ciphertext: Vec<u8>,
}

/// The decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The plaintext; secret.
    pub plaintext: SecretBytes,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#symmetric-operations).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not decrypt, its policy algorithm is not `alg`, or `alg`
    /// does not fit the key type; `InvalidArgument` when the ciphertext is empty.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_decrypt_message()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        if self.ciphertext.is_empty() {
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
            alg: cipher_from_proto(op.alg, "alg")?,
            ciphertext: op.ciphertext,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: cipher_to_proto(request.alg),
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
    use psa_crypto::types::key::{Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaCipherDecrypt,
    };

    fn aes_key(alg: Cipher) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_decrypt();
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

    fn request(alg: Cipher) -> Request {
        Request {
            key_name: "k".into(),
            alg,
            ciphertext: vec![0x3C; 32],
        }
    }

    #[test]
    fn request_round_trips() {
        let body = encode_request::<PsaCipherDecrypt>(request(Cipher::EcbNoPadding)).unwrap();
        let mut expected = hex::decode("0a016b10061a20").unwrap();
        expected.extend([0x3C; 32]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaCipherDecrypt>(&body).unwrap(),
            request(Cipher::EcbNoPadding)
        );
    }

    #[test]
    fn response_round_trips_and_hides_the_plaintext() {
        let response = Response {
            plaintext: SecretBytes::from(&b"clear"[..]),
        };
        let body = encode_response::<PsaCipherDecrypt>(response.clone()).unwrap();
        assert_eq!(body.as_slice(), b"\x0a\x05clear");
        let decoded = decode_response::<PsaCipherDecrypt>(&body).unwrap();
        assert_eq!(decoded, response);
        let shown = format!("{decoded:?}");
        assert!(
            !shown.contains("99, 108") && shown.contains("5 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn cipher_none_is_invalid_encoding() {
        // alg absent on the wire = CIPHER_NONE.
        let body = proto::Operation {
            key_name: "k".into(),
            alg: 0,
            ciphertext: vec![1],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaCipherDecrypt>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
        let body = proto::Operation {
            key_name: "k".into(),
            alg: 42,
            ciphertext: vec![1],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaCipherDecrypt>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(
            request(Cipher::CbcPkcs7).validate(aes_key(Cipher::CbcPkcs7)),
            Ok(())
        );
    }

    #[test]
    fn validate_needs_the_decrypt_flag() {
        let mut attributes = aes_key(Cipher::CbcPkcs7);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_encrypt();
        assert_eq!(
            request(Cipher::CbcPkcs7).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_the_policy_algorithm() {
        assert_eq!(
            request(Cipher::CbcNoPadding).validate(aes_key(Cipher::CbcPkcs7)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_compatible_key_type() {
        let mut attributes = aes_key(Cipher::CbcPkcs7);
        attributes.key_type = Type::Hmac;
        assert_eq!(
            request(Cipher::CbcPkcs7).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_refuses_an_empty_ciphertext() {
        let empty = Request {
            ciphertext: Vec::new(),
            ..request(Cipher::CbcPkcs7)
        };
        assert_eq!(
            empty.validate(aes_key(Cipher::CbcPkcs7)),
            Err(PsaError::InvalidArgument)
        );
    }
}
