//! SIGHUP and the PKCS #11 provider: a reload initialises the PKCS #11 library again, so it
//! sees a token created after start-up and logs in with a user PIN changed since, and the
//! requests signing meanwhile are all answered.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_testenv::softhsm::{SoftHsm, CONF_VARIABLE, USER_PIN};
use nix::sys::signal::Signal;
use parsec_client::core::interface::requests::ProviderId;

use crate::harness::{Auth, Daemon};
use crate::hw_common::SigningKey;
use crate::hw_pkcs11::root;

/// The `[[provider]]` table of a PKCS #11 provider on the token with serial number `serial`.
fn pkcs11_table(serial: &str, pin: &str) -> String {
    format!(
        "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\n\
         library_path = \"{}\"\nserial_number = \"{serial}\"\nuser_pin = \"{pin}\"\n",
        bulwark_testenv::softhsm::library_path().display(),
    )
}

/// How many times `line` is in the daemon's log.
fn count(daemon: &Daemon, line: &str) -> usize {
    daemon.log().matches(line).count()
}

/// Sends SIGHUP and waits for the reload's outcome: `Ok` when it was applied, the log when it
/// was refused.
fn reload(daemon: &Daemon) -> Result<(), String> {
    let (applied, refused) = (
        count(daemon, "configuration reloaded"),
        count(daemon, "reload failed"),
    );
    daemon.signal(Signal::SIGHUP);
    // Generous: the machine may be busy, and the reload waits for the requests in flight.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if count(daemon, "configuration reloaded") > applied {
            return Ok(());
        }
        if count(daemon, "reload failed") > refused {
            return Err(daemon.log());
        }
        assert!(
            Instant::now() < deadline,
            "no reload outcome logged:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_token_created_after_start_up_is_used_after_sighup() {
    let root = root();
    const NOT_YET: &str = "not-created-yet";
    // The token the configuration names does not exist: the daemon starts without provider 2.
    let daemon = Daemon::start_with_providers(Auth::unix(), "", &pkcs11_table(NOT_YET, USER_PIN));
    assert!(
        daemon
            .log()
            .contains("the PKCS #11 token is not present: provider left out"),
        "{}",
        daemon.log()
    );
    let client = daemon.parsec_client("ignored-for-unix-peer");
    let ids: Vec<ProviderId> = client
        .list_providers()
        .expect("providers")
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [ProviderId::Core]);

    // The token is created by softhsm2-util after the daemon initialised SoftHSM.
    let late = root.another("e2e-late");
    daemon.edit_config(NOT_YET, &late.serial);
    reload(&daemon).unwrap_or_else(|log| panic!("reload refused:\n{log}"));

    let client = daemon.parsec_client("ignored-for-unix-peer");
    let ids: Vec<ProviderId> = client
        .list_providers()
        .expect("providers")
        .iter()
        .map(|p| p.id)
        .collect();
    assert_eq!(ids, [ProviderId::Pkcs11, ProviderId::Core]);
    let key = SigningKey::generate(&client, "on-the-late-token");
    let signature = key.sign_and_check(&client, "on the token created after start-up");
    client
        .psa_verify_hash(key.name, &key.hash, key.alg, &signature)
        .expect("verified by the token");
}

#[test]
fn a_user_pin_changed_on_the_token_is_applied_on_sighup() {
    // A configuration of its own: p11tool, which changes the PIN, sees the first 48 slots only.
    let token = SoftHsm::isolated("e2e-pin-change");
    let mut daemon =
        Daemon::configure_with_providers(Auth::unix(), "", &pkcs11_table(&token.serial, USER_PIN));
    daemon.env.push((
        CONF_VARIABLE.to_owned(),
        token.conf_path().display().to_string(),
    ));
    daemon.spawn();
    let client = daemon.parsec_client("ignored-for-unix-peer");
    let key = SigningKey::generate(&client, "made-before");
    let before = key.sign_and_check(&client, "before the PIN change");

    // The token's user PIN is changed, then the configuration's.
    const NEW_PIN: &str = "a-new-user-pin";
    token.set_user_pin(NEW_PIN);
    daemon.edit_config(
        &format!("user_pin = \"{USER_PIN}\""),
        &format!("user_pin = \"{NEW_PIN}\""),
    );
    reload(&daemon).unwrap_or_else(|log| panic!("reload refused:\n{log}"));

    let client = daemon.parsec_client("ignored-for-unix-peer");
    key.sign_and_check(&client, "after the PIN change");
    client
        .psa_verify_hash(key.name, &key.hash, key.alg, &before)
        .expect("a signature made before the change verifies");
    assert!(!daemon.log().contains(NEW_PIN), "the PIN is not logged");

    // A start logs in with the new PIN too.
    daemon.restart();
    let client = daemon.parsec_client("ignored-for-unix-peer");
    key.sign_and_check(&client, "after a restart");
}

#[test]
fn sighup_during_concurrent_pkcs11_signing_answers_every_request() {
    const THREADS: usize = 4;
    const RELOADS: usize = 8;
    const SIGNED_BETWEEN: usize = 25;
    let token = root().another("e2e-reload-load");
    let daemon =
        Daemon::start_with_providers(Auth::unix(), "", &pkcs11_table(&token.serial, USER_PIN));
    let client = daemon.parsec_client("ignored-for-unix-peer");
    let key = Arc::new(SigningKey::generate(&client, "busy"));

    let stop = Arc::new(AtomicBool::new(false));
    let signed = Arc::new(AtomicUsize::new(0));
    // Kept-open connections (bulwark-client): their requests keep coming while the reload is
    // being built, whereas a new connection waits for the accept loop, which the reload holds.
    let ecdsa = bulwark_client::AsymmetricSignature::Ecdsa {
        hash_alg: bulwark_client::Hash::Sha256.into(),
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let client = bulwark_client::Client::builder()
                .socket(&daemon.socket)
                .provider(bulwark_client::ProviderId::Pkcs11)
                .build()
                .expect("client");
            let (key, stop, signed) = (Arc::clone(&key), Arc::clone(&stop), Arc::clone(&signed));
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match client.sign_hash(key.name, ecdsa, &key.hash) {
                        Ok(signature) => {
                            key.check(&signature);
                            signed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => failures.push(format!("{error:?}")),
                    }
                }
                failures
            })
        })
        .collect();

    let mut reloads = 0;
    for _ in 0..RELOADS {
        // Reload only while signatures are being made, a few of them since the last reload.
        let at = signed.load(Ordering::Relaxed);
        let deadline = Instant::now() + Duration::from_secs(60);
        while signed.load(Ordering::Relaxed) < at + SIGNED_BETWEEN {
            assert!(
                Instant::now() < deadline,
                "no signature made:\n{}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        reload(&daemon).unwrap_or_else(|log| panic!("reload refused:\n{log}"));
        reloads += 1;
    }
    let after = signed.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while signed.load(Ordering::Relaxed) == after {
        assert!(
            Instant::now() < deadline,
            "no signature after the last reload:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    let failures: Vec<String> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("worker"))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed across {reloads} reloads: {failures:?}\n{}",
        failures.len(),
        failures.len() + signed.load(Ordering::Relaxed),
        daemon.log()
    );
    assert_eq!(reloads, RELOADS);
    assert_eq!(
        count(&daemon, "PKCS #11 library initialised again"),
        RELOADS,
        "{}",
        daemon.log()
    );
}
