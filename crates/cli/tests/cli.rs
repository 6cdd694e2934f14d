//! The `bulwark` binary against a real `bulwarkd`: every subcommand, its human, table and JSON
//! output, its exit statuses, and the same output as the upstream `parsec-tool`.
//!
//! The daemon is the one the workspace builds (`target/debug/bulwarkd`); parsec-tool is found
//! through `PARSEC_TOOL`, else at `target/tools/bin/parsec-tool` (scripts/test.sh installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use expect_test::expect;
use p256::ecdsa::signature::Verifier as _;
use p256::pkcs8::DecodePublicKey as _;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// A daemon on a temporary socket (the start/stop logic of crates/service/tests/e2e/harness.rs).

/// How the daemon authenticates its clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Direct, with "parsec-tool" as the administrator.
    Direct,
    /// Unix peer credentials, with this process's uid as the administrator.
    Unix,
}

/// `target/debug/bulwarkd`, next to the `deps` directory this test runs from.
fn bulwarkd_path() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = profile_dir.join("bulwarkd");
    assert!(
        path.is_file(),
        "{} does not exist: run cargo build -p bulwark-service first",
        path.display()
    );
    path
}

/// The uid this process runs as (the owner of a directory it just created).
fn my_uid(dir: &Path) -> u32 {
    std::fs::metadata(dir).expect("temp dir").uid()
}

/// A running `bulwarkd`, killed when dropped.
struct Daemon {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl Daemon {
    fn start(auth: Auth) -> Daemon {
        Daemon::start_on(auth, "MbedCrypto")
    }

    /// A daemon whose provider 1 is `provider_type` (`MbedCrypto` or `OpenSsl`).
    fn start_on(auth: Auth, provider_type: &str) -> Daemon {
        Daemon::start_with(provider_type, |dir| {
            let (auth_type, admin) = match auth {
                Auth::Direct => ("Direct", "parsec-tool".to_owned()),
                Auth::Unix => ("UnixPeerCredentials", my_uid(dir).to_string()),
            };
            format!("[authenticator]\nauth_type = \"{auth_type}\"\nadmins = [ {{ name = \"{admin}\" }} ]\n")
        })
    }

    /// A daemon whose authenticator tables are what `authenticators` writes, given the
    /// daemon's directory (where it may put key files).
    fn start_with(provider_type: &str, authenticators: impl FnOnce(&Path) -> String) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bulwark-cli")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("s.sock");
        let authenticators = authenticators(dir.path());
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[core_settings]
allow_root = true
log_level = "debug"

[listener]
listener_type = "DomainSocket"
timeout = 2000
socket_path = "{socket}"

{authenticators}
[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "{db}"

[[provider]]
provider_type = "{provider_type}"
key_info_manager = "sqlite-manager"
"#,
                socket = socket.display(),
                db = dir.path().join("kim/keys.sqlite3").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("daemon.log")).unwrap();
        let mut child = StdCommand::new(bulwarkd_path())
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&socket).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "bulwarkd exited with {status}:\n{}",
                    std::fs::read_to_string(dir.path().join("daemon.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "bulwarkd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Daemon { dir, child, socket }
    }

    fn endpoint(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// `bulwark args…` against this daemon.
    fn bulwark(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bulwark"));
        cmd.args(args)
            .env("PARSEC_SERVICE_ENDPOINT", self.endpoint())
            .env_remove("RUST_LOG")
            .timeout(Duration::from_secs(120));
        cmd
    }

    /// Runs `bulwark args…`, asserts success, returns standard output.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(&mut self.bulwark(args))
    }

    fn ok_with(&self, cmd: &mut Command) -> String {
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{cmd:?} failed with {}\nstderr:\n{}\ndaemon log:\n{}",
            output.status,
            text(&output.stderr),
            self.log()
        );
        text(&output.stdout)
    }

    /// Runs `bulwark args…`, asserts it exits with `code`, returns standard error.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.bulwark(args).output().unwrap();
        assert_exit(&output, code, args);
        text(&output.stderr)
    }

    /// `--output json` of `bulwark args…`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let stdout = self.ok(&all);
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?}: {e}:\n{stdout}"))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_exit(output: &Output, code: i32, what: &(impl std::fmt::Debug + ?Sized)) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what:?}: expected exit status {code}\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

/// The bytes of each line of standard base64 in `text`, decoded.
fn unbase64(text: &str) -> Vec<u8> {
    BASE64.decode(text.trim()).unwrap()
}

/// Replaces each run of lines of base64 (16 characters or more) with one `<base64>` line.
fn mask_base64(text: &str) -> String {
    let mut out = String::new();
    let mut in_run = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let is_b64 = body.len() >= 16
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
        if is_b64 && !in_run {
            out.push_str("<base64>");
            out.push_str(&line[body.len()..]);
        } else if !is_b64 {
            out.push_str(line);
        }
        in_run = is_b64;
    }
    out
}

/// Verifies a base64 DER ECDSA P-256 signature over `message` with a PEM public key.
fn p256_verifies(pem: &str, message: &[u8], signature_b64: &str) -> bool {
    let key = p256::ecdsa::VerifyingKey::from_public_key_pem(pem).expect("P-256 SPKI PEM");
    let signature = p256::ecdsa::Signature::from_der(&unbase64(signature_b64)).expect("DER sig");
    key.verify(message, &signature).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Discovery: ping, list-providers, list-authenticators, list-opcodes.

#[test]
fn ping_prints_the_wire_protocol_version() {
    let d = Daemon::start(Auth::Direct);
    let output = d.bulwark(&["ping"]).output().unwrap();
    assert_exit(&output, 0, &"ping");
    expect![[r#"
        1.0
    "#]]
    .assert_eq(&text(&output.stdout));
    expect![[r#"
        [INFO  bulwark] Service wire protocol version
    "#]]
    .assert_eq(&text(&output.stderr));
    // Timeouts: a number of seconds, 0 for none.
    assert_eq!(d.ok(&["-t", "0", "ping"]), "1.0\n");
    assert_eq!(d.ok(&["--timeout", "5", "ping"]), "1.0\n");
    let json = d.json(&["ping"]);
    assert_eq!(json["wire_protocol_version"], "1.0");
    assert_eq!(
        (json["major"].as_u64(), json["minor"].as_u64()),
        (Some(1), Some(0))
    );
    // Logs are silenced as parsec-tool's are.
    let output = d
        .bulwark(&["ping"])
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(output.stderr.is_empty());
}

/// Table and JSON name the provider the service describes (the OpenSSL provider answers as
/// provider 1, like upstream's Mbed Crypto provider); the default output keeps parsec-tool's
/// text, which names the id.
#[test]
fn the_openssl_provider_is_named_as_the_service_describes_it() {
    let d = Daemon::start_on(Auth::Direct, "OpenSsl");
    d.ok(&["create-ecc-key", "-k", "k"]);

    let providers = d.ok(&["list-providers"]);
    assert!(
        providers.starts_with("ID: 0x01 (Mbed Crypto provider)\n"),
        "{providers}"
    );
    let table = d.ok(&["list-providers", "--output", "table"]);
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("0x01  OpenSSL provider  "),
        "{table}"
    );
    let json = d.json(&["list-providers"]);
    assert_eq!(json["providers"][0]["name"], "OpenSSL provider");
    assert_eq!(json["providers"][0]["vendor"], "OpenSSL");

    let keys = d.ok(&["list-keys"]);
    assert!(keys.starts_with("* k (Mbed Crypto provider, "), "{keys}");
    let table = d.ok(&["list-keys", "--output", "table"]);
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("k     OpenSSL provider  "),
        "{table}"
    );
    let json = d.json(&["list-keys"]);
    assert_eq!(json["keys"][0]["provider"], "OpenSSL provider");
    assert_eq!(json["keys"][0]["provider_id"], 1);
    let json = d.json(&["list-opcodes", "--provider", "1"]);
    assert_eq!(json["provider"], "OpenSSL provider");

    // parsec-tool prints the same default output.
    for args in [&["list-providers"][..], &["list-keys"][..]] {
        assert_eq!(parsec_tool(&d, args), d.ok(args), "{args:?}");
    }
}

#[test]
fn list_providers_in_three_formats() {
    let d = Daemon::start(Auth::Direct);
    expect![[r#"
        ID: 0x01 (Mbed Crypto provider)
        Description: Software provider running the PSA Crypto implementation of Mbed TLS; keys are persistent PSA keys stored in files by Mbed TLS
        Version: 0.1.0
        Vendor: Arm
        UUID: 1c1139dc-ad7c-47dc-ad6b-db6fdb466552

        ID: 0x00 (Core provider)
        Description: Software provider that implements only administrative (i.e. no cryptographic) operations
        Version: 0.1.0
        Vendor: Unspecified
        UUID: 47049873-2a43-4845-9d72-831eab668784

    "#]]
    .assert_eq(&d.ok(&["list-providers"]));
    expect![[r#"
        ID    NAME                  VERSION  VENDOR  UUID                                  DESCRIPTION
        0x01  Mbed Crypto provider  0.1.0    Arm     1c1139dc-ad7c-47dc-ad6b-db6fdb466552  Software provider running the PSA Crypto implementation of Mbed TLS; keys are persistent PSA keys stored in files by Mbed TLS
        0x00  Core provider         0.1.0            47049873-2a43-4845-9d72-831eab668784  Software provider that implements only administrative (i.e. no cryptographic) operations
    "#]]
    .assert_eq(&d.ok(&["list-providers", "--output", "table"]));
    let json = d.json(&["list-providers"]);
    let providers = json["providers"].as_array().unwrap();
    assert_eq!(providers.len(), 2);
    assert_eq!(providers[0]["id"], 1);
    assert_eq!(providers[0]["name"], "Mbed Crypto provider");
    assert_eq!(providers[0]["vendor"], "Arm");
    assert_eq!(providers[0]["version"], "0.1.0");
    assert_eq!(providers[0]["uuid"], "1c1139dc-ad7c-47dc-ad6b-db6fdb466552");
    assert!(providers[0]["description"]
        .as_str()
        .unwrap()
        .contains("Mbed TLS"));
    assert_eq!(providers[1]["id"], 0);
}

#[test]
fn list_authenticators_for_both_authenticators() {
    let d = Daemon::start(Auth::Direct);
    expect![[r#"
        ID: 0x01 (Direct authentication)
        Description: Direct authentication: the application name is taken from the request as given. Only for clients that trust each other.
        Version: 0.1.0

    "#]]
    .assert_eq(&d.ok(&["list-authenticators"]));
    expect![[r#"
        ID    NAME                   VERSION  DESCRIPTION
        0x01  Direct authentication  0.1.0    Direct authentication: the application name is taken from the request as given. Only for clients that trust each other.
    "#]]
    .assert_eq(&d.ok(&["list-authenticators", "--output", "table"]));
    let d = Daemon::start(Auth::Unix);
    let json = d.json(&["list-authenticators"]);
    let first = &json["authenticators"][0];
    assert_eq!(first["id"], 3);
    assert_eq!(first["name"], "Unix Peer Credentials authentication");
    assert_eq!(first["version"].as_str().unwrap().split('.').count(), 3);
    assert!(d
        .ok(&["list-authenticators"])
        .starts_with("ID: 0x03 (Unix Peer Credentials authentication)\n"));
}

#[test]
fn list_opcodes_of_the_core_and_a_crypto_provider() {
    let d = Daemon::start(Auth::Direct);
    // Without -p: the core provider, as parsec-tool (ordered by opcode here).
    expect![[r#"
        0x01 (Ping)
        0x08 (ListProviders)
        0x09 (ListOpcodes)
        0x0e (ListAuthenticators)
        0x1a (ListKeys)
    "#]]
    .assert_eq(&d.ok(&["list-opcodes"]));
    expect![[r#"
        ID    NAME
        0x01  Ping
        0x08  ListProviders
        0x09  ListOpcodes
        0x0e  ListAuthenticators
        0x1a  ListKeys
    "#]]
    .assert_eq(&d.ok(&["list-opcodes", "--output", "table"]));
    // The subcommand's -p and the global -p.
    let mbed = d.ok(&["list-opcodes", "-p", "1"]);
    assert_eq!(mbed, d.ok(&["-p", "1", "list-opcodes"]));
    for line in [
        "0x02 (PsaGenerateKey)\n",
        "0x04 (PsaSignHash)\n",
        "0x0d (PsaGenerateRandom)\n",
    ] {
        assert!(mbed.contains(line), "{line:?} missing from:\n{mbed}");
    }
    let json = d.json(&["list-opcodes", "--provider", "1"]);
    assert_eq!(json["provider_id"], 1);
    assert_eq!(json["provider"], "Mbed Crypto provider");
    let opcodes = json["opcodes"].as_array().unwrap();
    assert_eq!(opcodes.len(), mbed.lines().count());
    assert!(opcodes
        .iter()
        .any(|op| op["id"] == 2 && op["name"] == "PsaGenerateKey"));
}

// ---------------------------------------------------------------------------------------------
// Keys.

#[test]
fn key_lifecycle_in_human_output() {
    let d = Daemon::start(Auth::Direct);
    let output = d.bulwark(&["list-keys"]).output().unwrap();
    assert_exit(&output, 0, &"list-keys");
    assert!(output.stdout.is_empty());
    expect![[r#"
        [INFO  bulwark] No keys currently available.
    "#]]
    .assert_eq(&text(&output.stderr));

    let output = d
        .bulwark(&["create-ecc-key", "-k", "ecc"])
        .output()
        .unwrap();
    assert_exit(&output, 0, &"create-ecc-key");
    assert!(output.stdout.is_empty());
    expect![[r#"
        [INFO  bulwark] Creating ECC signing key...
        [INFO  bulwark] Key "ecc" created.
    "#]]
    .assert_eq(&text(&output.stderr));
    d.ok(&["create-rsa-key", "--key-name", "rsa-enc"]);
    d.ok(&["create-rsa-key", "-k", "rsa-oaep", "-o"]);
    d.ok(&["create-rsa-key", "-k", "rsa-sign", "-s", "-b", "1024"]);
    d.ok(&[
        "create-rsa-key",
        "-k",
        "rsa-pss",
        "--for-signing-pss",
        "--bits",
        "1024",
    ]);
    // -s wins over -r.
    d.ok(&["create-rsa-key", "-k", "rsa-both", "-s", "-r", "-b", "1024"]);
    expect![[r#"
        * ecc (Mbed Crypto provider, EccKeyPair { curve_family: SecpR1 }, 256 bits, permitted algorithm: AsymmetricSignature(Ecdsa { hash_alg: Specific(Sha256) }))
        * rsa-both (Mbed Crypto provider, RsaKeyPair, 1024 bits, permitted algorithm: AsymmetricSignature(RsaPkcs1v15Sign { hash_alg: Specific(Sha256) }))
        * rsa-enc (Mbed Crypto provider, RsaKeyPair, 2048 bits, permitted algorithm: AsymmetricEncryption(RsaPkcs1v15Crypt))
        * rsa-oaep (Mbed Crypto provider, RsaKeyPair, 2048 bits, permitted algorithm: AsymmetricEncryption(RsaOaep { hash_alg: Sha256 }))
        * rsa-pss (Mbed Crypto provider, RsaKeyPair, 1024 bits, permitted algorithm: AsymmetricSignature(RsaPss { hash_alg: Specific(Sha256) }))
        * rsa-sign (Mbed Crypto provider, RsaKeyPair, 1024 bits, permitted algorithm: AsymmetricSignature(RsaPkcs1v15Sign { hash_alg: Specific(Sha256) }))
    "#]]
    .assert_eq(&sorted_lines(&d.ok(&["list-keys"])));
    // Only the names that match a pattern.
    let rsa = sorted_lines(&d.ok(&["list-keys", "--match", "rsa-*"]));
    assert_eq!(rsa.lines().count(), 5, "{rsa}");
    assert!(rsa.lines().all(|line| line.starts_with("* rsa-")), "{rsa}");
    let none = d
        .bulwark(&["list-keys", "--match", "nothing/**"])
        .output()
        .unwrap();
    assert_exit(&none, 0, &"list-keys --match");
    assert!(none.stdout.is_empty());
    expect![[r#"
        NAME      PROVIDER              TYPE                 BITS  ALGORITHM
        ecc       Mbed Crypto provider  ECC key pair SecpR1  256   ECDSA, SHA-256
        rsa-both  Mbed Crypto provider  RSA key pair         1024  RSA PKCS#1 v1.5 signature, SHA-256
        rsa-enc   Mbed Crypto provider  RSA key pair         2048  RSA PKCS#1 v1.5 encryption
        rsa-oaep  Mbed Crypto provider  RSA key pair         2048  RSA OAEP encryption, SHA-256
        rsa-pss   Mbed Crypto provider  RSA key pair         1024  RSA-PSS signature, SHA-256
        rsa-sign  Mbed Crypto provider  RSA key pair         1024  RSA PKCS#1 v1.5 signature, SHA-256
    "#]]
    .assert_eq(&table_sorted(&d.ok(&["list-keys", "--output", "table"])));

    let output = d.bulwark(&["delete-key", "-k", "ecc"]).output().unwrap();
    assert_exit(&output, 0, &"delete-key");
    assert!(output.stdout.is_empty());
    expect![[r#"
        [INFO  bulwark] Deleting a key...
        [INFO  bulwark] Key "ecc" deleted.
    "#]]
    .assert_eq(&text(&output.stderr));
    assert!(!d.ok(&["list-keys"]).contains("* ecc "));
}

fn sorted_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The header line, then the other lines sorted.
fn table_sorted(text: &str) -> String {
    let (header, rest) = text.split_once('\n').unwrap();
    format!("{header}\n{}", sorted_lines(rest))
}

#[test]
fn json_of_key_commands() {
    let d = Daemon::start(Auth::Direct);
    assert_eq!(d.json(&["list-keys"]), serde_json::json!({ "keys": [] }));
    let created = d.json(&["create-ecc-key", "-k", "k1"]);
    assert_eq!(created["key_name"], "k1");
    assert_eq!(created["created"], true);
    assert_eq!(created["type"], "EccKeyPair");
    assert_eq!(created["bits"], 256);
    let created = d.json(&[
        "create-rsa-key",
        "-k",
        "k2",
        "--oaep",
        "--exportable",
        "-b",
        "1024",
    ]);
    assert_eq!(
        created["algorithm"],
        "AsymmetricEncryption(RsaOaep { hash_alg: Sha256 })"
    );
    assert_eq!(
        created["usage_flags"],
        serde_json::json!(["export", "encrypt", "decrypt"])
    );
    let keys = d.json(&["list-keys"]);
    let keys = keys["keys"].as_array().unwrap();
    let k1 = keys.iter().find(|k| k["name"] == "k1").unwrap();
    assert_eq!(
        k1,
        &serde_json::json!({
            "name": "k1",
            "provider_id": 1,
            "provider": "Mbed Crypto provider",
            "type": "EccKeyPair",
            "curve_family": "SecpR1",
            "bits": 256,
            "algorithm": "AsymmetricSignature(Ecdsa { hash_alg: Specific(Sha256) })",
            "algorithm_description": "ECDSA, SHA-256",
            "usage_flags": ["sign_message", "verify_message", "sign_hash", "verify_hash"],
        })
    );
    let k2 = keys.iter().find(|k| k["name"] == "k2").unwrap();
    assert_eq!(
        (k2["type"].as_str(), k2["bits"].as_u64()),
        (Some("RsaKeyPair"), Some(1024))
    );
    assert!(k2.get("curve_family").is_none());
    let deleted = d.json(&["delete-key", "-k", "k1"]);
    assert_eq!(
        deleted,
        serde_json::json!({ "key_name": "k1", "deleted": true })
    );
}

#[test]
fn export_public_key_of_ecc_and_rsa_keys() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "ecc"]);
    let pem = d.ok(&["export-public-key", "-k", "ecc"]);
    expect![[r#"
        -----BEGIN PUBLIC KEY-----
        <base64>
        -----END PUBLIC KEY-----
    "#]]
    .assert_eq(&mask_base64(&pem));
    let key = p256::PublicKey::from_public_key_pem(&pem).expect("a P-256 SPKI");
    assert_eq!(key.to_sec1_bytes().len(), 65);
    let json = d.json(&["export-public-key", "-k", "ecc"]);
    assert_eq!(json["pem"], pem.as_str());
    assert_eq!(json["format"], "spki");

    d.ok(&["create-rsa-key", "-k", "rsa", "-b", "1024"]);
    let spki = d.ok(&["export-public-key", "-k", "rsa"]);
    let pkcs1 = d.ok(&["export-public-key", "-k", "rsa", "--pkcs1"]);
    assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(pkcs1.starts_with("-----BEGIN RSA PUBLIC KEY-----\n"));
    assert!(pkcs1.ends_with("-----END RSA PUBLIC KEY-----\n"));
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    use rsa::pkcs8::DecodePublicKey as _;
    let a = rsa::RsaPublicKey::from_public_key_pem(&spki).expect("RSA SPKI");
    let b = rsa::RsaPublicKey::from_pkcs1_pem(&pkcs1).expect("RSA PKCS#1");
    assert_eq!(a, b);
    assert_eq!(
        d.json(&["export-public-key", "-k", "rsa", "--pkcs1"])["format"],
        "pkcs1"
    );
    // PKCS#1 has no form for ECC keys.
    let stderr = d.fails(&["export-public-key", "-k", "ecc", "--pkcs1"], 6);
    assert!(
        stderr.contains("PKCS1 format doesn't support ECC keys"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Data: sign, verify, encrypt, decrypt, hash, generate-random, export-key.

#[test]
fn sign_verifies_with_p256_against_the_exported_pem() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "signer"]);
    let pem = d.ok(&["export-public-key", "-k", "signer"]);
    let output = d
        .bulwark(&["sign", "-k", "signer", "hello world"])
        .output()
        .unwrap();
    assert_exit(&output, 0, &"sign");
    let signature = text(&output.stdout);
    expect![[r#"
        <base64>
    "#]]
    .assert_eq(&mask_base64(&signature));
    expect![[r#"
        [INFO  bulwark] Hashing data with Sha256...
        [INFO  bulwark] Signing data with Ecdsa { hash_alg: Specific(Sha256) }...
    "#]]
    .assert_eq(&text(&output.stderr));
    assert!(p256_verifies(&pem, b"hello world", &signature));
    assert!(!p256_verifies(&pem, b"hello world!", &signature));

    // bulwark verify: exit 0 when it matches, 7 when it does not.
    let sig = signature.trim();
    d.ok(&["verify", "-k", "signer", "--signature", sig, "hello world"]);
    let json = d.json(&["verify", "-k", "signer", "-s", sig, "hello world"]);
    assert_eq!(json["valid"], true);
    let stderr = d.fails(&["verify", "-k", "signer", "-s", sig, "hello world!"], 7);
    assert!(stderr.contains("does not match"), "{stderr}");
    let output = d
        .bulwark(&[
            "--output", "json", "verify", "-k", "signer", "-s", sig, "tampered",
        ])
        .output()
        .unwrap();
    assert_exit(&output, 7, &"verify --output json");
    let json: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], false);

    let json = d.json(&["sign", "-k", "signer", "hello world"]);
    assert_eq!(json["algorithm"], "Ecdsa { hash_alg: Specific(Sha256) }");
    assert!(p256_verifies(
        &pem,
        b"hello world",
        json["signature"].as_str().unwrap()
    ));
}

#[test]
fn sign_reads_the_argument_a_file_or_standard_input() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "k"]);
    let pem = d.ok(&["export-public-key", "-k", "k"]);
    let message = b"line one\nline two\n\xff binary";
    let file = d.dir.path().join("message.bin");
    std::fs::write(&file, message).unwrap();
    let from_file = d.ok(&["sign", "-k", "k", "--input-file", file.to_str().unwrap()]);
    assert!(p256_verifies(&pem, message, &from_file));
    let from_dash = d.ok_with(
        d.bulwark(&["sign", "-k", "k", "-"])
            .write_stdin(message.to_vec()),
    );
    assert!(p256_verifies(&pem, message, &from_dash));
    let from_pipe = d.ok_with(
        d.bulwark(&["sign", "-k", "k"])
            .write_stdin(message.to_vec()),
    );
    assert!(p256_verifies(&pem, message, &from_pipe));
    // verify takes its data the same ways.
    d.ok_with(
        d.bulwark(&["verify", "-k", "k", "-s", from_file.trim()])
            .write_stdin(message.to_vec()),
    );
    d.ok(&[
        "verify",
        "-k",
        "k",
        "-s",
        from_pipe.trim(),
        "--input-file",
        file.to_str().unwrap(),
    ]);
    // The argument and --input-file together are refused.
    d.fails(
        &[
            "sign",
            "-k",
            "k",
            "text",
            "--input-file",
            file.to_str().unwrap(),
        ],
        1,
    );
    let stderr = d.fails(&["sign", "-k", "k", "--input-file", "/nonexistent/file"], 1);
    assert!(
        stderr.contains("cannot read the input file /nonexistent/file"),
        "{stderr}"
    );
}

#[test]
fn rsa_signatures_use_the_policy_hash() {
    use rsa::pkcs8::DecodePublicKey as _;
    use rsa::signature::Verifier as _;
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-rsa-key", "-k", "pkcs", "-s", "-b", "1024"]);
    d.ok(&["create-rsa-key", "-k", "pss", "-r", "-b", "1024"]);
    for (key, pss) in [("pkcs", false), ("pss", true)] {
        let public =
            rsa::RsaPublicKey::from_public_key_pem(&d.ok(&["export-public-key", "-k", key]))
                .unwrap();
        let signature = unbase64(&d.ok(&["sign", "-k", key, "message"]));
        assert_eq!(signature.len(), 128);
        let valid = if pss {
            let sig = rsa::pss::Signature::try_from(signature.as_slice()).unwrap();
            rsa::pss::VerifyingKey::<sha2::Sha256>::new(public).verify(b"message", &sig)
        } else {
            let sig = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public).verify(b"message", &sig)
        };
        assert!(valid.is_ok(), "{key}");
        d.ok(&[
            "verify",
            "-k",
            key,
            "-s",
            &BASE64.encode(&signature),
            "message",
        ]);
    }
}

#[test]
fn encrypt_and_decrypt_round_trip() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-rsa-key", "-k", "pkcs", "-b", "1024"]);
    d.ok(&["create-rsa-key", "-k", "oaep", "-o", "-b", "1024"]);
    for key in ["pkcs", "oaep"] {
        let output = d
            .bulwark(&["encrypt", "-k", key, "secret text"])
            .output()
            .unwrap();
        assert_exit(&output, 0, &"encrypt");
        let ciphertext = text(&output.stdout);
        expect![[r#"
            <base64>
        "#]]
        .assert_eq(&mask_base64(&ciphertext));
        assert_eq!(unbase64(&ciphertext).len(), 128);
        let output = d
            .bulwark(&["decrypt", "-k", key, ciphertext.trim()])
            .output()
            .unwrap();
        assert_exit(&output, 0, &"decrypt");
        assert_eq!(text(&output.stdout), "secret text\n");
        assert!(text(&output.stderr).contains("[INFO  bulwark] Decrypting data with "));
        // Standard input and files, both ways.
        let ciphertext = d.ok_with(
            d.bulwark(&["encrypt", "-k", key, "-"])
                .write_stdin("from stdin"),
        );
        let plain = d.dir.path().join("plain.txt");
        std::fs::write(&plain, "from a file").unwrap();
        let from_file = d.ok(&[
            "encrypt",
            "-k",
            key,
            "--input-file",
            plain.to_str().unwrap(),
        ]);
        assert_eq!(
            d.ok(&["decrypt", "-k", key, from_file.trim()]),
            "from a file\n"
        );
        let file = d.dir.path().join("ct.b64");
        std::fs::write(&file, &ciphertext).unwrap();
        assert_eq!(
            d.ok(&["decrypt", "-k", key, "--input-file", file.to_str().unwrap()]),
            "from stdin\n"
        );
        assert_eq!(
            d.ok_with(d.bulwark(&["decrypt", "-k", key]).write_stdin(ciphertext)),
            "from stdin\n"
        );
    }
    let json = d.json(&["encrypt", "-k", "oaep", "x"]);
    assert_eq!(json["algorithm"], "RsaOaep { hash_alg: Sha256 }");
    let ciphertext = json["ciphertext"].as_str().unwrap().to_owned();
    let json = d.json(&["decrypt", "-k", "oaep", &ciphertext]);
    assert_eq!(json["plaintext"], "x");
    assert_eq!(json["plaintext_base64"], "eA==");
    let stderr = d.fails(&["decrypt", "-k", "oaep", "not base64!"], 1);
    assert!(stderr.contains("not valid base64"), "{stderr}");
}

#[test]
fn generate_random_prints_upper_case_hex() {
    let d = Daemon::start(Auth::Direct);
    let output = d.bulwark(&["generate-random", "-n", "8"]).output().unwrap();
    assert_exit(&output, 0, &"generate-random");
    let masked: String = text(&output.stdout)
        .split(' ')
        .map(|byte| {
            if byte.len() == 2
                && byte
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
            {
                "XX"
            } else {
                byte
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    expect![[r#"
        XX XX XX XX XX XX XX XX 
    "#]]
    .assert_eq(&masked);
    expect![[r#"
        [INFO  bulwark] Generating 8 random bytes...
        [INFO  bulwark] Random bytes:
    "#]]
    .assert_eq(&text(&output.stderr));
    let json = d.json(&["generate-random", "--nbytes", "16"]);
    assert_eq!(json["nbytes"], 16);
    assert_eq!(json["hex"].as_str().unwrap().len(), 32);
    assert_eq!(unbase64(json["base64"].as_str().unwrap()).len(), 16);
}

#[test]
fn hash_computes_with_the_service() {
    let d = Daemon::start(Auth::Direct);
    expect![[r#"
        ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
    "#]]
    .assert_eq(&d.ok(&["hash", "abc"]));
    let json = d.json(&["hash", "--alg", "sha512", "abc"]);
    assert_eq!(json["algorithm"], "SHA-512");
    assert!(json["hash"]
        .as_str()
        .unwrap()
        .starts_with("ddaf35a193617aba"));
    assert_eq!(
        d.ok_with(d.bulwark(&["hash", "-a", "sha256"]).write_stdin("abc")),
        d.ok(&["hash", "abc"])
    );
}

#[test]
fn export_key_needs_an_exportable_key() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "open", "--exportable"]);
    d.ok(&["create-ecc-key", "-k", "closed"]);
    let secret = unbase64(&d.ok(&["export-key", "-k", "open"]));
    let secret = p256::SecretKey::from_slice(&secret).expect("a P-256 scalar");
    let public =
        p256::PublicKey::from_public_key_pem(&d.ok(&["export-public-key", "-k", "open"])).unwrap();
    assert_eq!(secret.public_key(), public);
    let json = d.json(&["export-key", "-k", "open"]);
    assert_eq!(unbase64(json["data"].as_str().unwrap()).len(), 32);
    let stderr = d.fails(&["export-key", "-k", "closed"], 6);
    assert!(stderr.contains("--exportable"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// CSR.

/// Parses a PEM CSR and checks its self-signature with the key of its SubjectPublicKeyInfo.
fn check_csr(pem: &str) -> x509_cert::request::CertReq {
    use der::{Decode as _, DecodePem as _, Encode as _};
    use rsa::signature::Verifier as _;
    let csr = x509_cert::request::CertReq::from_pem(pem).expect("a PEM PKCS#10 CSR");
    let info = csr.info.to_der().unwrap();
    let spki = csr.info.public_key.to_der().unwrap();
    let signature = csr.signature.raw_bytes();
    match csr.algorithm.oid.to_string().as_str() {
        "1.2.840.10045.4.3.2" => {
            let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki).unwrap();
            let sig = p256::ecdsa::Signature::from_der(signature).unwrap();
            key.verify(&info, &sig).expect("ECDSA CSR signature");
        }
        "1.2.840.113549.1.1.11" => {
            use rsa::pkcs8::DecodePublicKey as _;
            let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
            let sig = rsa::pkcs1v15::Signature::try_from(signature).unwrap();
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(&info, &sig)
                .expect("RSA CSR signature");
        }
        "1.2.840.113549.1.1.10" => {
            use rsa::pkcs8::DecodePublicKey as _;
            let key = rsa::RsaPublicKey::from_public_key_der(&spki).unwrap();
            let sig = rsa::pss::Signature::try_from(signature).unwrap();
            rsa::pss::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(&info, &sig)
                .expect("RSA-PSS CSR signature");
        }
        other => panic!("unexpected CSR algorithm {other}"),
    }
    let _ = x509_cert::request::CertReq::from_der(&csr.to_der().unwrap()).unwrap();
    csr
}

#[test]
fn create_csr_is_signed_by_the_service_key() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "ecc"]);
    let args = [
        "create-csr",
        "-k",
        "ecc",
        "--cn",
        "device.example",
        "--ou",
        "Unit",
        "--o",
        "Org",
        "--l",
        "Town",
        "--st",
        "State",
        "--c",
        "FR",
        "--serialNumber",
        "1234",
        "--san",
        "device.example",
        "--san",
        "alt.example",
        "--san",
        "192.0.2.1",
    ];
    let output = d.bulwark(&args).output().unwrap();
    assert_exit(&output, 0, &args);
    let pem = text(&output.stdout);
    expect![[r#"
        -----BEGIN CERTIFICATE REQUEST-----
        <base64>
        -----END CERTIFICATE REQUEST-----
    "#]]
    .assert_eq(&mask_base64(&pem));
    let csr = check_csr(&pem);
    assert_eq!(
        csr.info.subject.to_string(),
        "SERIALNUMBER=1234,C=FR,ST=State,L=Town,O=Org,OU=Unit,CN=device.example"
    );
    // The public key is the key's.
    let exported = d.ok(&["export-public-key", "-k", "ecc"]);
    let exported = p256::PublicKey::from_public_key_pem(&exported).unwrap();
    use der::Encode as _;
    let in_csr =
        p256::PublicKey::from_public_key_der(&csr.info.public_key.to_der().unwrap()).unwrap();
    assert_eq!(exported, in_csr);
    // The SANs are in an extension request.
    assert_eq!(csr.info.attributes.len(), 1);
    let attribute = csr.info.attributes.get(0).unwrap();
    assert_eq!(attribute.oid.to_string(), "1.2.840.113549.1.9.14");
    let der = attribute.values.get(0).unwrap().to_der().unwrap();
    for name in [&b"device.example"[..], b"alt.example", &[192, 0, 2, 1]] {
        assert!(
            der.windows(name.len()).any(|w| w == name),
            "{name:?} missing"
        );
    }
    let json = d.json(&["create-csr", "-k", "ecc", "--cn", "x"]);
    assert_eq!(json["signature_algorithm"], "ecdsa-with-SHA256");
    let csr = check_csr(json["pem"].as_str().unwrap());
    assert_eq!(csr.info.subject.to_string(), "CN=x");
    assert!(csr.info.attributes.is_empty());

    // RSA keys: PKCS#1 v1.5 and PSS.
    d.ok(&["create-rsa-key", "-k", "rsa", "-s", "-b", "1024"]);
    d.ok(&["create-rsa-key", "-k", "pss", "-r", "-b", "1024"]);
    check_csr(&d.ok(&["create-csr", "-k", "rsa", "--cn", "rsa"]));
    check_csr(&d.ok(&["create-csr", "-k", "pss", "--cn", "pss"]));

    // An encryption key cannot sign a CSR; a missing key is a missing key.
    d.ok(&["create-rsa-key", "-k", "enc", "-b", "1024"]);
    let stderr = d.fails(&["create-csr", "-k", "enc"], 6);
    assert!(stderr.contains("not an asymmetric signing key"), "{stderr}");
    d.fails(&["create-csr", "-k", "missing"], 4);
}

#[test]
fn create_csr_parses_with_openssl_when_present() {
    let Ok(status) = StdCommand::new("openssl").arg("version").output() else {
        return; // openssl is not installed: the x509-cert check above covers the format.
    };
    assert!(status.status.success());
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "ecc"]);
    let pem = d.ok(&[
        "create-csr",
        "-k",
        "ecc",
        "--cn",
        "openssl.example",
        "--san",
        "a.example",
    ]);
    let file = d.dir.path().join("req.pem");
    std::fs::write(&file, pem).unwrap();
    let output = StdCommand::new("openssl")
        .args(["req", "-noout", "-verify", "-subject", "-in"])
        .arg(&file)
        .output()
        .unwrap();
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{all}");
    assert!(all.contains("verify OK"), "{all}");
    assert!(all.contains("openssl.example"), "{all}");
}

// ---------------------------------------------------------------------------------------------
// Administration, both authenticators.

#[test]
fn admin_commands_with_direct_authentication() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "mine"]);
    d.ok(&["--app-name", "other-app", "create-ecc-key", "-k", "theirs"]);
    expect![[r#"
        other-app
        parsec-tool
    "#]]
    .assert_eq(&sorted_lines(&d.ok(&["list-clients"])));
    expect![[r#"
        CLIENT       AUTHENTICATOR
        other-app    Direct
        parsec-tool  Direct
    "#]]
    .assert_eq(&table_sorted(&d.ok(&["list-clients", "--output", "table"])));
    let mut clients: Vec<String> =
        serde_json::from_value(d.json(&["list-clients"])["clients"].clone()).unwrap();
    clients.sort();
    assert_eq!(clients, ["other-app", "parsec-tool"]);
    // Not an administrator: exit 6, with the fix.
    let stderr = d.fails(&["--app-name", "other-app", "list-clients"], 6);
    assert!(stderr.contains("reserved to administrators"), "{stderr}");
    assert!(stderr.contains("\"other-app\""), "{stderr}");
    d.fails(
        &[
            "--app-name",
            "other-app",
            "delete-client",
            "-c",
            "parsec-tool",
        ],
        6,
    );

    // Under an authenticator it owns nothing under: nothing deleted.
    let stderr = d.fails(
        &[
            "delete-client",
            "-c",
            "other-app",
            "--authenticator",
            "unix",
        ],
        4,
    );
    assert!(stderr.contains("PsaErrorDoesNotExist"), "{stderr}");
    let output = d
        .bulwark(&[
            "delete-client",
            "-c",
            "other-app",
            "--authenticator",
            "direct",
        ])
        .output()
        .unwrap();
    assert_exit(&output, 0, &"delete-client");
    expect![[r#"
        [INFO  bulwark] Client "other-app" deleted.
    "#]]
    .assert_eq(&text(&output.stderr));
    assert_eq!(d.ok(&["list-clients"]), "parsec-tool\n");
    assert_eq!(d.ok(&["--app-name", "other-app", "list-keys"]), "");
    // A client that owns no key: nothing deleted, not a success.
    let stderr = d.fails(&["delete-client", "--client", "nobody"], 4);
    assert!(stderr.contains("PsaErrorDoesNotExist"), "{stderr}");
}

#[test]
fn names_from_the_service_cannot_drive_the_terminal() {
    let d = Daemon::start(Auth::Direct);
    // Retitles the terminal, clears it and adds a line of its own.
    let hostile = "app\u{1b}]0;owned\u{7}\u{1b}[2J\nroot\u{9b}1m";
    d.ok(&["--app-name", hostile, "create-ecc-key", "-k", hostile]);
    let clean = |text: &str, lines: usize| {
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control characters in {text:?}"
        );
        assert_eq!(text.lines().count(), lines, "{text:?}");
    };
    let shown = "app\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\nroot\\u{9b}1m";
    let clients = d.ok(&["list-clients"]);
    clean(&clients, 1);
    assert_eq!(clients, format!("{shown}\n"));
    clean(&d.ok(&["list-clients", "--output", "table"]), 2);
    let keys = d.ok(&["--app-name", hostile, "list-keys"]);
    clean(&keys, 1);
    assert!(keys.starts_with(&format!("* {shown} (")), "{keys}");
    clean(
        &d.ok(&["--app-name", hostile, "list-keys", "--output", "table"]),
        2,
    );
    // JSON keeps the names exact (escaped by JSON itself).
    let json = d.json(&["list-clients"]);
    assert_eq!(json["clients"][0], hostile);
}

#[test]
fn unix_peer_credentials_identify_the_caller_by_uid() {
    let d = Daemon::start(Auth::Unix);
    let uid = my_uid(d.dir.path()).to_string();
    d.ok(&["create-ecc-key", "-k", "k"]);
    let pem = d.ok(&["export-public-key", "-k", "k"]);
    let signature = d.ok(&["sign", "-k", "k", "data"]);
    assert!(p256_verifies(&pem, b"data", &signature));
    assert!(d
        .ok(&["list-keys"])
        .starts_with("* k (Mbed Crypto provider, EccKeyPair"));
    // The uid is the administrator and the client.
    assert_eq!(d.ok(&["list-clients"]), format!("{uid}\n"));
    d.ok(&["delete-key", "-k", "k"]);
    assert_eq!(d.ok(&["list-clients"]), "");
}

// ---------------------------------------------------------------------------------------------
// --auth and --token-file.

/// A P-256 key that signs tokens (ES256, with the `jsonwebtoken` crate), and its public key.
struct TokenSigner {
    kid: &'static str,
    key: jsonwebtoken::EncodingKey,
    public_pem: Vec<u8>,
}

impl TokenSigner {
    fn new(kid: &'static str) -> TokenSigner {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let pkey = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let key = jsonwebtoken::EncodingKey::from_ec_pem(&pkey.private_key_to_pem_pkcs8().unwrap())
            .unwrap();
        TokenSigner {
            kid,
            key,
            public_pem: pkey.public_key_to_pem().unwrap(),
        }
    }

    /// A JWKS document (a SPIFFE JWT bundle) holding this key.
    fn jwks(&self) -> String {
        let jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&self.key, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        let mut jwk = serde_json::to_value(jwk).unwrap();
        jwk["kid"] = self.kid.into();
        jwk["use"] = "jwt-svid".into();
        serde_json::json!({ "keys": [jwk] }).to_string()
    }

    /// A compact JWS of `claims`, valid for `lifetime` seconds from now (negative: expired).
    fn sign(&self, mut claims: Value, lifetime: i64) -> String {
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap();
        claims["exp"] = (now + lifetime).into();
        claims["aud"] = "parsec".into();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.to_owned());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[test]
fn each_auth_method_authenticates_its_own_owner() {
    const ISSUER: &str = "https://idp.example";
    let svid = TokenSigner::new("svid-1");
    let idp = TokenSigner::new("idp-1");
    let d = Daemon::start_with("MbedCrypto", |dir| {
        let bundle = dir.join("example.org.jwks");
        std::fs::write(&bundle, svid.jwks()).unwrap();
        let idp_pem = dir.join("idp.pem");
        std::fs::write(&idp_pem, &idp.public_pem).unwrap();
        format!(
            "[[authenticator]]\nauth_type = \"UnixPeerCredentials\"\n\
             admins = [ {{ name = \"{uid}\" }} ]\n\n\
             [[authenticator]]\nauth_type = \"Direct\"\nallow_with_other_authenticators = true\n\n\
             [[authenticator]]\nauth_type = \"JwtSvid\"\n\
             bundles = [ {{ trust_domain = \"example.org\", jwks_path = \"{bundle}\" }} ]\n\n\
             [[authenticator]]\nauth_type = \"Jwt\"\nissuer = \"{ISSUER}\"\n\
             public_key_path = \"{pem}\"\nadmins = [ {{ name = \"{ISSUER}#ops\" }} ]\n",
            uid = my_uid(dir),
            bundle = bundle.display(),
            pem = idp_pem.display(),
        )
    });
    let svid_file = d.dir.path().join("svid.token");
    std::fs::write(
        &svid_file,
        svid.sign(
            serde_json::json!({ "sub": "spiffe://example.org/app" }),
            300,
        ),
    )
    .unwrap();
    let token_file = d.dir.path().join("idp.token");
    std::fs::write(
        &token_file,
        idp.sign(serde_json::json!({ "iss": ISSUER, "sub": "alice" }), 300) + "\n",
    )
    .unwrap();
    let svid_path = svid_file.to_str().unwrap();
    let token_path = token_file.to_str().unwrap();
    let methods: [&[&str]; 4] = [
        &["--auth", "unix"],
        &["--auth", "direct", "--app-name", "app"],
        &["--auth", "jwt-svid", "--token-file", svid_path],
        &["--auth", "token", "--token-file", token_path],
    ];
    fn with<'a>(method: &[&'a str], args: &[&'a str]) -> Vec<&'a str> {
        [method, args].concat()
    }

    // Each method is an owner of its own: the same key name, four different keys, each
    // listing only its own.
    let mut pems = Vec::new();
    for method in methods {
        d.ok(&with(method, &["create-ecc-key", "-k", "k"]));
        let pem = d.ok(&with(method, &["export-public-key", "-k", "k"]));
        let signature = d.ok(&with(method, &["sign", "-k", "k", "data"]));
        assert!(p256_verifies(&pem, b"data", &signature), "{method:?}");
        let keys = d.ok(&with(method, &["list-keys"]));
        assert_eq!(keys.lines().count(), 1, "{method:?}: {keys}");
        assert!(keys.starts_with("* k (Mbed Crypto provider"), "{keys}");
        assert!(
            !pems.contains(&pem),
            "{method:?} shares a key with another method"
        );
        pems.push(pem);
    }
    // Without --auth: the first authenticator the service lists, Unix peer credentials.
    assert_eq!(d.ok(&["export-public-key", "-k", "k"]), pems[0]);

    // The uid is an administrator of Unix peer credentials and sees the four owners.
    let clients = d.ok(&with(methods[0], &["list-clients"]));
    for name in [
        my_uid(d.dir.path()).to_string(),
        "app".to_owned(),
        "spiffe://example.org/app".to_owned(),
        format!("{ISSUER}#alice"),
    ] {
        assert!(clients.contains(&name), "{name} not in\n{clients}");
    }
    // alice is no administrator; the file is read again at each run, and "ops" is one.
    assert!(d
        .fails(&with(methods[3], &["list-clients"]), 6)
        .contains("admin"));
    std::fs::write(
        &token_file,
        idp.sign(serde_json::json!({ "iss": ISSUER, "sub": "ops" }), 300),
    )
    .unwrap();
    d.ok(&with(methods[3], &["list-clients"]));

    // A token the service refuses, a SPIFFE ID sent as a token, a missing file: exit 8.
    std::fs::write(
        &token_file,
        idp.sign(serde_json::json!({ "iss": ISSUER, "sub": "alice" }), -120),
    )
    .unwrap();
    d.fails(&with(methods[3], &["list-keys"]), 8);
    d.fails(
        &["--auth", "token", "--token-file", svid_path, "list-keys"],
        8,
    );
    let missing = d.dir.path().join("missing.token");
    d.fails(
        &[
            "--auth",
            "jwt-svid",
            "--token-file",
            missing.to_str().unwrap(),
            "list-keys",
        ],
        8,
    );
    // --auth jwt-svid and token need a file; unix and direct take none.
    assert!(d
        .fails(&["--auth", "jwt-svid", "list-keys"], 1)
        .contains("--token-file"));
    assert!(d
        .fails(
            &["--auth", "unix", "--token-file", svid_path, "list-keys"],
            1
        )
        .contains("--token-file"));
}

// ---------------------------------------------------------------------------------------------
// Failures and their exit statuses.

#[test]
fn failures_have_documented_exit_statuses() {
    let d = Daemon::start(Auth::Direct);
    d.ok(&["create-ecc-key", "-k", "k"]);
    d.ok(&["create-rsa-key", "-k", "enc", "-b", "1024"]);
    // 4: no such key.
    for args in [
        &["delete-key", "-k", "missing"][..],
        &["sign", "-k", "missing", "x"],
        &["export-public-key", "-k", "missing"],
        &["encrypt", "-k", "missing", "x"],
        &["decrypt", "-k", "missing", "eA=="],
        &["export-key", "-k", "missing"],
    ] {
        let stderr = d.fails(args, 4);
        assert!(
            stderr.contains("no key named \"missing\""),
            "{args:?}: {stderr}"
        );
    }
    // 5: the name is taken.
    let stderr = d.fails(&["create-ecc-key", "-k", "k"], 5);
    expect![[r#"
        [INFO  bulwark] Creating ECC signing key...
        [ERROR bulwark] a key named "k" already exists for this application: pick another name or destroy the existing key first
    "#]]
    .assert_eq(&stderr);
    // 6: the policy does not allow it.
    d.fails(&["sign", "-k", "enc", "x"], 6);
    d.fails(&["encrypt", "-k", "k", "x"], 6);
    d.fails(&["export-key", "-k", "k"], 6);
    // 7: a signature that does not match.
    let bad = BASE64.encode([0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]);
    d.fails(&["verify", "-k", "k", "-s", &bad, "x"], 7);
    // 1: bad arguments, as parsec-tool.
    d.fails(&["no-such-command"], 1);
    d.fails(&["create-ecc-key"], 1);
    d.fails(&["generate-random", "-n", "lots"], 1);
    d.fails(&["--output", "xml", "ping"], 1);
    let stderr = d.fails(&["-p", "9", "ping"], 1);
    assert!(
        stderr.contains("does not map with an existing provider"),
        "{stderr}"
    );
    // 0 for --help and --version.
    let help = d.ok(&["--help"]);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("create-csr"));
    assert!(d.ok(&["--version"]).starts_with("bulwark "));
    assert!(d.ok(&["help", "sign"]).contains("--input-file"));
}

#[test]
fn service_not_running_exits_3_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    for args in [
        &["ping"][..],
        &["list-keys"],
        &["create-ecc-key", "-k", "k"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(args)
            .env(
                "PARSEC_SERVICE_ENDPOINT",
                format!("unix:{}", socket.display()),
            )
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert_exit(&output, 3, &args);
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(&format!("bulwarkd is not running at {}", socket.display())),
            "{stderr}"
        );
        assert!(
            stderr.contains("start it or set PARSEC_SERVICE_ENDPOINT"),
            "{stderr}"
        );
    }
    // A stale socket file: connection refused, same status.
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let output = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg("ping")
        .env(
            "PARSEC_SERVICE_ENDPOINT",
            format!("unix:{}", stale.display()),
        )
        .output()
        .unwrap();
    assert_exit(&output, 3, &"stale socket");
    assert!(text(&output.stderr).contains("connection refused"));
}

#[test]
fn a_service_that_does_not_answer_times_out_with_status_3() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    // Accepts connections and never answers (bounded: the test ends first).
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .args(["-t", "1", "ping"])
        .env(
            "PARSEC_SERVICE_ENDPOINT",
            format!("unix:{}", socket.display()),
        )
        .env_remove("RUST_LOG")
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_exit(&output, 3, &"-t 1 ping");
    assert!(started.elapsed() < Duration::from_secs(15));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("did not answer Ping within 1s"), "{stderr}");
    assert!(stderr.contains("-t/--timeout"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// Generated from the command-line definition.

#[test]
fn completions_and_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = Command::new(env!("CARGO_BIN_EXE_bulwark"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_exit(&output, 0, &shell);
        let script = text(&output.stdout);
        assert!(script.contains("create-csr"), "{shell}: {script}");
        assert!(script.contains("export-public-key"), "{shell}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_bulwark"))
        .arg("man")
        .output()
        .unwrap();
    assert_exit(&output, 0, &"man");
    let page = text(&output.stdout);
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH bulwark 1"), "{page}");
    assert!(page.contains("list\\-providers"), "{page}");
    assert!(page.contains("Exit status"), "{page}");
}

// ---------------------------------------------------------------------------------------------
// Same output as the upstream parsec-tool.

fn parsec_tool_path() -> PathBuf {
    if let Some(path) = std::env::var_os("PARSEC_TOOL") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/tools/bin/parsec-tool"
    ));
    assert!(
        path.is_file(),
        "parsec-tool not found at {}: run scripts/test.sh, or `cargo install parsec-tool \
         --version 0.7.0 --locked --root target/tools`, or point PARSEC_TOOL at it",
        path.display()
    );
    path
}

fn parsec_tool(d: &Daemon, args: &[&str]) -> String {
    let output = StdCommand::new(parsec_tool_path())
        .args(args)
        .env("PARSEC_SERVICE_ENDPOINT", d.endpoint())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "parsec-tool {args:?}: {}\n{}",
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn default_output_is_parsec_tools() {
    let d = Daemon::start(Auth::Direct);
    let same = |args: &[&str]| {
        let (ours, theirs) = (d.ok(args), parsec_tool(&d, args));
        assert_eq!(ours, theirs, "{args:?}");
        ours
    };
    same(&["ping"]);
    let without_descriptions = |text: String| -> String {
        text.lines()
            .filter(|l| !l.starts_with("Description: "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(
        without_descriptions(d.ok(&["list-providers"])),
        without_descriptions(parsec_tool(&d, &["list-providers"]))
    );
    assert_eq!(
        d.ok(&["list-authenticators"]),
        parsec_tool(&d, &["list-authenticators"])
    );
    // parsec-tool lists opcodes in hash-set order; the set is the same.
    assert_eq!(
        sorted_lines(&d.ok(&["list-opcodes", "-p", "1"])),
        sorted_lines(&parsec_tool(&d, &["list-opcodes", "-p", "1"]))
    );
    same(&["list-keys"]);
    // Keys made by either tool are the other's (same application name), listed and exported
    // identically.
    parsec_tool(&d, &["create-ecc-key", "-k", "by-parsec-tool"]);
    d.ok(&["create-rsa-key", "-k", "by-bulwark", "-b", "1024"]);
    parsec_tool(&d, &["create-rsa-key", "-k", "signing", "-s", "-b", "1024"]);
    same(&["list-keys"]);
    for key in ["by-parsec-tool", "by-bulwark", "signing"] {
        same(&["export-public-key", "-k", key]);
    }
    same(&["export-public-key", "-k", "by-bulwark", "--pkcs1"]);
    same(&["list-clients"]);
    // Signatures and ciphertexts cross over.
    let pem = same(&["export-public-key", "-k", "by-parsec-tool"]);
    let signature = parsec_tool(&d, &["sign", "-k", "by-parsec-tool", "cross"]);
    assert!(p256_verifies(&pem, b"cross", &signature));
    d.ok(&[
        "verify",
        "-k",
        "by-parsec-tool",
        "-s",
        signature.trim(),
        "cross",
    ]);
    let ciphertext = d.ok(&["encrypt", "-k", "by-bulwark", "both ways"]);
    assert_eq!(
        parsec_tool(&d, &["decrypt", "-k", "by-bulwark", ciphertext.trim()]),
        "both ways\n"
    );
    let ciphertext = parsec_tool(&d, &["encrypt", "-k", "by-bulwark", "and back"]);
    assert_eq!(
        d.ok(&["decrypt", "-k", "by-bulwark", ciphertext.trim()]),
        "and back\n"
    );
    // Deleting with one tool is seen by the other.
    d.ok(&["delete-key", "-k", "by-parsec-tool"]);
    same(&["list-keys"]);
}
