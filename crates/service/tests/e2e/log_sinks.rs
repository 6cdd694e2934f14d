//! The daemon's log and audit log under a hostile local user: a log or audit write that fails
//! (standard error closed, a full disk) neither stops the daemon nor loses an answer, and a flood
//! of denied requests cannot grow the audit log without bound. The hostile user is another uid
//! ([`FLOOD_UID`]), running a copy of this test binary (`flood::run_child`).

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame, FLAG_KEEP_OPEN};

use parsec_client::core::interface::operations::psa_algorithm::Hash;

use crate::client_ops::{ecc_pair, ecdsa};
use crate::flood::{
    child_binary, child_lines, child_socket, next_line, ping_request, run_child, timed_ping,
    FLOOD_UID, HEAVY,
};
use crate::harness::{Auth, Daemon};
use crate::storage::{fill, Mount};

const CONNECTIONS_VAR: &str = "BULWARK_E2E_CONNECTIONS";
const SECONDS_VAR: &str = "BULWARK_E2E_SECONDS";
const THREADS_VAR: &str = "BULWARK_E2E_THREADS";

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests run a client as uid {FLOOD_UID} and must run as root; CI runs the e2e \
         tests as root"
    );
}

/// In the re-executed child: opens `BULWARK_E2E_CONNECTIONS` connections, sends nothing, and
/// says `CONNECTIONS DONE <how each ended, sorted>` once the daemon has ended them all.
#[test]
fn connections_child() {
    let Some(socket) = child_socket("log_sinks::connections_child") else {
        return; // Not a re-executed child: nothing to do.
    };
    let n: usize = std::env::var(CONNECTIONS_VAR).unwrap().parse().unwrap();
    let streams: Vec<UnixStream> = (0..n)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // The connections are accepted by several threads at once: which one is over the share is
    // not fixed. Each ends either closed unanswered (over the share) or answered (a request
    // that never came is answered ConnectionError at the request timeout).
    let mut ends: Vec<String> = streams
        .into_iter()
        .map(|mut stream| {
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            match stream.read(&mut [0u8; 1]) {
                Ok(0) => "closed".to_owned(),
                Ok(_) => "answered".to_owned(),
                Err(e) => format!("{:?}", e.kind()),
            }
        })
        .collect();
    ends.sort();
    let ended = ends.join(" ");
    println!("CONNECTIONS DONE {ended}");
}

/// A request the daemon denies: a ListKeys declaring uid 0 (not the sender's) when `forged`,
/// else a ListClients (administrators only) under the sender's own uid.
fn denied_request(forged: bool) -> Vec<u8> {
    let (opcode, uid) = if forged {
        (Opcode::ListKeys, 0)
    } else {
        (Opcode::ListClients, nix::unistd::getuid().as_raw())
    };
    let mut header = RequestHeader::new(ProviderId::Core, opcode, AuthType::UnixPeerCredentials);
    // The flood keeps its connections (each reconnects when an answer says it ends).
    header.flags = FLAG_KEEP_OPEN;
    RequestFrame {
        header,
        body: Default::default(),
        auth: uid.to_le_bytes().to_vec().into(),
    }
    .to_bytes()
    .unwrap()
    .to_vec()
}

/// In the re-executed child: `BULWARK_E2E_THREADS` threads send denied requests (forged uids
/// and administrative requests, alternately) for `BULWARK_E2E_SECONDS`, each over a kept
/// connection, and it says `DENIALS DONE <denied> <other answers> <first other>`; a request
/// that lost its connection without an answer counts as another answer.
#[test]
fn denials_child() {
    let Some(socket) = child_socket("log_sinks::denials_child") else {
        return; // Not a re-executed child: nothing to do.
    };
    let seconds: u64 = std::env::var(SECONDS_VAR).unwrap().parse().unwrap();
    let threads: usize = std::env::var(THREADS_VAR).unwrap().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let results: Vec<(u64, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let socket = &socket;
                scope.spawn(move || {
                    let requests = [denied_request(true), denied_request(false)];
                    let (mut denied, mut other, mut first) = (0, 0, None);
                    let mut connection: Option<UnixStream> = None;
                    let mut i = 0;
                    while Instant::now() < deadline {
                        i += 1;
                        let stream = connection.get_or_insert_with(|| {
                            let s = UnixStream::connect(socket).unwrap();
                            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                            s
                        });
                        let outcome = stream
                            .write_all(&requests[i % 2])
                            .map_err(|e| e.to_string())
                            .and_then(|()| {
                                ResponseFrame::read_from(stream, 1024).map_err(|e| format!("{e:?}"))
                            });
                        match outcome {
                            Ok(response)
                                if matches!(
                                    response.header.status,
                                    ResponseStatus::AuthenticationError
                                        | ResponseStatus::AdminOperation
                                ) =>
                            {
                                denied += 1;
                                if !response.header.keeps_open() {
                                    connection = None;
                                }
                            }
                            Ok(response) => {
                                other += 1;
                                first.get_or_insert(format!("{:?}", response.header.status));
                                if !response.header.keeps_open() {
                                    connection = None;
                                }
                            }
                            Err(e) => {
                                other += 1;
                                first.get_or_insert(e);
                                connection = None;
                            }
                        }
                    }
                    (denied, other, first)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let denied: u64 = results.iter().map(|r| r.0).sum();
    let other: u64 = results.iter().map(|r| r.1).sum();
    let first = results
        .iter()
        .find_map(|r| r.2.clone())
        .unwrap_or_else(|| "-".to_owned());
    println!("DENIALS DONE {denied} {other} {first}");
}

/// Runs [`denials_child`] as [`FLOOD_UID`] against `daemon`; returns (denied, other answers,
/// first other).
fn deny(exe: &Path, daemon: &Daemon, seconds: u64, threads: usize) -> (u64, u64, String) {
    let mut child = run_child(
        exe,
        daemon,
        FLOOD_UID,
        "log_sinks::denials_child",
        &[
            (SECONDS_VAR, seconds.to_string()),
            (THREADS_VAR, threads.to_string()),
        ],
    );
    let lines = child_lines(&mut child, "DENIALS ");
    let done = next_line(&lines, Duration::from_secs(seconds + 120));
    assert!(child.wait().unwrap().success(), "the denying child failed");
    let mut fields = done.splitn(4, ' ');
    assert_eq!(fields.next(), Some("DONE"), "{done}");
    (
        fields.next().unwrap().parse().unwrap(),
        fields.next().unwrap().parse().unwrap(),
        fields.next().unwrap_or("-").to_owned(),
    )
}

/// Checks that the daemon still runs and answers root's pings.
fn check_serving(daemon: &mut Daemon) {
    // A daemon that is going down takes a moment to go.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(daemon.exited(), None, "bulwarkd exited");
    for _ in 0..3 {
        timed_ping(&daemon.socket, &ping_request()).expect("ping answered");
    }
}

/// The audit records of `text`: (`event`, `peer_uid`, `count`) of each line (a record without
/// `count` stands for one event).
fn records(text: &str) -> Vec<(String, String, u64)> {
    let field = |line: &str, name: &str| -> Option<String> {
        let start = line.find(&format!("\"{name}\":"))? + name.len() + 3;
        let rest = &line[start..];
        let end = rest.find([',', '}']).unwrap();
        Some(rest[..end].trim_matches('"').to_owned())
    };
    text.lines()
        .map(|line| {
            (
                field(line, "event").unwrap(),
                field(line, "peer_uid").unwrap(),
                field(line, "count").map_or(1, |count| count.parse().unwrap()),
            )
        })
        .collect()
}

#[test]
fn a_closed_standard_error_does_not_stop_the_daemon() {
    require_root();
    let (_exe_dir, exe) = child_binary();
    let mut daemon = Daemon::configure(Auth::unix());
    daemon.edit_config(
        "log_level = \"debug\"",
        "log_level = \"warn\"\nmax_connections_per_client = 2",
    );
    // Close-on-exec: neither the daemon nor another child may inherit the reading end.
    let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    daemon.spawn_with_stderr(Stdio::from(writer));
    drop(reader);

    // One connection over the share: the daemon closes it and logs a warning it cannot write.
    let mut child = run_child(
        &exe,
        &daemon,
        FLOOD_UID,
        "log_sinks::connections_child",
        &[(CONNECTIONS_VAR, "3".to_owned())],
    );
    let lines = child_lines(&mut child, "CONNECTIONS ");
    let done = next_line(&lines, Duration::from_secs(60));
    assert!(child.wait().unwrap().success(), "the child failed");
    assert_eq!(done, "DONE answered answered closed");
    check_serving(&mut daemon);
}

#[test]
fn a_full_disk_under_the_log_and_the_audit_log_stops_no_answer() {
    require_root();
    // Its denials load the machine: not at the same time as the tests that measure latency.
    let _heavy = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_exe_dir, exe) = child_binary();
    let fs = Mount::tmpfs("1m");
    // Under the key store's directory rules, but the other uid must reach the socket.
    let audit = fs.point.join("audit.log");
    let mut daemon = Daemon::configure(Auth::unix());
    daemon.edit_config(
        "log_level = \"debug\"",
        &format!("log_level = \"debug\"\naudit_log = \"{}\"", audit.display()),
    );
    let log_path = fs.point.join("daemon.log");
    daemon.spawn_with_stderr(std::fs::File::create(&log_path).unwrap().into());
    let filler = fill(&fs.point);

    // Every denial and every request's log line fails to be written.
    let (denied, other, first) = deny(&exe, &daemon, 2, 2);
    assert_eq!(
        other, 0,
        "requests went unanswered or were misanswered: {first}"
    );
    assert!(denied > 0);
    check_serving(&mut daemon);
    let client = daemon.parsec_client("root");
    client
        .psa_generate_key(
            "after-the-disk-filled",
            ecc_pair(256, ecdsa(Hash::Sha256), "sign"),
        )
        .expect("keys are still created while the audit log cannot be written");

    // Room again: the gap is reported in the audit log and in the log.
    std::fs::remove_file(filler).unwrap();
    let (denied_after, other, first) = deny(&exe, &daemon, 1, 1);
    assert_eq!(other, 0, "{first}");
    assert!(denied_after > 0);
    let text = std::fs::read_to_string(&audit).unwrap();
    let lost: u64 = records(&text)
        .iter()
        .filter(|(event, _, _)| event == "audit_records_lost")
        .map(|(_, _, count)| count)
        .sum();
    assert!(lost > 0, "no audit_records_lost record:\n{text}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("log lines could not be written"),
        "the log does not tell its gap"
    );
    assert!(!log.contains("panicked"), "{log}");
    drop(client);
    daemon.stop();
}

#[test]
fn a_ten_second_flood_of_denied_requests_adds_at_most_1_mb_to_the_audit_log() {
    require_root();
    let _heavy = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_exe_dir, exe) = child_binary();
    let mut daemon = Daemon::configure(Auth::unix());
    // The usual level: the test measures the audit log, not a debug log of every request.
    daemon.edit_config("log_level = \"debug\"", "log_level = \"info\"");
    daemon.spawn();
    let audit = daemon.dir().join("kim/bulwark-audit.log");
    let before = std::fs::metadata(&audit).unwrap().len();

    let (denied, other, first) = deny(&exe, &daemon, 10, 4);
    assert_eq!(other, 0, "{first}");
    // Folded denials are written when their second is over.
    let uid = FLOOD_UID.to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let (grown, recorded) = loop {
        let text = std::fs::read_to_string(&audit).unwrap();
        let recorded: u64 = records(&text)
            .iter()
            .filter(|(event, peer, _)| event == "request_denied" && *peer == uid)
            .map(|(_, _, count)| count)
            .sum();
        let grown = text.len() as u64 - before;
        if recorded >= denied || Instant::now() > deadline {
            break (grown, recorded);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!(
        "log_sinks: {denied} denied requests in 10 s from uid {FLOOD_UID} (4 threads) added \
         {grown} bytes to the audit log"
    );
    assert!(denied >= 1000, "only {denied} requests denied: not a flood");
    assert_eq!(
        recorded, denied,
        "the records' counts must add up to the denials"
    );
    assert!(grown <= 1_000_000, "the audit log grew by {grown} bytes");
    assert_eq!(
        std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn the_audit_log_is_reopened_at_its_path_on_sighup() {
    let mut daemon = Daemon::start(Auth::unix());
    let audit = daemon.dir().join("kim/bulwark-audit.log");
    let rotated = daemon.dir().join("kim/bulwark-audit.log.1");
    let send = |socket: &Path| {
        let mut stream = UnixStream::connect(socket).unwrap();
        stream.write_all(&denied_request(false)).unwrap();
        let response = ResponseFrame::read_from(&mut stream, 1024).unwrap();
        assert_eq!(response.header.status, ResponseStatus::AdminOperation);
    };
    send(&daemon.socket);
    // What logrotate does: rename, then SIGHUP.
    std::fs::rename(&audit, &rotated).unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&audit).is_ok_and(|text| text.contains("request_denied")) {
        assert!(
            Instant::now() < deadline,
            "no new audit log after SIGHUP:\n{}",
            daemon.log()
        );
        send(&daemon.socket);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        std::fs::metadata(&audit).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("request_denied"), "{old}");
    daemon.stop();
}
