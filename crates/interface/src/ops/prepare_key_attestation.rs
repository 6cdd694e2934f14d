//! PrepareKeyAttestation (0x001F): what a verifier needs to build an attestation challenge.

use crate::error::BodyError;
use crate::proto::prepare_key_attestation as proto;
use proto::{prepare_key_attestation_output as output, prepare_key_attestation_params as params};

/// Prepare the attestation of a key with the mechanism in `parameters`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The attestation mechanism and its arguments.
    pub parameters: PrepareKeyAttestationParams,
}

impl Request {
    /// The name of the key to attest, whatever the mechanism.
    pub fn attested_key_name(&self) -> &str {
        match &self.parameters {
            PrepareKeyAttestationParams::ActivateCredential {
                attested_key_name, ..
            } => attested_key_name,
        }
    }
}

/// The material the verifier needs, for the mechanism that was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The mechanism's output.
    pub output: PrepareKeyAttestationOutput,
}

/// Attestation mechanisms and their preparation arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareKeyAttestationParams {
    /// TPM 2.0 `MakeCredential`/`ActivateCredential`.
    ActivateCredential {
        /// Name of the key to attest, in the caller's namespace.
        attested_key_name: String,
        /// Name of the attesting key; `None` selects the default key (the TPM endorsement
        /// key). Sent as an empty string, so `Some(String::new())` also means the default key.
        attesting_key_name: Option<String>,
    },
}

/// Output of the preparation, per mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareKeyAttestationOutput {
    /// TPM 2.0 `MakeCredential`/`ActivateCredential`.
    ActivateCredential {
        /// The `TPM2B_NAME` contents of the attested key.
        name: Vec<u8>,
        /// The `TPM2B_PUBLIC` public area of the attested key.
        public: Vec<u8>,
        /// The attesting key's public part, in PsaExportPublicKey format.
        attesting_key_pub: Vec<u8>,
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
                attested_key_name,
                attesting_key_name,
            })) => PrepareKeyAttestationParams::ActivateCredential {
                attested_key_name,
                attesting_key_name: Some(attesting_key_name).filter(|name| !name.is_empty()),
            },
            None => return Err(BodyError::InvalidEncoding("parameters.mechanism")),
        };
        Ok(Request { parameters })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        let mechanism = match request.parameters {
            PrepareKeyAttestationParams::ActivateCredential {
                attested_key_name,
                attesting_key_name,
            } => params::Mechanism::ActivateCredential(params::ActivateCredential {
                attested_key_name,
                attesting_key_name: attesting_key_name.unwrap_or_default(),
            }),
        };
        Ok(proto::Operation {
            parameters: Some(proto::PrepareKeyAttestationParams {
                mechanism: Some(mechanism),
            }),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        let out = result.output.ok_or(BodyError::InvalidEncoding("output"))?;
        let output = match out.mechanism {
            Some(output::Mechanism::ActivateCredential(output::ActivateCredential {
                name,
                public,
                attesting_key_pub,
            })) => PrepareKeyAttestationOutput::ActivateCredential {
                name,
                public,
                attesting_key_pub,
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
            PrepareKeyAttestationOutput::ActivateCredential {
                name,
                public,
                attesting_key_pub,
            } => output::Mechanism::ActivateCredential(output::ActivateCredential {
                name,
                public,
                attesting_key_pub,
            }),
        };
        Ok(proto::Result {
            output: Some(proto::PrepareKeyAttestationOutput {
                mechanism: Some(mechanism),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PrepareKeyAttestation,
    };

    fn request(attesting_key_name: Option<&str>) -> Request {
        Request {
            parameters: PrepareKeyAttestationParams::ActivateCredential {
                attested_key_name: "ak".into(),
                attesting_key_name: attesting_key_name.map(Into::into),
            },
        }
    }

    #[test]
    fn default_attesting_key_is_an_absent_name() {
        let body = encode_request::<PrepareKeyAttestation>(request(None)).unwrap();
        // parameters { activate_credential { attested_key_name: "ak" } }
        assert_eq!(
            body.as_slice(),
            hex::decode("0a060a040a02616b").unwrap().as_slice()
        );
        assert_eq!(
            decode_request::<PrepareKeyAttestation>(&body).unwrap(),
            request(None)
        );
    }

    #[test]
    fn named_attesting_key_round_trips() {
        let body = encode_request::<PrepareKeyAttestation>(request(Some("ek"))).unwrap();
        assert_eq!(
            decode_request::<PrepareKeyAttestation>(&body).unwrap(),
            request(Some("ek"))
        );
    }

    #[test]
    fn empty_attesting_key_name_reads_back_as_the_default() {
        let body = encode_request::<PrepareKeyAttestation>(request(Some(""))).unwrap();
        assert_eq!(
            decode_request::<PrepareKeyAttestation>(&body).unwrap(),
            request(None)
        );
    }

    #[test]
    fn missing_parameters_or_mechanism_are_invalid_encoding() {
        assert_eq!(
            decode_request::<PrepareKeyAttestation>(&[]),
            Err(BodyError::InvalidEncoding("parameters"))
        );
        let unset = proto::Operation {
            parameters: Some(proto::PrepareKeyAttestationParams { mechanism: None }),
        };
        assert_eq!(
            decode_request::<PrepareKeyAttestation>(&unset.encode_to_vec()),
            Err(BodyError::InvalidEncoding("parameters.mechanism"))
        );
    }

    #[test]
    fn output_round_trips() {
        let response = Response {
            output: PrepareKeyAttestationOutput::ActivateCredential {
                name: vec![0x00, 0x0b, 1, 2],
                public: vec![3; 10],
                attesting_key_pub: vec![4; 5],
            },
        };
        let body = encode_response::<PrepareKeyAttestation>(response.clone()).unwrap();
        assert_eq!(
            decode_response::<PrepareKeyAttestation>(&body).unwrap(),
            response
        );
    }

    #[test]
    fn missing_output_or_mechanism_are_invalid_encoding() {
        assert_eq!(
            decode_response::<PrepareKeyAttestation>(&[]),
            Err(BodyError::InvalidEncoding("output"))
        );
        let unset = proto::Result {
            output: Some(proto::PrepareKeyAttestationOutput { mechanism: None }),
        };
        assert_eq!(
            decode_response::<PrepareKeyAttestation>(&unset.encode_to_vec()),
            Err(BodyError::InvalidEncoding("output.mechanism"))
        );
    }
}
