//! ListOpcodes (0x0009): the opcodes one provider advertises.

use std::collections::BTreeSet;

use crate::error::BodyError;
use crate::ids::ProviderId;
use crate::ops::Opcode;
use crate::proto::list_opcodes as proto;

/// Ask which opcodes `provider_id` serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The provider to query (the core provider included).
    pub provider_id: ProviderId,
}

/// The opcodes the provider advertises.
///
/// The wire list has no defined order (the reference service iterates a hash set), so it is
/// held as a set; encoding sends it in ascending opcode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The advertised opcodes.
    pub opcodes: BTreeSet<Opcode>,
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        let provider_id = u8::try_from(op.provider_id)
            .ok()
            .and_then(|v| ProviderId::try_from(v).ok())
            .ok_or(BodyError::ProviderDoesNotExist(op.provider_id))?;
        Ok(Request { provider_id })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            provider_id: request.provider_id.value().into(),
        })
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        let opcodes = result
            .opcodes
            .into_iter()
            .map(|v| Opcode::try_from(v).map_err(BodyError::OpcodeDoesNotExist))
            .collect::<Result<_, _>>()?;
        Ok(Response { opcodes })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            opcodes: response.opcodes.into_iter().map(Opcode::value).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, ListOpcodes,
    };

    /// Request and response lines of `testdata/vectors/direct-03-list-opcodes-provider1.hex`.
    const CAPTURED_REQUEST: &str = "10a7c05e1e0001000000000000000000000000000001020000000a0009000000000000000801766563746f722d617070";
    const CAPTURED_RESPONSE: &str = "10a7c05e1e000100000000000000000000000000000012000000000009000000000000000a10062004130b1107050a0c120f100d0302";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    #[test]
    fn captured_request_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_REQUEST);
        let request = decode_request::<ListOpcodes>(&body).unwrap();
        assert_eq!(request.provider_id, ProviderId::MbedCrypto);
        assert_eq!(
            encode_request::<ListOpcodes>(request).unwrap().as_slice(),
            body.as_slice()
        );
    }

    #[test]
    fn captured_response_is_the_mbed_crypto_set() {
        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<ListOpcodes>(&body).unwrap();
        let values: Vec<u32> = response.opcodes.iter().map(|o| o.value()).collect();
        assert_eq!(
            values,
            vec![2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 15, 16, 17, 18, 19, 32]
        );

        // The capture's order is the service's hash-set order; ours is ascending, so compare
        // the re-encoded list as a set of the same size.
        let again = encode_response::<ListOpcodes>(response.clone()).unwrap();
        let mut captured = proto::Result::decode(body.as_slice()).unwrap().opcodes;
        let ours = proto::Result::decode(again.as_slice()).unwrap().opcodes;
        captured.sort_unstable();
        assert_eq!(ours, captured);
        assert_eq!(again.len(), body.len());
        assert_eq!(decode_response::<ListOpcodes>(&again).unwrap(), response);
    }

    #[test]
    fn every_provider_id_round_trips() {
        for provider_id in ProviderId::ALL {
            let body = encode_request::<ListOpcodes>(Request {
                provider_id: *provider_id,
            })
            .unwrap();
            assert_eq!(
                decode_request::<ListOpcodes>(&body).unwrap().provider_id,
                *provider_id
            );
        }
        // An absent field is provider 0, the core provider.
        assert_eq!(
            decode_request::<ListOpcodes>(&[]).unwrap().provider_id,
            ProviderId::Core
        );
    }

    #[test]
    fn provider_ids_above_five_do_not_exist() {
        for id in [6, 255, 256, u32::MAX] {
            let body = proto::Operation { provider_id: id }.encode_to_vec();
            assert_eq!(
                decode_request::<ListOpcodes>(&body),
                Err(BodyError::ProviderDoesNotExist(id))
            );
        }
    }

    #[test]
    fn unknown_opcodes_are_rejected() {
        for unknown in [0, 0x1D, Opcode::next_unassigned(), u32::MAX] {
            let body = proto::Result {
                opcodes: vec![1, unknown],
            }
            .encode_to_vec();
            assert_eq!(
                decode_response::<ListOpcodes>(&body),
                Err(BodyError::OpcodeDoesNotExist(unknown))
            );
        }
    }

    #[test]
    fn core_answer_encodes_in_ascending_order() {
        let opcodes = [
            Opcode::ListKeys,
            Opcode::Ping,
            Opcode::ListAuthenticators,
            Opcode::ListOpcodes,
            Opcode::ListProviders,
        ];
        let response = Response {
            opcodes: opcodes.into_iter().collect(),
        };
        let body = encode_response::<ListOpcodes>(response).unwrap();
        // Packed repeated uint32: tag 0x0a, length 5, then 1, 8, 9, 14, 26.
        assert_eq!(body.as_slice(), [0x0a, 0x05, 0x01, 0x08, 0x09, 0x0e, 0x1a]);
    }
}
