//! The upstream command-line client, `parsec-tool`, against `bulwarkd` (Unix peer credentials).
//!
//! The tool is found through `PARSEC_TOOL`, else at `target/tools/bin/parsec-tool` under the
//! workspace root (`cargo install parsec-tool --locked --root target/tools`).

use std::path::PathBuf;
use std::process::Command;

use p256::pkcs8::DecodePublicKey as _;
use sha2::{Digest, Sha256};

use crate::harness::{provider, Auth, Daemon, Provider};

const INSTALL_HINT: &str = "install it with `cargo install parsec-tool --locked --root \
                            target/tools` from the workspace root, or point PARSEC_TOOL at it";

pub(crate) fn parsec_tool_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PARSEC_TOOL") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "PARSEC_TOOL={} does not exist; {INSTALL_HINT}",
            path.display()
        );
        return path;
    }
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/tools/bin/parsec-tool"
    ));
    assert!(
        path.is_file(),
        "parsec-tool not found at {}; {INSTALL_HINT}",
        path.display()
    );
    path
}

/// Runs `parsec-tool args…` against `daemon`, asserts exit status 0 and returns stdout.
pub(crate) fn tool(daemon: &Daemon, args: &[&str]) -> String {
    let output = Command::new(parsec_tool_path())
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
        "parsec-tool {args:?} exited with {}\nstdout:\n{stdout}\nstderr:\n{}\ndaemon log:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        daemon.log()
    );
    stdout
}

/// Standard base64 (RFC 4648, `=` padding), as parsec-tool prints it.
pub(crate) fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c:?} in {text:?}"),
        }
    };
    let symbols: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::new();
    for chunk in symbols.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

/// The base64 body of a PEM block with the given label; the whole text must be that block.
fn pem_body(text: &str, label: &str) -> Vec<u8> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        lines.len() >= 3 && lines[0] == begin && lines[lines.len() - 1] == end,
        "expected a PEM {label:?} block, got:\n{text}"
    );
    base64_decode(&lines[1..lines.len() - 1].concat())
}

#[test]
fn parsec_tool_discovery() {
    let tool_path = parsec_tool_path();
    let daemon = Daemon::start(Auth::unix());
    println!("using {}", tool_path.display());

    // Discovery.
    assert_eq!(tool(&daemon, &["ping"]).trim(), "1.0");
    let providers = tool(&daemon, &["list-providers"]);
    assert!(
        providers.contains("ID: 0x01 (Mbed Crypto provider)"),
        "{providers}"
    );
    // Provider 1 is Mbed Crypto or the OpenSSL provider, each with its own UUID.
    let provider_uuid = match provider() {
        Provider::MbedCrypto => "1c1139dc-ad7c-47dc-ad6b-db6fdb466552",
        Provider::OpenSsl => bulwark_service::providers::openssl::OPENSSL_UUID,
    };
    assert!(
        providers.contains(&format!("UUID: {provider_uuid}")),
        "{providers}"
    );
    assert!(
        providers.contains("ID: 0x00 (Core provider)"),
        "{providers}"
    );
    assert!(
        providers.contains("UUID: 47049873-2a43-4845-9d72-831eab668784"),
        "{providers}"
    );
    let core_opcodes = tool(&daemon, &["list-opcodes"]);
    for line in ["0x01 (Ping)", "0x08 (ListProviders)", "0x1a (ListKeys)"] {
        assert!(
            core_opcodes.lines().any(|l| l == line),
            "no {line} in:\n{core_opcodes}"
        );
    }
    let authenticators = tool(&daemon, &["list-authenticators"]);
    assert!(
        authenticators.lines().next() == Some("ID: 0x03 (Unix Peer Credentials authentication)"),
        "{authenticators}"
    );
    assert!(
        authenticators.contains("Version: 0.1.0"),
        "{authenticators}"
    );
    assert_eq!(
        tool(&daemon, &["list-keys"]).trim(),
        "",
        "a fresh store lists no key"
    );
    let mbed_opcodes = tool(&daemon, &["list-opcodes", "--provider", "1"]);
    for line in [
        "0x02 (PsaGenerateKey)",
        "0x04 (PsaSignHash)",
        "0x07 (PsaExportPublicKey)",
        "0x0a (PsaAsymmetricEncrypt)",
        "0x0b (PsaAsymmetricDecrypt)",
    ] {
        assert!(
            mbed_opcodes.lines().any(|l| l == line),
            "no {line} in:\n{mbed_opcodes}"
        );
    }
}

#[test]
fn parsec_tool_key_lifecycle() {
    let daemon = Daemon::start(Auth::unix());

    // Keys.
    tool(&daemon, &["create-ecc-key", "-k", "tool-ecc"]);
    tool(&daemon, &["create-rsa-key", "-k", "tool-rsa"]);
    let keys = tool(&daemon, &["list-keys"]);
    assert!(
        keys.lines().any(
            |l| l.starts_with("* tool-ecc (Mbed Crypto provider, EccKeyPair")
                && l.contains("256 bits")
        ),
        "{keys}"
    );
    assert!(
        keys.lines().any(
            |l| l.starts_with("* tool-rsa (Mbed Crypto provider, RsaKeyPair")
                && l.contains("2048 bits")
        ),
        "{keys}"
    );
    assert_eq!(keys.lines().count(), 2, "{keys}");

    // ECDSA: the DER signature verifies against the exported PEM key.
    let ecc_pem = tool(&daemon, &["export-public-key", "-k", "tool-ecc"]);
    pem_body(&ecc_pem, "PUBLIC KEY");
    let verifying_key =
        p256::ecdsa::VerifyingKey::from_public_key_pem(&ecc_pem).expect("P-256 SPKI PEM");
    let message = "signed by bulwarkd through parsec-tool";
    let signature_b64 = tool(&daemon, &["sign", "-k", "tool-ecc", message]);
    let der = base64_decode(signature_b64.trim());
    let signature = p256::ecdsa::Signature::from_der(&der).expect("DER Ecdsa-Sig-Value");
    {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        verifying_key
            .verify_prehash(&Sha256::digest(message.as_bytes()), &signature)
            .expect("parsec-tool's signature verifies with the exported key");
    }

    // RSA: encrypt then decrypt gives the plaintext back.
    let rsa_pem = tool(&daemon, &["export-public-key", "-k", "tool-rsa"]);
    pem_body(&rsa_pem, "PUBLIC KEY");
    {
        use rsa::pkcs8::DecodePublicKey;
        let key = rsa::RsaPublicKey::from_public_key_pem(&rsa_pem).expect("RSA SPKI PEM");
        assert_eq!(rsa::traits::PublicKeyParts::size(&key), 256);
    }
    let plaintext = "attack at dawn";
    let ciphertext = tool(&daemon, &["encrypt", "-k", "tool-rsa", plaintext]);
    assert_eq!(base64_decode(ciphertext.trim()).len(), 256, "{ciphertext}");
    let decrypted = tool(&daemon, &["decrypt", "-k", "tool-rsa", ciphertext.trim()]);
    assert_eq!(decrypted.trim_end_matches('\n'), plaintext);

    // A CSR signed by the ECC key.
    let csr = tool(
        &daemon,
        &[
            "create-csr",
            "-k",
            "tool-ecc",
            "--cn",
            "bulwark.test",
            "--o",
            "Bulwark",
        ],
    );
    let der = pem_body(&csr, "CERTIFICATE REQUEST");
    assert_eq!(der.first(), Some(&0x30), "a DER SEQUENCE");
    // The subject's CN and the key's SPKI (its last 65 bytes are the point) are in the request.
    assert!(
        der.windows(12).any(|w| w == b"bulwark.test"),
        "CN missing from the CSR"
    );
    let spki = p256::pkcs8::EncodePublicKey::to_public_key_der(&verifying_key).unwrap();
    assert!(
        der.windows(spki.as_bytes().len())
            .any(|w| w == spki.as_bytes()),
        "the CSR does not carry the key's public key"
    );

    // Deletion.
    tool(&daemon, &["delete-key", "-k", "tool-ecc"]);
    tool(&daemon, &["delete-key", "-k", "tool-rsa"]);
    assert_eq!(
        tool(&daemon, &["list-keys"]).trim(),
        "",
        "keys left after delete-key"
    );
}

/// The hardware providers' walk-through with the tool (`daemon`'s only provider serves it):
/// an ECC key and two RSA keys created, ECDSA and RSA PKCS#1 v1.5 signatures checked with
/// RustCrypto against the exported public keys, RSA encryption round trip, keys deleted.
pub(crate) fn rsa_and_ecc_walk_through(daemon: &Daemon) {
    tool(daemon, &["create-ecc-key", "-k", "ecc"]);
    tool(daemon, &["create-rsa-key", "-k", "rsa"]);
    tool(
        daemon,
        &["create-rsa-key", "--for-signing", "-k", "rsa-sign"],
    );
    let keys = tool(daemon, &["list-keys"]);
    assert_eq!(keys.lines().count(), 3, "{keys}");

    // ECDSA through the tool: the DER signature verifies with the exported key.
    let pem = tool(daemon, &["export-public-key", "-k", "ecc"]);
    let public = {
        use p256::pkcs8::DecodePublicKey;
        p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).expect("P-256 SPKI PEM")
    };
    let message = "signed inside the provider";
    let signature = base64_decode(tool(daemon, &["sign", "-k", "ecc", message]).trim());
    let signature = p256::ecdsa::Signature::from_der(&signature).expect("DER signature");
    {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        public
            .verify_prehash(&Sha256::digest(message.as_bytes()), &signature)
            .expect("verified with RustCrypto");
    }

    // RSA: signed (PKCS#1 v1.5, SHA-256), then encrypted and decrypted.
    let pem = tool(daemon, &["export-public-key", "-k", "rsa-sign"]);
    let public = {
        use rsa::pkcs8::DecodePublicKey;
        rsa::RsaPublicKey::from_public_key_pem(&pem).expect("RSA SPKI PEM")
    };
    let signature = base64_decode(tool(daemon, &["sign", "-k", "rsa-sign", message]).trim());
    public
        .verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message.as_bytes()),
            &signature,
        )
        .expect("verified with RustCrypto");
    let ciphertext = tool(daemon, &["encrypt", "-k", "rsa", "attack at dawn"]);
    assert_eq!(base64_decode(ciphertext.trim()).len(), 256);
    let plaintext = tool(daemon, &["decrypt", "-k", "rsa", ciphertext.trim()]);
    assert_eq!(plaintext.trim_end_matches('\n'), "attack at dawn");

    tool(daemon, &["delete-key", "-k", "ecc"]);
    tool(daemon, &["delete-key", "-k", "rsa"]);
    tool(daemon, &["delete-key", "-k", "rsa-sign"]);
    assert_eq!(tool(daemon, &["list-keys"]).trim(), "");
}
