//! Golden exchanges: every request captured from the upstream Parsec service
//! (`testdata/vectors/`, see its README) is replayed raw against `bulwarkd` and must get the
//! recorded response.
//!
//! Each family (`direct-*`, `unix-*`, `cli-unix-*`) is replayed in file order against one fresh
//! daemon, as the captures were made in order on a fresh store. Responses are compared byte for
//! byte, except:
//! * parts the README calls random (public key, signature, random bytes): the header and the
//!   length are compared; the verify requests carry the capture's signature, which is replaced
//!   by the one our daemon returned at step 08 (last byte flipped for the bad-signature step);
//! * ListOpcodes: compared as sets, ours a superset of the recorded one (Bulwark serves more
//!   operations on purpose);
//! * ListProviders / ListAuthenticators: decoded and compared field by field, except the
//!   `description` strings and the core provider's version numbers, which are Bulwark's own;
//!   with the OpenSSL provider (the default; `BULWARK_E2E_PROVIDER=MbedCrypto` selects the
//!   other), provider 1 is expected with that provider's own UUID and vendor instead of Mbed
//!   Crypto's.
//!
//! The unix captures were made as root: when this process is not uid 0, the 4 auth bytes of each
//! Unix-authenticated request are rewritten to the current uid (uid + 1 for the bad-credentials
//! step).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::{
    decode_response, ListAuthenticators, ListOpcodes, ListProviders, Opcode, PsaSignHash,
};
use bulwark_service::providers::openssl::OPENSSL_UUID;

use crate::harness::{provider, Auth, Daemon, Provider};

const HEADER_LEN: usize = 36;
const AUTH_UNIX: u8 = 3;
const STATUS_INVALID_SIGNATURE: u16 = 1149;
/// The core provider's UUID (docs/protocol.md#providers).
const CORE_UUID: &str = "47049873-2a43-4845-9d72-831eab668784";

/// The vectors directory: `BULWARK_VECTORS`, or the workspace's `testdata/vectors`.
fn vectors_dir() -> PathBuf {
    match std::env::var_os("BULWARK_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/vectors"
        )),
    }
}

/// One captured exchange.
struct Vector {
    name: String,
    request: Vec<u8>,
    response: Vec<u8>,
}

/// The files of one family (names starting with `prefix`), in file-name order.
fn load_family(prefix: &str) -> Vec<Vector> {
    let dir = vectors_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "golden vectors directory {} is missing ({e}); set BULWARK_VECTORS to its path",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(prefix) && name.ends_with(".hex")
        })
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "no {prefix}*.hex vectors in {}",
        dir.display()
    );
    paths.iter().map(|p| parse_vector(p)).collect()
}

fn parse_vector(path: &Path) -> Vector {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.len() >= 2 && lines[0].starts_with('#'),
        "{}: expected a comment line, a request line and a response line",
        path.display()
    );
    let decode = |line: Option<&&str>| hex::decode(line.map_or("", |l| l.trim())).unwrap();
    Vector {
        name: path.file_stem().unwrap().to_string_lossy().into_owned(),
        request: decode(lines.get(1)),
        response: decode(lines.get(2)),
    }
}

fn opcode_of(frame: &[u8]) -> u32 {
    u32::from_le_bytes(frame[28..32].try_into().unwrap())
}

fn status_of(frame: &[u8]) -> u16 {
    u16::from_le_bytes(frame[32..34].try_into().unwrap())
}

fn body_of(frame: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(frame[22..26].try_into().unwrap()) as usize;
    &frame[HEADER_LEN..HEADER_LEN + len]
}

/// The header without its `body_len` field (bytes 22..26).
fn header_without_len(frame: &[u8]) -> Vec<u8> {
    let mut h = frame[..22].to_vec();
    h.extend_from_slice(&frame[26..HEADER_LEN]);
    h
}

/// Rewrites the Unix auth bytes (the last 4 bytes of a complete auth-type-3 request) to `uid`.
fn rewrite_uid(request: &mut [u8], uid: u32) {
    if request.len() < HEADER_LEN || request[21] != AUTH_UNIX {
        return;
    }
    let body_len = u32::from_le_bytes(request[22..26].try_into().unwrap()) as usize;
    let auth_len = u16::from_le_bytes(request[26..28].try_into().unwrap()) as usize;
    // A request that declares more than it carries (the 2 MiB one) is rejected before its
    // auth is read: leave it as captured.
    if auth_len != 4 || request.len() != HEADER_LEN + body_len + auth_len {
        return;
    }
    let at = request.len() - 4;
    request[at..].copy_from_slice(&uid.to_le_bytes());
}

fn replace_all(haystack: &mut [u8], needle: &[u8], replacement: &[u8]) -> usize {
    assert_eq!(needle.len(), replacement.len());
    let mut count = 0;
    let mut i = 0;
    while !needle.is_empty() && i + needle.len() <= haystack.len() {
        if &haystack[i..i + needle.len()] == needle {
            haystack[i..i + needle.len()].copy_from_slice(replacement);
            count += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    count
}

fn flip_last(bytes: &[u8]) -> Vec<u8> {
    let mut v = bytes.to_vec();
    if let Some(last) = v.last_mut() {
        *last ^= 1;
    }
    v
}

/// State carried from step to step of one family.
#[derive(Default)]
struct Replay {
    /// Signature returned by the upstream service at the capture's sign step.
    recorded_signature: Option<Vec<u8>>,
    /// Signature returned by our daemon at the same step.
    our_signature: Option<Vec<u8>>,
}

/// How one file compared: `Ok(how it matched)` or `Err(what differed)`.
type Outcome = Result<String, String>;

fn exact(expected: &[u8], actual: &[u8]) -> Outcome {
    if expected == actual {
        Ok("byte-identical".into())
    } else {
        Err(format!(
            "expected {}\n      actual   {}",
            hex::encode(expected),
            hex::encode(actual)
        ))
    }
}

/// Random body: same header (body_len included) and same length.
fn header_and_length(expected: &[u8], actual: &[u8], what: &str) -> Outcome {
    if actual.len() < HEADER_LEN {
        return Err(format!("short response {}", hex::encode(actual)));
    }
    if expected[..HEADER_LEN] != actual[..HEADER_LEN] || expected.len() != actual.len() {
        return Err(format!(
            "header/length differ ({what}): expected header {} ({} bytes)\n      actual   header {} ({} bytes)",
            hex::encode(&expected[..HEADER_LEN]),
            expected.len(),
            hex::encode(&actual[..HEADER_LEN]),
            actual.len()
        ));
    }
    Ok(format!(
        "header and length identical, {what} differs as expected"
    ))
}

/// Header identical except `body_len`; the bodies are compared by the caller.
fn check_header_except_len(expected: &[u8], actual: &[u8]) -> Result<(), String> {
    if actual.len() < HEADER_LEN {
        return Err(format!("short response {}", hex::encode(actual)));
    }
    if header_without_len(expected) != header_without_len(actual) {
        return Err(format!(
            "headers differ (body_len ignored): expected {}\n      actual   {}",
            hex::encode(&expected[..HEADER_LEN]),
            hex::encode(&actual[..HEADER_LEN])
        ));
    }
    Ok(())
}

fn compare_list_opcodes(expected: &[u8], actual: &[u8]) -> Outcome {
    check_header_except_len(expected, actual)?;
    let theirs = decode_response::<ListOpcodes>(body_of(expected))
        .map_err(|e| format!("recorded body undecodable: {e:?}"))?
        .opcodes;
    let ours = decode_response::<ListOpcodes>(body_of(actual))
        .map_err(|e| format!("our body undecodable: {e:?}"))?
        .opcodes;
    let missing: BTreeSet<&Opcode> = theirs.difference(&ours).collect();
    if !missing.is_empty() {
        return Err(format!(
            "opcodes the upstream service lists but we do not: {missing:?}"
        ));
    }
    let extra: Vec<&Opcode> = ours.difference(&theirs).collect();
    Ok(format!(
        "opcode set is a superset of the recorded {} ({} extra: {extra:?})",
        theirs.len(),
        extra.len()
    ))
}

fn compare_list_providers(expected: &[u8], actual: &[u8]) -> Outcome {
    check_header_except_len(expected, actual)?;
    let theirs = decode_response::<ListProviders>(body_of(expected))
        .map_err(|e| format!("recorded body undecodable: {e:?}"))?
        .providers;
    let ours = decode_response::<ListProviders>(body_of(actual))
        .map_err(|e| format!("our body undecodable: {e:?}"))?
        .providers;
    if theirs.len() != ours.len() {
        return Err(format!(
            "{} providers recorded, {} listed: {ours:?}",
            theirs.len(),
            ours.len()
        ));
    }
    for (t, o) in theirs.iter().zip(&ours) {
        // `description` is free text and the core provider's version is Bulwark's own version,
        // so neither is compared; every other field must be the upstream value, except the
        // identity of the OpenSSL provider, which stands in for Mbed Crypto as provider 1.
        let is_core = t.uuid.hyphenated().to_string() == CORE_UUID;
        let (uuid, vendor) = if provider() == Provider::OpenSsl && t.id == ProviderId::MbedCrypto {
            (
                uuid::Uuid::parse_str(OPENSSL_UUID).map_err(|e| e.to_string())?,
                "OpenSSL".to_owned(),
            )
        } else {
            (t.uuid, t.vendor.clone())
        };
        let same = uuid == o.uuid
            && vendor == o.vendor
            && t.id == o.id
            && (is_core
                || (t.version_maj, t.version_min, t.version_rev)
                    == (o.version_maj, o.version_min, o.version_rev));
        if !same {
            return Err(format!(
                "provider differs:\n      expected {t:?}\n      actual   {o:?}"
            ));
        }
    }
    Ok(format!(
        "{} providers: uuid/vendor/id/version identical (descriptions and core version not compared)",
        ours.len()
    ))
}

fn compare_list_authenticators(expected: &[u8], actual: &[u8]) -> Outcome {
    check_header_except_len(expected, actual)?;
    let theirs = decode_response::<ListAuthenticators>(body_of(expected))
        .map_err(|e| format!("recorded body undecodable: {e:?}"))?
        .authenticators;
    let ours = decode_response::<ListAuthenticators>(body_of(actual))
        .map_err(|e| format!("our body undecodable: {e:?}"))?
        .authenticators;
    if theirs.len() != ours.len() {
        return Err(format!(
            "{} authenticators recorded, {} listed: {ours:?}",
            theirs.len(),
            ours.len()
        ));
    }
    for (t, o) in theirs.iter().zip(&ours) {
        // `description` is free text, Bulwark's own; id and version must be upstream's.
        if (t.id, t.version_maj, t.version_min, t.version_rev)
            != (o.id, o.version_maj, o.version_min, o.version_rev)
        {
            return Err(format!(
                "authenticator differs:\n      expected {t:?}\n      actual   {o:?}"
            ));
        }
    }
    Ok(format!(
        "{} authenticator(s): id/version identical (description not compared)",
        ours.len()
    ))
}

fn sign_result_signature(frame: &[u8]) -> Result<Vec<u8>, String> {
    decode_response::<PsaSignHash>(body_of(frame))
        .map(|r| r.signature)
        .map_err(|e| format!("sign result undecodable: {e}"))
}

/// Sends one vector (after the substitutions it needs) and compares the answer.
fn replay_one(daemon: &Daemon, vector: &Vector, uid: u32, state: &mut Replay) -> Outcome {
    let mut request = vector.request.clone();
    let expected = &vector.response;
    if request.len() < HEADER_LEN {
        return Err("request shorter than a header".into());
    }
    let opcode = Opcode::try_from(opcode_of(&request)).ok();
    let is_unix = vector.name.starts_with("unix-") || vector.name.starts_with("cli-unix-");
    if is_unix && uid != 0 {
        let declared = if vector.name.contains("bad-credentials") {
            uid + 1
        } else {
            uid
        };
        rewrite_uid(&mut request, declared);
    }
    let recorded_ok = expected.len() >= HEADER_LEN && status_of(expected) == 0;

    let mut note = String::new();
    if opcode == Some(Opcode::PsaVerifyHash) {
        let (Some(recorded), Some(ours)) = (&state.recorded_signature, &state.our_signature) else {
            return Err("verify step without a preceding successful sign step".into());
        };
        let bad = expected.len() >= HEADER_LEN && status_of(expected) == STATUS_INVALID_SIGNATURE;
        let (needle, replacement) = if bad {
            (flip_last(recorded), flip_last(ours))
        } else {
            (recorded.clone(), ours.clone())
        };
        if needle.len() != replacement.len() {
            return Err(format!(
                "our signature is {} bytes, the capture's {}",
                replacement.len(),
                needle.len()
            ));
        }
        if replace_all(&mut request, &needle, &replacement) != 1 {
            return Err("the capture's signature was not found in the verify request".into());
        }
        note = if bad {
            " (request carries our step-08 signature, last byte flipped)".into()
        } else {
            " (request carries our step-08 signature)".into()
        };
    }

    let actual = daemon.send_raw(&request);
    if expected.is_empty() {
        return if actual.is_empty() {
            Ok("no response, as recorded".into())
        } else {
            Err(format!(
                "expected no response, got {}",
                hex::encode(&actual)
            ))
        };
    }
    if actual.len() < HEADER_LEN {
        return Err(format!(
            "short/no response ({} bytes: {}), expected {}",
            actual.len(),
            hex::encode(&actual),
            hex::encode(expected)
        ));
    }

    let outcome = match opcode {
        Some(Opcode::ListOpcodes) if recorded_ok => compare_list_opcodes(expected, &actual),
        Some(Opcode::ListProviders) if recorded_ok => compare_list_providers(expected, &actual),
        Some(Opcode::ListAuthenticators) if recorded_ok => {
            compare_list_authenticators(expected, &actual)
        }
        Some(Opcode::PsaExportPublicKey) if recorded_ok => {
            header_and_length(expected, &actual, "public key")
        }
        Some(Opcode::PsaGenerateRandom) if recorded_ok => {
            header_and_length(expected, &actual, "random bytes")
        }
        Some(Opcode::PsaSignHash) if recorded_ok => {
            let outcome = header_and_length(expected, &actual, "signature");
            if outcome.is_ok() {
                state.recorded_signature = Some(sign_result_signature(expected)?);
                state.our_signature = Some(sign_result_signature(&actual)?);
            }
            outcome
        }
        _ => exact(expected, &actual),
    };
    outcome.map(|how| how + &note)
}

/// Replays one family against one fresh daemon and asserts every file matched.
fn replay_family(prefix: &str, auth: Auth) {
    let vectors = load_family(prefix);
    let daemon = Daemon::start(auth);
    let uid = nix::unistd::getuid().as_raw();
    let mut state = Replay::default();
    let mut report = String::new();
    let mut failures = 0;
    for vector in &vectors {
        let outcome = replay_one(&daemon, vector, uid, &mut state);
        match &outcome {
            Ok(how) => writeln!(report, "  ok   {}: {how}", vector.name).unwrap(),
            Err(why) => {
                failures += 1;
                writeln!(report, "  FAIL {}: {why}", vector.name).unwrap();
            }
        }
    }
    println!("golden vectors {prefix}* (uid {uid}):\n{report}");
    assert!(
        failures == 0,
        "{failures} of {} {prefix}* vectors did not match:\n{report}\ndaemon log:\n{}",
        vectors.len(),
        daemon.log()
    );
}

#[test]
fn direct_vectors_match_upstream() {
    replay_family("direct-", Auth::direct());
}

#[test]
fn unix_vectors_match_upstream() {
    replay_family("unix-", Auth::unix());
}

#[test]
fn cli_unix_vectors_match_upstream() {
    replay_family("cli-unix-", Auth::unix());
}

#[test]
fn uid_rewrite_touches_only_complete_unix_requests() {
    // ListKeys with uid 0 (docs/protocol.md#test-vectors layout): rewritten.
    let mut req = hex::decode(
        "10a7c05e1e00010000000000000000000000000000030000000004001a0000000000000000000000",
    )
    .unwrap();
    rewrite_uid(&mut req, 1000);
    assert_eq!(&req[36..], &[0xe8, 0x03, 0, 0]);
    // Declares a 2 MiB body it does not carry: untouched.
    let captured = hex::decode(
        "10a7c05e1e00010000000000000000000000000000030000200004001a0000000000000000000000",
    )
    .unwrap();
    let mut req = captured.clone();
    rewrite_uid(&mut req, 1000);
    assert_eq!(req, captured);
}
