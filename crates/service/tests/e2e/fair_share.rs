//! One uid sends the work that takes longest, at full concurrency, while another uses the
//! daemon: the attacker never holds more than a fair part of the blocking pool, and every one
//! of the victim's requests is answered.
//!
//! The attacker is uid [`ATTACK_UID`] (the test re-executes itself as that uid, as `flood`
//! does, so it must run as root): [`ATTACK_THREADS`] threads, each with its own connections,
//! generate RSA-4096 key pairs for [`GENERATE_SECONDS`], then sign with an RSA-4096 key for
//! [`SIGN_SECONDS`]. The victim (root) meanwhile pings over fresh connections and generates
//! and destroys ECC P-256 keys, one request after the other; between two of its requests it
//! reads, from the metrics endpoint (served on the I/O threads, not on the pool), how many
//! requests are in flight and queued: with none of its own in flight, those are the
//! attacker's. The daemon runs the OpenSSL provider with the default limits.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bulwark_client::{attributes, Auth, Client, EccFamily, ProviderId};
use bulwark_service::config::CoreSettings;

use crate::flood::{
    child_binary, child_lines, child_socket, next_line, percentile, ping_request, run_child,
    timed_ping, HEAVY,
};
use crate::harness::{provider_table, Auth as DaemonAuth, Daemon, Provider};

/// The uid the attacker runs as.
const ATTACK_UID: u32 = 65534;
const ATTACK_THREADS: usize = 8;
const GENERATE_SECONDS: u64 = 4;
const SIGN_SECONDS: u64 = 3;
/// The longest any of the victim's requests may take: a guard against a hang or a queue behind
/// the attacker's requests (each generation takes up to seconds on a loaded machine), not a
/// speed target.
const GUARD: Duration = Duration::from_secs(20);
const CHILD: &str = "fair_share::fair_share_child";

fn client(socket: &std::path::Path, reuse: bool) -> Client {
    Client::builder()
        .socket(socket)
        .auth(Auth::UnixPeerCredentials)
        .provider(ProviderId::MbedCrypto)
        .discover(false)
        .reuse_connections(reuse)
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap()
}

/// Runs `work(thread, round)` on [`ATTACK_THREADS`] threads until `seconds` have passed;
/// `<successes> <failures> <first failure>`.
fn attack(
    socket: &std::path::Path,
    seconds: u64,
    work: impl Fn(&Client, usize, usize) -> Result<(), String> + Sync,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let outcomes: Vec<(u64, u64, Option<String>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..ATTACK_THREADS)
            .map(|thread| {
                let work = &work;
                scope.spawn(move || {
                    // Half the threads keep their connections open, half open one per request.
                    let client = client(socket, thread % 2 == 0);
                    let (mut done, mut failed, mut first) = (0, 0, None);
                    let mut round = 0;
                    while Instant::now() < deadline {
                        match work(&client, thread, round) {
                            Ok(()) => done += 1,
                            Err(e) => {
                                failed += 1;
                                first.get_or_insert(e);
                            }
                        }
                        round += 1;
                    }
                    (done, failed, first)
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let done: u64 = outcomes.iter().map(|o| o.0).sum();
    let failed: u64 = outcomes.iter().map(|o| o.1).sum();
    let first = outcomes
        .into_iter()
        .find_map(|o| o.2)
        .unwrap_or_else(|| "-".into());
    format!("{done} {failed} {first}")
}

/// The attacker, in the re-executed child: `ATTACK READY`, then `ATTACK GENERATED <counts>`
/// after the generations, then `ATTACK SIGNED <counts>` after the signatures.
#[test]
fn fair_share_child() {
    let Some(socket) = child_socket(CHILD) else {
        return; // Not a re-executed child: nothing to do.
    };
    client(&socket, true)
        .generate_key("signer", attributes::rsa_signing_key(4096))
        .unwrap();
    println!("ATTACK READY");
    let generated = attack(&socket, GENERATE_SECONDS, |client, thread, round| {
        let name = format!("gen-{thread}-{round}");
        client
            .generate_key(&name, attributes::rsa_signing_key(4096))
            .map_err(|e| format!("generate: {e:?}"))?;
        client
            .destroy_key(&name)
            .map_err(|e| format!("destroy: {e:?}"))
    });
    println!("ATTACK GENERATED {generated}");
    let rsa = bulwark_client::AsymmetricSignature::RsaPkcs1v15Sign {
        hash_alg: bulwark_client::Hash::Sha256.into(),
    };
    let signed = attack(&socket, SIGN_SECONDS, |client, thread, _| {
        client
            .sign_hash("signer", rsa, &[thread as u8; 32])
            .map(drop)
            .map_err(|e| format!("sign: {e:?}"))
    });
    println!("ATTACK SIGNED {signed}");
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The values of the gauges `names` on the metrics endpoint at `port`.
fn gauges<const N: usize>(port: u16, names: [&str; N]) -> [u64; N] {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut page = String::new();
    stream.read_to_string(&mut page).unwrap();
    names.map(|name| {
        page.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {page}"))
            .trim()
            .parse::<f64>()
            .unwrap() as u64
    })
}

/// What the victim saw during one phase of the attack.
#[derive(Default)]
struct Seen {
    pings: Vec<Duration>,
    generations: Vec<Duration>,
    failures: Vec<String>,
    most_in_flight: u64,
    most_queued: u64,
}

impl Seen {
    fn report(&mut self, phase: &str) {
        let p50 = |samples: &mut Vec<Duration>| {
            if samples.is_empty() {
                "-".to_owned()
            } else {
                format!("{:.2} ms", percentile(samples, 50).as_secs_f64() * 1e3)
            }
        };
        let max = |samples: &[Duration]| {
            samples
                .iter()
                .max()
                .map_or("-".into(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3))
        };
        println!(
            "fair share, {phase}: victim pings {} (p50 {}, max {}), ECC P-256 generations {} \
             (p50 {}, max {}), {} failed; attacker's requests: at most {} in flight, {} queued",
            self.pings.len(),
            p50(&mut self.pings),
            max(&self.pings),
            self.generations.len(),
            p50(&mut self.generations),
            max(&self.generations),
            self.failures.len(),
            self.most_in_flight,
            self.most_queued,
        );
    }
}

/// The victim's requests, one after the other, until `done` has a line; that line.
fn victim(
    daemon: &Daemon,
    metrics_port: u16,
    lines: &std::sync::mpsc::Receiver<String>,
    phase_limit: Duration,
    seen: &mut Seen,
) -> String {
    let ping = ping_request();
    let keys = client(&daemon.socket, false);
    let deadline = Instant::now() + phase_limit;
    let mut round = 0;
    loop {
        if let Ok(line) = lines.try_recv() {
            return line;
        }
        assert!(Instant::now() < deadline, "the attacker did not finish");
        // Nothing of the victim's is in flight now: these are the attacker's requests.
        let [in_flight, queued] = gauges(
            metrics_port,
            ["bulwark_requests_in_flight", "bulwark_requests_queued"],
        );
        seen.most_in_flight = seen.most_in_flight.max(in_flight);
        seen.most_queued = seen.most_queued.max(queued);
        match timed_ping(&daemon.socket, &ping) {
            Ok(latency) => seen.pings.push(latency),
            Err(e) => seen.failures.push(format!("ping: {e}")),
        }
        if round % 4 == 0 {
            let started = Instant::now();
            let name = format!("victim-{round}");
            match keys
                .generate_key(&name, attributes::ecc_signing_key(EccFamily::SecpR1, 256))
                .and_then(|()| keys.destroy_key(&name))
            {
                Ok(()) => seen.generations.push(started.elapsed()),
                Err(e) => seen.failures.push(format!("ECC generation: {e:?}")),
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn one_uid_at_full_concurrency_holds_at_most_its_share_and_the_victim_is_served() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "fair_share must run as root (it re-executes itself as uid {ATTACK_UID})"
    );
    let _heavy = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_exe_dir, exe) = child_binary();
    let metrics_port = free_port();
    let daemon = Daemon::start_with_providers(
        DaemonAuth::unix(),
        &format!("metrics_endpoint = \"127.0.0.1:{metrics_port}\""),
        &provider_table(Provider::OpenSsl),
    );
    // The fair part of the default pool: half its threads.
    let pool = CoreSettings::default().thread_pool_size;
    let fair = (pool / 2).max(1) as u64;

    let mut child = run_child(&exe, &daemon, ATTACK_UID, CHILD, &[]);
    let lines = child_lines(&mut child, "ATTACK ");
    assert_eq!(next_line(&lines, Duration::from_secs(120)), "READY");
    let phases = [
        ("RSA-4096 generations", "GENERATED", GENERATE_SECONDS),
        ("RSA-4096 signatures", "SIGNED", SIGN_SECONDS),
    ];
    for (phase, word, seconds) in phases {
        let mut seen = Seen::default();
        // The attacker's phase ends at its deadline plus the requests it had queued.
        let limit = Duration::from_secs(seconds + 300);
        let line = victim(&daemon, metrics_port, &lines, limit, &mut seen);
        seen.report(phase);
        let mut fields = line.splitn(4, ' ');
        assert_eq!(fields.next(), Some(word), "{line}");
        let done: u64 = fields.next().unwrap().parse().unwrap();
        let failed: u64 = fields.next().unwrap().parse().unwrap();
        let first = fields.next().unwrap_or("-");
        assert!(done > 0, "{phase}: the attacker got nothing done: {first}");
        assert_eq!(
            failed, 0,
            "{phase}: the attacker's excess must wait, not fail: {first}"
        );
        assert!(
            seen.failures.is_empty(),
            "{phase}: the victim's requests failed: {:?}",
            seen.failures
        );
        let slowest = seen.pings.iter().chain(&seen.generations).max().copied();
        assert!(
            slowest.is_some_and(|slowest| slowest < GUARD),
            "{phase}: a victim request took {slowest:?}"
        );
        assert!(
            !seen.generations.is_empty(),
            "{phase}: no victim generation"
        );
        // The attack was real: the attacker had requests running and more waiting...
        assert!(seen.most_in_flight >= 1, "{phase}: nothing in flight");
        assert!(seen.most_queued >= 1, "{phase}: nothing queued");
        // ...and never more than its share of the pool's threads in flight.
        assert!(
            seen.most_in_flight <= fair,
            "{phase}: the attacker had {} requests in flight, over half the pool of {pool}",
            seen.most_in_flight
        );
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "the attacking child failed: {status}");
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}
