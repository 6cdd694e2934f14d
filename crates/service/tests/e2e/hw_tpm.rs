//! The TPM provider in the real daemon, on a swtpm simulator manufactured on a temporary path:
//! the upstream parsec-tool and parsec-client drive it, RustCrypto checks its signatures, keys
//! survive a daemon restart and a TPM reset, and discovery reports provider 3 with exactly the
//! operations it serves.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use bulwark_testenv::swtpm::Swtpm;
use parsec_client::core::interface::operations::psa_algorithm::{AsymmetricSignature, Hash};
use parsec_client::core::interface::operations::psa_key_attributes::{
    Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
};
use parsec_client::core::interface::requests::{Opcode, ProviderId};
use sha2::{Digest, Sha256};

use crate::harness::{Auth, Daemon};

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

fn parsec_tool() -> PathBuf {
    let path = std::env::var_os("PARSEC_TOOL").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/tools/bin/parsec-tool"
            ))
        },
        PathBuf::from,
    );
    assert!(
        path.is_file(),
        "parsec-tool not found at {}: link ~/.cache/bulwark/tools to target/tools or set \
         PARSEC_TOOL",
        path.display()
    );
    path
}

fn tool(daemon: &Daemon, args: &[&str]) -> String {
    let output = Command::new(parsec_tool())
        .args(args)
        .env(
            "PARSEC_SERVICE_ENDPOINT",
            format!("unix:{}", daemon.socket.display()),
        )
        .env_remove("RUST_LOG")
        .output()
        .expect("run parsec-tool");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "parsec-tool {args:?} failed: {}\n{stdout}\n{}\ndaemon log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        daemon.log()
    );
    stdout
}

fn base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let symbols: Vec<u32> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(|c| ALPHABET.iter().position(|a| *a == c).expect("base64") as u32)
        .collect();
    let mut out = Vec::new();
    for chunk in symbols.chunks(4) {
        let acc = chunk
            .iter()
            .enumerate()
            .fold(0, |acc, (i, v)| acc | v << (18 - 6 * i));
        out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
    }
    out
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

    tool(&daemon, &["create-ecc-key", "-k", "ecc"]);
    tool(&daemon, &["create-rsa-key", "-k", "rsa"]);
    tool(
        &daemon,
        &["create-rsa-key", "--for-signing", "-k", "rsa-sign"],
    );
    let keys = tool(&daemon, &["list-keys"]);
    assert_eq!(keys.lines().count(), 3, "{keys}");

    let pem = tool(&daemon, &["export-public-key", "-k", "ecc"]);
    let public = {
        use p256::pkcs8::DecodePublicKey;
        p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).expect("P-256 SPKI PEM")
    };
    let message = "signed inside a TPM";
    let signature = base64(tool(&daemon, &["sign", "-k", "ecc", message]).trim());
    let signature = p256::ecdsa::Signature::from_der(&signature).expect("DER signature");
    {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        public
            .verify_prehash(&Sha256::digest(message.as_bytes()), &signature)
            .expect("verified with RustCrypto");
    }

    let pem = tool(&daemon, &["export-public-key", "-k", "rsa-sign"]);
    let public = {
        use rsa::pkcs8::DecodePublicKey;
        rsa::RsaPublicKey::from_public_key_pem(&pem).expect("RSA SPKI PEM")
    };
    let signature = base64(tool(&daemon, &["sign", "-k", "rsa-sign", message]).trim());
    public
        .verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message.as_bytes()),
            &signature,
        )
        .expect("verified with RustCrypto");
    let ciphertext = tool(&daemon, &["encrypt", "-k", "rsa", "attack at dawn"]);
    assert_eq!(base64(ciphertext.trim()).len(), 256);
    let plaintext = tool(&daemon, &["decrypt", "-k", "rsa", ciphertext.trim()]);
    assert_eq!(plaintext.trim_end_matches('\n'), "attack at dawn");

    tool(&daemon, &["delete-key", "-k", "ecc"]);
    tool(&daemon, &["delete-key", "-k", "rsa"]);
    tool(&daemon, &["delete-key", "-k", "rsa-sign"]);
    assert_eq!(tool(&daemon, &["list-keys"]).trim(), "");
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
