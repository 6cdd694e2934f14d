//! Connection lifetime: one request per connection unless the client opts in with
//! `FLAG_KEEP_OPEN`, as the Parsec wire protocol and its clients expect.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{self, Opcode};
use bulwark_interface::status::ResponseStatus as S;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame, FLAG_KEEP_OPEN};

use crate::harness::{Auth, Daemon};

/// Only guards the tests against hanging: every wait below ends long before it.
const GUARD: Duration = Duration::from_secs(20);

fn request(provider: ProviderId, opcode: Opcode, flags: u16, body: Vec<u8>) -> Vec<u8> {
    RequestFrame {
        header: RequestHeader {
            flags,
            ..RequestHeader::new(provider, opcode, AuthType::Direct)
        },
        body: body.into(),
        auth: b"lifetime-app".to_vec().into(),
    }
    .to_bytes()
    .unwrap()
    .to_vec()
}

fn ping(flags: u16) -> Vec<u8> {
    request(ProviderId::Core, Opcode::Ping, flags, Vec::new())
}

fn random(flags: u16, size: usize) -> Vec<u8> {
    let body =
        ops::encode_request::<ops::PsaGenerateRandom>(ops::psa_generate_random::Request { size })
            .unwrap()
            .to_vec();
    request(
        ProviderId::MbedCrypto,
        Opcode::PsaGenerateRandom,
        flags,
        body,
    )
}

fn connect(daemon: &Daemon) -> UnixStream {
    let stream = UnixStream::connect(&daemon.socket).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream
}

/// Reads until the end of the stream (never shutting down our side) and returns everything,
/// failing if the end does not come before the guard.
#[track_caller]
fn read_to_end(stream: &mut UnixStream) -> Vec<u8> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return received,
            // Closed with our unread bytes in its queue (a second request it never reads):
            // the kernel reports the close as a reset.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "no end of stream after {:?} ({} bytes received): {e}",
                started.elapsed(),
                received.len()
            ),
        }
    }
}

/// One answer, and then the end of the stream: nothing else.
#[track_caller]
fn one_answer_then_end(received: &[u8]) -> ResponseFrame {
    let (response, used) = ResponseFrame::parse(received, usize::MAX).unwrap();
    assert_eq!(used, received.len(), "bytes after the answer");
    assert_eq!(
        response.header.flags, 0,
        "an answer on a closing connection"
    );
    response
}

#[test]
fn a_client_that_reads_until_the_end_of_the_stream_gets_its_answer_and_the_end() {
    // As the upstream Go client does: write one request, then read until the service closes,
    // without closing our own side. Run on each software provider (BULWARK_E2E_PROVIDER).
    let daemon = Daemon::start(Auth::direct());
    let cases = [
        (ping(0), Opcode::Ping, S::Success),
        (random(0, 32), Opcode::PsaGenerateRandom, S::Success),
        // An error answer closes the connection too.
        (
            request(
                ProviderId::MbedCrypto,
                Opcode::PsaDestroyKey,
                0,
                ops::encode_request::<ops::PsaDestroyKey>(ops::psa_destroy_key::Request {
                    key_name: "no-such-key".into(),
                })
                .unwrap()
                .to_vec(),
            ),
            Opcode::PsaDestroyKey,
            S::PsaErrorDoesNotExist,
        ),
    ];
    for (bytes, opcode, status) in cases {
        for _ in 0..3 {
            let mut stream = connect(&daemon);
            stream.write_all(&bytes).unwrap();
            let response = one_answer_then_end(&read_to_end(&mut stream));
            assert_eq!(response.header.opcode, opcode);
            assert_eq!(response.header.status, status, "{opcode}");
            if opcode == Opcode::PsaGenerateRandom {
                let random = ops::decode_response::<ops::PsaGenerateRandom>(&response.body);
                assert_eq!(random.unwrap().random_bytes.len(), 32);
            }
        }
    }
    // A framing error as well: a bare answer, then the end.
    let mut stream = connect(&daemon);
    stream.write_all(&[0u8; 36]).unwrap();
    let response = one_answer_then_end(&read_to_end(&mut stream));
    assert_eq!(response.header.status, S::InvalidHeader);
}

#[test]
fn only_an_opted_in_connection_serves_several_requests() {
    let daemon = Daemon::start(Auth::direct());
    // Opted in: one connection, many requests, each answer saying it stays open.
    let mut stream = connect(&daemon);
    for i in 0..100 {
        let bytes = if i % 2 == 0 {
            ping(FLAG_KEEP_OPEN)
        } else {
            random(FLAG_KEEP_OPEN, i)
        };
        stream.write_all(&bytes).unwrap();
        let response = ResponseFrame::read_from(&mut stream, usize::MAX).unwrap();
        assert_eq!(response.header.status, S::Success, "request {i}");
        assert_eq!(response.header.flags, FLAG_KEEP_OPEN, "request {i}");
    }
    // A request without the flag on that connection is its last.
    stream.write_all(&ping(0)).unwrap();
    let response = one_answer_then_end(&read_to_end(&mut stream));
    assert_eq!(response.header.status, S::Success);

    // Upstream-shaped requests (flags 0), and any other flag bits, never keep a connection
    // open: a second request written right after the first is never answered.
    for flags in [0, 0x0001, 0x7FFF] {
        let mut stream = connect(&daemon);
        let mut both = ping(flags);
        both.extend_from_slice(&ping(flags));
        stream.write_all(&both).unwrap();
        let received = read_to_end(&mut stream);
        let response = one_answer_then_end(&received);
        assert_eq!(response.header.status, S::Success, "flags {flags:#06x}");
    }
    // A framing error closes even an opted-in connection.
    let mut stream = connect(&daemon);
    stream.write_all(&ping(FLAG_KEEP_OPEN)).unwrap();
    let response = ResponseFrame::read_from(&mut stream, usize::MAX).unwrap();
    assert_eq!(response.header.flags, FLAG_KEEP_OPEN);
    stream.write_all(&[0u8; 36]).unwrap();
    let response = one_answer_then_end(&read_to_end(&mut stream));
    assert_eq!(response.header.status, S::InvalidHeader);
}

/// A daemon whose `[listener]` also holds `idle_timeout = <ms>`.
fn daemon_with_idle_timeout(ms: u64) -> Daemon {
    let mut daemon = Daemon::configure(Auth::direct());
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let text = text.replacen(
        "timeout = 2000\n",
        &format!("timeout = 2000\nidle_timeout = {ms}\n"),
        1,
    );
    assert!(text.contains("idle_timeout"), "{text}");
    std::fs::write(&daemon.config, text).unwrap();
    daemon.spawn();
    daemon
}

#[test]
fn the_idle_timeout_of_opted_in_connections_is_configured() {
    // idle_timeout = 0: the flag is declined, every connection closes after its answer.
    let daemon = daemon_with_idle_timeout(0);
    let mut stream = connect(&daemon);
    stream.write_all(&ping(FLAG_KEEP_OPEN)).unwrap();
    let response = one_answer_then_end(&read_to_end(&mut stream));
    assert_eq!(response.header.status, S::Success);
    drop(daemon);

    // A short idle timeout closes a kept-open connection that stays idle. (The default, 5 s,
    // would still have it open after the sleep.)
    let daemon = daemon_with_idle_timeout(200);
    let mut stream = connect(&daemon);
    stream.write_all(&ping(FLAG_KEEP_OPEN)).unwrap();
    let response = ResponseFrame::read_from(&mut stream, usize::MAX).unwrap();
    assert_eq!(response.header.flags, FLAG_KEEP_OPEN);
    std::thread::sleep(Duration::from_secs(3));
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        other => panic!("the idle connection is still open after 3 s: {other:?}"),
    }
}
