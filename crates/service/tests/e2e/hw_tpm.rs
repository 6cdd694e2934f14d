//! The TPM provider in the real daemon, on a swtpm simulator manufactured on a temporary path:
//! the upstream parsec-tool and parsec-client drive it, RustCrypto checks its signatures, keys
//! survive a daemon restart and a TPM reset, and discovery reports provider 3 with exactly the
//! operations it serves.

use std::collections::HashSet;

use bulwark_testenv::swtpm::Swtpm;
use parsec_client::core::interface::operations::psa_algorithm::{AsymmetricSignature, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::interface::requests::{Opcode, ProviderId};
use sha2::{Digest, Sha256};

use crate::harness::{Auth, Daemon};
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

    let providers = client.list_providers().expect("providers");
    let ids: Vec<ProviderId> = providers.iter().map(|p| p.id).collect();
    assert_eq!(ids, [ProviderId::Tpm, ProviderId::Core]);
    assert_eq!(providers[0].vendor, "Trusted Computing Group (TCG)");
    let opcodes = client.list_opcodes(ProviderId::Tpm).expect("opcodes");
    let expected: HashSet<Opcode> = [
        Opcode::PsaGenerateKey,
        Opcode::PsaDestroyKey,
        Opcode::PsaImportKey,
        Opcode::PsaExportPublicKey,
        Opcode::PsaSignHash,
        Opcode::PsaVerifyHash,
        Opcode::PsaGenerateRandom,
        Opcode::PsaAsymmetricEncrypt,
        Opcode::PsaAsymmetricDecrypt,
        Opcode::CanDoCrypto,
        Opcode::AttestKey,
        Opcode::PrepareKeyAttestation,
    ]
    .into_iter()
    .collect();
    assert_eq!(opcodes, expected);

    let alg = AsymmetricSignature::Ecdsa {
        hash_alg: Hash::Sha256.into(),
    };
    let mut usage = UsageFlags::default();
    usage.set_sign_hash().set_verify_hash();
    let attributes = Attributes {
        lifetime: Lifetime::Persistent,
        key_type: Type::EccKeyPair {
            curve_family: EccFamily::SecpR1,
        },
        bits: 256,
        policy: Policy {
            usage_flags: usage,
            permitted_algorithms: alg.into(),
        },
    };
    client
        .psa_generate_key("kept", attributes)
        .expect("generated");
    let public = client.psa_export_public_key("kept").expect("exported");
    let hash = Sha256::digest(b"survives").to_vec();
    let signature = client.psa_sign_hash("kept", &hash, alg).expect("signed");
    let verify = |signature: &[u8]| {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&public)
            .expect("point")
            .verify_prehash(
                &hash,
                &p256::ecdsa::Signature::from_slice(signature).expect("r || s"),
            )
            .expect("RustCrypto verifies");
    };
    verify(&signature);
    assert_eq!(client.psa_generate_random(64).expect("random").len(), 64);

    daemon.restart();
    let client = daemon.parsec_client("ignored-for-unix-peer");
    assert_eq!(
        client.psa_export_public_key("kept").expect("still there"),
        public
    );
    verify(
        &client
            .psa_sign_hash("kept", &hash, alg)
            .expect("signed after a daemon restart"),
    );

    // A TPM reset under the running daemon.
    tpm.restart();
    verify(
        &client
            .psa_sign_hash("kept", &hash, alg)
            .expect("signed after a TPM reset"),
    );
    client
        .psa_verify_hash("kept", &hash, alg, &signature)
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
