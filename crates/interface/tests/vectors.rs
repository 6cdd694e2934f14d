#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden exchanges captured from the upstream service (`testdata/vectors/`): every request and
//! response is decoded by our codec and encoded again, and must come out byte for byte.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bulwark_interface::ops::{self, list_opcodes, ListOpcodes, Opcode};
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{Limits, RawRequest, RequestFrame, ResponseFrame, WireError};

struct Vector {
    name: String,
    comment: String,
    request: Vec<u8>,
    response: Vec<u8>,
}

fn vectors_dir() -> PathBuf {
    std::env::var_os("BULWARK_VECTORS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors"))
}

fn load() -> Vec<Vector> {
    let dir = vectors_dir();
    let mut out = Vec::new();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden vectors not found at {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "hex") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        let comment = lines.next().unwrap().to_owned();
        let request = hex::decode(lines.next().unwrap().trim()).unwrap();
        let response = hex::decode(lines.next().unwrap_or("").trim()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        out.push(Vector {
            name,
            comment,
            request,
            response,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() >= 60,
        "expected the full set of vectors, found {}",
        out.len()
    );
    out
}

fn recorded_status(v: &Vector) -> ResponseStatus {
    let (response, _) = ResponseFrame::parse(&v.response, usize::MAX)
        .unwrap_or_else(|e| panic!("{}: response does not parse: {e}", v.name));
    response.header.status
}

#[test]
fn every_response_decodes_and_reencodes_byte_for_byte() {
    let mut checked = 0;
    for v in load() {
        let (response, used) = ResponseFrame::parse(&v.response, usize::MAX)
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(used, v.response.len(), "{}: trailing bytes", v.name);
        assert_eq!(
            response.to_bytes().unwrap().as_slice(),
            v.response,
            "{}: frame",
            v.name
        );
        if response.header.status.is_success() {
            let opcode = response.header.opcode;
            if opcode == Opcode::ListOpcodes {
                // The upstream service lists opcodes from a hash set: compare as a set.
                let decoded = ops::decode_response::<ListOpcodes>(&response.body).unwrap();
                let reencoded = ops::encode_response::<ListOpcodes>(decoded.clone()).unwrap();
                let again: list_opcodes::Response =
                    ops::decode_response::<ListOpcodes>(&reencoded).unwrap();
                assert_eq!(again, decoded);
                let raw: BTreeSet<u8> = response.body[2..].iter().copied().collect();
                assert_eq!(raw.len(), decoded.opcodes.len(), "{}", v.name);
            } else {
                let reencoded = ops::reencode_response(opcode, &response.body)
                    .unwrap_or_else(|e| panic!("{}: body: {e}", v.name));
                assert_eq!(
                    reencoded.as_slice(),
                    response.body.as_slice(),
                    "{}: body",
                    v.name
                );
            }
        } else {
            assert!(
                response.body.is_empty(),
                "{}: error responses carry no body",
                v.name
            );
        }
        checked += 1;
    }
    assert!(checked >= 60);
}

#[test]
fn every_well_formed_request_decodes_and_reencodes_byte_for_byte() {
    let mut reencoded_count = 0;
    for v in load() {
        let status = recorded_status(&v);
        match RequestFrame::parse(&v.request, &Limits::default()) {
            Ok((frame, used)) => {
                assert_eq!(used, v.request.len(), "{}: trailing bytes", v.name);
                assert_eq!(
                    frame.to_bytes().unwrap().as_slice(),
                    v.request,
                    "{}: frame",
                    v.name
                );
                match ops::reencode_request(frame.header.opcode, &frame.body) {
                    Ok(body) => {
                        assert_eq!(body.as_slice(), frame.body.as_slice(), "{}: body", v.name);
                        reencoded_count += 1;
                    }
                    Err(error) => {
                        // Only the deliberately garbled body may fail, and with the status the
                        // upstream service gave it.
                        assert_eq!(ResponseStatus::from(error), status, "{}", v.name);
                    }
                }
            }
            Err(error) => {
                // Framing failures must be the very status the upstream service answered.
                assert_eq!(
                    ResponseStatus::from(error),
                    status,
                    "{}: {}",
                    v.name,
                    v.comment
                );
            }
        }
    }
    assert!(
        reencoded_count >= 50,
        "only {reencoded_count} requests re-encoded"
    );
}

#[test]
fn framing_failures_give_the_recorded_status() {
    // Files whose request the upstream service refused while reading the header.
    let cases = [
        ("raw-ping-bad-magic", ResponseStatus::InvalidHeader),
        (
            "raw-ping-version-2-0",
            ResponseStatus::WireProtocolVersionNotSupported,
        ),
        (
            "raw-ping-unknown-provider",
            ResponseStatus::ProviderDoesNotExist,
        ),
        ("raw-unknown-opcode", ResponseStatus::OpcodeDoesNotExist),
        (
            "raw-ping-content-type-99",
            ResponseStatus::ContentTypeNotSupported,
        ),
        (
            "raw-list-keys-body-len-2MiB",
            ResponseStatus::BodySizeExceedsLimit,
        ),
    ];
    let vectors = load();
    for (suffix, expected) in cases {
        let matching: Vec<_> = vectors.iter().filter(|v| v.name.contains(suffix)).collect();
        assert_eq!(matching.len(), 2, "{suffix}: one per authenticator");
        for v in matching {
            assert_eq!(recorded_status(v), expected, "{}", v.name);
            let error = RawRequest::parse(&v.request, &Limits::default())
                .and_then(|(raw, _)| RequestFrame::try_from(raw))
                .expect_err(&v.name);
            assert_eq!(ResponseStatus::from(error), expected, "{}", v.name);
            if expected == ResponseStatus::BodySizeExceedsLimit {
                assert!(matches!(
                    error,
                    WireError::BodyTooLarge { len: 2_097_152, .. }
                ));
            }
        }
    }
}
