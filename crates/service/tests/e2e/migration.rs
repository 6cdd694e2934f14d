//! An existing upstream Parsec deployment moved to bulwarkd and back: the upstream service
//! (`target/tools/bin/parsec`, see `upstream_service.rs`) creates keys with `parsec-tool`,
//! bulwarkd is started on the same configuration file and working directory and uses them, and
//! upstream, started again, still has them.

use std::collections::BTreeSet;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parsec_client::core::ipc_handler::unix_socket::Handler;
use parsec_client::BasicClient;
use sha2::{Digest, Sha256};

use crate::parsec_tool::{base64_decode, parsec_tool_path};

/// The application name parsec-tool uses with the Direct authenticator.
const APP: &str = "parsec-tool";

/// Which key-info manager upstream is configured with.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Manager {
    OnDisk,
    Sqlite,
}

/// Which service runs on the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Upstream,
    Bulwarkd,
}

/// One deployment: a configuration file in a private working directory, run by either
/// service in turn.
pub(crate) struct Deployment {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) config: PathBuf,
    socket: PathBuf,
    running: Option<(Service, Child)>,
    env: Vec<(String, String)>,
    manager: Manager,
}

impl Deployment {
    /// A configuration with the Direct authenticator, `manager` and the `[[provider]]` tables
    /// of `providers` (each with `key_info_manager = "manager"`).
    pub(crate) fn new(manager: Manager, providers: &str) -> Deployment {
        let dir = tempfile::Builder::new()
            .prefix("bulwark-migration")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("parsec.sock");
        let config = dir.path().join("config.toml");
        let manager_table = match manager {
            Manager::OnDisk => format!(
                "manager_type = \"OnDisk\"\nstore_path = \"{}\"",
                dir.path().join("mappings").display()
            ),
            Manager::Sqlite => format!(
                "manager_type = \"SQLite\"\nsqlite_db_path = \"{}\"",
                dir.path()
                    .join("kim/sqlite-key-info-manager.sqlite3")
                    .display()
            ),
        };
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
name = "manager"
{manager_table}

{providers}
"#,
                socket = socket.display(),
            ),
        )
        .unwrap();
        Deployment {
            dir,
            config,
            socket,
            running: None,
            env: Vec::new(),
            manager,
        }
    }

    fn log_path(&self, service: Service) -> PathBuf {
        self.dir.path().join(match service {
            Service::Upstream => "upstream.log",
            Service::Bulwarkd => "bulwarkd.log",
        })
    }

    fn log(&self, service: Service) -> String {
        std::fs::read_to_string(self.log_path(service)).unwrap_or_default()
    }

    /// Starts `service` and waits until it answers; `Err` with its log if it exits first.
    pub(crate) fn try_start(&mut self, service: Service) -> Result<(), String> {
        assert!(self.running.is_none(), "one service at a time");
        let binary = match service {
            Service::Upstream => {
                let path =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/parsec");
                assert!(
                    path.exists(),
                    "the upstream Parsec service is not installed at {} (scripts/test.sh \
                     installs it)",
                    path.display()
                );
                path
            }
            Service::Bulwarkd => PathBuf::from(env!("CARGO_BIN_EXE_bulwarkd")),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(service))
            .unwrap();
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        // Generous: the machine may be loaded; this only guards against a hang.
        let deadline = Instant::now() + Duration::from_secs(60);
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                return Err(format!(
                    "{service:?} exited with {status}:\n{}",
                    self.log(service)
                ));
            }
            assert!(
                Instant::now() < deadline,
                "{service:?} did not start:\n{}",
                self.log(service)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.running = Some((service, child));
        Ok(())
    }

    pub(crate) fn start(&mut self, service: Service) {
        if let Err(message) = self.try_start(service) {
            panic!("{message}");
        }
    }

    /// Stops the running service with SIGTERM and waits for it.
    pub(crate) fn stop(&mut self) {
        let (service, mut child) = self.running.take().expect("a service is running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "{service:?} stopped with {status}:\n{}",
            self.log(service)
        );
        // Upstream leaves its socket behind; both services replace a stale one, but a
        // connection attempt must not reach the stopped one.
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Runs `parsec-tool args…` against the running service and returns its standard output.
    pub(crate) fn tool(&self, args: &[&str]) -> String {
        let output = Command::new(parsec_tool_path())
            .args(args)
            .env(
                "PARSEC_SERVICE_ENDPOINT",
                format!("unix:{}", self.socket.display()),
            )
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        let service = self.running.as_ref().map(|(s, _)| *s);
        assert!(
            output.status.success(),
            "parsec-tool {args:?} on {service:?} exited with {}\nstdout:\n{}\nstderr:\n{}\n\
             service log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            service.map(|s| self.log(s)).unwrap_or_default()
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// The upstream client, as parsec-tool's application, with the default provider set.
    fn client(&self) -> BasicClient {
        let mut client = BasicClient::default();
        client.set_ipc_handler(Box::new(
            Handler::new(self.socket.clone(), Some(Duration::from_secs(60))).unwrap(),
        ));
        client.set_default_auth(Some(APP.to_owned())).unwrap();
        client.set_default_provider().unwrap();
        client
    }

    /// Every key of the application: name, provider and attributes, in the client's words.
    fn keys(&self) -> BTreeSet<String> {
        self.client()
            .list_keys()
            .unwrap()
            .into_iter()
            .map(|key| format!("{} {} {:?}", key.name, key.provider_id, key.attributes))
            .collect()
    }

    fn key_names(&self) -> BTreeSet<String> {
        self.client()
            .list_keys()
            .unwrap()
            .into_iter()
            .map(|key| key.name)
            .collect()
    }

    /// The Mbed TLS key files in the working directory.
    fn key_files(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".psa_its"))
            .collect()
    }

    /// A digest of every file of upstream's key-info store, names and contents.
    fn upstream_store_digest(&self) -> Vec<u8> {
        let root = match self.manager {
            Manager::OnDisk => self.dir.path().join("mappings"),
            Manager::Sqlite => self.dir.path().join("kim/sqlite-key-info-manager.sqlite3"),
        };
        let mut files = Vec::new();
        let mut pending = vec![root];
        while let Some(path) = pending.pop() {
            if path.is_dir() {
                pending.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else {
                files.push(path);
            }
        }
        files.sort();
        let mut digest = Sha256::new();
        for file in files {
            digest.update(file.to_string_lossy().as_bytes());
            digest.update(std::fs::read(&file).unwrap());
        }
        digest.finalize().to_vec()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some((_, mut child)) = self.running.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The provider table of an Mbed Crypto deployment.
pub(crate) const MBED: &str =
    "[[provider]]\nprovider_type = \"MbedCrypto\"\nkey_info_manager = \"manager\"\n";

/// Public keys exported by upstream, to check what bulwarkd does with its keys.
struct Exported {
    ecc: p256::ecdsa::VerifyingKey,
    rsa: rsa::RsaPublicKey,
}

/// Creates, with the running service, an ECDSA P-256 signing key `ecc`, an RSA PKCS#1 v1.5
/// encryption key `rsa` and an RSA signing key `rsa-sign`, and exports their public keys.
fn create_keys(deployment: &Deployment) -> Exported {
    deployment.tool(&["create-ecc-key", "-k", "ecc"]);
    deployment.tool(&["create-rsa-key", "-k", "rsa"]);
    deployment.tool(&["create-rsa-key", "-s", "-k", "rsa-sign"]);
    let ecc = {
        use p256::pkcs8::DecodePublicKey;
        let pem = deployment.tool(&["export-public-key", "-k", "ecc"]);
        p256::ecdsa::VerifyingKey::from_public_key_pem(&pem).expect("P-256 SPKI PEM")
    };
    let rsa = {
        use rsa::pkcs8::DecodePublicKey;
        let pem = deployment.tool(&["export-public-key", "-k", "rsa"]);
        rsa::RsaPublicKey::from_public_key_pem(&pem).expect("RSA SPKI PEM")
    };
    Exported { ecc, rsa }
}

/// The keys work with the running service: its ECDSA signature verifies against the public key
/// upstream exported, and a ciphertext made with upstream's RSA public key decrypts.
fn assert_keys_work(deployment: &Deployment, exported: &Exported, message: &str) {
    let signature = base64_decode(deployment.tool(&["sign", "-k", "ecc", message]).trim());
    let signature = p256::ecdsa::Signature::from_der(&signature).expect("DER signature");
    {
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        exported
            .ecc
            .verify_prehash(&Sha256::digest(message.as_bytes()), &signature)
            .expect("the signature verifies with the key upstream exported");
    }
    let ciphertext = exported
        .rsa
        .encrypt(
            &mut rand::thread_rng(),
            rsa::Pkcs1v15Encrypt,
            message.as_bytes(),
        )
        .unwrap();
    let ciphertext = base64_encode(&ciphertext);
    let plaintext = deployment.tool(&["decrypt", "-k", "rsa", &ciphertext]);
    assert_eq!(plaintext.trim_end_matches('\n'), message);
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let mut value = 0u32;
        for (i, &byte) in chunk.iter().enumerate() {
            value |= u32::from(byte) << (16 - 8 * i);
        }
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(value >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The whole journey of an Mbed Crypto deployment on `manager`.
fn mbed_keys_move_to_bulwarkd_and_back(manager: Manager) {
    let mut deployment = Deployment::new(manager, MBED);
    deployment.start(Service::Upstream);
    let exported = create_keys(&deployment);
    let files_before = deployment.key_files();
    deployment.tool(&["create-ecc-key", "-k", "doomed"]);
    deployment.tool(&["create-ecc-key", "-k", "vanishing"]);
    let vanishing_file: Vec<String> = deployment
        .key_files()
        .difference(&files_before)
        .max()
        .cloned()
        .into_iter()
        .collect();
    assert_eq!(vanishing_file.len(), 1, "{:?}", deployment.key_files());
    let upstream_keys = deployment.keys();
    assert_eq!(upstream_keys.len(), 5, "{upstream_keys:?}");
    deployment.stop();
    let upstream_store = deployment.upstream_store_digest();

    // bulwarkd on the same configuration file and working directory.
    deployment.start(Service::Bulwarkd);
    assert_eq!(
        deployment.keys(),
        upstream_keys,
        "same keys, same attributes"
    );
    assert_keys_work(&deployment, &exported, "signed by bulwarkd");
    let log = deployment.log(Service::Bulwarkd);
    assert!(log.contains("took over an upstream key"), "{log}");
    deployment.tool(&["delete-key", "-k", "doomed"]);
    assert!(!deployment.key_names().contains("doomed"));
    deployment.stop();

    // A key file deleted while the service is stopped: no key listed after the next start.
    std::fs::remove_file(deployment.dir.path().join(&vanishing_file[0])).unwrap();
    deployment.start(Service::Bulwarkd);
    let names = deployment.key_names();
    assert_eq!(
        names,
        ["ecc", "rsa", "rsa-sign"].map(str::to_owned).into(),
        "neither the destroyed key nor the one whose file is gone comes back"
    );
    let log = deployment.log(Service::Bulwarkd);
    assert!(log.contains("key no longer in Mbed TLS's storage"), "{log}");
    // Idempotent: a second start takes nothing over again.
    deployment.stop();
    deployment.start(Service::Bulwarkd);
    assert_eq!(deployment.key_names(), names);
    assert_keys_work(&deployment, &exported, "signed by bulwarkd after restarts");
    deployment.stop();
    assert_eq!(
        deployment.upstream_store_digest(),
        upstream_store,
        "bulwarkd never writes upstream's key-info store"
    );

    // Back to upstream: its keys still work; it drops the stale mappings itself.
    deployment.start(Service::Upstream);
    assert_eq!(deployment.key_names(), names);
    assert_keys_work(&deployment, &exported, "signed by upstream again");
    deployment.stop();
}

#[test]
fn upstream_mbed_keys_on_an_on_disk_store_move_to_bulwarkd_and_back() {
    mbed_keys_move_to_bulwarkd_and_back(Manager::OnDisk);
}

#[test]
fn upstream_mbed_keys_on_a_sqlite_store_move_to_bulwarkd_and_back() {
    mbed_keys_move_to_bulwarkd_and_back(Manager::Sqlite);
}

#[test]
fn an_upstream_mbed_store_is_refused_with_the_openssl_provider() {
    let mut deployment = Deployment::new(Manager::Sqlite, MBED);
    deployment.start(Service::Upstream);
    deployment.tool(&["create-ecc-key", "-k", "kept"]);
    deployment.stop();

    let config = std::fs::read_to_string(&deployment.config).unwrap();
    std::fs::write(
        &deployment.config,
        config.replace(
            "provider_type = \"MbedCrypto\"",
            "provider_type = \"OpenSsl\"",
        ),
    )
    .unwrap();
    let message = deployment
        .try_start(Service::Bulwarkd)
        .expect_err("bulwarkd started without the upstream Mbed keys");
    assert!(message.contains("\"parsec-tool\"/\"kept\""), "{message}");
    assert!(
        message.contains("configure provider_type = \"MbedCrypto\""),
        "{message}"
    );
}

/// Upstream's `key_mappings` behaviour, for a key bulwarkd made itself: a key whose Mbed TLS
/// file is gone is dropped at the next start, with a warning, instead of being listed and
/// answering DoesNotExist.
#[test]
fn a_bulwarkd_key_whose_mbed_file_is_gone_is_dropped_at_start_up() {
    let mut deployment = Deployment::new(Manager::Sqlite, MBED);
    deployment.start(Service::Bulwarkd);
    deployment.tool(&["create-ecc-key", "-k", "kept"]);
    let before = deployment.key_files();
    deployment.tool(&["create-ecc-key", "-k", "lost"]);
    let lost: Vec<String> = deployment
        .key_files()
        .difference(&before)
        .cloned()
        .collect();
    assert_eq!(lost.len(), 1);
    deployment.stop();
    std::fs::remove_file(deployment.dir.path().join(&lost[0])).unwrap();

    deployment.start(Service::Bulwarkd);
    assert_eq!(deployment.key_names(), ["kept".to_owned()].into());
    let log = deployment.log(Service::Bulwarkd);
    assert!(
        log.contains("key no longer in Mbed TLS's storage: its name was dropped"),
        "{log}"
    );
    // The name is free again.
    deployment.tool(&["create-ecc-key", "-k", "lost"]);
    deployment.stop();
}

#[test]
fn upstream_pkcs11_keys_are_found_on_the_token_by_bulwarkd_and_back() {
    let token = crate::hw_pkcs11::root().another("migration");
    let providers = format!(
        "[[provider]]\nprovider_type = \"Pkcs11\"\nkey_info_manager = \"manager\"\n\
         library_path = \"{}\"\nserial_number = \"{}\"\nuser_pin = \"{}\"\n",
        token.library_path().display(),
        token.serial,
        token.user_pin()
    );
    let mut deployment = Deployment::new(Manager::Sqlite, &providers);
    deployment.env.push((
        bulwark_testenv::softhsm::CONF_VARIABLE.to_owned(),
        token.conf_path().display().to_string(),
    ));
    deployment.start(Service::Upstream);
    let exported = create_keys(&deployment);
    deployment.tool(&["create-ecc-key", "-k", "doomed"]);
    let upstream_keys = deployment.keys();
    assert_eq!(upstream_keys.len(), 4, "{upstream_keys:?}");
    deployment.stop();
    let upstream_store = deployment.upstream_store_digest();

    deployment.start(Service::Bulwarkd);
    assert_eq!(
        deployment.keys(),
        upstream_keys,
        "same keys, same attributes"
    );
    assert_keys_work(&deployment, &exported, "signed on the token by bulwarkd");
    deployment.tool(&["delete-key", "-k", "doomed"]);
    deployment.stop();
    deployment.start(Service::Bulwarkd);
    let names = deployment.key_names();
    assert_eq!(names, ["ecc", "rsa", "rsa-sign"].map(str::to_owned).into());
    deployment.stop();
    assert_eq!(deployment.upstream_store_digest(), upstream_store);

    // Upstream finds its keys on the token; the one destroyed by bulwarkd is gone from its
    // list too (upstream drops a mapping whose objects are gone when it starts).
    deployment.start(Service::Upstream);
    assert_eq!(deployment.key_names(), names);
    assert_keys_work(
        &deployment,
        &exported,
        "signed on the token by upstream again",
    );
    deployment.stop();
}
