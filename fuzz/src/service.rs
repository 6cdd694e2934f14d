//! The invariants of the `service` fuzz target: raw request bytes through the whole service
//! (`Service::handle_bytes`: framing, Direct authentication, dispatch, the real Mbed Crypto
//! provider, a SQLite key store in a temporary directory) to response bytes.
//!
//! This file is compiled into the fuzz target (`fuzz_targets/service.rs`) and into
//! `crates/service/tests/fuzz_service_corpus.rs` (both through `#[path]`), so it may depend on
//! nothing but `bulwark-interface`, `bulwark-service`, `tempfile` and `std`.
//!
//! Every check panics on a violated invariant; inputs that are merely invalid return quietly.
// Set-up failing and violated invariants are reported by panicking.
#![allow(clippy::expect_used)]

use std::cell::Cell;
use std::sync::{Once, OnceLock};

use bulwark_interface::ops::{self, Opcode};
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, ResponseFrame, HEADER_LEN};
use bulwark_service::auth::PeerCredentials;
use bulwark_service::service::Service;
use bulwark_service::test_support::mbed_service_in;

/// The body limit responses are parsed with (the client's default).
pub const MAX_RESPONSE_BODY: usize = 1 << 20;

/// The Direct application name of the golden vectors and of the seeds.
pub const APP: &[u8] = b"vector-app";

/// The caller every input comes from: an ordinary user (Direct authentication ignores it).
pub const PEER: PeerCredentials = PeerCredentials {
    uid: 1000,
    gid: 1000,
    pid: Some(4242),
};

/// Provider id of Mbed Crypto on the wire.
pub const MBED: u8 = 1;

/// Auth type Direct on the wire.
pub const DIRECT: u8 = 1;

/// PSA attributes of an exportable ECC P-256 key pair for ECDSA-SHA-256 signing, as the golden
/// vector `direct-05` encodes them (`psa_key_attributes.proto`).
pub const P256_ATTRIBUTES: &str = "0a045a0208021080021a140a0830013801400148011208320622040a021007";

/// A valid P-256 private key (any scalar in 1..n).
pub const P256_PRIVATE: [u8; 32] = [
    0xc9, 0xaf, 0xa9, 0xd8, 0x45, 0xba, 0x75, 0x16, 0x6b, 0x5c, 0x21, 0x57, 0x67, 0xb1, 0xd6, 0x93,
    0x4e, 0x50, 0xc3, 0xdb, 0x36, 0xe8, 0x9b, 0x12, 0x7b, 0x8a, 0x62, 0x2b, 0x12, 0x0f, 0x67, 0x21,
];

/// The keys every input finds in the store (application [`APP`]): `k0` and `vector-key` (the
/// key of the golden vectors) generated, `k1` imported. `k2` and `k3` are left free so that
/// seeds creating them succeed.
const PRESET_KEYS: [&str; 3] = ["k0", "k1", "vector-key"];

struct Harness {
    service: Service,
    dir: tempfile::TempDir,
}

thread_local! {
    /// Panics seen on this thread, caught or not.
    static PANICS: Cell<u64> = const { Cell::new(0) };
}

fn panics() -> u64 {
    PANICS.with(Cell::get)
}

/// Counts every panic on the thread before handing it to the previous hook, so that a panic
/// the service catches (and answers PsaErrorGenericError, `Internal("a handler panicked")`)
/// is still seen.
fn install_panic_counter() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|count| count.set(count.get() + 1));
            previous(info);
        }));
    });
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        install_panic_counter();
        let dir = work_dir_of_this_process();
        // Also the working directory, for Mbed TLS's key files.
        let service = mbed_service_in(dir.path()).expect("fuzz service");
        let harness = Harness { service, dir };
        restore_preset_keys(&harness.service);
        harness
    })
}

/// The temporary directory of the service (store, Mbed TLS key files, working directory). It is
/// never removed on its own (the service lives in a static); the replay test removes it when it
/// is done.
pub fn work_dir() -> &'static std::path::Path {
    harness().dir.path()
}

/// A fresh directory `<tmp>/bulwark-fuzz-service/<pid>-XXXXXX`. A fuzzing process ends with
/// `exit` and never drops the static service, so its directory stays; each new process first
/// removes the directories of processes that are gone (`cap-corpus.py` starts one per input).
fn work_dir_of_this_process() -> tempfile::TempDir {
    let parent = std::env::temp_dir().join("bulwark-fuzz-service");
    std::fs::create_dir_all(&parent).expect("fuzz work directory");
    if let Ok(entries) = std::fs::read_dir(&parent) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((pid, _)) = name.split_once('-') else {
                continue;
            };
            if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    tempfile::Builder::new()
        .prefix(&format!("{}-", std::process::id()))
        .tempdir_in(&parent)
        .expect("temporary directory")
}

/// A protobuf length-delimited field.
fn field(number: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![(number << 3) | 2];
    let mut len = value.len();
    loop {
        let byte = u8::try_from(len & 0x7f).expect("seven bits");
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(value);
    out
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A request frame (docs/protocol.md#header-layout, version 1.0, protobuf both ways).
pub fn request(provider: u8, opcode: Opcode, auth_type: u8, body: &[u8], auth: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + auth.len());
    out.extend_from_slice(&0x5EC0_A710_u32.to_le_bytes());
    out.extend_from_slice(&30_u16.to_le_bytes()); // header size after these 6 bytes
    out.extend_from_slice(&[1, 0]); // version 1.0
    out.extend_from_slice(&[0, 0]); // flags
    out.push(provider);
    out.extend_from_slice(&0_u64.to_le_bytes()); // session
    out.extend_from_slice(&[0, 0, auth_type]); // content type, accept type, auth type
    out.extend_from_slice(
        &u32::try_from(body.len())
            .expect("body length")
            .to_le_bytes(),
    );
    out.extend_from_slice(
        &u16::try_from(auth.len())
            .expect("auth length")
            .to_le_bytes(),
    );
    out.extend_from_slice(&opcode.value().to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // status, reserved
    out.extend_from_slice(body);
    out.extend_from_slice(auth);
    out
}

fn mbed(opcode: Opcode, body: &[u8]) -> Vec<u8> {
    request(MBED, opcode, DIRECT, body, APP)
}

/// PsaGenerateKey of an ECC P-256 signing key named `name`.
pub fn generate_key(name: &str) -> Vec<u8> {
    let mut body = field(1, name.as_bytes());
    body.extend(field(2, &unhex(P256_ATTRIBUTES)));
    mbed(Opcode::PsaGenerateKey, &body)
}

/// PsaImportKey of [`P256_PRIVATE`] named `name`.
pub fn import_key(name: &str) -> Vec<u8> {
    let mut body = field(1, name.as_bytes());
    body.extend(field(2, &unhex(P256_ATTRIBUTES)));
    body.extend(field(3, &P256_PRIVATE));
    mbed(Opcode::PsaImportKey, &body)
}

/// PsaSignHash (ECDSA SHA-256) of the SHA-256 of "abc" with key `name`.
pub fn sign_hash(name: &str) -> Vec<u8> {
    let mut body = field(1, name.as_bytes());
    body.extend(unhex("120622040a021007"));
    body.extend(field(
        3,
        &unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ));
    mbed(Opcode::PsaSignHash, &body)
}

/// A request whose body is only the key name (export, export public key, destroy).
pub fn by_name(opcode: Opcode, name: &str) -> Vec<u8> {
    mbed(opcode, &field(1, name.as_bytes()))
}

/// Valid requests that reach the key paths: the seeds the committed corpus starts from, besides
/// the golden vectors.
pub fn seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for name in ["k0", "k1", "k2", "k3"] {
        seeds.push(generate_key(name));
        seeds.push(import_key(name));
        seeds.push(sign_hash(name));
        seeds.push(by_name(Opcode::PsaExportPublicKey, name));
        seeds.push(by_name(Opcode::PsaExportKey, name));
        seeds.push(by_name(Opcode::PsaDestroyKey, name));
    }
    seeds
}

/// Answers `bytes` with the fuzz service and returns the parsed status.
fn status_of(service: &Service, bytes: &[u8]) -> ResponseStatus {
    let answer = service
        .handle_bytes(bytes, Some(&PEER))
        .expect("a response");
    ResponseFrame::parse(&answer, MAX_RESPONSE_BODY)
        .expect("a response that parses")
        .0
        .header
        .status
}

/// Puts back the keys every input expects ([`PRESET_KEYS`]); idempotent.
fn restore_preset_keys(service: &Service) {
    for name in PRESET_KEYS {
        let bytes = if name == "k1" {
            import_key(name)
        } else {
            generate_key(name)
        };
        let status = status_of(service, &bytes);
        assert!(
            matches!(
                status,
                ResponseStatus::Success | ResponseStatus::PsaErrorAlreadyExists
            ),
            "creating preset key {name}: {status:?}"
        );
    }
}

/// `service`: `data` as one request to the whole service.
///
/// - the service answers (`handle_bytes` gives `Some`), and no handler panicked, not even one
///   the service caught and answered PsaErrorGenericError;
/// - the answer is exactly one response frame that [`ResponseFrame::parse`] accepts, with a
///   status of the table;
/// - a non-success response has an empty body;
/// - a successful response answers a request that parses, with the request's opcode.
///
/// So that the store does not grow, a key an input creates (a successful PsaGenerateKey or
/// PsaImportKey) is destroyed with a second request under the same provider and auth, which
/// must succeed; after a successful PsaDestroyKey the preset keys are put back.
pub fn check_service_request(data: &[u8]) {
    let harness = harness();
    let service = &harness.service;
    let before = panics();
    let answer = service.handle_bytes(data, Some(&PEER));
    assert_eq!(
        panics(),
        before,
        "a handler panicked (the service answers PsaErrorGenericError)"
    );
    let answer = answer.expect("the service always answers");

    let (response, used) =
        ResponseFrame::parse(&answer, MAX_RESPONSE_BODY).expect("the response parses");
    assert_eq!(used, answer.len(), "the answer is one response frame");
    let status = response.header.status;
    assert_eq!(
        ResponseStatus::try_from(u16::from_le_bytes([answer[32], answer[33]])),
        Ok(status),
        "a defined status"
    );
    if !status.is_success() {
        assert!(
            response.body.is_empty(),
            "{status:?} response with a {}-byte body",
            response.body.len()
        );
        return;
    }

    let (request, _) = RequestFrame::parse(data, service.limits())
        .expect("a successful response answers a request that parses");
    let opcode = request.header.opcode;
    assert_eq!(
        response.header.opcode, opcode,
        "a success echoes the opcode"
    );

    let created = match opcode {
        Opcode::PsaGenerateKey => ops::decode_request::<ops::PsaGenerateKey>(&request.body)
            .map(|r| r.key_name)
            .ok(),
        Opcode::PsaImportKey => ops::decode_request::<ops::PsaImportKey>(&request.body)
            .map(|r| r.key_name)
            .ok(),
        Opcode::PsaDestroyKey => {
            restore_preset_keys(service);
            None
        }
        _ => None,
    };
    if let Some(name) = created {
        let destroy = request_like(&request, &field(1, name.as_bytes()));
        let status = status_of(service, &destroy);
        assert_eq!(
            status,
            ResponseStatus::Success,
            "destroying key {name:?} that {opcode:?} created"
        );
        // The input may have created a preset key after destroying it in an earlier input.
        restore_preset_keys(service);
    }
}

/// A PsaDestroyKey with `body`, sent as `like` was: same provider, auth type and auth bytes.
fn request_like(like: &RequestFrame, body: &[u8]) -> Vec<u8> {
    request(
        like.header.provider.value(),
        Opcode::PsaDestroyKey,
        like.header.auth_type.value(),
        body,
        &like.auth,
    )
}
