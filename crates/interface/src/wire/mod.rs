//! Wire protocol 1.0 framing: the fixed 36-byte header, requests and responses.
//!
//! Parsing follows docs/protocol.md#header-parsing step by step and in the same order, so that every malformed input
//! gets the status the reference service gives it. The checks are sans-IO
//! ([`RawHeader::parse_partial`] looks at whatever prefix has arrived and rejects it as soon as it
//! can), with thin adapters for `std::io::Read`/`Write` and byte slices; the daemon drives the same
//! checks from its async reader.

mod error;
mod frame;
mod header;

pub use error::WireError;
pub use frame::{Limits, RawRequest, RequestFrame, RequestHeader, ResponseFrame, ResponseHeader};
pub use header::{
    RawHeader, FLAG_KEEP_OPEN, HDR_SIZE, HEADER_LEN, MAGIC, VERSION_MAJOR, VERSION_MINOR,
};
