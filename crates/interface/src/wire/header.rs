//! The fixed header: 36 bytes, little endian, no padding (docs/protocol.md#header-layout).

use super::WireError;

/// `0x5EC0A710`, bytes `10 a7 c0 5e` on the wire.
pub const MAGIC: u32 = 0x5EC0_A710;
/// Value of the header-size field: the bytes after it.
pub const HDR_SIZE: u16 = 30;
/// Length of the whole fixed header.
pub const HEADER_LEN: usize = 36;
/// The only wire protocol major version.
pub const VERSION_MAJOR: u8 = 1;
/// The only wire protocol minor version.
pub const VERSION_MINOR: u8 = 0;

/// Header `flags` bit asking the service to keep the connection open for further requests
/// (in a request), and saying it will (in the response).
///
/// The Parsec wire protocol answers one request per connection and then closes it; upstream
/// clients send `flags` 0 and upstream services never read the field and always answer 0. So
/// the bit is an opt-in no upstream client sends by accident, and an answer without it tells a
/// client, for that very answer, that the service closes the connection after it: against an
/// upstream service a client setting the bit simply gets a connection per request.
/// The top bit is used so that the low bits stay free for any flag the protocol may define.
pub const FLAG_KEEP_OPEN: u16 = 0x8000;

/// The header fields as numbers, before any of them is interpreted.
///
/// Magic, size, version and reserved bytes are implied: a `RawHeader` only exists once they
/// were checked, and they are written back as constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawHeader {
    /// Flags: only [`FLAG_KEEP_OPEN`] has a meaning; every other bit is ignored.
    pub flags: u16,
    /// Provider id.
    pub provider: u8,
    /// Session handle; no semantics, echoed back.
    pub session: u64,
    /// Body encoding.
    pub content_type: u8,
    /// Wanted response encoding.
    pub accept_type: u8,
    /// How to read the auth bytes.
    pub auth_type: u8,
    /// Number of body bytes that follow.
    pub body_len: u32,
    /// Number of auth bytes after the body.
    pub auth_len: u16,
    /// Operation.
    pub opcode: u32,
    /// Status; ignored in requests.
    pub status: u16,
}

impl RawHeader {
    /// Checks the header bytes received so far, in the order of docs/protocol.md#header-parsing.
    ///
    /// Returns `Ok(None)` while more bytes are needed and no check has failed yet, and the
    /// decoded header once all 36 bytes are there. Bytes past the 36th are ignored. Unlike a
    /// reader that first reads `hdr_size` bytes, a wrong header size is rejected as soon as its
    /// two bytes arrive, so a bogus size cannot make the reader wait.
    ///
    /// # Errors
    /// [`WireError::BadMagic`], [`WireError::HeaderSize`], [`WireError::UnsupportedVersion`],
    /// [`WireError::NonZeroReserved`], each as soon as the bytes that show it are present.
    pub fn parse_partial(buf: &[u8]) -> Result<Option<Self>, WireError> {
        if let Some(magic) = buf.get(0..4) {
            let magic = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]);
            if magic != MAGIC {
                return Err(WireError::BadMagic(magic));
            }
        }
        if let Some(size) = buf.get(4..6) {
            let size = u16::from_le_bytes([size[0], size[1]]);
            if size != HDR_SIZE {
                return Err(WireError::HeaderSize(size));
            }
        }
        if let Some(version) = buf.get(6..8) {
            if version != [VERSION_MAJOR, VERSION_MINOR] {
                return Err(WireError::UnsupportedVersion(version[0], version[1]));
            }
        }
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if h[34] != 0 || h[35] != 0 {
            return Err(WireError::NonZeroReserved);
        }
        let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let mut session = [0u8; 8];
        session.copy_from_slice(&h[11..19]);
        Ok(Some(RawHeader {
            flags: u16_at(8),
            provider: h[10],
            session: u64::from_le_bytes(session),
            content_type: h[19],
            accept_type: h[20],
            auth_type: h[21],
            body_len: u32_at(22),
            auth_len: u16_at(26),
            opcode: u32_at(28),
            status: u16_at(32),
        }))
    }

    /// Reads and checks a header from a stream, failing at the first bad field.
    ///
    /// # Errors
    /// As [`RawHeader::parse_partial`]; [`WireError::Closed`] when the stream ends before the
    /// first byte; [`WireError::Io`] when it fails or ends inside the header.
    pub fn read_from(reader: &mut impl std::io::Read) -> Result<Self, WireError> {
        let mut buf = [0u8; HEADER_LEN];
        // Read in the three steps of the spec so that each check happens as soon as it can.
        let mut filled = 0;
        for end in [4, 6, HEADER_LEN] {
            while filled < end {
                match reader.read(&mut buf[filled..end]) {
                    Ok(0) if filled == 0 => return Err(WireError::Closed),
                    Ok(0) => return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof)),
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(header) = Self::parse_partial(&buf[..filled])? {
                return Ok(header);
            }
        }
        Err(WireError::Io(std::io::ErrorKind::UnexpectedEof))
    }

    /// The 36 bytes of this header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        b[4..6].copy_from_slice(&HDR_SIZE.to_le_bytes());
        b[6] = VERSION_MAJOR;
        b[7] = VERSION_MINOR;
        b[8..10].copy_from_slice(&self.flags.to_le_bytes());
        b[10] = self.provider;
        b[11..19].copy_from_slice(&self.session.to_le_bytes());
        b[19] = self.content_type;
        b[20] = self.accept_type;
        b[21] = self.auth_type;
        b[22..26].copy_from_slice(&self.body_len.to_le_bytes());
        b[26..28].copy_from_slice(&self.auth_len.to_le_bytes());
        b[28..32].copy_from_slice(&self.opcode.to_le_bytes());
        b[32..34].copy_from_slice(&self.status.to_le_bytes());
        b
    }
}
