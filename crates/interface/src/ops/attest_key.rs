//! AttestKey (0x001E): answer an attestation challenge, proving where a key lives.

use crate::error::BodyError;
use crate::proto::attest_key as proto;
use crate::secret::SecretBytes;
use proto::{attestation_mechanism_params as params, attestation_output as output};

/// Attest `attested_key_name` with the challenge in `parameters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the key to attest, in the caller's namespace.
    pub attested_key_name: String,
    /// The attestation mechanism and its challenge.
    pub parameters: AttestationMechanismParams,
    /// Name of the attesting key; `None` selects the default key (the TPM endorsement key).
    /// Sent as an empty string, so `Some(String::new())` also means the default key.
    pub attesting_key_name: Option<String>,
}

/// The answer to the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The mechanism's output.
    pub output: AttestationOutput,
}

/// Attestation mechanisms and their challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationMechanismParams {
    /// TPM 2.0 `ActivateCredential`.
    ActivateCredential {
        /// The `TPM2B_ID_OBJECT` credential blob made by the verifier.
        credential_blob: Vec<u8>,
        /// The `TPM2B_ENCRYPTED_SECRET` that goes with it.
        secret: Vec<u8>,
    },
}

/// Output of the attestation, per mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttestationOutput {
    /// TPM 2.0 `ActivateCredential`.
    ActivateCredential {
        /// The decrypted credential (`TPM2B_DIGEST` buffer); secret, as it proves possession.
        credential: SecretBytes,
    },
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        let parameters = op
            .parameters
            .ok_or(BodyError::InvalidEncoding("parameters"))?;
        let parameters = match parameters.mechanism {
            Some(params::Mechanism::ActivateCredential(params::ActivateCredential {
                credential_blob,
                secret,
            })) => AttestationMechanismParams::ActivateCredential {
                credential_blob,
                secret,
            },
            None => return Err(BodyError::InvalidEncoding("parameters.mechanism")),
        };
        Ok(Request {
            attested_key_name: op.attested_key_name,
            parameters,
            attesting_key_name: Some(op.attesting_key_name).filter(|name| !name.is_empty()),
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        let mechanism = match request.parameters {
            AttestationMechanismParams::ActivateCredential {
                credential_blob,
                secret,
            } => params::Mechanism::ActivateCredential(params::ActivateCredential {
                credential_blob,
                secret,
            }),
        };
        Ok(proto::Operation {
            attested_key_name: request.attested_key_name,
            parameters: Some(proto::AttestationMechanismParams {
                mechanism: Some(mechanism),
            }),
            attesting_key_name: request.attesting_key_name.unwrap_or_default(),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        let out = result.output.ok_or(BodyError::InvalidEncoding("output"))?;
        let output = match out.mechanism {
            Some(output::Mechanism::ActivateCredential(output::ActivateCredential {
                credential,
            })) => AttestationOutput::ActivateCredential {
                credential: SecretBytes::new(credential),
            },
            None => return Err(BodyError::InvalidEncoding("output.mechanism")),
        };
        Ok(Response { output })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        let mechanism = match response.output {
            AttestationOutput::ActivateCredential { mut credential } => {
                output::Mechanism::ActivateCredential(output::ActivateCredential {
                    credential: credential.take(),
                })
            }
        };
        Ok(proto::Result {
            output: Some(proto::AttestationOutput {
                mechanism: Some(mechanism),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{decode_request, decode_response, encode_request, encode_response, AttestKey};

    fn request(attesting_key_name: Option<&str>) -> Request {
        Request {
            attested_key_name: "ak".into(),
            parameters: AttestationMechanismParams::ActivateCredential {
                credential_blob: vec![1, 2],
                secret: vec![3],
            },
            attesting_key_name: attesting_key_name.map(Into::into),
        }
    }

    #[test]
    fn request_encodes_field_by_field() {
        let body = encode_request::<AttestKey>(request(Some("ek"))).unwrap();
        // attested_key_name "ak"; parameters { activate_credential { blob 0102, secret 03 } };
        // attesting_key_name "ek".
        let expected = hex::decode("0a02616b12090a070a0201021201031a02656b").unwrap();
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(
            decode_request::<AttestKey>(&body).unwrap(),
            request(Some("ek"))
        );
    }

    #[test]
    fn default_attesting_key_is_an_absent_name() {
        let body = encode_request::<AttestKey>(request(None)).unwrap();
        assert_eq!(
            proto::Operation::decode(body.as_slice())
                .unwrap()
                .attesting_key_name,
            ""
        );
        assert_eq!(decode_request::<AttestKey>(&body).unwrap(), request(None));
        let body = encode_request::<AttestKey>(request(Some(""))).unwrap();
        assert_eq!(decode_request::<AttestKey>(&body).unwrap(), request(None));
    }

    #[test]
    fn missing_parameters_or_mechanism_are_invalid_encoding() {
        assert_eq!(
            decode_request::<AttestKey>(b"\x0a\x02ak"),
            Err(BodyError::InvalidEncoding("parameters"))
        );
        let unset = proto::Operation {
            attested_key_name: "ak".into(),
            parameters: Some(proto::AttestationMechanismParams { mechanism: None }),
            attesting_key_name: String::new(),
        };
        assert_eq!(
            decode_request::<AttestKey>(&unset.encode_to_vec()),
            Err(BodyError::InvalidEncoding("parameters.mechanism"))
        );
    }

    #[test]
    fn credential_round_trips_and_is_not_shown_by_debug() {
        let response = Response {
            output: AttestationOutput::ActivateCredential {
                credential: SecretBytes::new(b"nonce-123".to_vec()),
            },
        };
        assert!(!format!("{response:?}").contains("nonce"));
        let body = encode_response::<AttestKey>(response.clone()).unwrap();
        // output { activate_credential { credential: "nonce-123" } }
        assert_eq!(body.as_slice(), b"\x0a\x0d\x0a\x0b\x0a\x09nonce-123");
        assert_eq!(decode_response::<AttestKey>(&body).unwrap(), response);
    }

    #[test]
    fn missing_output_or_mechanism_are_invalid_encoding() {
        assert_eq!(
            decode_response::<AttestKey>(&[]),
            Err(BodyError::InvalidEncoding("output"))
        );
        let unset = proto::Result {
            output: Some(proto::AttestationOutput { mechanism: None }),
        };
        assert_eq!(
            decode_response::<AttestKey>(&unset.encode_to_vec()),
            Err(BodyError::InvalidEncoding("output.mechanism"))
        );
    }
}
