#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every header failure of docs/protocol.md#request-pipeline steps A1–A11, each with its status, and their order.

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{
    Limits, RawHeader, RequestFrame, RequestHeader, ResponseFrame, ResponseHeader, WireError,
};
use zeroize::Zeroizing;

/// A valid ListKeys request with a 3-byte body and Unix peer credentials for uid 1000.
fn valid() -> Vec<u8> {
    let frame = RequestFrame {
        header: RequestHeader::new(
            ProviderId::Core,
            Opcode::ListKeys,
            AuthType::UnixPeerCredentials,
        ),
        body: Zeroizing::new(vec![1, 2, 3]),
        auth: Zeroizing::new(1000u32.to_le_bytes().to_vec()),
    };
    frame.to_bytes().unwrap().to_vec()
}

fn status_of(bytes: &[u8]) -> ResponseStatus {
    match RequestFrame::parse(bytes, &Limits::default()) {
        Ok(_) => ResponseStatus::Success,
        Err(e) => e.into(),
    }
}

fn with(offset: usize, value: &[u8]) -> Vec<u8> {
    let mut b = valid();
    b[offset..offset + value.len()].copy_from_slice(value);
    b
}

#[test]
fn the_valid_request_parses() {
    assert_eq!(status_of(&valid()), ResponseStatus::Success);
    // Flags and request status are ignored.
    assert_eq!(status_of(&with(8, &[0xff, 0xff])), ResponseStatus::Success);
    assert_eq!(status_of(&with(32, &[0x34, 0x12])), ResponseStatus::Success);
}

#[test]
fn a1_bad_magic_is_invalid_header() {
    assert_eq!(status_of(&with(0, &[0x11])), ResponseStatus::InvalidHeader);
    // Decided on the first four bytes alone.
    assert_eq!(
        RawHeader::parse_partial(&[0, 0, 0, 0]),
        Err(WireError::BadMagic(0))
    );
}

#[test]
fn a2_header_size_other_than_30_is_invalid_header() {
    for size in [0u16, 29, 31, 0xffff] {
        assert_eq!(
            status_of(&with(4, &size.to_le_bytes())),
            ResponseStatus::InvalidHeader
        );
    }
    // A bogus size is refused as soon as it arrives: no waiting for bytes that never come.
    assert_eq!(
        RawHeader::parse_partial(&[0x10, 0xa7, 0xc0, 0x5e, 0xff, 0xff]),
        Err(WireError::HeaderSize(0xffff))
    );
}

#[test]
fn a3_version_other_than_1_0_is_not_supported() {
    for version in [[2u8, 0], [1, 1], [0, 0]] {
        assert_eq!(
            status_of(&with(6, &version)),
            ResponseStatus::WireProtocolVersionNotSupported
        );
    }
}

#[test]
fn a4_reserved_bytes_must_be_zero() {
    assert_eq!(status_of(&with(34, &[1])), ResponseStatus::InvalidHeader);
    assert_eq!(status_of(&with(35, &[1])), ResponseStatus::InvalidHeader);
}

#[test]
fn a5_body_over_the_limit_is_refused_before_it_is_read() {
    // Only the header is present: the body is never read.
    let header = with(22, &(2u32 << 20).to_le_bytes());
    assert_eq!(
        status_of(&header[..36]),
        ResponseStatus::BodySizeExceedsLimit
    );
    // The limit is a parameter.
    let small = Limits {
        body_len: 2,
        auth_len: 4,
    };
    let err = RequestFrame::parse(&valid(), &small).unwrap_err();
    assert_eq!(err, WireError::BodyTooLarge { len: 3, limit: 2 });
    let small_auth = Limits {
        body_len: 10,
        auth_len: 3,
    };
    let err = RequestFrame::parse(&valid(), &small_auth).unwrap_err();
    assert_eq!(
        ResponseStatus::from(err),
        ResponseStatus::BodySizeExceedsLimit
    );
}

#[test]
fn a6_short_reads_are_connection_errors() {
    let full = valid();
    for cut in [10, 35, 36, 38, full.len() - 1] {
        assert_eq!(
            status_of(&full[..cut]),
            ResponseStatus::ConnectionError,
            "cut at {cut}"
        );
    }
    // A stream that ends before any byte is a clean close, not a request.
    assert_eq!(
        RequestFrame::parse(&[], &Limits::default()),
        Err(WireError::Closed)
    );
}

#[test]
fn a7_to_a11_field_checks_have_their_statuses() {
    assert_eq!(
        status_of(&with(19, &[1])),
        ResponseStatus::ContentTypeNotSupported
    );
    assert_eq!(
        status_of(&with(20, &[1])),
        ResponseStatus::AcceptTypeNotSupported
    );
    assert_eq!(
        status_of(&with(21, &[5])),
        ResponseStatus::AuthenticatorDoesNotExist
    );
    let next = Opcode::next_unassigned();
    for opcode in [0u32, 0x1d, next, 0x7777] {
        assert_eq!(
            status_of(&with(28, &opcode.to_le_bytes())),
            ResponseStatus::OpcodeDoesNotExist
        );
    }
    assert_eq!(
        status_of(&with(10, &[6])),
        ResponseStatus::ProviderDoesNotExist
    );
}

#[test]
fn field_checks_run_in_the_order_of_the_spec() {
    // content type, accept type, auth type, opcode, provider: the first failure wins.
    let mut b = valid();
    b[10] = 9; // provider
    b[28] = 0x77; // opcode
    b[21] = 9; // auth type
    b[20] = 9; // accept type
    b[19] = 9; // content type
    let order = [
        (19, ResponseStatus::ContentTypeNotSupported),
        (20, ResponseStatus::AcceptTypeNotSupported),
        (21, ResponseStatus::AuthenticatorDoesNotExist),
        (28, ResponseStatus::OpcodeDoesNotExist),
        (10, ResponseStatus::ProviderDoesNotExist),
    ];
    for (offset, expected) in order {
        assert_eq!(status_of(&b), expected);
        b[offset] = if offset == 28 {
            Opcode::ListKeys.value() as u8
        } else {
            0
        };
    }
    assert_eq!(status_of(&b), ResponseStatus::Success);
    // A framing error wins over every field error.
    let mut b = valid();
    b[19] = 9;
    b[34] = 1;
    assert_eq!(status_of(&b), ResponseStatus::InvalidHeader);
}

#[test]
fn error_responses_have_the_two_shapes() {
    let bare = ResponseFrame::error(ResponseHeader::bare(ResponseStatus::ProviderDoesNotExist));
    let expected =
        hex::decode("10a7c05e1e00010000000000000000000000000000000000000000000100000006000000")
            .unwrap();
    assert_eq!(bare.to_bytes().unwrap().as_slice(), expected);
    let mut request = RequestHeader::new(
        ProviderId::MbedCrypto,
        Opcode::PsaSignHash,
        AuthType::Direct,
    );
    request.session = 0x0102_0304_0506_0708;
    let echo = ResponseFrame::error(ResponseHeader::echo(
        &request,
        ResponseStatus::PsaErrorDoesNotExist,
    ));
    let (parsed, _) = ResponseFrame::parse(&echo.to_bytes().unwrap(), usize::MAX).unwrap();
    assert_eq!(parsed.header.provider, ProviderId::MbedCrypto);
    assert_eq!(parsed.header.session, 0x0102_0304_0506_0708);
    assert_eq!(parsed.header.opcode, Opcode::PsaSignHash);
    assert_eq!(parsed.header.status, ResponseStatus::PsaErrorDoesNotExist);
}

#[test]
fn responses_are_checked_like_the_client_does() {
    let ok = ResponseFrame::error(ResponseHeader::bare(ResponseStatus::Success));
    let mut bytes = ok.to_bytes().unwrap().to_vec();
    bytes[32..34].copy_from_slice(&1144u16.to_le_bytes());
    assert_eq!(
        ResponseStatus::from(ResponseFrame::parse(&bytes, usize::MAX).unwrap_err()),
        ResponseStatus::InvalidEncoding
    );
    let mut big = ok.to_bytes().unwrap().to_vec();
    big[22..26].copy_from_slice(&100u32.to_le_bytes());
    assert_eq!(
        ResponseStatus::from(ResponseFrame::parse(&big, 10).unwrap_err()),
        ResponseStatus::BodySizeExceedsLimit
    );
}

#[test]
fn a_response_has_no_auth_part_whatever_its_auth_length_says() {
    let ok = ResponseFrame::error(ResponseHeader::bare(ResponseStatus::Success));
    let mut bytes = ok.to_bytes().unwrap().to_vec();
    bytes[26] = 2;
    let (parsed, used) = ResponseFrame::parse(&bytes, usize::MAX).unwrap();
    assert_eq!(parsed.header.status, ResponseStatus::Success);
    assert_eq!(used, 36);
}
