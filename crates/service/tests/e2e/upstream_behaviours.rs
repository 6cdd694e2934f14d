//! Behaviours upstream Parsec's own end-to-end suite checks (its suite is not a published
//! crate), written for Bulwark: each test names the upstream test it mirrors.

use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use parsec_client::core::interface::operations::psa_algorithm::Hash;
use parsec_client::core::interface::operations::psa_key_attributes::{EccFamily, Type};
use parsec_client::core::interface::requests::ResponseStatus;

use crate::client_ops::{attrs, check, ecc_pair, ecdsa, pkcs1v15_sign, rsa_pair};
use crate::harness::{Auth, Daemon};

/// Upstream `export_key::import_and_export_rsa_public_key`: PsaExportKey of a public key needs
/// no export flag (a public key is never secret), and answers the bytes imported. The same for
/// an ECC public key; the key pairs still need the flag.
#[test]
fn export_key_import_and_export_rsa_public_key() {
    let daemon = Daemon::start(Auth::direct());
    let client = daemon.parsec_client("export-public-app");

    client
        .psa_generate_key(
            "rsa pair",
            rsa_pair(pkcs1v15_sign(Hash::Sha256), "sign verify"),
        )
        .unwrap();
    let rsa_public = client.psa_export_public_key("rsa pair").unwrap();
    client
        .psa_import_key(
            "rsa public",
            &rsa_public,
            attrs(
                Type::RsaPublicKey,
                2048,
                pkcs1v15_sign(Hash::Sha256),
                "verify verify_message encrypt",
            ),
        )
        .unwrap();
    assert_eq!(client.psa_export_key("rsa public").unwrap(), rsa_public);

    client
        .psa_generate_key(
            "ecc pair",
            ecc_pair(256, ecdsa(Hash::Sha256), "sign verify"),
        )
        .unwrap();
    let ecc_public = client.psa_export_public_key("ecc pair").unwrap();
    client
        .psa_import_key(
            "ecc public",
            &ecc_public,
            attrs(
                Type::EccPublicKey {
                    curve_family: EccFamily::SecpR1,
                },
                256,
                ecdsa(Hash::Sha256),
                "verify",
            ),
        )
        .unwrap();
    assert_eq!(client.psa_export_key("ecc public").unwrap(), ecc_public);

    for pair in ["rsa pair", "ecc pair"] {
        check(
            client.psa_export_key(pair),
            ResponseStatus::PsaErrorNotPermitted,
        );
    }
}

/// Upstream `config::various_fields`: a reload applies a changed `listener.socket_path`. The
/// service answers on the new socket, the old socket file is gone and nothing answers there,
/// and a request in flight on the old socket when the reload came is answered.
#[test]
fn config_various_fields_socket_path_moves_on_reload() {
    let mut daemon = Daemon::start(Auth::direct());
    let old = daemon.socket.clone();
    let new = daemon.dir().join("moved/parsec.sock");

    // RSA-4096 generation takes long enough to be in flight during the reload.
    let in_flight = {
        let client = daemon.parsec_client("mover");
        std::thread::spawn(move || {
            client.psa_generate_key(
                "generated during the move",
                attrs(
                    Type::RsaKeyPair,
                    4096,
                    pkcs1v15_sign(Hash::Sha256),
                    "sign verify",
                ),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(100));

    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let moved = text.replace(
        &format!("socket_path = \"{}\"", old.display()),
        &format!("socket_path = \"{}\"", new.display()),
    );
    assert_ne!(moved, text, "config template changed: {text}");
    std::fs::write(&daemon.config, moved).unwrap();
    daemon.signal(Signal::SIGHUP);

    // A guard only: a reload takes milliseconds.
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(&new).is_err() {
        assert!(
            Instant::now() < deadline,
            "no service on the new socket:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.socket = new.clone();
    let client = daemon.parsec_client("mover");
    assert_eq!(client.ping().unwrap(), (1, 0));
    assert!(!old.exists(), "the old socket file is left behind");
    assert!(UnixStream::connect(&old).is_err());

    in_flight
        .join()
        .unwrap()
        .expect("the generation in flight during the move");
    let names: Vec<String> = client
        .list_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["generated during the move"]);
    assert!(daemon.log().contains("listening on the new socket"));

    // The moved daemon stops cleanly and removes its new socket.
    daemon.stop();
    assert!(!new.exists(), "the new socket file is left behind");
}
