//! ListAuthenticators (0x000E): describe the authenticator the service uses.

use crate::error::BodyError;
use crate::ids::AuthType;
use crate::proto::list_authenticators as proto;

/// ListAuthenticators takes no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The authenticators the service accepts (the reference service lists exactly one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// One entry per authenticator.
    pub authenticators: Vec<AuthenticatorInfo>,
}

/// What the service says about one authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorInfo {
    /// Human-readable description.
    pub description: String,
    /// Major version of the authenticator.
    pub version_maj: u32,
    /// Minor version of the authenticator.
    pub version_min: u32,
    /// Revision of the authenticator.
    pub version_rev: u32,
    /// The auth type a request must carry to use it.
    pub id: AuthType,
}

impl TryFrom<proto::AuthenticatorInfo> for AuthenticatorInfo {
    type Error = BodyError;
    fn try_from(info: proto::AuthenticatorInfo) -> Result<Self, BodyError> {
        // The auth type is a header byte, so a value above 255 names no authenticator either.
        let id = u8::try_from(info.id)
            .ok()
            .and_then(|v| AuthType::try_from(v).ok())
            .ok_or(BodyError::AuthenticatorDoesNotExist(info.id))?;
        Ok(AuthenticatorInfo {
            description: info.description,
            version_maj: info.version_maj,
            version_min: info.version_min,
            version_rev: info.version_rev,
            id,
        })
    }
}

impl From<AuthenticatorInfo> for proto::AuthenticatorInfo {
    fn from(info: AuthenticatorInfo) -> Self {
        proto::AuthenticatorInfo {
            description: info.description,
            version_maj: info.version_maj,
            version_min: info.version_min,
            version_rev: info.version_rev,
            id: info.id.value().into(),
        }
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
        let authenticators = result
            .authenticators
            .into_iter()
            .map(AuthenticatorInfo::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Response { authenticators })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            authenticators: response
                .authenticators
                .into_iter()
                .map(Into::into)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{
        decode_request, decode_response, encode_request, encode_response, ListAuthenticators,
    };

    /// Response line of `testdata/vectors/direct-04-list-authenticators.hex`.
    const CAPTURED_RESPONSE: &str = "10a7c05e1e00010000000000000000000000000000009000000000000e000000000000000a8d010a86014469726563746c7920706172736573207468652061757468656e7469636174696f6e206669656c642061732061205554462d3820737472696e6720616e642075736573207468617420617320746865206170706c69636174696f6e206964656e746974792e2053686f756c64206265207573656420666f722074657374696e67206f6e6c792e18012801";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    fn body_with_id(id: u32) -> Vec<u8> {
        proto::Result {
            authenticators: vec![proto::AuthenticatorInfo {
                description: "a".into(),
                version_maj: 0,
                version_min: 1,
                version_rev: 0,
                id,
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn captured_response_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<ListAuthenticators>(&body).unwrap();
        assert_eq!(response.authenticators.len(), 1);
        let direct = &response.authenticators[0];
        assert!(direct
            .description
            .starts_with("Directly parses the authentication field"));
        assert_eq!(
            (direct.version_maj, direct.version_min, direct.version_rev),
            (0, 1, 0)
        );
        assert_eq!(direct.id, AuthType::Direct);
        let again = encode_response::<ListAuthenticators>(response).unwrap();
        assert_eq!(again.as_slice(), body.as_slice());
    }

    #[test]
    fn auth_types_up_to_four_are_accepted() {
        for id in 0..=4 {
            let response = decode_response::<ListAuthenticators>(&body_with_id(id)).unwrap();
            assert_eq!(u32::from(response.authenticators[0].id.value()), id);
        }
    }

    #[test]
    fn auth_types_above_four_do_not_exist() {
        for id in [5, 255, 256, u32::MAX] {
            assert_eq!(
                decode_response::<ListAuthenticators>(&body_with_id(id)),
                Err(BodyError::AuthenticatorDoesNotExist(id))
            );
        }
    }

    #[test]
    fn empty_request_round_trips() {
        let body = encode_request::<ListAuthenticators>(Request).unwrap();
        assert!(body.is_empty());
        assert_eq!(decode_request::<ListAuthenticators>(&body), Ok(Request));
    }
}
