//! ListClients (0x001B): names of every application owning a key (administrators only).

use crate::error::BodyError;
use crate::proto::list_clients as proto;

/// ListClients takes no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The application names, sorted ascending without duplicates by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Names of the applications that own at least one key.
    pub clients: Vec<String>,
}

impl Response {
    /// The bytes the name `client` adds to an encoded ListClients answer.
    pub fn entry_len(client: &str) -> usize {
        let len = client.len();
        1 + prost::encoding::encoded_len_varint(len as u64) + len
    }
}

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(_: proto::Operation) -> Result<Self, BodyError> {
        Ok(Request)
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(_: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {})
    }
}

impl TryFrom<proto::Result> for Response {
    type Error = BodyError;
    fn try_from(result: proto::Result) -> Result<Self, BodyError> {
        Ok(Response {
            clients: result.clients,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            clients: response.clients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, ListClients,
    };

    #[test]
    fn client_names_round_trip_in_order() {
        let response = Response {
            clients: vec!["alice".into(), String::new(), "bob".into()],
        };
        let body = encode_response::<ListClients>(response.clone()).unwrap();
        // Repeated string: each name is its own field 1 entry, the empty one included.
        assert_eq!(body.as_slice(), b"\x0a\x05alice\x0a\x00\x0a\x03bob");
        assert_eq!(decode_response::<ListClients>(&body).unwrap(), response);
    }

    #[test]
    fn empty_request_round_trips() {
        assert!(encode_request::<ListClients>(Request).unwrap().is_empty());
        assert_eq!(decode_request::<ListClients>(&[]), Ok(Request));
    }

    #[test]
    fn garbage_is_a_deserialize_error() {
        assert_eq!(
            decode_response::<ListClients>(&[0x0a, 0x05, b'a']),
            Err(BodyError::Deserialize)
        );
    }

    #[test]
    fn entry_len_is_what_each_name_adds_to_the_answer() {
        let clients: Vec<String> = vec![String::new(), "1000".into(), "a".repeat(200)];
        let body = encode_response::<ListClients>(Response {
            clients: clients.clone(),
        })
        .unwrap();
        let total: usize = clients.iter().map(|c| Response::entry_len(c)).sum();
        assert_eq!(total, body.len());
    }
}
