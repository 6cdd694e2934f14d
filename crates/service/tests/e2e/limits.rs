//! Bounds on key names, keys per client and ListKeys answers, tried as a hostile local user.
//!
//! The attacker is another uid ([`LIMITS_UID`], the test re-executes itself as `nobody`, as
//! `flood` does), against a daemon with the default limits. It asks for 300 keys with 1 MB
//! names (each must be refused with PsaErrorInvalidArgument, nothing stored), then fills its
//! quota with keys whose names have the maximum length (the next one must get
//! PsaErrorInsufficientStorage), then lists its keys from two threads at once for a few
//! seconds, the largest answers it can get. Meanwhile root pings: none may fail, and the p99
//! must stay under a bound generous enough that only a stall breaks it. The daemon's memory
//! and the store's size must stay bounded throughout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_client::{attributes, Auth, Client, EccFamily, ErrorKind};
use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{decode_response, ListProviders, Opcode};
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader};
use parsec_client::core::interface::operations::psa_algorithm::Algorithm as UpAlgorithm;
use parsec_client::core::interface::operations::psa_key_attributes as up;
use parsec_client::core::interface::requests::ResponseStatus as UpStatus;

use crate::flood::{
    child_binary, child_lines, child_socket, next_line, percentile, ping_request, run_child,
    timed_ping, HEAVY,
};
use crate::harness::{Auth as DaemonAuth, Daemon};

/// The uid the attacker runs as.
const LIMITS_UID: u32 = 65534;
/// The defaults of `core_settings.max_key_name_len` and `max_keys_per_client`.
const MAX_NAME: usize = 1024;
const QUOTA: usize = 512;
const LONG_NAMES: usize = 300;
const LIST_SECONDS: u64 = 5;
const PING_P99_BOUND: Duration = Duration::from_millis(500);
/// Growth of the daemon's resident memory the whole attack may cause: the keys of a client at
/// its quota take about 2 MB; 300 keys with 1 MB names took 300 MB before the limits.
const RSS_GROWTH_BOUND_KB: u64 = 64 * 1024;

fn status(error: &bulwark_client::Error) -> Option<ResponseStatus> {
    match error.kind() {
        ErrorKind::Service(status) => Some(status),
        _ => None,
    }
}

/// The attacker, in the re-executed child.
#[test]
fn limits_child() {
    let Some(socket) = child_socket("limits::limits_child") else {
        return; // Not a re-executed child: nothing to do.
    };
    // No discovery: the client learns no limit and sends whatever it is given.
    let client = Client::builder()
        .socket(&socket)
        .auth(Auth::UnixPeerCredentials)
        .provider(ProviderId::MbedCrypto)
        .discover(false)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let ecc = || attributes::ecc_signing_key(EccFamily::SecpR1, 256);

    let huge = "n".repeat(1_000_000);
    let mut refused = 0;
    for i in 0..LONG_NAMES {
        let name = format!("{i:03}{}", &huge[3..]);
        match client.generate_key(&name, ecc()) {
            Err(e) if status(&e) == Some(ResponseStatus::PsaErrorInvalidArgument) => refused += 1,
            other => panic!("a 1 MB key name got {other:?}"),
        }
    }
    // Use and destruction are refused alike.
    let long = "u".repeat(MAX_NAME + 1);
    for outcome in [
        client.sign_hash(
            &long,
            bulwark_client::AsymmetricSignature::Ecdsa {
                hash_alg: bulwark_client::Hash::Sha256.into(),
            },
            &[0; 32],
        ),
        client.export_public_key(&long),
        client.destroy_key(&long).map(|()| Vec::new()),
    ] {
        let error = outcome.unwrap_err();
        assert_eq!(
            status(&error),
            Some(ResponseStatus::PsaErrorInvalidArgument),
            "{error}"
        );
    }
    assert!(client.list_keys().unwrap().is_empty());
    println!("LIMITS NAMES {refused}");

    // The quota, with names of the maximum length, from 4 threads.
    let created: usize = (0..4)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                let mut created = 0;
                for i in 0..QUOTA {
                    let name = format!("{t}-{i:04}-");
                    let name = format!("{name}{}", "q".repeat(MAX_NAME - name.len()));
                    match client
                        .generate_key(&name, attributes::ecc_signing_key(EccFamily::SecpR1, 256))
                    {
                        Ok(()) => created += 1,
                        Err(e)
                            if status(&e) == Some(ResponseStatus::PsaErrorInsufficientStorage) =>
                        {
                            break
                        }
                        Err(e) => panic!("key {name:.16}: {e}"),
                    }
                }
                created
            })
        })
        .map(|t| t.join().unwrap())
        .sum();
    let error = client.generate_key("one-more", ecc()).unwrap_err();
    assert_eq!(
        status(&error),
        Some(ResponseStatus::PsaErrorInsufficientStorage),
        "{error}"
    );
    println!("LIMITS QUOTA {created}");

    // The largest answers this client can get, two at a time.
    let deadline = Instant::now() + Duration::from_secs(LIST_SECONDS);
    let lists: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || {
                let (mut lists, mut largest) = (0usize, 0usize);
                while Instant::now() < deadline {
                    let keys = client.list_keys().unwrap();
                    largest = largest.max(keys.iter().map(|k| k.name.len() + 64).sum());
                    assert_eq!(keys.len(), QUOTA);
                    lists += 1;
                }
                (lists, largest)
            })
        })
        .map(|t| t.join().unwrap())
        .collect();
    println!(
        "LIMITS LISTED {} {}",
        lists.iter().map(|(n, _)| n).sum::<usize>(),
        lists.iter().map(|(_, l)| *l).max().unwrap_or(0)
    );
}

/// Resident and peak resident memory of `pid`, in kB.
fn memory_kb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

#[test]
fn long_names_many_keys_and_large_listings_are_bounded() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "limits must run as root (it re-executes itself as uid {LIMITS_UID})"
    );
    let _heavy = HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (_exe_dir, exe) = child_binary();
    let mut daemon = Daemon::start(DaemonAuth::unix());
    let ping = ping_request();
    let (rss_before, _) = memory_kb(daemon.pid());

    let mut child = run_child(&exe, &daemon, LIMITS_UID, "limits::limits_child", &[]);
    let lines = child_lines(&mut child, "LIMITS ");
    let started = Instant::now();
    let names = next_line(&lines, Duration::from_secs(300));
    let names_took = started.elapsed();
    assert_eq!(names, format!("NAMES {LONG_NAMES}"));
    let quota = next_line(&lines, Duration::from_secs(300));
    assert_eq!(quota, format!("QUOTA {QUOTA}"));
    let store = dir_size(&daemon.dir().join("kim"));
    let (rss_full, _) = memory_kb(daemon.pid());

    // Root pings while the child lists, until it says it is done.
    let listing_done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let listing_done = Arc::clone(&listing_done);
        std::thread::spawn(move || {
            let line = next_line(&lines, Duration::from_secs(LIST_SECONDS + 120));
            listing_done.store(true, Ordering::SeqCst);
            line
        })
    };
    let (mut during, mut failures) = (Vec::new(), Vec::new());
    while !listing_done.load(Ordering::SeqCst) {
        match timed_ping(&daemon.socket, &ping) {
            Ok(latency) => during.push(latency),
            Err(e) => failures.push(e),
        }
    }
    let listed = waiter.join().unwrap();
    assert!(
        child.wait().unwrap().success(),
        "the attacking child failed"
    );
    let (rss_after, peak) = memory_kb(daemon.pid());
    let p50 = percentile(&mut during, 50);
    let p99 = percentile(&mut during, 99);
    let max = *during.last().unwrap();
    println!(
        "limits: {LONG_NAMES} generations with 1 MB names refused in {:.2} s; {QUOTA} keys with \
         {MAX_NAME}-byte names; store {} kB; daemon RSS {rss_before} kB at start, {rss_full} kB \
         at the quota, {rss_after} kB after listing, peak {peak} kB; {listed}; root's pings \
         during the listings: {} answered, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
        names_took.as_secs_f64(),
        store / 1024,
        during.len(),
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
        failures.len()
    );
    assert!(failures.is_empty(), "root's pings failed: {failures:?}");
    assert!(
        p99 < PING_P99_BOUND,
        "root's ping p99 during the listings is {p99:?}"
    );
    assert!(
        peak.saturating_sub(rss_before) < RSS_GROWTH_BOUND_KB,
        "the daemon grew from {rss_before} kB to a peak of {peak} kB"
    );
    assert!(store < 16 << 20, "the store holds {store} bytes");
    // Another client is not affected by this one's quota.
    let root = Client::builder().socket(&daemon.socket).build().unwrap();
    assert_eq!(root.max_key_name_len(), Some(MAX_NAME));
    root.generate_key(
        "root-key",
        attributes::ecc_signing_key(EccFamily::SecpR1, 256),
    )
    .unwrap();
    // After a restart (every row loaded again), the attacker's keys are still bounded.
    daemon.restart();
    let (rss_restarted, _) = memory_kb(daemon.pid());
    println!("limits: daemon RSS after a restart: {rss_restarted} kB");
    assert!(rss_restarted < rss_before + RSS_GROWTH_BOUND_KB);
    assert!(!daemon.log().contains("panicked"), "{}", daemon.log());
}

/// The key-name limit is stated in ListProviders (field 8 of `ProviderInfo`), and the upstream
/// `parsec-client` still reads that answer, and the providers in it, as before.
#[test]
fn list_providers_states_the_name_limit_and_upstream_clients_still_read_it() {
    let daemon = Daemon::start_with(DaemonAuth::direct(), "max_key_name_len = 200");
    let request = RequestFrame {
        header: RequestHeader::new(ProviderId::Core, Opcode::ListProviders, AuthType::NoAuth),
        body: Default::default(),
        auth: Default::default(),
    }
    .to_bytes()
    .unwrap();
    let response = daemon.send_raw(&request);
    let body = &response[36..];
    let ours = decode_response::<ListProviders>(body).unwrap();
    let limits: Vec<_> = ours
        .providers
        .iter()
        .map(|p| (p.id, p.max_key_name_len))
        .collect();
    assert_eq!(
        limits,
        vec![
            (ProviderId::MbedCrypto, Some(200)),
            (ProviderId::Core, None)
        ]
    );

    let upstream = daemon.parsec_client("app");
    let theirs = upstream.list_providers().unwrap();
    assert_eq!(theirs.len(), ours.providers.len());
    for (theirs, ours) in theirs.iter().zip(&ours.providers) {
        assert_eq!(theirs.id as u8, ours.id.value());
        assert_eq!(theirs.uuid.to_string(), ours.uuid.to_string());
        assert_eq!(theirs.description, ours.description);
    }
    // And what it says holds: 200 bytes are a name, 201 are not.
    let ecc = up::Attributes {
        lifetime: up::Lifetime::Persistent,
        key_type: up::Type::EccKeyPair {
            curve_family: up::EccFamily::SecpR1,
        },
        bits: 256,
        policy: up::Policy {
            usage_flags: Default::default(),
            permitted_algorithms: UpAlgorithm::None,
        },
    };
    upstream.psa_generate_key(&"n".repeat(200), ecc).unwrap();
    let error = upstream
        .psa_generate_key(&"n".repeat(201), ecc)
        .unwrap_err();
    assert!(
        matches!(
            error,
            parsec_client::error::Error::Service(UpStatus::PsaErrorInvalidArgument)
        ),
        "{error:?}"
    );
}

/// With limits that allow a ListKeys answer over `buffer_size_limit`, the daemon warns at
/// start-up and answers ResponseTooLarge instead of a larger body; ListClients likewise.
#[test]
fn listings_over_the_buffer_limit_are_response_too_large() {
    let daemon = Daemon::start_with(
        DaemonAuth::Direct {
            admins: vec!["admin".into()],
        },
        "buffer_size_limit = 4096",
    );
    assert!(
        daemon.log().contains("ResponseTooLarge from ListKeys"),
        "{}",
        daemon.log()
    );
    let client = |app: &str| {
        Client::builder()
            .socket(&daemon.socket)
            .auth(Auth::Direct(app.into()))
            .provider(ProviderId::MbedCrypto)
            .discover(false)
            .build()
            .unwrap()
    };
    let owner = client("owner");
    let create = |client: &Client, i: usize| {
        let name = format!("{i}{}", "k".repeat(MAX_NAME - 1));
        client
            .generate_key(&name, attributes::ecc_signing_key(EccFamily::SecpR1, 256))
            .unwrap();
    };
    for i in 0..3 {
        create(&owner, i);
    }
    assert_eq!(owner.list_keys().unwrap().len(), 3);
    for i in 3..5 {
        create(&owner, i);
    }
    let error = owner.list_keys().unwrap_err();
    assert_eq!(
        status(&error),
        Some(ResponseStatus::ResponseTooLarge),
        "{error}"
    );

    // Applications with long names, as Direct allows: the administrator's list outgrows it.
    let admin = client("admin");
    assert_eq!(admin.list_clients().unwrap(), vec!["owner".to_owned()]);
    for i in 0..5 {
        create(&client(&format!("{i}{}", "a".repeat(1000))), 0);
    }
    let error = admin.list_clients().unwrap_err();
    assert_eq!(
        status(&error),
        Some(ResponseStatus::ResponseTooLarge),
        "{error}"
    );
    // The daemon keeps serving.
    assert_eq!(admin.ping().unwrap(), (1, 0));
}
