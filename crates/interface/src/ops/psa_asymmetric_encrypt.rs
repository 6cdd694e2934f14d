//! PsaAsymmetricEncrypt (0x000A): encrypt a short message with a named RSA key.

use psa_crypto::types::algorithm::AsymmetricEncryption;
use psa_crypto::types::key::Attributes;
use psa_crypto::types::status::Error as PsaError;

use crate::error::BodyError;
use crate::proto::psa_asymmetric_encrypt as proto;
use crate::secret::SecretBytes;

/// Encrypt `plaintext` with the key `key_name` (an RSA key pair or public key) using `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the encrypting key, in the caller's namespace.
    pub key_name: String,
    /// Padding scheme; must be permitted by the key's policy.
    pub alg: AsymmetricEncryption,
    /// The message to encrypt; at most k−11 bytes (PKCS#1 v1.5) or k−2·hLen−2 (OAEP).
    pub plaintext: SecretBytes,
    /// OAEP label. The wire has no "absent" state: an empty `salt` field is `None`, and
    /// `Some(vec![])` is sent as an empty field, so it decodes back as `None`.
    pub salt: Option<Vec<u8>>,
}

/// The ciphertext, as long as the RSA modulus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The encrypted message.
    pub ciphertext: Vec<u8>,
}

impl Request {
    /// The policy checks that need the key's attributes (docs/protocol.md#asymmetric-encryption).
    ///
    /// # Errors
    /// `NotPermitted` when the key may not encrypt, its policy does not permit `alg`, or it is
    /// not an RSA key; `InvalidArgument` when a salt is given with PKCS#1 v1.5 (which has no
    /// label) or the plaintext is empty.
    pub fn validate(&self, attributes: Attributes) -> Result<(), PsaError> {
        attributes.can_encrypt_message()?;
        attributes.permits_alg(self.alg.into())?;
        attributes.compatible_with_alg(self.alg.into())?;
        let salt_without_label =
            self.alg == AsymmetricEncryption::RsaPkcs1v15Crypt && self.salt.is_some();
        if salt_without_label || self.plaintext.is_empty() {
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
            plaintext: SecretBytes::new(op.plaintext),
            salt: Some(op.salt).filter(|salt| !salt.is_empty()),
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(mut request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
            alg: Some(request.alg.into()),
            plaintext: request.plaintext.take(),
            salt: request.salt.unwrap_or_default(),
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
    use proptest::prelude::*;
    use prost::Message;
    use psa_crypto::types::algorithm::{AsymmetricSignature, Hash, SignHash};
    use psa_crypto::types::key::{EccFamily, Lifetime, Policy, Type, UsageFlags};

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaAsymmetricEncrypt,
    };
    use crate::proto::psa_algorithm::algorithm as pa;

    const OAEP_SHA256: AsymmetricEncryption = AsymmetricEncryption::RsaOaep {
        hash_alg: Hash::Sha256,
    };

    fn rsa_key(alg: AsymmetricEncryption) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        usage_flags.set_encrypt();
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type: Type::RsaPublicKey,
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
            plaintext: SecretBytes::from(&b"secret"[..]),
            salt,
        }
    }

    #[test]
    fn request_round_trips_with_and_without_salt() {
        let body =
            encode_request::<PsaAsymmetricEncrypt>(request(OAEP_SHA256, Some(b"label".to_vec())))
                .unwrap();
        // alg: rsa_oaep(2) { hash_alg: SHA_256 }; plaintext; salt.
        let expected =
            hex::decode("0a016b 1204 12020807 1a06736563726574 22056c6162656c".replace(' ', ""))
                .unwrap();
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<PsaAsymmetricEncrypt>(&body).unwrap(),
            request(OAEP_SHA256, Some(b"label".to_vec()))
        );

        let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
        let body = encode_request::<PsaAsymmetricEncrypt>(request(v15, None)).unwrap();
        assert_eq!(
            body.as_slice(),
            hex::decode("0a016b12020a001a06736563726574")
                .unwrap()
                .as_slice()
        );
        assert_eq!(
            decode_request::<PsaAsymmetricEncrypt>(&body).unwrap(),
            request(v15, None)
        );
    }

    #[test]
    fn an_empty_salt_is_no_salt() {
        let body =
            encode_request::<PsaAsymmetricEncrypt>(request(OAEP_SHA256, Some(Vec::new()))).unwrap();
        assert_eq!(
            decode_request::<PsaAsymmetricEncrypt>(&body).unwrap().salt,
            None
        );
    }

    #[test]
    fn response_round_trips() {
        let response = Response {
            ciphertext: vec![0x42; 256],
        };
        let body = encode_response::<PsaAsymmetricEncrypt>(response.clone()).unwrap();
        assert_eq!(
            decode_response::<PsaAsymmetricEncrypt>(&body).unwrap(),
            response
        );
    }

    #[test]
    fn plaintext_is_not_shown_by_debug() {
        let shown = format!("{:?}", request(OAEP_SHA256, None));
        assert!(
            !shown.contains("115, 101") && shown.contains("6 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn missing_or_unset_algorithm_is_invalid_encoding() {
        let body = proto::Operation {
            key_name: "k".into(),
            alg: None,
            plaintext: vec![1],
            salt: vec![],
        }
        .encode_to_vec();
        assert_eq!(
            decode_request::<PsaAsymmetricEncrypt>(&body),
            Err(BodyError::InvalidEncoding("alg"))
        );
        let unset = proto::Operation {
            key_name: "k".into(),
            alg: Some(pa::AsymmetricEncryption { variant: None }),
            plaintext: vec![1],
            salt: vec![],
        };
        assert_eq!(
            decode_request::<PsaAsymmetricEncrypt>(&unset.encode_to_vec()),
            Err(BodyError::InvalidEncoding("alg.variant"))
        );
        // rsa_oaep { hash_alg: HASH_NONE }
        let body = hex::decode("0a016b12021200").unwrap();
        assert_eq!(
            decode_request::<PsaAsymmetricEncrypt>(&body),
            Err(BodyError::InvalidEncoding("alg.rsa_oaep.hash_alg"))
        );
    }

    #[test]
    fn validate_accepts_a_matching_key() {
        assert_eq!(
            request(OAEP_SHA256, Some(b"label".to_vec())).validate(rsa_key(OAEP_SHA256)),
            Ok(())
        );
        let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
        assert_eq!(request(v15, None).validate(rsa_key(v15)), Ok(()));
    }

    #[test]
    fn validate_needs_the_encrypt_flag() {
        let mut attributes = rsa_key(OAEP_SHA256);
        attributes.policy.usage_flags = UsageFlags::default();
        attributes.policy.usage_flags.set_decrypt();
        assert_eq!(
            request(OAEP_SHA256, None).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_a_permitted_algorithm() {
        let oaep_sha512 = AsymmetricEncryption::RsaOaep {
            hash_alg: Hash::Sha512,
        };
        assert_eq!(
            request(oaep_sha512, None).validate(rsa_key(OAEP_SHA256)),
            Err(PsaError::NotPermitted)
        );
        let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
        assert_eq!(
            request(v15, None).validate(rsa_key(OAEP_SHA256)),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_needs_an_rsa_key() {
        let mut attributes = rsa_key(OAEP_SHA256);
        attributes.key_type = Type::EccPublicKey {
            curve_family: EccFamily::SecpR1,
        };
        attributes.bits = 256;
        assert_eq!(
            request(OAEP_SHA256, None).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_checks_the_flag_before_the_arguments() {
        let mut attributes = rsa_key(OAEP_SHA256);
        attributes.policy.usage_flags = UsageFlags::default();
        let empty = Request {
            plaintext: SecretBytes::default(),
            ..request(OAEP_SHA256, None)
        };
        assert_eq!(empty.validate(attributes), Err(PsaError::NotPermitted));
        // A signature policy does not permit an encryption algorithm either.
        let mut attributes = rsa_key(OAEP_SHA256);
        attributes.policy.permitted_algorithms = AsymmetricSignature::RsaPkcs1v15Sign {
            hash_alg: SignHash::Specific(Hash::Sha256),
        }
        .into();
        assert_eq!(
            request(OAEP_SHA256, None).validate(attributes),
            Err(PsaError::NotPermitted)
        );
    }

    #[test]
    fn validate_refuses_a_salt_with_pkcs1v15() {
        let v15 = AsymmetricEncryption::RsaPkcs1v15Crypt;
        assert_eq!(
            request(v15, Some(vec![1])).validate(rsa_key(v15)),
            Err(PsaError::InvalidArgument)
        );
    }

    #[test]
    fn validate_refuses_an_empty_plaintext() {
        let empty = Request {
            plaintext: SecretBytes::default(),
            ..request(OAEP_SHA256, None)
        };
        assert_eq!(
            empty.validate(rsa_key(OAEP_SHA256)),
            Err(PsaError::InvalidArgument)
        );
    }

    proptest! {
        #[test]
        fn any_request_round_trips(
            name in ".*",
            plaintext in proptest::collection::vec(any::<u8>(), 0..64),
            salt in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..32)),
        ) {
            let request = Request { key_name: name, alg: OAEP_SHA256, plaintext: SecretBytes::new(plaintext), salt };
            let body = encode_request::<PsaAsymmetricEncrypt>(request.clone()).unwrap();
            prop_assert_eq!(decode_request::<PsaAsymmetricEncrypt>(&body).unwrap(), request);
        }
    }
}
