//! The PKCS #11 provider in the real daemon, on a SoftHSMv2 token: the upstream parsec-tool and
//! parsec-client drive it, RustCrypto checks its signatures, keys survive a restart, and
//! discovery reports provider 2 with exactly the operations it serves.
//!
//! The test process never loads SoftHSM itself: it makes the tokens (one SoftHSM configuration
//! for the whole process, one token per test) and gives the configuration to each daemon
//! through `SOFTHSM2_CONF`.

use std::sync::OnceLock;

use bulwark_interface::ops::Family;
use bulwark_testenv::softhsm::{SoftHsm, CONF_VARIABLE};
use parsec_client::core::interface::requests::ProviderId;

use crate::harness::{Auth, Daemon};
use crate::hw_common::{assert_discovery, SigningKey};
use crate::parsec_tool::{rsa_and_ecc_walk_through, tool};

/// The SoftHSM configuration of this test process, exported so that every daemon started by
/// it finds the tokens (a daemon reads it when it starts, after its token was made).
pub(crate) fn root() -> &'static SoftHsm {
    static ROOT: OnceLock<SoftHsm> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = SoftHsm::isolated("e2e-root");
        std::env::set_var(CONF_VARIABLE, root.conf_path());
        root
    })
}

/// A daemon whose only provider is the PKCS #11 provider on a new token.
fn daemon(extra: &str) -> (Daemon, SoftHsm) {
    let token = root().another("e2e");
    let providers = format!(
        "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\n\
         library_path = \"{}\"\nserial_number = \"{}\"\nuser_pin = \"{}\"\n{extra}\n",
        token.library_path().display(),
        token.serial,
        token.user_pin()
    );
    let mut daemon = Daemon::start_with_providers(Auth::unix(), "", &providers);
    daemon.env.push((
        CONF_VARIABLE.to_owned(),
        token.conf_path().display().to_string(),
    ));
    (daemon, token)
}

#[test]
fn parsec_tool_uses_rsa_and_ecc_keys_on_the_token() {
    let (daemon, _token) = daemon("");
    let providers = tool(&daemon, &["list-providers"]);
    assert!(providers.contains("ID: 0x02"), "{providers}");
    assert!(
        providers.contains("UUID: 30e39502-eba6-4d60-a4af-c518b7f5e38f"),
        "{providers}"
    );

    rsa_and_ecc_walk_through(&daemon);
}

#[test]
fn keys_survive_a_restart_and_discovery_reports_exactly_the_served_operations() {
    let (mut daemon, _token) = daemon("software_public_operations = true");
    let client = daemon.parsec_client("ignored-for-unix-peer");
    assert_discovery(
        &client,
        ProviderId::Pkcs11,
        "OASIS Standard.",
        Family::Pkcs11,
    );

    let key = SigningKey::generate(&client, "kept");
    let signature = key.sign_and_check(&client, "before the restart");
    let random = client.psa_generate_random(64).expect("random");
    assert_eq!(random.len(), 64);

    daemon.restart();
    let client = daemon.parsec_client("ignored-for-unix-peer");
    assert_eq!(
        client.psa_export_public_key("kept").expect("still there"),
        key.public
    );
    client
        .psa_verify_hash("kept", &key.hash, key.alg, &signature)
        .expect("verified after the restart");
    let again = client
        .psa_sign_hash("kept", &key.hash, key.alg)
        .expect("signed");
    client
        .psa_verify_hash("kept", &key.hash, key.alg, &again)
        .expect("verified");
    client.psa_destroy_key("kept").expect("destroyed");
}

#[test]
fn a_wrong_pin_stops_the_daemon_with_the_cause() {
    let token = root().another("e2e-pin");
    let providers = format!(
        "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"sqlite-manager\"\n\
         library_path = \"{}\"\nslot_number = {}\nuser_pin = \"str:not-the-pin\"\n",
        token.library_path().display(),
        token.slot,
    );
    let result = std::panic::catch_unwind(|| {
        Daemon::start_with_providers(Auth::unix(), "", &providers);
    });
    let message = match result {
        Ok(()) => panic!("the daemon started with a wrong PIN"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(message.contains("CKR_PIN_INCORRECT"), "{message}");
    assert!(!message.contains("not-the-pin"), "the PIN is not logged");
}
