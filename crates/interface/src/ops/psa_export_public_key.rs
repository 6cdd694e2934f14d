//! PsaExportPublicKey (0x0007): the public part of a named key pair or public key.

use crate::error::BodyError;
use crate::proto::psa_export_public_key as proto;

/// Export the public part of `key_name`; no usage flag is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the key, in the caller's namespace.
    pub key_name: String,
}

/// The public key, in the export format of docs/protocol.md#key-data-formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The public key bytes (for ECC, the uncompressed point `04 ‖ X ‖ Y`).
    pub data: Vec<u8>,
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            key_name: op.key_name,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            key_name: request.key_name,
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response { data: result.data })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            data: response.data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaExportPublicKey,
    };

    /// Request and response lines of `testdata/vectors/direct-07-export-public-key.hex`.
    const CAPTURED_REQUEST: &str = "10a7c05e1e00010000000100000000000000000000010c0000000a0007000000000000000a0a766563746f722d6b6579766563746f722d617070";
    const CAPTURED_RESPONSE: &str = "10a7c05e1e000100000001000000000000000000000043000000000007000000000000000a4104c94f434021b91d080e45e419297dc3650089e87f1d6bb879f5770603ffbcd143797a9ac4ae192280e50542f81d8d3f33cdeae689c6275078a07d9804fcc6d11e";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    #[test]
    fn captured_request_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_REQUEST);
        let request = decode_request::<PsaExportPublicKey>(&body).unwrap();
        assert_eq!(request.key_name, "vector-key");
        assert_eq!(
            encode_request::<PsaExportPublicKey>(request)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn captured_response_is_an_uncompressed_p256_point() {
        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<PsaExportPublicKey>(&body).unwrap();
        assert_eq!(response.data.len(), 65);
        assert_eq!(response.data[0], 0x04);
        assert_eq!(
            encode_response::<PsaExportPublicKey>(response)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn empty_key_name_is_an_empty_body() {
        let body = encode_request::<PsaExportPublicKey>(Request {
            key_name: String::new(),
        })
        .unwrap();
        assert!(body.is_empty());
        assert_eq!(
            decode_request::<PsaExportPublicKey>(&body)
                .unwrap()
                .key_name,
            ""
        );
    }

    #[test]
    fn truncated_body_is_a_deserialize_error() {
        assert_eq!(
            decode_response::<PsaExportPublicKey>(&[0x0a, 0x41, 0x04]),
            Err(BodyError::Deserialize)
        );
    }
}
