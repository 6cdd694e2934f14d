//! The TPM provider in the real daemon, on a swtpm simulator manufactured on a temporary path:
//! the upstream parsec-tool and parsec-client drive it, RustCrypto checks its signatures, keys
//! survive a daemon restart and a TPM reset, and discovery reports provider 3 with exactly the
//! operations it serves.

use bulwark_interface::ops::Family;
use bulwark_testenv::swtpm::Swtpm;
use parsec_client::core::interface::requests::ProviderId;

use crate::harness::{Auth, Daemon};
use crate::hw_common::{assert_discovery, SigningKey};
use crate::parsec_tool::{rsa_and_ecc_walk_through, tool};

/// A daemon whose only provider is the TPM provider on a new simulator.
fn daemon() -> (Daemon, Swtpm) {
    let tpm = Swtpm::start();
    let providers = format!(
        "[[provider]]\nprovider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\n\
         tcti = \"{}\"\nowner_hierarchy_auth = \"\"\n",
        tpm.tcti()
    );
    let daemon = Daemon::start_with_providers(Auth::unix(), "", &providers);
    (daemon, tpm)
}

#[test]
fn parsec_tool_uses_rsa_and_ecc_keys_in_the_tpm() {
    let (daemon, _tpm) = daemon();
    let providers = tool(&daemon, &["list-providers"]);
    assert!(providers.contains("ID: 0x03"), "{providers}");
    assert!(
        providers.contains("UUID: 1e4954a4-ff21-46d3-ab0c-661eeb667e1d"),
        "{providers}"
    );

    rsa_and_ecc_walk_through(&daemon);
}

#[test]
fn keys_survive_restarts_and_discovery_reports_exactly_the_served_operations() {
    let (mut daemon, mut tpm) = daemon();
    let client = daemon.parsec_client("ignored-for-unix-peer");
    assert_discovery(
        &client,
        ProviderId::Tpm,
        "Trusted Computing Group (TCG)",
        Family::Tpm,
    );

    let key = SigningKey::generate(&client, "kept");
    let signature = key.sign_and_check(&client, "before the restarts");
    assert_eq!(client.psa_generate_random(64).expect("random").len(), 64);

    daemon.restart();
    let client = daemon.parsec_client("ignored-for-unix-peer");
    assert_eq!(
        client.psa_export_public_key("kept").expect("still there"),
        key.public
    );
    key.sign_and_check(&client, "after a daemon restart");

    // A TPM reset under the running daemon.
    tpm.restart();
    key.sign_and_check(&client, "after a TPM reset");
    client
        .psa_verify_hash("kept", &key.hash, key.alg, &signature)
        .expect("verified after the reset");
    client.psa_destroy_key("kept").expect("destroyed");
}

#[test]
fn a_wrong_owner_auth_stops_the_daemon_with_the_cause() {
    let tpm = Swtpm::start();
    let providers = format!(
        "[[provider]]\nprovider_type = \"Tpm\"\nkey_info_manager = \"sqlite-manager\"\n\
         tcti = \"{}\"\nowner_hierarchy_auth = \"str:not-the-auth\"\n",
        tpm.tcti()
    );
    let result = std::panic::catch_unwind(|| {
        Daemon::start_with_providers(Auth::unix(), "", &providers);
    });
    let message = match result {
        Ok(()) => panic!("the daemon started with a wrong owner auth"),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default(),
    };
    assert!(message.contains("owner_hierarchy_auth"), "{message}");
    assert!(
        !message.contains("not-the-auth"),
        "the auth value is not logged"
    );
}
