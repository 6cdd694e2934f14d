//! PsaAsymmetricDecrypt (0x000B): decrypt a short message with a named RSA key pair.

use psa_crypto::types::algorithm::AsymmetricEncryption;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_asymmetric_decrypt as proto;
use crate::secret::SecretBytes;

/// Decrypt `ciphertext` with the key pair `key_name` using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the decrypting key pair, in the caller's namespace.
    pub key_name: String,
    /// Padding scheme; must be permitted by the key's policy.
    pub alg: AsymmetricEncryption,
    /// The encrypted message, as long as the RSA modulus.
    pub ciphertext: Vec<u8>,
    /// OAEP label. The wire has no "absent" state: an empty `salt` field is `None`, and
    /// `Some(vec![])` is sent as an empty field, so it decodes back as `None`.
    pub salt: Option<Vec<u8>>,
}

/// The decrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The plaintext; secret.
    pub plaintext: SecretBytes,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#asymmetric-encryption).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not decrypt, its policy does not permit `alg`, or it is
    /// not an RSA key; `InvalidArgument` when a salt is given with PKCS#1 v1.5 (which has no
    /// label) or the ciphertext is empty.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_decrypt_message()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        let salt_without_label =
            self.alg == AsymmetricEncryption::RsaPkcs1v15Crypt && self.salt.is_some();
        if salt_without_label || self.ciphertext.is_empty() {
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
            ciphertext: op.ciphertext,
            salt: Some(op.salt).filter(|salt| !salt.is_empty()),
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.into()),
            ciphertext: request.ciphertext,
            salt: request.salt.unwrap_or_default(),
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
    use psa_crypto::types::algorithm::Hash;
    use psa_crypto::types::key::{DhFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaAsymmetricDecrypt,
    };

    const OAEP_SHA256: AsymmetricEncryption = AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    };
    const PKCS1V15: AsymmetricEncryption = AsymmetricEncryption::RsaPkcs1v15Crypt;

    fn rsa_key(alg: AsymmetricEncryption) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_decrypt();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::RsaKeyPair,
            bits: 2048,
            policy: Policy {
                usage_flags,
                permitted_algorithms: alg.into(),
            },
        }
    }

    fn request(alg: AsymmetricEncryption, salt: Option<Vec<u8>>) -> Request {
        Request {
            key_name: "k".into(),
            alg,
            ciphertext: vec![0x99; 256],
            salt,
        }
    }

    #[test]
    fn request_round_trips_with_and_without_salt() {
        let body =
            encode_request::<PsaAsymmetricDecrypt>(request(OAEP_SHA256, Some(b"label".to_vec())))
                .unwrap();
        let mut expected = hex::decode("0a016b120412020807 1a8002".replace(' ', "")).unwrap();
        expected.extend([0x99; 256]);
        expected.extend(hex::decode("22056c6162656c").unwrap());
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaAsymmetricDecrypt>(&body).unwrap(),
            request(OAEP_SHA256, Some(b"label".to_vec()))
        );
        let body = encode_request::<PsaAsymmetricDecrypt>(request(PKCS1V15, None)).unwrap();
        assert_eq!(
            decode_request::<PsaAsymmetricDecrypt>(&body).unwrap(),
            request(PKCS1V15, None)
        );
        let empty_salt =
            encode_request::<PsaAsymmetricDecrypt>(request(PKCS1V15, Some(vec![]))).unwrap();
        assert_eq!(empty_salt, body);
    }

    #[test]
    fn response_round_trips_and_hides_the_plaintext() {
        let response = Response {
            plaintext: SecretBytes::from(&b"recovered"[..]),
        };
        let body = encode_response::<PsaAsymmetricDecrypt>(response.clone()).unwrap();
        assert_eq!(body.as_slice(), b"\x0a\x09recovered");
        let decoded = decode_response::<PsaAsymmetricDecrypt>(&body).unwrap();
        assert_eq!(decoded, response);
        let shown = format!("{decoded:?}");
        assert!(
            !shown.contains("114, 101") && shown.contains("9 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn missing_algorithm_is_invalid_encoding() {
        let body = proto::Operation {
            key_name: "k".into(),
            alg: None,
            ciphertext: vec![1],
            salt: vec![],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaAsymmetricDecrypt>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
        // alg present but with no variant
        let body = hex::decode("0a016b1200").unwrap();
        assert_eq!(
            decode_request::<PsaAsymmetricDecrypt>(&body),
            Err(BodyError::InvalidEncoding("alg.variant"))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(
            request(OAEP_SHA256, Some(vec![1, 2])).validate(rsa_key(OAEP_SHA256)),
            Ok(())
        );
        assert_eq!(request(PKCS1V15, None).validate(rsa_key(PKCS1V15)), Ok(()));
    }

    #[test]
    fn validate_needs_the_decrypt_flag() {
        let mut attributes = rsa_key(PKCS1V15);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_encrypt();
        assert_eq!(
            request(PKCS1V15, None).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_permitted_algorithm() {
        assert_eq!(
            request(OAEP_SHA256, None).validate(rsa_key(PKCS1V15)),
            Err(PsaError::NotPermitted)
        );
        let oaep_sha384 = AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha384,
        };
        assert_eq!(
            request(oaep_sha384, None).validate(rsa_key(OAEP_SHA256)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_an_rsa_key() {
        let mut attributes = rsa_key(PKCS1V15);
        attributes.key_type = Type::DhKeyPair {
            group_family: DhFamily::Rfc7919,
        };
        assert_eq!(
            request(PKCS1V15, None).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_refuses_a_salt_with_pkcs1v15() {
        assert_eq!(
            request(PKCS1V15, Some(vec![0])).validate(rsa_key(PKCS1V15)),
            Err(PsaError::InvalidArgument)
        );
    }

    #[test]
    fn validate_refuses_an_empty_ciphertext() {
        let empty = Request {
            ciphertext: Vec::new(),
            ..request(OAEP_SHA256, None)
        };
        assert_eq!(
            empty.validate(rsa_key(OAEP_SHA256)),
            Err(PsaError::InvalidArgument)
        );
    }
}
