//! Hostile input against the running daemon: broken and lying frames, slow clients, clients
//! that never read, floods of connections, garbage bodies for every opcode and key names meant
//! to escape or match more than themselves.
//!
//! Each case asserts the exact status of docs/protocol.md#request-pipeline (or a closed connection where the spec or
//! the front end's limits say so), and after every group of cases (during it, for the slow
//! ones) a normal client — another application — pings and signs with a real key and checks
//! the signature. No daemon log may contain "panicked". Each group prints how many cases it
//! passed; the last one to finish prints the total ("hostile: N cases passed").
//!
//! `connections` needs root: it re-executes this test binary as another uid (see `flood`),
//! since the per-client limits count connections per uid.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_client::{attributes, AsymmetricSignature, Auth, Client, EccFamily, Hash};
use bulwark_interface::ops::{self, Opcode};
use bulwark_interface::status::ResponseStatus as S;
use bulwark_interface::wire::{RawHeader, ResponseFrame, FLAG_KEEP_OPEN, HEADER_LEN};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::flood::{
    child_binary, child_lines, child_socket, next_line, ping_request, run_child, FLOOD_UID,
};
use crate::harness::{Auth as DaemonAuth, Daemon};

/// `listener.timeout` of the harness's configuration.
const IO_TIMEOUT: Duration = Duration::from_millis(2000);
/// Allowance on top of [`IO_TIMEOUT`] for "within the timeout": generous, for loaded machines.
const SLACK: Duration = Duration::from_secs(3);
/// Less than [`IO_TIMEOUT`]: an answer this fast did not wait for a timeout.
const PROMPT: Duration = Duration::from_millis(1500);
/// The daemon's default `body_len_limit`.
const BODY_LIMIT: usize = 1 << 20;
const SESSION: u64 = 0x0123_4567_89AB_CDEF;
const NORMAL_KEY: &str = "normal-key";
const MBED: u8 = 1;
const CORE: u8 = 0;
const NO_AUTH: u8 = 0;
const DIRECT: u8 = 1;
const UNIX: u8 = 3;

/// Number of `#[test]` groups below that count cases.
const GROUPS: usize = 8;
static CASES: AtomicUsize = AtomicUsize::new(0);
static GROUPS_DONE: AtomicUsize = AtomicUsize::new(0);

// ---------------------------------------------------------------------------------------------
// Cases, groups and the normal client.

struct Group {
    name: &'static str,
    cases: usize,
    started: Instant,
}

impl Group {
    fn new(name: &'static str) -> Group {
        Group {
            name,
            cases: 0,
            started: Instant::now(),
        }
    }

    fn pass(&mut self) {
        self.cases += 1;
    }

    fn finish(self, daemons: &[&Daemon]) {
        for daemon in daemons {
            let log = daemon.log();
            assert!(
                !log.contains("panicked"),
                "{}: the daemon panicked:\n{log}",
                self.name
            );
        }
        let total = CASES.fetch_add(self.cases, Ordering::SeqCst) + self.cases;
        println!(
            "hostile {}: {} cases passed ({:.1} s)",
            self.name,
            self.cases,
            self.started.elapsed().as_secs_f64()
        );
        if GROUPS_DONE.fetch_add(1, Ordering::SeqCst) + 1 == GROUPS {
            println!("hostile: {total} cases passed");
        }
    }
}

fn ecdsa() -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    }
}

fn client(daemon: &Daemon, auth: Auth) -> Client {
    Client::builder()
        .socket(&daemon.socket)
        .auth(auth)
        .provider(bulwark_client::ProviderId::MbedCrypto)
        .discover(false)
        .reuse_connections(false)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Another application, well behaved: it must be served whatever the others do.
struct Normal {
    client: Client,
    public: p256::ecdsa::VerifyingKey,
}

impl Normal {
    fn new(daemon: &Daemon, auth: Auth) -> Normal {
        let client = client(daemon, auth);
        client
            .generate_key(
                NORMAL_KEY,
                attributes::ecc_signing_key(EccFamily::SecpR1, 256),
            )
            .unwrap();
        let public = p256::ecdsa::VerifyingKey::from_sec1_bytes(
            &client.export_public_key(NORMAL_KEY).unwrap(),
        )
        .unwrap();
        Normal { client, public }
    }

    /// A ping and a checked signature.
    #[track_caller]
    fn check(&self, context: &str) {
        self.client
            .ping()
            .unwrap_or_else(|e| panic!("the normal client's ping failed {context}: {e:?}"));
        let hash = Sha256::digest(context.as_bytes());
        let signature = self
            .client
            .sign_hash(NORMAL_KEY, ecdsa(), &hash)
            .unwrap_or_else(|e| panic!("the normal client's signature failed {context}: {e:?}"));
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        self.public
            .verify_prehash(&hash, &signature)
            .unwrap_or_else(|e| panic!("bad signature {context}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Raw frames.

/// A request header asking to keep the connection open, so that the cases below can also
/// follow one request with another on the same connection.
fn header(opcode: u32, provider: u8, auth_type: u8, body_len: u32, auth_len: u16) -> RawHeader {
    RawHeader {
        flags: FLAG_KEEP_OPEN,
        provider,
        session: SESSION,
        auth_type,
        body_len,
        auth_len,
        opcode,
        ..RawHeader::default()
    }
}

/// A frame whose lengths are the true ones.
fn frame(opcode: u32, provider: u8, auth_type: u8, body: &[u8], auth: &[u8]) -> Vec<u8> {
    let h = header(
        opcode,
        provider,
        auth_type,
        u32::try_from(body.len()).unwrap(),
        u16::try_from(auth.len()).unwrap(),
    );
    [&h.to_bytes()[..], body, auth].concat()
}

fn ping() -> Vec<u8> {
    frame(Opcode::Ping.value(), CORE, NO_AUTH, &[], &[])
}

fn random_body(size: u64) -> Vec<u8> {
    let mut body = vec![0x08];
    let mut v = size;
    while v >= 0x80 {
        body.push((v as u8) | 0x80);
        v >>= 7;
    }
    body.push(v as u8);
    body
}

fn connect(daemon: &Daemon) -> UnixStream {
    let stream = UnixStream::connect(&daemon.socket).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT + SLACK)).unwrap();
    stream
}

/// Writes what the daemon takes of `bytes` (it may close before reading everything).
fn send(stream: &mut UnixStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes);
}

#[track_caller]
fn read_response(stream: &mut UnixStream) -> ResponseFrame {
    ResponseFrame::read_from(stream, 4 << 20).unwrap_or_else(|e| panic!("no response: {e:?}"))
}

#[track_caller]
fn assert_bare(response: &ResponseFrame, status: S) {
    assert_eq!(response.header.status, status, "{response:?}");
    assert_eq!(response.header.opcode, Opcode::Ping, "bare shape");
    assert_eq!(response.header.provider.value(), CORE, "bare shape");
    assert_eq!(response.header.session, 0, "bare shape");
    assert!(response.body.is_empty());
}

#[track_caller]
fn assert_echo(response: &ResponseFrame, opcode: u32, provider: u8, status: S) {
    assert_eq!(response.header.status, status, "{response:?}");
    assert_eq!(response.header.opcode.value(), opcode, "echo shape");
    assert_eq!(response.header.provider.value(), provider, "echo shape");
    assert_eq!(response.header.session, SESSION, "echo shape");
    if status != S::Success {
        assert!(response.body.is_empty());
    }
}

/// The daemon closes `stream` (now or within the slack) without sending anything more.
#[track_caller]
fn assert_closed(stream: &mut UnixStream) {
    stream.set_read_timeout(Some(SLACK)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("{n} unexpected bytes: {:02x?}", &buf[..n]),
        Err(e) => panic!("the daemon did not close the connection: {e}"),
    }
}

/// Nothing arrives on `stream` within `wait`.
#[track_caller]
fn assert_silent(stream: &mut UnixStream, wait: Duration) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected no answer yet, got {other:?}"),
    }
    stream.set_read_timeout(Some(IO_TIMEOUT + SLACK)).unwrap();
}

/// Sends `bytes` on a fresh connection (half-closing it after them with `eof`), expects one
/// bare response with `status` and the connection closed; returns how long the answer took.
#[track_caller]
fn bare_then_closed(daemon: &Daemon, bytes: &[u8], eof: bool, status: S) -> Duration {
    let mut stream = connect(daemon);
    let started = Instant::now();
    send(&mut stream, bytes);
    if eof {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let response = read_response(&mut stream);
    let elapsed = started.elapsed();
    assert_bare(&response, status);
    assert_closed(&mut stream);
    elapsed
}

/// One complete request on a fresh connection; its response.
fn exchange(daemon: &Daemon, bytes: &[u8]) -> ResponseFrame {
    let mut stream = connect(daemon);
    send(&mut stream, bytes);
    read_response(&mut stream)
}

// ---------------------------------------------------------------------------------------------
// Framing: headers cut short, wrong constants, unknown fields, lengths over the limits.

fn framing_cases(daemon: &Daemon, normal: &Normal, group: &mut Group, auth_type: u8) {
    let ping = ping();
    // The stream ends before a request starts: ConnectionError, as the reference service
    // answers, then the connection is closed.
    {
        let elapsed = bare_then_closed(daemon, &[], true, S::ConnectionError);
        assert!(
            elapsed < PROMPT,
            "EOF before any byte answered after {elapsed:?}"
        );
        group.pass();
    }
    // Every truncation of a valid header, then EOF: ConnectionError at once (not after the
    // timeout: the end of the stream is known).
    for n in 1..HEADER_LEN {
        let elapsed = bare_then_closed(daemon, &ping[..n], true, S::ConnectionError);
        assert!(
            elapsed < PROMPT,
            "{n} bytes then EOF answered after {elapsed:?}"
        );
        group.pass();
    }
    normal.check("after truncated headers");

    // Header size: refused as soon as its two bytes arrive, without waiting for that many
    // bytes (the connection stays open on the client's side).
    for size in [0u16, 1, 29, 31, 36, 0x1000, 0xFFFF] {
        let mut bytes = ping[..4].to_vec();
        bytes.extend_from_slice(&size.to_le_bytes());
        let elapsed = bare_then_closed(daemon, &bytes, false, S::InvalidHeader);
        assert!(
            elapsed < PROMPT,
            "hdr_size {size} answered after {elapsed:?}"
        );
        group.pass();
    }
    // An oversized header, sent whole.
    let mut oversized = ping[..4].to_vec();
    oversized.extend_from_slice(&0xFFFFu16.to_le_bytes());
    oversized.extend_from_slice(&[0u8; 0xFFFF]);
    bare_then_closed(daemon, &oversized, false, S::InvalidHeader);
    group.pass();
    // Magic: refused after four bytes.
    for magic in [
        [0u8; 4],
        [0x5e, 0xc0, 0xa7, 0x10],
        [0xff; 4],
        [0x11, 0xa7, 0xc0, 0x5e],
    ] {
        let elapsed = bare_then_closed(daemon, &magic, false, S::InvalidHeader);
        assert!(elapsed < PROMPT);
        group.pass();
    }
    bare_then_closed(
        daemon,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        false,
        S::InvalidHeader,
    );
    group.pass();
    // Version: refused after eight bytes.
    for version in [[0u8, 0], [1, 1], [2, 0], [0, 1], [255, 255]] {
        let mut bytes = ping[..6].to_vec();
        bytes.extend_from_slice(&version);
        let elapsed = bare_then_closed(daemon, &bytes, false, S::WireProtocolVersionNotSupported);
        assert!(elapsed < PROMPT);
        group.pass();
    }
    // Reserved bytes.
    for reserved in [[1u8, 0], [0, 1], [0xff, 0xff]] {
        let mut bytes = ping.clone();
        bytes[34..36].copy_from_slice(&reserved);
        bare_then_closed(daemon, &bytes, false, S::InvalidHeader);
        group.pass();
    }
    normal.check("after bad header constants");

    // Fields that do not convert (A7–A11), on complete frames; the first failure wins.
    let ping_op = Opcode::Ping.value();
    let next_op = Opcode::next_unassigned();
    let with = |f: &dyn Fn(&mut RawHeader)| {
        let mut h = header(ping_op, CORE, NO_AUTH, 0, 0);
        f(&mut h);
        h.to_bytes().to_vec()
    };
    let cases: Vec<(Vec<u8>, S)> = vec![
        (with(&|h| h.content_type = 1), S::ContentTypeNotSupported),
        (with(&|h| h.content_type = 255), S::ContentTypeNotSupported),
        (with(&|h| h.accept_type = 1), S::AcceptTypeNotSupported),
        (with(&|h| h.auth_type = 5), S::AuthenticatorDoesNotExist),
        (with(&|h| h.auth_type = 255), S::AuthenticatorDoesNotExist),
        (with(&|h| h.opcode = 0), S::OpcodeDoesNotExist),
        (with(&|h| h.opcode = 0x1D), S::OpcodeDoesNotExist),
        (with(&|h| h.opcode = next_op), S::OpcodeDoesNotExist),
        (with(&|h| h.opcode = u32::MAX), S::OpcodeDoesNotExist),
        (with(&|h| h.provider = 6), S::ProviderDoesNotExist),
        (with(&|h| h.provider = 255), S::ProviderDoesNotExist),
        (
            with(&|h| {
                h.content_type = 9;
                h.opcode = 0;
                h.provider = 99;
            }),
            S::ContentTypeNotSupported,
        ),
        (
            with(&|h| {
                h.opcode = 0;
                h.provider = 99;
            }),
            S::OpcodeDoesNotExist,
        ),
    ];
    for (bytes, status) in cases {
        bare_then_closed(daemon, &bytes, false, status);
        group.pass();
    }
    // Flags and the request's status are ignored; the connection stays usable.
    {
        let bytes = with(&|h| {
            h.flags = 0xFFFF;
            h.status = 0xFFFF;
        });
        let mut stream = connect(daemon);
        send(&mut stream, &bytes);
        assert_echo(&read_response(&mut stream), ping_op, CORE, S::Success);
        send(&mut stream, &ping);
        assert_echo(&read_response(&mut stream), ping_op, CORE, S::Success);
        group.pass();
    }
    normal.check("after undefined header fields");

    // Body over the limit: refused from the header alone, the body never read.
    for body_len in [BODY_LIMIT as u32 + 1, 16 << 20, u32::MAX] {
        let h = header(
            Opcode::PsaGenerateRandom.value(),
            MBED,
            NO_AUTH,
            body_len,
            0,
        );
        let elapsed = bare_then_closed(daemon, &h.to_bytes(), false, S::BodySizeExceedsLimit);
        assert!(elapsed < PROMPT, "answered after {elapsed:?}");
        group.pass();
    }
    // ... also while the client keeps pushing the body (its write fails once refused).
    {
        let h = header(
            Opcode::PsaGenerateRandom.value(),
            MBED,
            NO_AUTH,
            BODY_LIMIT as u32 + 1,
            0,
        );
        let mut bytes = h.to_bytes().to_vec();
        bytes.resize(HEADER_LEN + BODY_LIMIT + 1, 0x42);
        bare_then_closed(daemon, &bytes, false, S::BodySizeExceedsLimit);
        group.pass();
    }
    // A body exactly at the limit is read (and then judged on its content).
    {
        let mut body = random_body(16);
        body.resize(BODY_LIMIT, 0);
        let response = exchange(
            daemon,
            &frame(Opcode::PsaGenerateRandom.value(), MBED, NO_AUTH, &body, &[]),
        );
        assert_echo(
            &response,
            Opcode::PsaGenerateRandom.value(),
            MBED,
            S::DeserializingBodyFailed,
        );
        group.pass();
    }
    normal.check("after bodies over the limit");

    // 65535 bytes of garbage credentials.
    let mut rng = StdRng::seed_from_u64(65535);
    let mut garbage = vec![0u8; 65535];
    rng.fill(&mut garbage[..]);
    garbage[0] = 0xff; // never UTF-8
    let other_auth = if auth_type == DIRECT { UNIX } else { DIRECT };
    let cases: Vec<(u8, Vec<u8>, S)> = vec![
        (auth_type, garbage.clone(), S::AuthenticationError),
        (NO_AUTH, garbage.clone(), S::Success), // ignored without an auth type
        (other_auth, garbage.clone(), S::AuthenticatorNotRegistered),
        (auth_type, vec![], S::AuthenticationError),
    ];
    for (kind, auth, status) in cases {
        let response = exchange(daemon, &frame(ping_op, CORE, kind, &[], &auth));
        assert_echo(&response, ping_op, CORE, status);
        group.pass();
    }
    if auth_type == DIRECT {
        // 64 KiB of valid UTF-8 is a (long) application name.
        let response = exchange(daemon, &frame(ping_op, CORE, DIRECT, &[], &[b'a'; 65535]));
        assert_echo(&response, ping_op, CORE, S::Success);
        group.pass();
    } else {
        // Unix credentials: exactly four bytes, the caller's own uid.
        let uid = nix::unistd::geteuid().as_raw();
        let cases: Vec<(Vec<u8>, S)> = vec![
            (uid.to_le_bytes()[..3].to_vec(), S::AuthenticationError),
            (
                [&uid.to_le_bytes()[..], &[0]].concat(),
                S::AuthenticationError,
            ),
            ((uid + 12345).to_le_bytes().to_vec(), S::AuthenticationError),
            (uid.to_le_bytes().to_vec(), S::Success),
        ];
        for (auth, status) in cases {
            let response = exchange(daemon, &frame(ping_op, CORE, UNIX, &[], &auth));
            assert_echo(&response, ping_op, CORE, status);
            group.pass();
        }
    }
    normal.check("after garbage credentials");
}

#[test]
fn framing() {
    let mut group = Group::new("framing");
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    framing_cases(&daemon, &normal, &mut group, DIRECT);
    normal.check("at the end");
    group.finish(&[&daemon]);
}

#[test]
fn unix_auth_framing() {
    let mut group = Group::new("unix_auth_framing");
    let daemon = Daemon::start(DaemonAuth::unix());
    let normal = Normal::new(&daemon, Auth::UnixPeerCredentials);
    framing_cases(&daemon, &normal, &mut group, UNIX);
    normal.check("at the end");
    group.finish(&[&daemon]);
}

// ---------------------------------------------------------------------------------------------
// Lengths that lie.

#[test]
fn lying_lengths() {
    let mut group = Group::new("lying_lengths");
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    let random_op = Opcode::PsaGenerateRandom.value();
    let ping_op = Opcode::Ping.value();
    let body = random_body(4);

    // Announced more than sent, connection left open: ConnectionError at the timeout (the
    // cases run side by side, so the group waits for one timeout, not five).
    let mut long_body = header(random_op, MBED, NO_AUTH, 100, 0).to_bytes().to_vec();
    long_body.extend_from_slice(&[0x08; 10]);
    let mut long_auth = header(random_op, MBED, DIRECT, body.len() as u32, 65535)
        .to_bytes()
        .to_vec();
    long_auth.extend_from_slice(&body);
    long_auth.extend_from_slice(&[b'a'; 100]);
    let waiting: Vec<(&str, Vec<u8>)> = vec![
        ("body_len larger than sent", long_body.clone()),
        ("auth_len larger than sent", long_auth.clone()),
        ("a header cut short", ping()[..20].to_vec()),
        ("a connection that sends nothing", vec![]),
        (
            "body_len at the limit, sent in part",
            [
                &header(random_op, MBED, NO_AUTH, BODY_LIMIT as u32, 0).to_bytes()[..],
                &[0x08; 1000],
            ]
            .concat(),
        ),
    ];
    let threads: Vec<_> = waiting
        .into_iter()
        .map(|(what, bytes)| {
            let socket = daemon.socket.clone();
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(socket).unwrap();
                stream.set_read_timeout(Some(IO_TIMEOUT + SLACK)).unwrap();
                let started = Instant::now();
                send(&mut stream, &bytes);
                let response = read_response(&mut stream);
                let elapsed = started.elapsed();
                assert_bare(&response, S::ConnectionError);
                assert!(
                    elapsed >= IO_TIMEOUT / 2 && elapsed <= IO_TIMEOUT + SLACK,
                    "{what}: answered after {elapsed:?}, expected about {IO_TIMEOUT:?}"
                );
                assert_closed(&mut stream);
            })
        })
        .collect();
    // The normal client is served while they wait.
    normal.check("while lying clients wait");
    for thread in threads {
        thread.join().unwrap();
        group.pass();
    }
    // The same, but the client ends its stream: answered at once.
    for bytes in [long_body, long_auth] {
        let elapsed = bare_then_closed(&daemon, &bytes, true, S::ConnectionError);
        assert!(elapsed < PROMPT);
        group.pass();
    }
    normal.check("after lengths larger than sent");

    // Announced less than sent: the extra bytes are the start of the next request.
    // (a) They are a whole request: both are answered, the connection stays open.
    {
        let mut stream = connect(&daemon);
        let mut bytes = header(random_op, MBED, NO_AUTH, 0, 0).to_bytes().to_vec();
        bytes.extend_from_slice(&ping());
        send(&mut stream, &bytes);
        let first = read_response(&mut stream);
        assert_echo(&first, random_op, MBED, S::Success);
        assert!(first.body.is_empty(), "zero random bytes: an empty Result");
        assert_echo(&read_response(&mut stream), ping_op, CORE, S::Success);
        send(&mut stream, &ping());
        assert_echo(&read_response(&mut stream), ping_op, CORE, S::Success);
        group.pass();
    }
    // (b) A cut body fails to decode; the rest is not a header: InvalidHeader, closed.
    {
        let mut stream = connect(&daemon);
        let mut bytes = header(random_op, MBED, NO_AUTH, 1, 0).to_bytes().to_vec();
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&ping());
        send(&mut stream, &bytes);
        assert_echo(
            &read_response(&mut stream),
            random_op,
            MBED,
            S::DeserializingBodyFailed,
        );
        assert_bare(&read_response(&mut stream), S::InvalidHeader);
        assert_closed(&mut stream);
        group.pass();
    }
    // (c) The rest is a partial header, then EOF: ConnectionError, closed.
    {
        let mut stream = connect(&daemon);
        let mut bytes = ping();
        bytes.extend_from_slice(&ping()[..3]);
        send(&mut stream, &bytes);
        stream.shutdown(Shutdown::Write).unwrap();
        assert_echo(&read_response(&mut stream), ping_op, CORE, S::Success);
        assert_bare(&read_response(&mut stream), S::ConnectionError);
        assert_closed(&mut stream);
        group.pass();
    }
    // (d) Auth announced shorter than sent: the name is cut, the rest is garbage.
    {
        let mut stream = connect(&daemon);
        let mut bytes = header(ping_op, CORE, DIRECT, 0, 3).to_bytes().to_vec();
        bytes.extend_from_slice(b"normal-app");
        send(&mut stream, &bytes);
        // "nor" is a valid application name.
        assert_echo(&read_response(&mut stream), ping_op, CORE, S::Success);
        assert_bare(&read_response(&mut stream), S::InvalidHeader);
        assert_closed(&mut stream);
        group.pass();
    }
    normal.check("after lengths smaller than sent");
    group.finish(&[&daemon]);
}

// ---------------------------------------------------------------------------------------------
// Slow clients and clients that do not read.

/// A client that sends `at_once` (answered with Success when `answered`), then `slow` one
/// byte a second: the responses that came after that, and when the first of them arrived
/// (counted from the first slow byte, or from the connection when `at_once` is no request).
fn trickle(
    socket: &std::path::Path,
    at_once: &[u8],
    answered: bool,
    slow: &[u8],
) -> (Vec<ResponseFrame>, Duration) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT + SLACK)).unwrap();
    let mut started = Instant::now();
    send(&mut stream, at_once);
    if answered {
        assert_eq!(read_response(&mut stream).header.status, S::Success);
        started = Instant::now();
    }
    let mut received = Vec::new();
    let mut first_answer = None;
    let mut buf = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    'bytes: for byte in slow {
        if stream.write_all(&[*byte]).is_err() {
            break;
        }
        // Wait a second, taking anything the daemon says.
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until {
            match stream.read(&mut buf) {
                Ok(0) => break 'bytes,
                Ok(n) => {
                    first_answer.get_or_insert_with(|| started.elapsed());
                    received.extend_from_slice(&buf[..n]);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break 'bytes,
            }
        }
    }
    // The rest, to the end of the stream (which must come).
    stream.set_read_timeout(Some(SLACK)).unwrap();
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                first_answer.get_or_insert_with(|| started.elapsed());
                received.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the slow client's connection was not closed: {e}"),
        }
    }
    let mut responses = Vec::new();
    let mut rest = &received[..];
    while !rest.is_empty() {
        let (response, used) = ResponseFrame::parse(rest, usize::MAX).unwrap();
        responses.push(response);
        rest = &rest[used..];
    }
    (responses, first_answer.unwrap_or_else(|| started.elapsed()))
}

#[test]
fn slow_clients() {
    let mut group = Group::new("slow_clients");
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    let ping = ping();
    let random_op = Opcode::PsaGenerateRandom.value();
    let mut slow_body = header(random_op, MBED, NO_AUTH, 10, 0).to_bytes().to_vec();
    slow_body.extend_from_slice(&[0x08; 10]);
    // Sixteen clients trickle a ping, a byte a second; four send a header at once and trickle
    // its body; four trickle their second request on a kept-open connection.
    let mut threads = Vec::new();
    for i in 0..24 {
        let socket = daemon.socket.clone();
        let (at_once, answered, slow) = match i {
            0..16 => (vec![], false, ping.clone()),
            16..20 => (
                slow_body[..HEADER_LEN].to_vec(),
                false,
                slow_body[HEADER_LEN..].to_vec(),
            ),
            _ => (ping.clone(), true, ping.clone()),
        };
        threads.push(std::thread::spawn(move || {
            let (responses, answered) = trickle(&socket, &at_once, answered, &slow);
            assert_eq!(responses.len(), 1, "client {i}: {responses:?}");
            assert_bare(&responses[0], S::ConnectionError);
            assert!(
                answered <= IO_TIMEOUT + SLACK,
                "client {i} answered after {answered:?}"
            );
        }));
    }
    // Meanwhile the normal client is served, again and again.
    let started = Instant::now();
    let mut checks = 0;
    while threads.iter().any(|t| !t.is_finished()) {
        normal.check("while slow clients trickle");
        checks += 1;
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "slow clients still connected after 30 s"
        );
    }
    assert!(
        checks >= 2,
        "only {checks} checks while slow clients trickled"
    );
    for thread in threads {
        thread.join().unwrap();
        group.pass();
    }
    normal.check("after slow clients");
    group.finish(&[&daemon]);
}

#[test]
fn clients_that_do_not_read() {
    let mut group = Group::new("clients_that_do_not_read");
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    let random_op = Opcode::PsaGenerateRandom.value();
    let request = frame(random_op, MBED, NO_AUTH, &random_body(1 << 20), &[]);
    // Eight clients ask for 1 MiB each and never read; a ninth pipelines four such requests.
    let mut streams = Vec::new();
    let started = Instant::now();
    for i in 0..9 {
        let mut stream = connect(&daemon);
        let count = if i == 8 { 4 } else { 1 };
        send(&mut stream, &request.repeat(count));
        streams.push(stream);
    }
    // The daemon is blocked writing to them, and serves everyone else meanwhile.
    let mut checks = 0;
    while started.elapsed() < IO_TIMEOUT + Duration::from_millis(500) {
        normal.check("while clients do not read");
        checks += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(checks >= 2);
    // Their writes timed out: each got part of one response, then the end of the stream.
    for (i, mut stream) in streams.into_iter().enumerate() {
        stream.set_read_timeout(Some(SLACK)).unwrap();
        let mut received = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
                Err(e) => panic!("client {i}: the daemon did not give up writing: {e}"),
            }
        }
        assert!(received.len() >= HEADER_LEN, "client {i}: no header");
        let raw = RawHeader::parse_partial(&received[..HEADER_LEN])
            .unwrap()
            .unwrap();
        assert_eq!(raw.status, 0, "client {i}: Success");
        assert_eq!(raw.opcode, random_op);
        let whole = HEADER_LEN + raw.body_len as usize;
        assert!(raw.body_len as usize > 1 << 20);
        assert!(
            received.len() < whole,
            "client {i}: got the whole response ({} bytes) without reading",
            received.len()
        );
        group.pass();
    }
    normal.check("after clients that do not read");
    group.finish(&[&daemon]);
}

// ---------------------------------------------------------------------------------------------
// Garbage bodies for every opcode.

fn key(field: u32, wire_type: u32, out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | wire_type), out);
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Bytes shaped like protobuf (fields with valid wire types, nested messages), with random
/// field numbers, types and values.
fn protobuf_garbage(rng: &mut StdRng, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.gen_range(1..6) {
        let field = rng.gen_range(1..8);
        match rng.gen_range(0..4) {
            0 => {
                key(field, 0, &mut out);
                let shift = rng.gen_range(0..64);
                varint(rng.gen::<u64>() >> shift, &mut out);
            }
            1 => {
                key(field, 2, &mut out);
                let inner = if depth < 3 && rng.gen_bool(0.6) {
                    protobuf_garbage(rng, depth + 1)
                } else {
                    let len = rng.gen_range(0..48);
                    (0..len).map(|_| rng.gen()).collect()
                };
                varint(inner.len() as u64, &mut out);
                out.extend_from_slice(&inner);
            }
            2 => {
                key(field, 5, &mut out);
                out.extend_from_slice(&rng.gen::<[u8; 4]>());
            }
            _ => {
                key(field, 1, &mut out);
                out.extend_from_slice(&rng.gen::<[u8; 8]>());
            }
        }
    }
    out
}

#[test]
fn garbage_bodies() {
    let mut group = Group::new("garbage_bodies");
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    let mut rng = StdRng::seed_from_u64(0xB0D1E5);
    let app = b"garbage-app";
    // Statuses an operation may properly answer to a body that decodes.
    let proper: BTreeSet<S> = [
        S::Success,
        S::DeserializingBodyFailed,
        S::InvalidEncoding,
        S::ProviderDoesNotExist,
        S::ProviderNotRegistered,
        S::ResponseTooLarge,
        S::DeprecatedPrimitive,
        S::PsaErrorNotPermitted,
        S::PsaErrorNotSupported,
        S::PsaErrorInvalidArgument,
        S::PsaErrorBufferTooSmall,
        S::PsaErrorAlreadyExists,
        S::PsaErrorDoesNotExist,
        S::PsaErrorInvalidSignature,
        S::PsaErrorInvalidPadding,
    ]
    .into_iter()
    .collect();
    let mut seen: BTreeMap<S, usize> = BTreeMap::new();
    for &opcode in Opcode::ALL {
        let provider = if opcode.is_core() { CORE } else { MBED };
        let op = opcode.value();
        let mut stream = connect(&daemon);
        let mut ask = |body: &[u8]| {
            send(&mut stream, &frame(op, provider, DIRECT, body, app));
            let response = read_response(&mut stream);
            assert_eq!(response.header.opcode, opcode);
            assert_eq!(response.header.provider.value(), provider);
            assert_eq!(response.header.session, SESSION);
            if response.header.status != S::Success {
                assert!(response.body.is_empty());
            }
            response.header.status
        };
        // Not protobuf at all: exactly DeserializingBodyFailed (administrative operations are
        // refused before their body is read).
        let not_protobuf: [&[u8]; 5] = [
            &[0xff],                               // a key cut inside its varint
            &[0x0a, 0x05, 0x01],                   // a length past the end
            &[0x00],                               // field number 0
            &[0x0f],                               // wire type 7
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f], // a 4 GiB length
        ];
        let expected = if opcode.is_admin() {
            S::AdminOperation
        } else {
            S::DeserializingBodyFailed
        };
        for body in not_protobuf {
            assert_eq!(ask(body), expected, "{opcode:?} with {body:02x?}");
            group.pass();
        }
        // Random bytes and random protobuf-shaped bytes: a proper status, never a crash.
        for i in 0..40 {
            let body: Vec<u8> = if i % 2 == 0 {
                let len = rng.gen_range(1..256);
                (0..len).map(|_| rng.gen()).collect()
            } else {
                protobuf_garbage(&mut rng, 0)
            };
            let status = ask(&body);
            assert!(
                proper.contains(&status) || (opcode.is_admin() && status == S::AdminOperation),
                "{opcode:?} answered {status:?} to {body:02x?}"
            );
            *seen.entry(status).or_default() += 1;
            group.pass();
        }
    }
    println!("hostile garbage_bodies: statuses of random bodies: {seen:?}");
    normal.check("after garbage bodies");
    group.finish(&[&daemon]);
}

// ---------------------------------------------------------------------------------------------
// Key names.

#[test]
fn key_names() {
    let mut group = Group::new("key_names");
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    let app = "names-app";
    let names = client(&daemon, Auth::Direct(app.into()));
    let p256 = || attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    // The longest name the default `max_key_name_len` accepts.
    let huge = "k".repeat(1024);
    let created: Vec<String> = [
        "",
        "../../etc/passwd",
        "a/b",
        "/",
        "\\",
        "..",
        ".",
        "a\0b",
        "\0",
        "*",
        "%",
        "_",
        "a%",
        "a_b",
        "[a]",
        "a?",
        "'; DROP TABLE keys; --",
        "é ключ 鍵 🔑",
        huge.as_str(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for name in &created {
        names
            .generate_key(name, p256())
            .unwrap_or_else(|e| panic!("creating {:?}: {e:?}", &name[..name.len().min(40)]));
        group.pass();
    }
    // Each is its own key, usable under exactly its name.
    let hash = Sha256::digest(b"names");
    for name in &created {
        let public = names.export_public_key(name).unwrap();
        let signature = names.sign_hash(name, ecdsa(), &hash).unwrap();
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&public)
            .unwrap()
            .verify_prehash(
                &hash,
                &p256::ecdsa::Signature::from_slice(&signature).unwrap(),
            )
            .unwrap();
        group.pass();
    }
    // Names are not patterns, prefixes or paths.
    for absent in [
        "a%%",
        "aXb",
        "a",
        "ab",
        "a_",
        "a%b",
        "%%",
        "X",
        "a*",
        "aa",
        "_b",
        "b",
        "etc/passwd",
        "../etc/passwd",
        "a\0",
        "a\0c",
        "a/",
        "./",
        "k",
        &huge[1..],
        "a?b",
    ] {
        let error = names.export_public_key(absent).unwrap_err();
        assert_eq!(
            error.status(),
            Some(S::PsaErrorDoesNotExist),
            "{absent:?} must not exist: {error:?}"
        );
        group.pass();
    }
    // One byte more is refused, whatever the operation, before any lookup.
    let too_long = format!("{huge}k");
    for (what, error) in [
        (
            "generate",
            names.generate_key(&too_long, p256()).unwrap_err(),
        ),
        ("export", names.export_public_key(&too_long).unwrap_err()),
        ("destroy", names.destroy_key(&too_long).unwrap_err()),
    ] {
        assert_eq!(
            error.status(),
            Some(S::PsaErrorInvalidArgument),
            "{what} with a {}-byte name: {error:?}",
            too_long.len()
        );
        group.pass();
    }
    // Destroying a wildcard name destroys only that key.
    names.destroy_key("%").unwrap();
    names.destroy_key("_").unwrap();
    assert_eq!(
        names.destroy_key("a%%").unwrap_err().status(),
        Some(S::PsaErrorDoesNotExist)
    );
    group.pass();
    let listed: BTreeSet<String> = names
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    let expected: BTreeSet<String> = created
        .iter()
        .filter(|n| *n != "%" && *n != "_")
        .cloned()
        .collect();
    assert_eq!(listed, expected, "ListKeys shows exactly the names created");
    group.pass();
    // No path was taken from a name.
    for entry in walk(daemon.dir()) {
        let file = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !["passwd", "b", "a", "etc"].contains(&file.as_str()),
            "a key name became a path: {}",
            entry.display()
        );
    }
    group.pass();
    normal.check("after odd key names");

    // Not UTF-8: the body does not decode, whatever the operation.
    let attributes_field = {
        let body = ops::encode_request::<ops::PsaGenerateKey>(ops::psa_generate_key::Request {
            key_name: "XY".into(),
            attributes: p256(),
        })
        .unwrap();
        assert_eq!(&body[..4], [0x0a, 0x02, b'X', b'Y']);
        body[4..].to_vec()
    };
    for bad in [
        &[0xff, 0xfe][..],
        &[0xc0, 0xaf],             // an overlong '/'
        &[0xed, 0xa0, 0x80],       // a UTF-16 surrogate
        &[b'a', 0x80],             // a continuation byte alone
        &[0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    ] {
        let mut name_field = vec![0x0a, bad.len() as u8];
        name_field.extend_from_slice(bad);
        let generate = [&name_field[..], &attributes_field].concat();
        for (opcode, body) in [
            (Opcode::PsaGenerateKey, generate),
            (Opcode::PsaExportPublicKey, name_field.clone()),
            (Opcode::PsaDestroyKey, name_field.clone()),
            (Opcode::PsaSignHash, name_field.clone()),
        ] {
            let response = exchange(
                &daemon,
                &frame(opcode.value(), MBED, DIRECT, &body, app.as_bytes()),
            );
            assert_echo(&response, opcode.value(), MBED, S::DeserializingBodyFailed);
            group.pass();
        }
    }
    // A name as long as the body limit allows (refused: far over `max_key_name_len`, and
    // nothing stored), and one byte longer (refused before it is read).
    let generate_body = |len: usize| {
        ops::encode_request::<ops::PsaGenerateKey>(ops::psa_generate_key::Request {
            key_name: "L".repeat(len),
            attributes: p256(),
        })
        .unwrap()
        .to_vec()
    };
    let mut len = BODY_LIMIT - 64;
    while generate_body(len + 1).len() <= BODY_LIMIT {
        len += 1;
    }
    let at_limit = generate_body(len);
    assert_eq!(at_limit.len(), BODY_LIMIT);
    let generate_op = Opcode::PsaGenerateKey.value();
    let response = exchange(
        &daemon,
        &frame(generate_op, MBED, DIRECT, &at_limit, app.as_bytes()),
    );
    assert_echo(&response, generate_op, MBED, S::PsaErrorInvalidArgument);
    group.pass();
    let longest = "L".repeat(len);
    assert_eq!(
        names.export_public_key(&longest).unwrap_err().status(),
        Some(S::PsaErrorInvalidArgument)
    );
    group.pass();
    bare_then_closed(
        &daemon,
        &frame(
            generate_op,
            MBED,
            DIRECT,
            &generate_body(len + 1),
            app.as_bytes(),
        ),
        false,
        S::BodySizeExceedsLimit,
    );
    group.pass();
    let listed: BTreeSet<String> = names
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(listed, expected, "nothing else was created");
    group.pass();
    normal.check("after names at the limits");
    group.finish(&[&daemon]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Many connections: from another uid (the child below), at once.

const CONNECTIONS_VAR: &str = "BULWARK_HOSTILE_CONNECTIONS";
const PING_VAR: &str = "BULWARK_HOSTILE_PING";
const CHURN_VAR: &str = "BULWARK_HOSTILE_CHURN";

/// Opens a connection without blocking: `None` when the backlog stays full until `deadline` or
/// the process is out of file descriptors.
fn open_nonblocking(addr: &nix::sys::socket::UnixAddr, deadline: Instant) -> Option<UnixStream> {
    use nix::errno::Errno;
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType};
    loop {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .ok()?;
        match connect(fd.as_raw_fd(), addr) {
            Ok(()) => return Some(UnixStream::from(fd)),
            Err(Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return None,
        }
    }
}

/// In the re-executed child: opens `CONNECTIONS_VAR` connections at once (as many as its file
/// limit allows); with `PING_VAR`, pings on each; says `HOSTILE HELD <opened> <answered>
/// <refused>`; with `CHURN_VAR`, keeps replacing its oldest connections by new ones; when its
/// stdin ends, closes them all, says `HOSTILE CLOSED`, pings again and says
/// `HOSTILE AFTER <ok|error>`.
#[test]
fn hostile_child() {
    let Some(socket) = child_socket("hostile::hostile_child") else {
        return; // Not a re-executed child: nothing to do.
    };
    let count: usize = std::env::var(CONNECTIONS_VAR).unwrap().parse().unwrap();
    let ping_each = std::env::var(PING_VAR).is_ok();
    let churn = std::env::var(CHURN_VAR).is_ok();
    let addr = nix::sys::socket::UnixAddr::new(&socket).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            stop.store(true, Ordering::SeqCst);
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open: VecDeque<UnixStream> = VecDeque::new();
    while open.len() < count {
        match open_nonblocking(&addr, deadline) {
            Some(stream) => open.push_back(stream),
            None => break,
        }
    }
    let (mut answered, mut refused) = (0, 0);
    if ping_each {
        // Pings that keep their connection open, so that answered connections stay held.
        let ping = ping();
        for stream in &mut open {
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let _ = stream.write_all(&ping);
            match ResponseFrame::read_from(stream, 1024) {
                Ok(r) if r.header.status == S::Success => answered += 1,
                Ok(r) => panic!("unexpected answer {r:?}"),
                Err(_) => refused += 1,
            }
        }
    }
    println!("HOSTILE HELD {} {answered} {refused}", open.len());
    while !stop.load(Ordering::SeqCst) {
        if churn {
            for _ in 0..500 {
                open.pop_front();
                if let Some(stream) =
                    open_nonblocking(&addr, Instant::now() + Duration::from_millis(10))
                {
                    open.push_back(stream);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(open);
    println!("HOSTILE CLOSED");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        match crate::flood::timed_ping(&socket, &ping_request()) {
            Ok(_) => break "ok".to_owned(),
            Err(e) if Instant::now() > deadline => break e,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    println!("HOSTILE AFTER {after}");
}

#[test]
fn connections() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "hostile::connections must run as root (it re-executes itself as uid {FLOOD_UID}); CI \
         runs the e2e tests as root"
    );
    let _heavy = crate::flood::HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut group = Group::new("connections");
    let (_exe_dir, exe) = child_binary();

    // 10,000 connections at once from one client (uid FLOOD_UID), replaced as the daemon closes
    // them, with the default limits: the daemon keeps the client's share, closes the rest,
    // keeps serving another client, and serves the flooding one again once it lets go.
    let daemon = Daemon::start(DaemonAuth::direct());
    let normal = Normal::new(&daemon, Auth::Direct("normal-app".into()));
    let mut child = run_child(
        &exe,
        &daemon,
        FLOOD_UID,
        "hostile::hostile_child",
        &[(CONNECTIONS_VAR, "10000".into()), (CHURN_VAR, "1".into())],
    );
    let lines = child_lines(&mut child, "HOSTILE ");
    let held = next_line(&lines, Duration::from_secs(60));
    let opened: usize = held
        .strip_prefix("HELD ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected {held}"));
    println!("hostile connections: the child opened {opened} connections at once");
    assert!(
        opened > 256,
        "the child opened only {opened} connections: raise the hard limit on open files"
    );
    group.pass();
    for i in 0..5 {
        normal.check(&format!("during the connection flood ({i})"));
        std::thread::sleep(Duration::from_millis(100));
        group.pass();
    }
    drop(child.stdin.take());
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "CLOSED");
    assert_eq!(
        next_line(&lines, Duration::from_secs(60)),
        "AFTER ok",
        "the flooding client is served again once its connections are closed"
    );
    assert!(child.wait().unwrap().success());
    group.pass();
    normal.check("after the connection flood");
    let log = daemon.log();
    assert!(
        log.contains("max_connections_per_client") && log.contains(&FLOOD_UID.to_string()),
        "the refusals are logged with the client's uid:\n{}",
        &log[log.len().saturating_sub(4000)..]
    );
    group.pass();

    // The per-client share, exactly: the fifth connection of a client allowed four is closed
    // unanswered; another client is served meanwhile; a connection given back is reusable.
    let shared = Daemon::start_with(DaemonAuth::direct(), "max_connections_per_client = 4");
    let shared_normal = Normal::new(&shared, Auth::Direct("normal-app".into()));
    let mut child = run_child(
        &exe,
        &shared,
        FLOOD_UID,
        "hostile::hostile_child",
        &[(CONNECTIONS_VAR, "5".into()), (PING_VAR, "1".into())],
    );
    let lines = child_lines(&mut child, "HOSTILE ");
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "HELD 5 4 1");
    group.pass();
    shared_normal.check("while another client holds its whole share");
    group.pass();
    drop(child.stdin.take());
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "CLOSED");
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "AFTER ok");
    assert!(child.wait().unwrap().success());
    group.pass();

    // The global limit: further connections wait (in the backlog) for a slot, then are served.
    let full = Daemon::start_with(
        DaemonAuth::direct(),
        "max_connections = 8\nmax_connections_per_client = 8",
    );
    let full_normal = Normal::new(&full, Auth::Direct("normal-app".into()));
    let mut held: Vec<UnixStream> = (0..8)
        .map(|_| {
            let mut stream = connect(&full);
            send(&mut stream, &ping());
            assert_eq!(read_response(&mut stream).header.status, S::Success);
            stream
        })
        .collect();
    let mut waiting = connect(&full);
    send(&mut waiting, &ping());
    assert_silent(&mut waiting, Duration::from_millis(500));
    group.pass();
    held.pop();
    assert_echo(
        &read_response(&mut waiting),
        Opcode::Ping.value(),
        CORE,
        S::Success,
    );
    group.pass();
    drop(held);
    drop(waiting);
    full_normal.check("after the global limit was reached");
    group.finish(&[&daemon, &shared, &full]);
}
