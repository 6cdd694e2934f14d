//! The daemon as a process: signals, reload, the socket file, refusals at start-up.

use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use parsec_client::core::interface::operations::psa_algorithm::{Algorithm, AsymmetricEncryption};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::interface::requests::ResponseStatus;
use parsec_client::error::Error;

use crate::harness::{Auth, Daemon};

fn rsa_attributes(bits: usize) -> Attributes {
    let mut flags = UsageFlags::default();
    flags.set_encrypt().set_decrypt();
    Attributes {
        lifetime: Lifetime::Persistent,
        key_type: Type::RsaKeyPair,
        bits,
        policy: Policy {
            usage_flags: flags,
            permitted_algorithms: Algorithm::AsymmetricEncryption(
                AsymmetricEncryption::RsaPkcs1v15Crypt,
            ),
        },
    }
}

fn bulwarkd(config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_removes_the_socket() {
    let mut daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("slow-app");
    // RSA-4096 generation takes long enough to be in flight when the signal arrives.
    let worker = std::thread::spawn(move || client.psa_generate_key("big", rsa_attributes(4096)));
    std::thread::sleep(Duration::from_millis(150));
    daemon.signal(Signal::SIGTERM);
    let generated = worker.join().unwrap();
    assert!(
        generated.is_ok(),
        "request in flight was dropped: {generated:?}"
    );
    let status = daemon.wait_exit();
    assert!(status.success(), "exit status {status}:\n{}", daemon.log());
    assert!(!daemon.socket.exists(), "socket file left behind");
    // The key is there after a restart.
    daemon.spawn();
    let keys = daemon.parsec_client("slow-app").list_keys().unwrap();
    assert_eq!(
        keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(),
        ["big"]
    );
}

#[test]
fn sigterm_waits_for_a_request_that_is_still_arriving() {
    use std::io::{Read, Write};

    use bulwark_interface::ids::{AuthType, ProviderId};
    use bulwark_interface::ops::{self, PsaGenerateRandom};
    use bulwark_interface::status::ResponseStatus as Status;
    use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};

    let mut daemon = Daemon::start(Auth::direct());
    let request = RequestFrame {
        header: RequestHeader::new(
            ProviderId::MbedCrypto,
            ops::Opcode::PsaGenerateRandom,
            AuthType::NoAuth,
        ),
        body: ops::encode_request::<PsaGenerateRandom>(ops::psa_generate_random::Request {
            size: 8,
        })
        .unwrap(),
        auth: Default::default(),
    }
    .to_bytes()
    .unwrap();
    let mut stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    stream.write_all(&request[..37]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    daemon.signal(Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(200));
    stream.write_all(&request[37..]).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let (response, _) = ResponseFrame::parse(&response, usize::MAX).unwrap();
    assert_eq!(response.header.status, Status::Success);
    assert!(daemon.wait_exit().success());
}

#[test]
fn sighup_reloads_the_configuration_without_dropping_requests() {
    let daemon = Daemon::start(Auth::direct());
    let admin = daemon.parsec_client("admin");
    assert!(matches!(
        admin.list_clients(),
        Err(Error::Service(ResponseStatus::AdminOperation))
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let load = {
        let client = daemon.parsec_client("busy");
        let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match client.psa_generate_random(32) {
                    Ok(bytes) if bytes.len() == 32 => {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        })
    };

    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let text = text.replace("admins = [  ]", "admins = [ { name = \"admin\" } ]");
    assert!(
        text.contains("\"admin\""),
        "config template changed: {text}"
    );
    std::fs::write(&daemon.config, text).unwrap();
    daemon.signal(Signal::SIGHUP);

    let deadline = Instant::now() + Duration::from_secs(10);
    while admin.list_clients().is_err() {
        assert!(
            Instant::now() < deadline,
            "reload not applied:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = served.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let failures = load.join().unwrap();
    assert!(
        failures.is_empty(),
        "requests failed during reload: {failures:?}"
    );
    assert!(
        served.load(Ordering::Relaxed) > before,
        "service stopped answering after reload"
    );
    assert!(daemon.log().contains("configuration reloaded"));
}

/// Recovery of interrupted key operations belongs to start-up: run on a reload, it takes the
/// generations in flight for leftovers of a crash and removes their keys. Several RSA-4096
/// generations (long enough to be in flight) run from several clients while the daemon is
/// reloaded again and again: every generation must succeed, and every key acknowledged must
/// be listed and work afterwards.
#[test]
fn reloads_during_key_generations_keep_every_acknowledged_key() {
    const THREADS: usize = 3;
    const KEYS_PER_THREAD: usize = 2;
    let daemon = Daemon::start(Auth::direct());
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let client = daemon.parsec_client(&format!("generator-{thread}"));
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let results: Vec<_> = (0..KEYS_PER_THREAD)
                    .map(|n| {
                        let name = format!("rsa-{n}");
                        let result = client.psa_generate_key(&name, rsa_attributes(4096));
                        (name, result)
                    })
                    .collect();
                done.fetch_add(1, Ordering::Relaxed);
                (client, results)
            })
        })
        .collect();
    let mut reloads = 0;
    while done.load(Ordering::Relaxed) < THREADS {
        daemon.signal(Signal::SIGHUP);
        reloads += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    let mut failures = Vec::new();
    for (thread, worker) in workers.into_iter().enumerate() {
        let (client, results) = worker.join().unwrap();
        for (name, result) in results {
            if let Err(error) = result {
                failures.push(format!(
                    "generator-{thread} {name}: generation answered {error:?}"
                ));
                continue;
            }
            let listed = client.list_keys().unwrap();
            if !listed.iter().any(|key| key.name == name) {
                failures.push(format!(
                    "generator-{thread} {name}: acknowledged, not listed"
                ));
                continue;
            }
            let plaintext = format!("{thread} {name}").into_bytes();
            let used = client
                .psa_asymmetric_encrypt(
                    &name,
                    AsymmetricEncryption::RsaPkcs1v15Crypt,
                    &plaintext,
                    None,
                )
                .and_then(|ciphertext| {
                    client.psa_asymmetric_decrypt(
                        &name,
                        AsymmetricEncryption::RsaPkcs1v15Crypt,
                        &ciphertext,
                        None,
                    )
                });
            match used {
                Ok(decrypted) if decrypted == plaintext => {}
                other => failures.push(format!(
                    "generator-{thread} {name}: acknowledged, then unusable: {other:?}"
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} reloads during the generations: {failures:#?}\n{}",
        reloads,
        daemon.log()
    );
    assert!(reloads > 1, "the generations ended before a reload");
    assert!(daemon.log().contains("configuration reloaded"));
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_is_refused() {
    let mut daemon = Daemon::start(Auth::direct());
    // Live: a second daemon on the same socket refuses to start and leaves the first alone.
    let second = bulwarkd(&daemon.config);
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another service is answering"), "{stderr}");
    assert_eq!(daemon.parsec_client("a").ping().unwrap(), (1, 0));

    // Stale: a socket file nobody listens on, as a crash leaves it.
    daemon.kill9();
    let _ = std::fs::remove_file(&daemon.socket);
    drop(UnixListener::bind(&daemon.socket).unwrap());
    assert!(daemon.socket.exists());
    daemon.spawn();
    assert_eq!(daemon.parsec_client("a").ping().unwrap(), (1, 0));
}

#[test]
fn a_file_that_is_not_a_socket_is_not_removed() {
    let mut daemon = Daemon::start(Auth::direct());
    daemon.stop();
    std::fs::write(&daemon.socket, b"precious").unwrap();
    let output = bulwarkd(&daemon.config);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a socket"));
    assert_eq!(std::fs::read(&daemon.socket).unwrap(), b"precious");
}

#[test]
fn running_as_root_needs_allow_root() {
    if !nix::unistd::getuid().is_root() {
        // The refusal only exists for root; as another user the daemon must simply start.
        return;
    }
    let mut daemon = Daemon::start(Auth::direct());
    daemon.stop();
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    std::fs::write(
        &daemon.config,
        text.replace("allow_root = true", "allow_root = false"),
    )
    .unwrap();
    let output = bulwarkd(&daemon.config);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to run as root"), "{stderr}");
    assert!(stderr.contains("allow_root"), "{stderr}");
}

#[test]
fn a_bad_configuration_names_the_key_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[core_settings]\n[listener]\nlistener_type = \"DomainSocket\"\ntimeout = \"soon\"\n\
         [authenticator]\nauth_type = \"Direct\"\n",
    )
    .unwrap();
    let output = bulwarkd(&config);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listener.timeout"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("bulwarkd "));
    let output = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--print-default-config")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("[[provider]]"));
}

#[test]
fn files_the_daemon_creates_are_for_its_user_only() {
    use std::os::unix::fs::PermissionsExt;

    use crate::harness::{provider, Provider};

    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("owner-only");
    let mut flags = UsageFlags::default();
    flags.set_sign_hash().set_verify_hash();
    let attributes = Attributes {
        lifetime: Lifetime::Persistent,
        key_type: Type::EccKeyPair {
            curve_family: parsec_client::core::interface::operations::psa_key_attributes::EccFamily::SecpR1,
        },
        bits: 256,
        policy: Policy {
            usage_flags: flags,
            permitted_algorithms: Algorithm::AsymmetricSignature(
                parsec_client::core::interface::operations::psa_algorithm::AsymmetricSignature::Ecdsa {
                    hash_alg: parsec_client::core::interface::operations::psa_algorithm::Hash::Sha256.into(),
                },
            ),
        },
    };
    client.psa_generate_key("k", attributes).unwrap();
    let mut checked = Vec::new();
    let mut visit = vec![daemon.dir().to_path_buf()];
    while let Some(dir) = visit.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // The test's own files: the configuration, the log it redirects, the socket.
            if ["config.toml", "daemon.log", "s.sock"].contains(&name.as_str()) {
                continue;
            }
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            if path.is_dir() {
                visit.push(path.clone());
            }
            assert_eq!(mode & 0o077, 0, "{} has mode {mode:o}", path.display());
            checked.push(name);
        }
    }
    let expected_key_file = match provider() {
        Provider::MbedCrypto => checked.iter().any(|n| n.ends_with(".psa_its")),
        Provider::OpenSsl => checked.iter().any(|n| n.ends_with(".kek")),
    };
    assert!(expected_key_file, "no key or KEK file among {checked:?}");
    assert!(
        checked.iter().any(|n| n.ends_with(".sqlite3")),
        "{checked:?}"
    );
}
