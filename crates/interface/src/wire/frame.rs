//! Requests and responses: header ‖ body ‖ auth (requests) and header ‖ body (responses).

use std::io::{self, Read, Write};

use zeroize::Zeroizing;

use super::header::{RawHeader, HEADER_LEN};
use super::WireError;
use crate::ids::{AuthType, BodyType, ProviderId};
use crate::ops::Opcode;
use crate::status::ResponseStatus;

/// Size limits applied before anything past the header is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body accepted, in bytes.
    pub body_len: usize,
    /// Largest auth field accepted, in bytes.
    pub auth_len: usize,
}

impl Default for Limits {
    /// 1 MiB of body (the upstream default) and the full 64 KiB of auth.
    fn default() -> Self {
        Limits {
            body_len: 1 << 20,
            auth_len: u16::MAX as usize,
        }
    }
}

impl Limits {
    /// Step A5 of docs/protocol.md#request-pipeline: refuses lengths over the limits before they are read.
    ///
    /// # Errors
    /// [`WireError::BodyTooLarge`] or [`WireError::AuthTooLarge`].
    pub fn check(&self, header: &RawHeader) -> Result<(), WireError> {
        if header.body_len as usize > self.body_len {
            return Err(WireError::BodyTooLarge {
                len: header.body_len,
                limit: self.body_len,
            });
        }
        if header.auth_len as usize > self.auth_len {
            return Err(WireError::AuthTooLarge {
                len: header.auth_len,
                limit: self.auth_len,
            });
        }
        Ok(())
    }
}

/// A request whose header passed the structural checks (steps A1–A6) and whose body and auth
/// were read, but whose fields are not interpreted yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRequest {
    /// The header.
    pub header: RawHeader,
    /// The body bytes.
    pub body: Zeroizing<Vec<u8>>,
    /// The auth bytes.
    pub auth: Zeroizing<Vec<u8>>,
}

impl RawRequest {
    /// Reads one request from a stream (steps A1–A6).
    ///
    /// # Errors
    /// Any header error, a limit error, or [`WireError::Io`] when the stream fails or ends early.
    pub fn read_from(reader: &mut impl Read, limits: &Limits) -> Result<Self, WireError> {
        let header = RawHeader::read_from(reader)?;
        limits.check(&header)?;
        let mut body = Zeroizing::new(vec![0u8; header.body_len as usize]);
        reader.read_exact(&mut body)?;
        let mut auth = Zeroizing::new(vec![0u8; usize::from(header.auth_len)]);
        reader.read_exact(&mut auth)?;
        Ok(RawRequest { header, body, auth })
    }

    /// Parses one request from the start of `bytes`; returns it and the number of bytes used.
    ///
    /// # Errors
    /// As [`RawRequest::read_from`]; too few bytes is `WireError::Io(UnexpectedEof)`.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<(Self, usize), WireError> {
        let mut cursor = io::Cursor::new(bytes);
        let request = Self::read_from(&mut cursor, limits)?;
        let used = usize::try_from(cursor.position()).unwrap_or(bytes.len());
        Ok((request, used))
    }
}

/// The interpreted fields of a request header (step A7 passed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// The provider the request is addressed to.
    pub provider: ProviderId,
    /// Session handle, echoed back.
    pub session: u64,
    /// Body encoding.
    pub content_type: BodyType,
    /// Wanted response encoding.
    pub accept_type: BodyType,
    /// How the auth bytes are to be read.
    pub auth_type: AuthType,
    /// The operation.
    pub opcode: Opcode,
    /// The header's flags, as received ([`FLAG_KEEP_OPEN`](super::FLAG_KEEP_OPEN) is the one
    /// with a meaning).
    pub flags: u16,
}

impl RequestHeader {
    /// A header for `opcode` on `provider` with protobuf bodies and session 0.
    pub fn new(provider: ProviderId, opcode: Opcode, auth_type: AuthType) -> Self {
        RequestHeader {
            provider,
            session: 0,
            content_type: BodyType::Protobuf,
            accept_type: BodyType::Protobuf,
            auth_type,
            opcode,
            flags: 0,
        }
    }

    /// Whether the request asks for the connection to stay open after its answer.
    pub fn wants_keep_open(&self) -> bool {
        self.flags & super::FLAG_KEEP_OPEN != 0
    }

    /// Step A7: interprets the fields in the order content type, accept type, auth type,
    /// opcode, provider; the first failure wins.
    ///
    /// # Errors
    /// The [`WireError`] of the first field that is not defined.
    pub fn interpret(raw: &RawHeader) -> Result<Self, WireError> {
        let content_type = BodyType::try_from(raw.content_type).map_err(WireError::ContentType)?;
        let accept_type = BodyType::try_from(raw.accept_type).map_err(WireError::AcceptType)?;
        let auth_type = AuthType::try_from(raw.auth_type).map_err(WireError::AuthType)?;
        let opcode = Opcode::try_from(raw.opcode).map_err(WireError::Opcode)?;
        let provider = ProviderId::try_from(raw.provider).map_err(WireError::Provider)?;
        Ok(RequestHeader {
            provider,
            session: raw.session,
            content_type,
            accept_type,
            auth_type,
            opcode,
            flags: raw.flags,
        })
    }
}

/// A complete, interpreted request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFrame {
    /// The header.
    pub header: RequestHeader,
    /// The body bytes (the operation's protobuf message).
    pub body: Zeroizing<Vec<u8>>,
    /// The auth bytes.
    pub auth: Zeroizing<Vec<u8>>,
}

impl TryFrom<RawRequest> for RequestFrame {
    type Error = WireError;

    fn try_from(raw: RawRequest) -> Result<Self, WireError> {
        Ok(RequestFrame {
            header: RequestHeader::interpret(&raw.header)?,
            body: raw.body,
            auth: raw.auth,
        })
    }
}

impl RequestFrame {
    /// Reads and interprets one request (docs/protocol.md#header-parsing, steps 1–7).
    ///
    /// # Errors
    /// The first check that fails, as a [`WireError`].
    pub fn read_from(reader: &mut impl Read, limits: &Limits) -> Result<Self, WireError> {
        RawRequest::read_from(reader, limits)?.try_into()
    }

    /// Parses one request from the start of `bytes`; returns it and the number of bytes used.
    ///
    /// # Errors
    /// As [`RequestFrame::read_from`].
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<(Self, usize), WireError> {
        let (raw, used) = RawRequest::parse(bytes, limits)?;
        Ok((raw.try_into()?, used))
    }

    /// The raw header that describes this frame.
    ///
    /// # Errors
    /// [`WireError::BodyTooLarge`]/[`WireError::AuthTooLarge`] when a part does not fit its
    /// length field.
    pub fn raw_header(&self) -> Result<RawHeader, WireError> {
        let h = &self.header;
        Ok(RawHeader {
            flags: h.flags,
            provider: h.provider.value(),
            session: h.session,
            content_type: h.content_type.value(),
            accept_type: h.accept_type.value(),
            auth_type: h.auth_type.value(),
            body_len: body_len(self.body.len())?,
            auth_len: u16::try_from(self.auth.len()).map_err(|_| WireError::AuthTooLarge {
                len: u16::MAX,
                limit: u16::MAX as usize,
            })?,
            opcode: h.opcode.value(),
            status: 0,
        })
    }

    /// The bytes of the whole request.
    ///
    /// # Errors
    /// As [`RequestFrame::raw_header`].
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, WireError> {
        let header = self.raw_header()?;
        let mut out = Zeroizing::new(Vec::with_capacity(
            HEADER_LEN + self.body.len() + self.auth.len(),
        ));
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&self.body);
        out.extend_from_slice(&self.auth);
        Ok(out)
    }

    /// Writes the whole request.
    ///
    /// # Errors
    /// As [`RequestFrame::raw_header`], or [`WireError::Io`].
    pub fn write_to(&self, writer: &mut impl Write) -> Result<(), WireError> {
        writer.write_all(&self.to_bytes()?)?;
        Ok(())
    }
}

/// The interpreted fields of a response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// Provider id, copied from the request (0 in bare responses).
    pub provider: ProviderId,
    /// Session handle, copied from the request (0 in bare responses).
    pub session: u64,
    /// Body encoding: the request's accept type.
    pub content_type: BodyType,
    /// Opcode, copied from the request (Ping in bare responses).
    pub opcode: Opcode,
    /// The outcome.
    pub status: ResponseStatus,
    /// The header's flags: [`FLAG_KEEP_OPEN`](super::FLAG_KEEP_OPEN) when the service keeps
    /// the connection open after this answer, 0 otherwise (and always, from an upstream service).
    pub flags: u16,
}

impl ResponseHeader {
    /// The "bare" shape of docs/protocol.md#request-pipeline, used when the request header could not be interpreted:
    /// provider 0, session 0, opcode Ping.
    pub fn bare(status: ResponseStatus) -> Self {
        ResponseHeader {
            provider: ProviderId::Core,
            session: 0,
            content_type: BodyType::Protobuf,
            opcode: Opcode::Ping,
            status,
            flags: 0,
        }
    }

    /// The "echo" shape of docs/protocol.md#request-pipeline: provider, session and opcode copied from the request.
    pub fn echo(request: &RequestHeader, status: ResponseStatus) -> Self {
        ResponseHeader {
            provider: request.provider,
            session: request.session,
            content_type: request.accept_type,
            opcode: request.opcode,
            status,
            flags: 0,
        }
    }

    /// Interprets a raw response header: provider, content type, opcode, then status.
    ///
    /// # Errors
    /// The [`WireError`] of the first field that is not defined.
    pub fn interpret(raw: &RawHeader) -> Result<Self, WireError> {
        let provider = ProviderId::try_from(raw.provider).map_err(WireError::Provider)?;
        let content_type = BodyType::try_from(raw.content_type).map_err(WireError::ContentType)?;
        let opcode = Opcode::try_from(raw.opcode).map_err(WireError::Opcode)?;
        let status = ResponseStatus::try_from(raw.status).map_err(WireError::Status)?;
        Ok(ResponseHeader {
            provider,
            session: raw.session,
            content_type,
            opcode,
            status,
            flags: raw.flags,
        })
    }

    /// Whether the service keeps the connection open after this answer.
    pub fn keeps_open(&self) -> bool {
        self.flags & super::FLAG_KEEP_OPEN != 0
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    /// The header.
    pub header: ResponseHeader,
    /// The body: the operation's `Result` message on success, empty otherwise.
    pub body: Zeroizing<Vec<u8>>,
}

impl ResponseFrame {
    /// An error response with the given header shape and no body.
    pub fn error(header: ResponseHeader) -> Self {
        ResponseFrame {
            header,
            body: Zeroizing::new(Vec::new()),
        }
    }

    /// Reads one response, refusing bodies over `max_body` bytes.
    ///
    /// # Errors
    /// Any header error, [`WireError::BodyTooLarge`], [`WireError::Io`], or an interpretation
    /// error (unknown provider, content type, opcode or status).
    pub fn read_from(reader: &mut impl Read, max_body: usize) -> Result<Self, WireError> {
        let header = RawHeader::read_from(reader)?;
        let limits = Limits {
            body_len: max_body,
            auth_len: usize::from(u16::MAX),
        };
        limits.check(&header)?;
        // A response has no auth part: its auth length field is ignored, as upstream does.
        let mut body = Zeroizing::new(vec![0u8; header.body_len as usize]);
        reader.read_exact(&mut body)?;
        Ok(ResponseFrame {
            header: ResponseHeader::interpret(&header)?,
            body,
        })
    }
    /// Parses one response from the start of `bytes`; returns it and the number of bytes used.
    ///
    /// # Errors
    /// As [`ResponseFrame::read_from`].
    pub fn parse(bytes: &[u8], max_body: usize) -> Result<(Self, usize), WireError> {
        let mut cursor = io::Cursor::new(bytes);
        let response = Self::read_from(&mut cursor, max_body)?;
        Ok((
            response,
            usize::try_from(cursor.position()).unwrap_or(bytes.len()),
        ))
    }

    /// The raw header that describes this frame.
    ///
    /// # Errors
    /// [`WireError::BodyTooLarge`] when the body does not fit its length field.
    pub fn raw_header(&self) -> Result<RawHeader, WireError> {
        let h = &self.header;
        Ok(RawHeader {
            flags: h.flags,
            provider: h.provider.value(),
            session: h.session,
            content_type: h.content_type.value(),
            accept_type: 0,
            auth_type: 0,
            body_len: body_len(self.body.len())?,
            auth_len: 0,
            opcode: h.opcode.value(),
            status: h.status.value(),
        })
    }

    /// The bytes of the whole response.
    ///
    /// # Errors
    /// As [`ResponseFrame::raw_header`].
    pub fn to_bytes(&self) -> Result<Zeroizing<Vec<u8>>, WireError> {
        let header = self.raw_header()?;
        let mut out = Zeroizing::new(Vec::with_capacity(HEADER_LEN + self.body.len()));
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    /// Writes the whole response.
    ///
    /// # Errors
    /// As [`ResponseFrame::raw_header`], or [`WireError::Io`].
    pub fn write_to(&self, writer: &mut impl Write) -> Result<(), WireError> {
        writer.write_all(&self.to_bytes()?)?;
        Ok(())
    }
}

fn body_len(len: usize) -> Result<u32, WireError> {
    u32::try_from(len).map_err(|_| WireError::BodyTooLarge {
        len: u32::MAX,
        limit: len,
    })
}
