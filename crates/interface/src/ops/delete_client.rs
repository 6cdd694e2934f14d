//! DeleteClient (0x001C): destroy every key of one application (administrators only).

use crate::error::BodyError;
use crate::ids::AuthType;
use crate::proto::delete_client as proto;

/// Wipe the keys of `client`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The application name whose keys are destroyed (the names ListClients gives). A name
    /// that owns no key (under `auth_type`, when given) is answered PsaErrorDoesNotExist.
    pub client: String,
    /// Bulwark extension: only the keys owned under this authenticator; `None` (what
    /// upstream clients send): under every authenticator.
    pub auth_type: Option<AuthType>,
}

/// DeleteClient returns nothing; the status says it all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Response;

impl TryFrom<proto::Operation> for Request {
    type Error = BodyError;
    fn try_from(op: proto::Operation) -> Result<Self, BodyError> {
        let auth_type = op
            .auth_type
            .map(|id| {
                u8::try_from(id)
                    .ok()
                    .and_then(|id| AuthType::try_from(id).ok())
                    .ok_or(BodyError::AuthenticatorDoesNotExist(id))
            })
            .transpose()?;
        Ok(Request {
            client: op.client,
            auth_type,
        })
    }
}

impl TryFrom<Request> for proto::Operation {
    type Error = BodyError;
    fn try_from(request: Request) -> Result<Self, BodyError> {
        Ok(proto::Operation {
            client: request.client,
            auth_type: request.auth_type.map(|auth_type| auth_type.value().into()),
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
        decode_request, decode_response, encode_request, encode_response, DeleteClient,
    };

    #[test]
    fn client_name_round_trips() {
        let request = Request {
            client: "app-1".into(),
            auth_type: None,
        };
        let body = encode_request::<DeleteClient>(request.clone()).unwrap();
        assert_eq!(body.as_slice(), b"\x0a\x05app-1");
        assert_eq!(decode_request::<DeleteClient>(&body).unwrap(), request);
    }

    #[test]
    fn the_authenticator_travels_in_field_2_when_given() {
        let request = Request {
            client: "0".into(),
            auth_type: Some(AuthType::UnixPeerCredentials),
        };
        let body = encode_request::<DeleteClient>(request.clone()).unwrap();
        assert_eq!(body.as_slice(), b"\x0a\x010\x10\x03");
        assert_eq!(decode_request::<DeleteClient>(&body).unwrap(), request);
        assert_eq!(
            decode_request::<DeleteClient>(b"\x0a\x010\x10\x07"),
            Err(BodyError::AuthenticatorDoesNotExist(7))
        );
    }

    #[test]
    fn absent_name_is_the_empty_name() {
        assert_eq!(decode_request::<DeleteClient>(&[]).unwrap().client, "");
    }

    #[test]
    fn response_is_an_empty_body() {
        assert!(encode_response::<DeleteClient>(Response)
            .unwrap()
            .is_empty());
        assert_eq!(decode_response::<DeleteClient>(&[]), Ok(Response));
    }

    #[test]
    fn a_name_that_is_not_utf8_is_a_deserialize_error() {
        assert_eq!(
            decode_request::<DeleteClient>(&[0x0a, 0x01, 0xff]),
            Err(BodyError::Deserialize)
        );
    }
}
