//! BulwarkStatus (0x8000_0001): what a running service is doing, for its administrators.
//!
//! Bulwark's own operation: no upstream service or client knows it. An upstream service answers
//! its opcode OpcodeDoesNotExist, and ListOpcodes never names it (it is administrative), so
//! upstream clients never meet it.

use crate::error::BodyError;
use crate::ids::{AuthType, ProviderId};
use crate::proto::bulwark_status as proto;

/// BulwarkStatus takes no argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Request;

/// The service's state at the moment it answered.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The service's version (`major.minor.patch`).
    pub version: String,
    /// Seconds since the daemon started (configuration reloads do not reset it).
    pub uptime_seconds: u64,
    /// The configured crypto providers, in configuration order.
    pub providers: Vec<ProviderStatus>,
    /// The authenticators requests may use.
    pub authenticators: Vec<AuthenticatorStatus>,
    /// Client connections open, this one included.
    pub connections_open: u64,
    /// Requests being answered, this one included.
    pub requests_in_flight: u64,
    /// Requests read whole and waiting for a slot to be answered.
    pub requests_queued: u64,
    /// Keys in the key store, over every provider and owner.
    pub keys: u64,
    /// Applications owning at least one key.
    pub clients: u64,
    /// The audit log.
    pub audit: AuditStatus,
    /// Log lines that could not be written since the daemon started.
    pub log_lines_lost: u64,
}

/// One configured crypto provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderStatus {
    /// Its id.
    pub id: ProviderId,
    /// Its configured name.
    pub name: String,
    /// `None` when its back end answered a health probe; otherwise what went wrong.
    pub problem: Option<String>,
    /// Keys it holds.
    pub keys: u64,
}

/// One authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatorStatus {
    /// The auth type a request carries to use it.
    pub id: AuthType,
    /// Its description.
    pub description: String,
}

/// The audit log's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditStatus {
    /// Where records go: `off`, `journal` or `file:<path>`.
    pub sink: String,
    /// Records that could not be written since the daemon started.
    pub records_lost: u64,
    /// Denials counted in another denial's record rather than written on their own.
    pub denials_folded: u64,
}

impl TryFrom<proto::ProviderStatus> for ProviderStatus {
    type Error = BodyError;
    fn try_from(status: proto::ProviderStatus) -> Result<Self, BodyError> {
        let id = u8::try_from(status.id)
            .ok()
            .and_then(|v| ProviderId::try_from(v).ok())
            .ok_or(BodyError::ProviderDoesNotExist(status.id))?;
        Ok(ProviderStatus {
            id,
            name: status.name,
            problem: Some(status.problem).filter(|p| !p.is_empty()),
            keys: status.keys,
        })
    }
}

impl From<ProviderStatus> for proto::ProviderStatus {
    fn from(status: ProviderStatus) -> Self {
        proto::ProviderStatus {
            id: status.id.value().into(),
            name: status.name,
            problem: status.problem.unwrap_or_default(),
            keys: status.keys,
        }
    }
}

impl TryFrom<proto::AuthenticatorStatus> for AuthenticatorStatus {
    type Error = BodyError;
    fn try_from(status: proto::AuthenticatorStatus) -> Result<Self, BodyError> {
        let id = u8::try_from(status.id)
            .ok()
            .and_then(|v| AuthType::try_from(v).ok())
            .ok_or(BodyError::AuthenticatorDoesNotExist(status.id))?;
        Ok(AuthenticatorStatus {
            id,
            description: status.description,
        })
    }
}

impl From<AuthenticatorStatus> for proto::AuthenticatorStatus {
    fn from(status: AuthenticatorStatus) -> Self {
        proto::AuthenticatorStatus {
            id: status.id.value().into(),
            description: status.description,
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
        let audit = result.audit.ok_or(BodyError::InvalidEncoding("audit"))?;
        Ok(Response {
            version: result.version,
            uptime_seconds: result.uptime_seconds,
            providers: result
                .providers
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            authenticators: result
                .authenticators
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
            connections_open: result.connections_open,
            requests_in_flight: result.requests_in_flight,
            requests_queued: result.requests_queued,
            keys: result.keys,
            clients: result.clients,
            audit: AuditStatus {
                sink: audit.sink,
                records_lost: audit.records_lost,
                denials_folded: audit.denials_folded,
            },
            log_lines_lost: result.log_lines_lost,
        })
    }
}

impl TryFrom<Response> for proto::Result {
    type Error = BodyError;
    fn try_from(response: Response) -> Result<Self, BodyError> {
        Ok(proto::Result {
            version: response.version,
            uptime_seconds: response.uptime_seconds,
            providers: response.providers.into_iter().map(Into::into).collect(),
            authenticators: response
                .authenticators
                .into_iter()
                .map(Into::into)
                .collect(),
            connections_open: response.connections_open,
            requests_in_flight: response.requests_in_flight,
            requests_queued: response.requests_queued,
            keys: response.keys,
            clients: response.clients,
            audit: Some(proto::AuditStatus {
                sink: response.audit.sink,
                records_lost: response.audit.records_lost,
                denials_folded: response.audit.denials_folded,
            }),
            log_lines_lost: response.log_lines_lost,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{decode_request, decode_response, encode_request, encode_response};
    use crate::ops::{BulwarkStatus, Opcode};

    fn sample() -> Response {
        Response {
            version: "1.2.3".into(),
            uptime_seconds: 42,
            providers: vec![
                ProviderStatus {
                    id: ProviderId::MbedCrypto,
                    name: "soft".into(),
                    problem: None,
                    keys: 3,
                },
                ProviderStatus {
                    id: ProviderId::Pkcs11,
                    name: "token".into(),
                    problem: Some("PsaErrorCommunicationFailure".into()),
                    keys: 0,
                },
            ],
            authenticators: vec![AuthenticatorStatus {
                id: AuthType::UnixPeerCredentials,
                description: "peer credentials".into(),
            }],
            connections_open: 2,
            requests_in_flight: 1,
            requests_queued: 0,
            keys: 3,
            clients: 1,
            audit: AuditStatus {
                sink: "journal".into(),
                records_lost: 0,
                denials_folded: 5,
            },
            log_lines_lost: 0,
        }
    }

    #[test]
    fn status_round_trips() {
        let body = encode_response::<BulwarkStatus>(sample()).unwrap();
        assert_eq!(decode_response::<BulwarkStatus>(&body).unwrap(), sample());
        assert!(encode_request::<BulwarkStatus>(Request).unwrap().is_empty());
        assert_eq!(decode_request::<BulwarkStatus>(&[]), Ok(Request));
    }

    #[test]
    fn unknown_provider_or_missing_audit_is_refused() {
        let mut proto: proto::Result = sample().try_into().unwrap();
        proto.audit = None;
        assert_eq!(
            Response::try_from(proto),
            Err(BodyError::InvalidEncoding("audit"))
        );
        let mut proto: proto::Result = sample().try_into().unwrap();
        proto.providers[0].id = 9;
        assert_eq!(
            Response::try_from(proto),
            Err(BodyError::ProviderDoesNotExist(9))
        );
    }

    #[test]
    fn opcode_is_administrative_core_and_unlisted() {
        let opcode = Opcode::BulwarkStatus;
        assert_eq!(opcode.value(), 0x8000_0001);
        assert!(opcode.is_admin() && opcode.is_core() && !opcode.is_listed());
    }
}
