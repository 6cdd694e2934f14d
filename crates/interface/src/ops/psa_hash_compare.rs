//! PsaHashCompare (0x0010): check a message against an expected digest.

use psa_crypto::types::algorithm::Hash;

use crate::error::BodyError;
use crate::proto::psa_hash_compare as proto;
use crate::psa::{hash_from_proto, hash_to_proto};

/// Check that `alg(input)` equals `hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The hash algorithm.
    pub alg: Hash,
    /// The message to hash.
    pub input: Vec<u8>,
    /// The expected digest.
    pub hash: Vec<u8>,
}

/// PsaHashCompare returns nothing: Success on a match, InvalidSignature on a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request {
            alg: hash_from_proto(op.alg, "alg")?,
            input: op.input,
            hash: op.hash,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            alg: hash_to_proto(request.alg),
            input: request.input,
            hash: request.hash,
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
    use prost::Message;

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, PsaHashCompare,
    };

    #[test]
    fn request_round_trips() {
        let request = Request {
            alg: Hash::Sha3_512,
            input: b"abc".to_vec(),
            hash: vec![0x11; 64],
        };
        let body = encode_request::<PsaHashCompare>(request.clone()).unwrap();
        let mut expected = hex::decode("080f1203616263").unwrap();
        expected.extend([0x1a, 0x40]);
        expected.extend([0x11; 64]);
        assert_eq!(body.as_slice(), expected.as_slice());
        assert_eq!(decode_request::<PsaHashCompare>(&body).unwrap(), request);
    }

    #[test]
    fn hash_none_and_unknown_hashes_are_invalid_encoding() {
        for alg in [0, 16, i32::MAX] {
            let body = proto::Operation {
                alg,
                input: vec![1],
                hash: vec![2],
            }
            .encode_to_vec();
            assert_eq!(
                decode_request::<PsaHashCompare>(&body),
                Err(BodyError::InvalidEncoding("alg")),
                "{alg}"
            );
        }
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<PsaHashCompare>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<PsaHashCompare>(&[]), Ok(Response));
    }
}
