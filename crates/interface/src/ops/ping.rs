//! Ping (0x0001): the highest wire protocol version the service speaks.

use crate::error::BodyError;
use crate::proto::ping as proto;

/// Ping takes no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The wire protocol version, major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// Highest supported major version.
    pub wire_protocol_version_maj: u8,
    /// Minor version for that major.
    pub wire_protocol_version_min: u8,
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
        // The versions are bytes in the header, so a larger value cannot be meant.
        let byte = |v: u32, field| u8::try_from(v).map_err(|_| BodyError::InvalidEncoding(field));
        Ok(Response {
            wire_protocol_version_maj: byte(
                result.wire_protocol_version_maj,
                "wire_protocol_version_maj",
            )?,
            wire_protocol_version_min: byte(
                result.wire_protocol_version_min,
                "wire_protocol_version_min",
            )?,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            wire_protocol_version_maj: response.wire_protocol_version_maj.into(),
            wire_protocol_version_min: response.wire_protocol_version_min.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{decode_response, encode_response, Ping};

    #[test]
    fn version_1_0_encodes_as_in_the_capture() {
        let body = encode_response::<Ping>(Response {
            wire_protocol_version_maj: 1,
            wire_protocol_version_min: 0,
        })
        .unwrap();
        assert_eq!(body.as_slice(), [0x08, 0x01]);
    }

    #[test]
    fn versions_that_do_not_fit_a_byte_are_rejected() {
        assert_eq!(
            decode_response::<Ping>(&[0x08, 0x80, 0x02]),
            Err(BodyError::InvalidEncoding("wire_protocol_version_maj"))
        );
    }
}
