//! ListClients (0x001B): names of every application owning a key (administrators only).

use crate::error::BodyError;
use crate::ids::AuthType;
use crate::proto::list_clients as proto;

/// ListClients takes no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The application names, sorted ascending without duplicates by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Names of the applications that own at least one key.
    pub clients: Vec<String>,
    /// Bulwark extension: each (name, authenticator) that owns keys, sorted by name then
    /// authenticator. Empty from a service that does not send it (upstream).
    pub owners: Vec<Owner>,
}

/// An owner of keys: an application name under one authenticator.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Owner {
    /// The application name.
    pub name: String,
    /// The authenticator it owns keys under.
    pub auth_type: AuthType,
}

impl Response {
    /// The bytes the name `client` adds to an encoded ListClients answer.
    pub fn entry_len(client: &str) -> usize {
        let len = client.len();
        1 + prost::encoding::encoded_len_varint(len as u64) + len
    }

    /// The bytes an owner named `name` adds to an encoded ListClients answer.
    pub fn owner_len(name: &str) -> usize {
        // The name field (absent when empty, as every proto3 default), and the auth type (one
        // byte of tag, one of value: owners are never auth type 0).
        let name_field = if name.is_empty() {
            0
        } else {
            Self::entry_len(name)
        };
        let entry = name_field + 2;
        1 + prost::encoding::encoded_len_varint(entry as u64) + entry
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
        let owners = result
            .owners
            .into_iter()
            .map(|owner| {
                let auth_type = u8::try_from(owner.auth_type)
                    .ok()
                    .and_then(|id| AuthType::try_from(id).ok())
                    .ok_or(BodyError::AuthenticatorDoesNotExist(owner.auth_type))?;
                Ok(Owner {
                    name: owner.name,
                    auth_type,
                })
            })
            .collect::<Result<_, BodyError>>()?;
        Ok(Response {
            clients: result.clients,
            owners,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            clients: response.clients,
            owners: response
                .owners
                .into_iter()
                .map(|owner| proto::Owner {
                    name: owner.name,
                    auth_type: owner.auth_type.value().into(),
                })
                .collect(),
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
            owners: vec![],
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
        let owners: Vec<Owner> = clients
            .iter()
            .map(|name| Owner {
                name: name.clone(),
                auth_type: AuthType::UnixPeerCredentials,
            })
            .collect();
        let body = encode_response::<ListClients>(Response {
            clients: clients.clone(),
            owners,
        })
        .unwrap();
        let total: usize = clients
            .iter()
            .map(|c| Response::entry_len(c) + Response::owner_len(c))
            .sum();
        assert_eq!(total, body.len());
    }

    #[test]
    fn owners_travel_in_field_2_beside_the_names_upstream_reads() {
        let response = Response {
            clients: vec!["0".into()],
            owners: vec![
                Owner {
                    name: "0".into(),
                    auth_type: AuthType::Direct,
                },
                Owner {
                    name: "0".into(),
                    auth_type: AuthType::UnixPeerCredentials,
                },
            ],
        };
        let body = encode_response::<ListClients>(response.clone()).unwrap();
        assert_eq!(
            body.as_slice(),
            b"\x0a\x010\x12\x05\x0a\x010\x10\x01\x12\x05\x0a\x010\x10\x03"
        );
        assert_eq!(decode_response::<ListClients>(&body).unwrap(), response);
        // Without the extension (an upstream service), no owners.
        let upstream = decode_response::<ListClients>(b"\x0a\x010").unwrap();
        assert!(upstream.owners.is_empty());
        assert_eq!(
            decode_response::<ListClients>(b"\x12\x04\x0a\x00\x10\x09"),
            Err(BodyError::AuthenticatorDoesNotExist(9))
        );
    }
}
