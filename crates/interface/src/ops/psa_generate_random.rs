//! PsaGenerateRandom (0x000D): a number of random bytes from the provider's generator.

use crate::error::BodyError;
use crate::proto::psa_generate_random as proto;
use crate::secret::SecretBytes;

/// Ask for `size` random bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Number of bytes wanted; 0 gives an empty result. A `uint64` on the wire.
    pub size: usize,
}

/// Exactly `size` random bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The random bytes; secret, since callers use them as keys, nonces or seeds.
    pub random_bytes: SecretBytes,
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        // Only reachable on targets whose usize is narrower than 64 bits.
        let size = usize::try_from(op.size).map_err(|_| BodyError::InvalidEncoding("size"))?;
        Ok(Request { size })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        let size = u64::try_from(request.size).map_err(|_| BodyError::Serialize)?;
        Ok(proto::Operation { size })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            random_bytes: SecretBytes::new(result.random_bytes),
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(mut response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            random_bytes: response.random_bytes.take(),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaGenerateRandom,
    };

    /// Request and response lines of `testdata/vectors/direct-17-generate-random-16.hex`.
    const CAPTURED_REQUEST: &str = "10a7c05e1e0001000000010000000000000000000001020000000a000d000000000000000810766563746f722d617070";
    const CAPTURED_RESPONSE: &str = "10a7c05e1e00010000000100000000000000000000001200000000000d000000000000000a1070fd22fd13bb17fb5294945a77fa3f61";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    #[test]
    fn captured_exchange_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_REQUEST);
        let request = decode_request::<PsaGenerateRandom>(&body).unwrap();
        assert_eq!(request, Request { size: 16 });
        assert_eq!(
            encode_request::<PsaGenerateRandom>(request)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );

        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<PsaGenerateRandom>(&body).unwrap();
        assert_eq!(response.random_bytes.len(), 16);
        assert_eq!(
            encode_response::<PsaGenerateRandom>(response)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn size_zero_is_an_empty_body_and_an_empty_result() {
        assert!(encode_request::<PsaGenerateRandom>(Request { size: 0 })
            .unwrap()
            .is_empty());
        assert_eq!(
            decode_request::<PsaGenerateRandom>(&[]),
            Ok(Request { size: 0 })
        );
        let response = Response {
            random_bytes: SecretBytes::default(),
        };
        assert!(encode_response::<PsaGenerateRandom>(response)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn sizes_beyond_usize_are_invalid_encoding() {
        let body = proto::Operation { size: u64::MAX }.encode_to_vec();
        let decoded = decode_request::<PsaGenerateRandom>(&body);
        match usize::try_from(u64::MAX) {
            Ok(size) => assert_eq!(decoded, Ok(Request { size })),
            Err(_) => assert_eq!(decoded, Err(BodyError::InvalidEncoding("size"))),
        }
    }

    #[test]
    fn random_bytes_are_not_shown_by_debug() {
        let response = Response {
            random_bytes: SecretBytes::new(vec![0xAB, 0xCD]),
        };
        let shown = format!("{response:?}");
        assert!(!shown.contains("171") && !shown.contains("AB"), "{shown}");
    }
}
