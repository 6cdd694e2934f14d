//! One client floods the daemon with expensive requests while another measures how long its
//! pings take: the per-client share of requests in flight (`front` module documentation) must
//! keep the second one served throughout.
//!
//! Client A is another uid (the test re-executes itself as uid [`FLOOD_UID`], as
//! `unix_tenancy` does, so it must run as root): [`FLOOD_THREADS`] threads, each with its own
//! client and connections, sign with ECDSA P-256 and RSA-2048 keys in a tight loop for
//! [`FLOOD_SECONDS`]. Client B (root) sends pings, one after the other, each over a fresh
//! connection, first at rest and then during the flood; it must see no failure and a p99 under
//! [`P99_BOUND`], a bound generous enough that only starvation, not a slow machine, breaks it.
//!
//! [`child_binary`] and [`run_child`] are also used by `hostile`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_client::{attributes, AsymmetricSignature, Auth, Client, EccFamily, Hash};
use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};

use crate::harness::{Auth as DaemonAuth, Daemon};

/// The uid client A runs as.
pub(crate) const FLOOD_UID: u32 = 65534;
const FLOOD_THREADS: usize = 64;
const FLOOD_SECONDS: u64 = 5;
const P99_BOUND: Duration = Duration::from_millis(500);
/// The fewest of B's back-to-back pings that must be answered during the flood.
const MIN_PINGS_DURING: usize = 1000;
const CHILD_TEST_VAR: &str = "BULWARK_E2E_CHILD";

/// Held by the tests that load the whole machine (this flood, `hostile::connections`), so that
/// they do not run at the same time and measure each other.
pub(crate) static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
const SOCKET_VAR: &str = "BULWARK_E2E_CHILD_SOCKET";

// ---------------------------------------------------------------------------------------------
// Running this test binary as another uid.

/// A copy of this test binary that other uids can run, in a directory of its own (taken from
/// `/proc/self/exe` so that a concurrent rebuild cannot break the children).
pub(crate) fn child_binary() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("bulwark-e2e-child")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("e2e-child");
    std::fs::copy("/proc/self/exe", &exe)
        .or_else(|_| std::fs::copy(std::env::current_exe().unwrap(), &exe))
        .unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, exe)
}

/// Starts the test `test` (e.g. `flood::flood_child`) of the copy `exe` as `uid` (gid = uid),
/// against `daemon`, with the open-file limit raised to its hard limit, stdin and stdout piped.
pub(crate) fn run_child(
    exe: &Path,
    daemon: &Daemon,
    uid: u32,
    test: &str,
    env: &[(&str, String)],
) -> Child {
    // The daemon's directory is private to root: let the other uid reach the socket.
    std::fs::set_permissions(daemon.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // `ulimit -n` in a shell raises the child's soft limit on open files to the hard limit.
    Command::new("/bin/sh")
        .arg("-c")
        .arg("ulimit -n \"$(ulimit -H -n)\" 2>/dev/null; exec \"$0\" \"$@\"")
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_TEST_VAR, test)
        .env(SOCKET_VAR, &daemon.socket)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .env_remove("RUST_LOG")
        .current_dir("/")
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} as uid {uid}: {e}", exe.display()))
}

/// In a re-executed child running `test`, the daemon's socket; `None` in a normal test run.
pub(crate) fn child_socket(test: &str) -> Option<PathBuf> {
    if std::env::var(CHILD_TEST_VAR).ok()? != test {
        return None;
    }
    std::env::var(SOCKET_VAR).ok().map(PathBuf::from)
}

/// Reads the child's stdout lines `PREFIX rest` into a channel (libtest may put its own text
/// before the first one on the same line).
pub(crate) fn child_lines(
    child: &mut Child,
    prefix: &'static str,
) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some((_, rest)) = line.split_once(prefix) {
                if tx.send(rest.trim().to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    rx
}

/// Waits for the next line from `lines` (see [`child_lines`]).
pub(crate) fn next_line(lines: &std::sync::mpsc::Receiver<String>, within: Duration) -> String {
    lines
        .recv_timeout(within)
        .unwrap_or_else(|e| panic!("the child said nothing within {within:?}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Pings and their latency.

/// A Ping request without authentication.
pub(crate) fn ping_request() -> Vec<u8> {
    RequestFrame {
        header: RequestHeader::new(ProviderId::Core, Opcode::Ping, AuthType::NoAuth),
        body: Default::default(),
        auth: Default::default(),
    }
    .to_bytes()
    .unwrap()
    .to_vec()
}

/// One Ping over a fresh connection; its latency, or what went wrong.
pub(crate) fn timed_ping(socket: &Path, request: &[u8]) -> Result<Duration, String> {
    let started = Instant::now();
    let mut stream = UnixStream::connect(socket).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request)
        .map_err(|e| format!("write: {e}"))?;
    let response =
        ResponseFrame::read_from(&mut stream, 1024).map_err(|e| format!("read: {e:?}"))?;
    let elapsed = started.elapsed();
    if response.header.status != ResponseStatus::Success {
        return Err(format!("status {:?}", response.header.status));
    }
    Ok(elapsed)
}

/// The `p`-th percentile (0–100) of `samples`.
pub(crate) fn percentile(samples: &mut [Duration], p: usize) -> Duration {
    assert!(!samples.is_empty());
    samples.sort_unstable();
    let rank = (samples.len() * p).div_ceil(100).clamp(1, samples.len());
    samples[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------------------
// The flood.

fn ecdsa() -> AsymmetricSignature {
    AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    }
}

fn rsa() -> AsymmetricSignature {
    AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: Hash::Sha256.into(),
    }
}

/// Client A, in the re-executed child: creates its keys, says `FLOOD READY`, floods for
/// `FLOOD_SECONDS`, then says `FLOOD DONE <signatures> <failures> <first failure>`.
#[test]
fn flood_child() {
    let Some(socket) = child_socket("flood::flood_child") else {
        return; // Not a re-executed child: nothing to do.
    };
    let client = |reuse: bool| {
        Client::builder()
            .socket(&socket)
            .auth(Auth::UnixPeerCredentials)
            .provider(ProviderId::MbedCrypto)
            .discover(false)
            .reuse_connections(reuse)
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    };
    let setup = client(true);
    setup
        .generate_key(
            "flood-ec",
            attributes::ecc_signing_key(EccFamily::SecpR1, 256),
        )
        .unwrap();
    setup
        .generate_key("flood-rsa", attributes::rsa_signing_key(2048))
        .unwrap();
    println!("FLOOD READY");
    let deadline = Instant::now() + Duration::from_secs(FLOOD_SECONDS);
    let signatures = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let first_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let threads: Vec<_> = (0..FLOOD_THREADS)
        .map(|i| {
            // Half the threads keep their connections open, half open one per request (as
            // upstream clients do); half sign with RSA, half with ECDSA.
            let client = client(i % 2 == 0);
            let (key, alg) = if i % 4 < 2 {
                ("flood-rsa", rsa())
            } else {
                ("flood-ec", ecdsa())
            };
            let (signatures, failures, first_failure) = (
                Arc::clone(&signatures),
                Arc::clone(&failures),
                Arc::clone(&first_failure),
            );
            std::thread::spawn(move || {
                let hash = [i as u8; 32];
                while Instant::now() < deadline {
                    match client.sign_hash(key, alg, &hash) {
                        Ok(_) => signatures.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            first_failure
                                .lock()
                                .unwrap()
                                .get_or_insert_with(|| format!("{e:?}"));
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    println!(
        "FLOOD DONE {} {} {}",
        signatures.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
        first_failure
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| "-".into())
    );
}

#[test]
fn one_flooding_client_does_not_starve_another() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "flood must run as root (it re-executes itself as uid {FLOOD_UID}); CI runs the e2e \
         tests as root"
    );
    let _heavy = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let started = Instant::now();
    let (_exe_dir, exe) = child_binary();
    // Default limits: each client's share of requests in flight is a quarter of 4 x CPUs, at
    // most half the pool's threads.
    let daemon = Daemon::start(DaemonAuth::unix());
    let ping = ping_request();

    // B at rest.
    let mut rest: Vec<Duration> = (0..200)
        .map(|_| timed_ping(&daemon.socket, &ping).unwrap())
        .collect();

    // A floods.
    let mut child = run_child(&exe, &daemon, FLOOD_UID, "flood::flood_child", &[]);
    let lines = child_lines(&mut child, "FLOOD ");
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "READY");
    let flood_done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let flood_done = Arc::clone(&flood_done);
        std::thread::spawn(move || {
            let line = next_line(&lines, Duration::from_secs(FLOOD_SECONDS + 60));
            flood_done.store(true, Ordering::SeqCst);
            line
        })
    };
    // Let the flood reach full strength, then measure B until it ends.
    std::thread::sleep(Duration::from_millis(300));
    let mut during = Vec::new();
    let mut failures = Vec::new();
    while !flood_done.load(Ordering::SeqCst) {
        match timed_ping(&daemon.socket, &ping) {
            Ok(latency) => during.push(latency),
            Err(e) => failures.push(e),
        }
    }
    let done = waiter.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the flooding child failed: {status}");
    let mut fields = done.splitn(4, ' ');
    assert_eq!(fields.next(), Some("DONE"), "{done}");
    let signatures: u64 = fields.next().unwrap().parse().unwrap();
    let flood_failures: u64 = fields.next().unwrap().parse().unwrap();
    let first_failure = fields.next().unwrap_or("-").to_owned();

    let (rest_p50, rest_p99) = (percentile(&mut rest, 50), percentile(&mut rest, 99));
    assert!(!during.is_empty(), "B sent no ping during the flood");
    let (p50, p99) = (percentile(&mut during, 50), percentile(&mut during, 99));
    println!(
        "flood: B at rest: {} pings, p50 {}, p99 {}; during the flood ({FLOOD_THREADS} threads \
         of uid {FLOOD_UID}, {signatures} signatures in {FLOOD_SECONDS} s, {flood_failures} \
         failed): {} pings, p50 {}, p99 {}, max {}; {} failed",
        rest.len(),
        ms(rest_p50),
        ms(rest_p99),
        during.len(),
        ms(p50),
        ms(p99),
        ms(*during.last().unwrap()),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "B's pings failed during the flood: {failures:?}"
    );
    assert!(
        p99 < P99_BOUND,
        "B's p99 during the flood is {}, over {}",
        ms(p99),
        ms(P99_BOUND)
    );
    // B pings back to back: a fair share is thousands of answers in the flood's seconds (over
    // 8,000 on the OpenSSL provider, 45,000 on Mbed Crypto, on 2 cores); a few hundred means
    // A's requests kept the workers and B queued behind many of them.
    assert!(
        during.len() >= MIN_PINGS_DURING,
        "B got only {} pings answered during the flood (at least {MIN_PINGS_DURING} expected)",
        during.len()
    );
    assert!(
        signatures > 0,
        "the flood did not get anything signed ({first_failure})"
    );
    assert_eq!(
        flood_failures, 0,
        "the flooding client's own requests must wait, not fail: {first_failure}"
    );
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
    // A's excess waited for its share: the daemon did not refuse its connections either.
    assert!(
        !daemon.log().contains("max_connections_per_client"),
        "A's {FLOOD_THREADS} connections are within its share"
    );
    println!(
        "flood: the test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
