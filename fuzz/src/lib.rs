//! The invariants the fuzz targets check, one function per target.
//!
//! This file is also compiled into `crates/interface/tests/fuzz_corpus.rs` (through `#[path]`),
//! which replays every corpus file through the same functions under a plain `cargo test`, so it
//! may depend on nothing but `bulwark-interface` and `std`.
//!
//! Every check panics on a violated invariant; inputs that are merely invalid return quietly.

use bulwark_interface::error::BodyError;
use bulwark_interface::ops::{self, Opcode, Operation};
use bulwark_interface::wire::{
    Limits, RawHeader, RequestFrame, ResponseFrame, WireError, HEADER_LEN,
};

/// The body limit the response target parses with (the client's default is the same 1 MiB).
pub const MAX_RESPONSE_BODY: usize = 1 << 20;

/// Which operation the first byte of an `op_bodies` input selects: the opcode whose wire value
/// it is, or, for a byte that is no opcode, `Opcode::ALL[byte % ALL.len()]`. Seeds therefore
/// start with the wire opcode (`04` for PsaSignHash).
pub fn select_opcode(selector: u8) -> Opcode {
    Opcode::try_from(u32::from(selector))
        .unwrap_or_else(|_| Opcode::ALL[usize::from(selector) % Opcode::ALL.len()])
}

/// `request_parser`: arbitrary bytes through [`RequestFrame::parse`] with the default limits.
///
/// - the sans-IO header check agrees with the stream reader on complete headers, and a header
///   it accepts is written back byte for byte;
/// - an accepted frame uses exactly header + body + auth bytes, is written back as the same
///   bytes (except the status field, which a request ignores and [`RequestFrame`] does not
///   keep), and those bytes parse again to an equal frame;
/// - its body goes through [`check_request_body`] for the opcode of the header.
pub fn check_request_bytes(data: &[u8]) {
    let limits = Limits::default();
    let parsed = RequestFrame::parse(data, &limits);
    check_header_agreement(data, parsed.as_ref().err().copied());

    let Ok((frame, used)) = parsed else {
        return;
    };
    assert_eq!(
        used,
        HEADER_LEN + frame.body.len() + frame.auth.len(),
        "bytes used by {frame:?}"
    );
    let bytes = frame.to_bytes().expect("a parsed request has a wire form");
    let mut expected = data[..used].to_vec();
    expected[32..34].fill(0); // status
    assert_eq!(bytes.as_slice(), expected.as_slice(), "re-encoded request");

    let (again, used_again) =
        RequestFrame::parse(&bytes, &limits).expect("a re-encoded request parses");
    assert_eq!(again, frame);
    assert_eq!(used_again, bytes.len());

    check_request_body(frame.header.opcode, &frame.body);
}

/// `response_parser`: arbitrary bytes through [`ResponseFrame::parse`] with a 1 MiB body limit.
///
/// As for requests; a response keeps neither accept type, auth type nor auth length, so
/// those bytes are written back as zero, and the body of a successful response goes through
/// [`check_response_body`].
pub fn check_response_bytes(data: &[u8]) {
    let parsed = ResponseFrame::parse(data, MAX_RESPONSE_BODY);
    check_header_agreement(data, parsed.as_ref().err().copied());

    let Ok((frame, used)) = parsed else {
        return;
    };
    // A response has no auth part: its auth length field is ignored.
    let frame_len = HEADER_LEN + frame.body.len();
    assert_eq!(used, frame_len, "bytes used by {frame:?}");
    let bytes = frame.to_bytes().expect("a parsed response has a wire form");
    let mut expected = data[..frame_len].to_vec();
    expected[20..22].fill(0); // accept type, auth type
    expected[26..28].fill(0); // auth length
    assert_eq!(bytes.as_slice(), expected.as_slice(), "re-encoded response");

    let (again, used_again) =
        ResponseFrame::parse(&bytes, MAX_RESPONSE_BODY).expect("a re-encoded response parses");
    assert_eq!(again, frame);
    assert_eq!(used_again, bytes.len());

    if frame.header.status.is_success() {
        check_response_body(frame.header.opcode, &frame.body);
    }
}

/// `op_bodies`: the first byte selects an operation ([`select_opcode`]), the rest is a body that
/// goes through both [`check_request_body`] and [`check_response_body`].
pub fn check_op_body(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let opcode = select_opcode(selector);
    check_request_body(opcode, body);
    check_response_body(opcode, body);
}

/// A request body of `opcode`: when it decodes, the native value encodes, the encoding decodes
/// to an equal value and encodes to the same bytes again (the encoding is canonical), and the
/// run-time dispatch of [`ops::reencode_request`] gives exactly those bytes.
pub fn check_request_body(opcode: Opcode, body: &[u8]) {
    check_body(Body::Request, opcode, body);
}

/// As [`check_request_body`], for a response body.
pub fn check_response_body(opcode: Opcode, body: &[u8]) {
    check_body(Body::Response, opcode, body);
}

/// Which body of an operation a check decodes.
#[derive(Clone, Copy)]
enum Body {
    Request,
    Response,
}

fn check_body(kind: Body, opcode: Opcode, body: &[u8]) {
    macro_rules! arm {
        ($op:ty) => {
            if opcode == <$op as Operation>::OPCODE {
                return body_round_trip::<$op>(kind, body);
            }
        };
    }
    bulwark_interface::for_each_operation!(arm);
    unreachable!("{opcode:?} is in the operations table");
}

/// [`round_trip`] with the typed codec functions of `O` and the run-time dispatch, for the
/// request or the response body.
fn body_round_trip<O: Operation>(kind: Body, body: &[u8])
where
    O::Request: Clone + PartialEq,
    O::Response: Clone + PartialEq,
{
    use ops::{decode_request, decode_response, encode_request, encode_response};
    use ops::{reencode_request, reencode_response};
    match kind {
        Body::Request => round_trip(
            O::OPCODE,
            body,
            decode_request::<O>,
            encode_request::<O>,
            reencode_request,
        ),
        Body::Response => round_trip(
            O::OPCODE,
            body,
            decode_response::<O>,
            encode_response::<O>,
            reencode_response,
        ),
    }
}

/// The checks of [`check_request_body`] on one direction of `opcode`'s codec: `decode` and
/// `encode` are the typed functions of the operation (request or response), `reencode` the
/// run-time dispatch of the same direction.
fn round_trip<T, E>(
    opcode: Opcode,
    body: &[u8],
    decode: fn(&[u8]) -> Result<T, BodyError>,
    encode: fn(T) -> Result<E, BodyError>,
    reencode: fn(Opcode, &[u8]) -> Result<E, BodyError>,
) where
    T: Clone + PartialEq + std::fmt::Debug,
    E: std::ops::Deref<Target = Vec<u8>>,
{
    let dynamic = reencode(opcode, body);
    let native = match decode(body) {
        Ok(native) => native,
        Err(error) => {
            assert_ne!(
                error,
                BodyError::Serialize,
                "decoding never fails to serialize"
            );
            assert_eq!(dynamic.err(), Some(error), "{opcode:?} dispatch");
            return;
        }
    };
    let first = encode(native.clone())
        .unwrap_or_else(|e| panic!("{opcode:?}: decoded {native:?} does not encode: {e}"));
    let again = decode(&first)
        .unwrap_or_else(|e| panic!("{opcode:?}: {native:?} re-encoded does not decode: {e}"));
    assert!(again == native, "{opcode:?}: {native:?} became {again:?}");
    let second = encode(again).expect("encodes as it did before");
    assert_eq!(first.as_slice(), second.as_slice(), "{opcode:?}");
    let dynamic = dynamic.expect("the dispatch decodes what the typed path decodes");
    assert_eq!(dynamic.as_slice(), first.as_slice(), "{opcode:?} dispatch");
}

/// The sans-IO header check ([`RawHeader::parse_partial`]) and the stream reader behind `parse`
/// agree once a whole header is there: the same header error, or an accepted header that is
/// written back as the same 36 bytes. (On shorter inputs the reader stops at the end of the
/// data first and reports the end of the stream, by design.)
fn check_header_agreement(data: &[u8], parse_error: Option<WireError>) {
    if data.len() < HEADER_LEN {
        return;
    }
    match RawHeader::parse_partial(data) {
        Ok(Some(header)) => {
            assert_eq!(
                header.to_bytes().as_slice(),
                &data[..HEADER_LEN],
                "raw header"
            );
            assert!(
                !matches!(
                    parse_error,
                    Some(
                        WireError::BadMagic(_)
                            | WireError::HeaderSize(_)
                            | WireError::UnsupportedVersion(..)
                            | WireError::NonZeroReserved
                            | WireError::Closed
                    )
                ),
                "header accepted by parse_partial, rejected by the reader: {parse_error:?}"
            );
        }
        Ok(None) => panic!("parse_partial wants more than {} bytes", data.len()),
        Err(error) => assert_eq!(parse_error, Some(error), "header error"),
    }
}
