//! PsaDestroyKey (0x0003): destroy a named key and free its name.

use crate::error::BodyError;
use crate::proto::psa_destroy_key as proto;

/// Destroy the key `key_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Name of the key, in the caller's namespace.
    pub key_name: String,
}

/// PsaDestroyKey returns nothing; the status says it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

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
    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaDestroyKey,
    };

    /// Request lines of `testdata/vectors/direct-12-destroy-key.hex` and
    /// `direct-15-destroy-key-missing.hex`.
    const CAPTURED_REQUEST: &str = "10a7c05e1e00010000000100000000000000000000010c0000000a0003000000000000000a0a766563746f722d6b6579766563746f722d617070";
    const CAPTURED_REQUEST_MISSING: &str = "10a7c05e1e0001000000010000000000000000000001140000000a0003000000000000000a12766563746f722d6d697373696e672d6b6579766563746f722d617070";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    #[test]
    fn captured_requests_decode_and_re_encode_identically() {
        for (frame, name) in [
            (CAPTURED_REQUEST, "vector-key"),
            (CAPTURED_REQUEST_MISSING, "vector-missing-key"),
        ] {
            let body = captured_body(frame);
            let request = decode_request::<PsaDestroyKey>(&body).unwrap();
            assert_eq!(request.key_name, name);
            assert_eq!(
                encode_request::<PsaDestroyKey>(request).unwrap().as_slice(),
                body.as_slice()
            );
        }
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaDestroyKey>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaDestroyKey>(&[]), Ok(Response));
    }

    #[test]
    fn a_name_that_is_not_utf8_is_a_deserialize_error() {
        assert_eq!(
            decode_request::<PsaDestroyKey>(&[0x0a, 0x02, 0xc3, 0x28]),
            Err(BodyError::Deserialize)
        );
    }
}
