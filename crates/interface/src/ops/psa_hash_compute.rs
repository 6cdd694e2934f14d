//! PsaHashCompute (0x000F): the digest of a message.

use psa_crypto::types::algorithm::Hash;

use crate::error::BodyError;
use crate::proto::psa_hash_compute as proto;
use crate::psa::{hash_from_proto, hash_to_proto};

/// Hash `input` with `alg`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The hash algorithm.
    pub alg: Hash,
    /// The message to hash.
    pub input: Vec<u8>,
}

/// The digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The digest; as long as `alg`'s output (docs/protocol.md#output-sizes).
    pub hash: Vec<u8>,
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            alg: hash_from_proto(op.alg, "alg")?,
            input: op.input,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            alg: hash_to_proto(request.alg),
            input: request.input,
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response { hash: result.hash })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            hash: response.hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaHashCompute,
    };

    /// Request and response lines of `testdata/vectors/direct-16-hash-compute-sha256-abc.hex`.
    const CAPTURED_REQUEST: &str = "10a7c05e1e0001000000010000000000000000000001070000000a000f0000000000000008071203616263766563746f722d617070";
    const CAPTURED_RESPONSE: &str = "10a7c05e1e00010000000100000000000000000000002200000000000f000000000000000a20ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    #[test]
    fn captured_exchange_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_REQUEST);
        let request = decode_request::<PsaHashCompute>(&body).unwrap();
        assert_eq!(
            request,
            Request {
                alg: Hash::Sha256,
                input: b"abc".to_vec()
            }
        );
        assert_eq!(
            encode_request::<PsaHashCompute>(request)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );

        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<PsaHashCompute>(&body).unwrap();
        // FIPS 180-2 test vector: SHA-256("abc").
        let expected =
            hex::decode("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
                .unwrap();
        assert_eq!(response.hash, expected);
        assert_eq!(
            encode_response::<PsaHashCompute>(response)
                .unwrap()
                .as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn hash_none_and_unknown_hashes_are_invalid_encoding() {
        for alg in [0, 16, -1] {
            let body = proto::Operation {
                alg,
                input: b"abc".to_vec(),
            }
            .encode_to_vec();
            assert_eq!(
                decode_request::<PsaHashCompute>(&body),
                Err(BodyError::InvalidEncoding("alg")),
                "{alg}"
            );
        }
        // An empty body leaves `alg` at HASH_NONE.
        assert_eq!(
            decode_request::<PsaHashCompute>(&[]),
            Err(BodyError::InvalidEncoding("alg"))
        );
    }

    #[test]
    fn every_hash_round_trips() {
        for value in 1..=15 {
            let body = proto::Operation {
                alg: value,
                input: vec![],
            }
            .encode_to_vec();
            let request = decode_request::<PsaHashCompute>(&body).unwrap();
            assert_eq!(
                encode_request::<PsaHashCompute>(request)
                    .unwrap()
                    .as_slice(),
                body.as_slice()
            );
        }
    }
}
