//! The same client calls against the upstream Parsec service (installed from crates.io) and
//! against bulwarkd, with the same results.
//!
//! The upstream binary is built once into `target/tools/bin/parsec`:
//!
//! ```text
//! cargo install parsec-service --version 1.5.0 --locked --root target/tools \
//!     --features mbed-crypto-provider,pkcs11-provider,tpm-provider,direct-authenticator
//! ```

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_client::{attributes, Client, EccFamily, ErrorKind, Opcode, ProviderId};

use crate::harness::{Auth, Daemon};
use crate::our_client::sequence;

const INSTALL: &str = "cargo install parsec-service --version 1.5.0 --locked --root target/tools \
                       --features mbed-crypto-provider,pkcs11-provider,tpm-provider,direct-authenticator";

/// `target/tools/bin/parsec` of the workspace.
fn upstream_binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/parsec")
}

/// The upstream service on a temporary socket: Direct authenticator, Mbed Crypto provider,
/// SQLite key-info manager, working directory in the temporary directory.
struct Upstream {
    dir: tempfile::TempDir,
    child: Child,
    socket: PathBuf,
}

impl Upstream {
    fn start() -> Upstream {
        let binary = upstream_binary();
        assert!(
            binary.exists(),
            "the upstream Parsec service is not installed at {}: run `{INSTALL}` in the \
             workspace (scripts/test.sh does)",
            binary.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("parsec-up")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("parsec.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[core_settings]
allow_root = true
log_level = "info"

[listener]
listener_type = "DomainSocket"
timeout = 2000
socket_path = "{socket}"

[authenticator]
auth_type = "Direct"

[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "{db}"

[[provider]]
provider_type = "MbedCrypto"
key_info_manager = "sqlite-manager"
"#,
                socket = socket.display(),
                db = dir.path().join("kim/keys.sqlite3").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("parsec.log")).unwrap();
        let child = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut upstream = Upstream { dir, child, socket };
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&upstream.socket).is_err() {
            if let Some(status) = upstream.child.try_wait().unwrap() {
                panic!("parsec exited with {status}:\n{}", upstream.log());
            }
            assert!(
                Instant::now() < deadline,
                "parsec did not start:\n{}",
                upstream.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        upstream
    }

    fn child_is_running(&self) -> bool {
        // `try_wait` needs `&mut`; signal 0 asks only whether the process exists.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            None,
        )
        .is_ok()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("parsec.log")).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_same_calls_give_the_same_results_on_upstream_parsec_and_bulwarkd() {
    let upstream = Upstream::start();
    let daemon = Daemon::start(Auth::direct());

    let theirs = sequence(&upstream.socket, "compat-app");
    let ours = sequence(&daemon.socket, "compat-app");
    if std::env::var_os("SHOW_SEQUENCE").is_some() {
        eprintln!(
            "upstream:\n{}\n\nbulwarkd:\n{}",
            theirs.join("\n"),
            ours.join("\n")
        );
    }
    let differences: Vec<String> = theirs
        .iter()
        .zip(&ours)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("  upstream: {a}\n  bulwarkd: {b}"))
        .collect();
    assert_eq!(theirs.len(), ours.len());
    assert!(
        differences.is_empty(),
        "{} differences:\n{}\n\nupstream log:\n{}",
        differences.len(),
        differences.join("\n"),
        upstream.log()
    );
    // The sequence did real work on both (spot checks).
    for line in [
        "ping: ok (1, 0)",
        "decrypt: ok secret message",
        "aead_decrypt: ok plaintext",
        "list_keys at end: ok 0",
    ] {
        assert!(ours.iter().any(|l| l == line), "{line}");
    }
}

#[test]
fn our_client_falls_back_to_a_connection_per_request_on_upstream_parsec() {
    let upstream = Upstream::start();
    let client = Client::builder()
        .socket(&upstream.socket)
        .app_name("fallback-app")
        .build()
        .unwrap();
    for i in 0..50 {
        assert_eq!(client.generate_random(i + 1).unwrap().len(), i + 1);
    }
    client
        .generate_key("k", attributes::ecc_signing_key(EccFamily::SecpR1, 256))
        .unwrap();
    // Upstream ignores ListKeys' pattern and lists every key; the client filters them.
    client
        .generate_key(
            "/keys/k2",
            attributes::ecc_signing_key(EccFamily::SecpR1, 256),
        )
        .unwrap();
    assert_eq!(client.list_keys().unwrap().len(), 2);
    let matching = client.list_keys_matching("/keys/*").unwrap();
    assert_eq!(matching.len(), 1);
    assert_eq!(matching[0].name, "/keys/k2");
    client.destroy_key("/keys/k2").unwrap();
    client.destroy_key("k").unwrap();
    let stats = client.connection_stats();
    assert!(
        stats.per_request,
        "upstream closes after each answer: {stats:?}"
    );
    assert_eq!(stats.idle, 0);
    // Upstream answers flags 0: no connection was ever reused, no request sent twice.
    assert_eq!((stats.reused, stats.retried), (0, 0), "{stats:?}");

    // What upstream's Mbed Crypto provider does not serve is refused by the service, not
    // mishandled by the client.
    let opcodes = client.list_opcodes(ProviderId::MbedCrypto).unwrap();
    assert!(!opcodes.contains(&Opcode::PsaSignMessage));
    let error = client
        .mac_compute("k", attributes::hmac(bulwark_client::Hash::Sha256), b"x")
        .unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Service(_)), "{error:?}");
}

/// BulwarkStatus is Bulwark's own: the upstream service answers its opcode with an error status
/// and goes on serving, on new connections and old clients alike.
#[test]
fn upstream_parsec_refuses_the_status_opcode_and_keeps_serving() {
    let upstream = Upstream::start();
    let client = Client::builder()
        .socket(&upstream.socket)
        .app_name("admin")
        .build()
        .unwrap();
    for _ in 0..3 {
        let error = client.status().unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ErrorKind::Service(
                    bulwark_client::ResponseStatus::OpcodeDoesNotExist
                        | bulwark_client::ResponseStatus::PsaErrorNotSupported
                )
            ),
            "{error:?}"
        );
        assert_eq!(client.ping().unwrap(), (1, 0));
        assert_eq!(client.generate_random(8).unwrap().len(), 8);
    }
    assert!(upstream.child_is_running(), "{}", upstream.log());
}
