//! ListProviders (0x0008): describe every configured provider, core provider last.

use uuid::Uuid;

use crate::error::BodyError;
use crate::ids::ProviderId;
use crate::proto::list_providers as proto;

/// ListProviders takes no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The providers the service runs, in configuration order with the core provider last.
///
/// The first entry is the provider a client should use by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// One entry per provider.
    pub providers: Vec<ProviderInfo>,
}

/// What the service says about one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Stable identifier of the provider implementation (sent as hyphenated lowercase text).
    pub uuid: Uuid,
    /// Human-readable description.
    pub description: String,
    /// Vendor of the back end; may be empty.
    pub vendor: String,
    /// Major version of the provider.
    pub version_maj: u32,
    /// Minor version of the provider.
    pub version_min: u32,
    /// Revision of the provider.
    pub version_rev: u32,
    /// The id to put in request headers to reach this provider.
    pub id: ProviderId,
    /// The longest key name the provider accepts, in bytes of UTF-8 (field 8, a Bulwark
    /// extension that upstream clients skip); `None` when the service does not say, as
    /// upstream services do not, or for a provider that takes no key names (the core one).
    pub max_key_name_len: Option<u32>,
}

impl TryFrom<proto::ProviderInfo> for ProviderInfo {
    type Error = BodyError;
    fn try_from(info: proto::ProviderInfo) -> Result<Self, BodyError> {
        let uuid = Uuid::parse_str(&info.uuid).map_err(|_| BodyError::WrongProviderUuid)?;
        // The id is a header byte, so a value above 255 names no provider either.
        let id = u8::try_from(info.id)
            .ok()
            .and_then(|v| ProviderId::try_from(v).ok())
            .ok_or(BodyError::ProviderDoesNotExist(info.id))?;
        Ok(ProviderInfo {
            uuid,
            description: info.description,
            vendor: info.vendor,
            version_maj: info.version_maj,
            version_min: info.version_min,
            version_rev: info.version_rev,
            id,
            max_key_name_len: info.max_key_name_len,
        })
    }
}

impl From<ProviderInfo> for proto::ProviderInfo {
    fn from(info: ProviderInfo) -> Self {
        proto::ProviderInfo {
            // `Uuid`'s `Display` is the hyphenated lowercase form upstream clients parse.
            uuid: info.uuid.hyphenated().to_string(),
            description: info.description,
            vendor: info.vendor,
            version_maj: info.version_maj,
            version_min: info.version_min,
            version_rev: info.version_rev,
            id: info.id.value().into(),
            max_key_name_len: info.max_key_name_len,
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
        let providers = result
            .providers
            .into_iter()
            .map(ProviderInfo::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Response { providers })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            providers: response.providers.into_iter().map(Into::into).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::ops::{decode_response, encode_response, ListProviders};

    /// Response line of `testdata/vectors/direct-02-list-providers.hex` (header ‖ body).
    const CAPTURED_RESPONSE: &str = "10a7c05e1e000100000000000000000000000000000022010000000008000000000000000a98010a2431633131333964632d616437632d343764632d616436622d64623666646234363635353212675573657220737061636520736f6674776172652070726f76696465722c206261736564206f6e204d6265642043727970746f202d20746865207265666572656e636520696d706c656d656e746174696f6e206f6620746865205053412063727970746f204150491a0341726d280138010a84010a2434373034393837332d326134332d343834352d396437322d3833316561623636383738341258536f6674776172652070726f7669646572207468617420696d706c656d656e7473206f6e6c792061646d696e6973747261746976652028692e652e206e6f2063727970746f6772617068696329206f7065726174696f6e7320012805";

    /// The body of a captured frame: bytes 36..36+body_len, body_len being the u32 LE at 22.
    fn captured_body(frame_hex: &str) -> Vec<u8> {
        let frame = hex::decode(frame_hex).unwrap();
        let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
        frame[36..36 + len].to_vec()
    }

    fn info(uuid: &str, id: u32) -> proto::ProviderInfo {
        proto::ProviderInfo {
            uuid: uuid.into(),
            description: "d".into(),
            vendor: String::new(),
            version_maj: 0,
            version_min: 1,
            version_rev: 2,
            id,
            max_key_name_len: None,
        }
    }

    fn result_body(providers: Vec<proto::ProviderInfo>) -> Vec<u8> {
        proto::Result { providers }.encode_to_vec()
    }

    #[test]
    fn captured_response_decodes_and_re_encodes_identically() {
        let body = captured_body(CAPTURED_RESPONSE);
        let response = decode_response::<ListProviders>(&body).unwrap();
        assert_eq!(response.providers.len(), 2);

        let mbed = &response.providers[0];
        assert_eq!(
            mbed.uuid,
            Uuid::parse_str("1c1139dc-ad7c-47dc-ad6b-db6fdb466552").unwrap()
        );
        assert!(mbed.description.starts_with("User space software provider"));
        assert_eq!(mbed.vendor, "Arm");
        assert_eq!(
            (mbed.version_maj, mbed.version_min, mbed.version_rev),
            (0, 1, 0)
        );
        assert_eq!(mbed.id, ProviderId::MbedCrypto);

        let core = &response.providers[1];
        assert_eq!(
            core.uuid,
            Uuid::parse_str("47049873-2a43-4845-9d72-831eab668784").unwrap()
        );
        assert_eq!(core.vendor, "");
        assert_eq!(
            (core.version_maj, core.version_min, core.version_rev),
            (1, 5, 0)
        );
        assert_eq!(core.id, ProviderId::Core);

        let again = encode_response::<ListProviders>(response).unwrap();
        assert_eq!(again.as_slice(), body.as_slice());
    }

    #[test]
    fn uuid_is_sent_as_hyphenated_lowercase_text() {
        let uuid = Uuid::parse_str("9840CD6193674010BC24F5B98A6174D1").unwrap();
        let response = Response {
            providers: vec![ProviderInfo {
                uuid,
                description: String::new(),
                vendor: String::new(),
                version_maj: 0,
                version_min: 0,
                version_rev: 0,
                id: ProviderId::Tpm,
                max_key_name_len: None,
            }],
        };
        let body = encode_response::<ListProviders>(response.clone()).unwrap();
        let proto = proto::Result::decode(body.as_slice()).unwrap();
        assert_eq!(
            proto.providers[0].uuid,
            "9840cd61-9367-4010-bc24-f5b98a6174d1"
        );
        assert_eq!(proto.providers[0].id, 3);
        assert_eq!(decode_response::<ListProviders>(&body).unwrap(), response);
    }

    #[test]
    fn unparsable_uuid_is_wrong_provider_uuid() {
        for bad in ["", "not-a-uuid", "9840cd61-9367-4010-bc24-f5b98a6174d"] {
            assert_eq!(
                decode_response::<ListProviders>(&result_body(vec![info(bad, 1)])),
                Err(BodyError::WrongProviderUuid),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn provider_ids_above_five_do_not_exist() {
        let uuid = "9840cd61-9367-4010-bc24-f5b98a6174d1";
        for id in 0..=5 {
            let response = decode_response::<ListProviders>(&result_body(vec![info(uuid, id)]));
            assert_eq!(
                response.unwrap().providers[0].id.value(),
                u8::try_from(id).unwrap()
            );
        }
        for id in [6, 255, 256, u32::MAX] {
            assert_eq!(
                decode_response::<ListProviders>(&result_body(vec![info(uuid, id)])),
                Err(BodyError::ProviderDoesNotExist(id))
            );
        }
    }

    #[test]
    fn empty_request_round_trips() {
        let body = crate::ops::encode_request::<ListProviders>(Request).unwrap();
        assert!(body.is_empty());
        assert_eq!(
            crate::ops::decode_request::<ListProviders>(&body),
            Ok(Request)
        );
    }

    #[test]
    fn the_key_name_limit_is_field_8_and_absent_when_unknown() {
        let uuid = "9840cd61-9367-4010-bc24-f5b98a6174d1";
        let mut with_limit = info(uuid, 1);
        with_limit.max_key_name_len = Some(1024);
        let body = result_body(vec![with_limit.clone()]);
        let decoded = decode_response::<ListProviders>(&body).unwrap();
        assert_eq!(decoded.providers[0].max_key_name_len, Some(1024));
        // Field 8, varint: tag 0x40, then 1024 as a varint.
        let entry = with_limit.encode_to_vec();
        assert!(entry.ends_with(&[0x40, 0x80, 0x08]), "{entry:02x?}");
        // Without it, the entry is byte for byte what upstream sends.
        let upstream = info(uuid, 1);
        assert_eq!(entry[..entry.len() - 3], upstream.encode_to_vec()[..]);
        let decoded = decode_response::<ListProviders>(&result_body(vec![upstream])).unwrap();
        assert_eq!(decoded.providers[0].max_key_name_len, None);
    }
}
