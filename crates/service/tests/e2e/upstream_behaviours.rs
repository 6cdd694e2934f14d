//! Behaviours upstream Parsec's own end-to-end suite checks (its suite is not a published
//! crate), written for Bulwark: each test names the upstream test it mirrors.

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
