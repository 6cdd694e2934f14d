//! Starts the real `bulwarkd` binary on a temporary socket, configuration and store, and talks
//! to it raw or through the upstream `parsec-client`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use parsec_client::core::ipc_handler::unix_socket::Handler;
use parsec_client::BasicClient;

/// The software provider the daemon runs as provider 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// Mbed Crypto: keys in Mbed TLS files in the working directory.
    MbedCrypto,
    /// Bulwark's OpenSSL provider: keys wrapped in the key store, a KEK file next to it.
    OpenSsl,
}

impl Provider {
    /// The provider's family in the operations table: what it serves.
    pub(crate) fn family(self) -> bulwark_interface::ops::Family {
        match self {
            Provider::MbedCrypto => bulwark_interface::ops::Family::Mbed,
            Provider::OpenSsl => bulwark_interface::ops::Family::OpenSsl,
        }
    }

    /// The `provider_type` of the configuration file.
    pub(crate) fn config_name(self) -> &'static str {
        match self {
            Provider::MbedCrypto => "MbedCrypto",
            Provider::OpenSsl => "OpenSsl",
        }
    }
}

/// The provider under test: `BULWARK_E2E_PROVIDER` (`OpenSsl`, the default, as the daemon's,
/// or `MbedCrypto`).
pub(crate) fn provider() -> Provider {
    match std::env::var("BULWARK_E2E_PROVIDER").as_deref() {
        Err(_) | Ok("" | "OpenSsl") => Provider::OpenSsl,
        Ok("MbedCrypto") => Provider::MbedCrypto,
        Ok(other) => panic!("BULWARK_E2E_PROVIDER={other:?}: expected MbedCrypto or OpenSsl"),
    }
}

/// Which authenticator the daemon runs, and its administrators.
#[derive(Debug, Clone)]
pub(crate) enum Auth {
    /// Direct authentication (names taken from the request).
    Direct { admins: Vec<String> },
    /// Unix peer credentials (decimal uids).
    UnixPeer { admins: Vec<String> },
}

impl Auth {
    pub(crate) fn direct() -> Auth {
        Auth::Direct { admins: vec![] }
    }
    pub(crate) fn unix() -> Auth {
        Auth::UnixPeer { admins: vec![] }
    }
}

/// The `[[provider]]` table of `provider` on the harness's key manager.
pub(crate) fn provider_table(provider: Provider) -> String {
    format!(
        "[[provider]]\nprovider_type = \"{}\"\nkey_info_manager = \"sqlite-manager\"\n",
        provider.config_name()
    )
}

/// The configuration file of a harness daemon in `dir` (socket `s.sock`, key store under
/// `kim/`): `auth`, `core_extra` lines in `[core_settings]`, and the `providers` tables.
pub(crate) fn config_text(dir: &Path, auth: &Auth, core_extra: &str, providers: &str) -> String {
    let (auth_type, admins) = match auth {
        Auth::Direct { admins } => ("Direct", admins),
        Auth::UnixPeer { admins } => ("UnixPeerCredentials", admins),
    };
    let admins: Vec<String> = admins
        .iter()
        .map(|a| format!("{{ name = {a:?} }}"))
        .collect();
    format!(
        r#"
[core_settings]
allow_root = true
log_level = "debug"
{core_extra}

[listener]
listener_type = "DomainSocket"
timeout = 2000
socket_path = "{socket}"

[authenticator]
auth_type = "{auth_type}"
admins = [ {admins} ]

[[key_manager]]
name = "sqlite-manager"
manager_type = "SQLite"
sqlite_db_path = "{db}"

{providers}
"#,
        socket = dir.join("s.sock").display(),
        admins = admins.join(", "),
        db = dir.join("kim/keys.sqlite3").display(),
    )
}

/// A running daemon in its own temporary directory; killed when dropped.
pub(crate) struct Daemon {
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub socket: PathBuf,
    pub config: PathBuf,
    /// Extra environment variables of the daemon process.
    pub env: Vec<(String, String)>,
}

impl Daemon {
    /// Starts a daemon with the given authenticator and extra `[core_settings]` lines.
    pub(crate) fn start(auth: Auth) -> Daemon {
        Daemon::start_with(auth, "")
    }

    /// Starts a daemon whose `[core_settings]` also holds `core_extra` (TOML lines).
    pub(crate) fn start_with(auth: Auth, core_extra: &str) -> Daemon {
        Daemon::start_with_providers(auth, core_extra, &provider_table(provider()))
    }

    /// Starts a daemon whose providers are the `[[provider]]` tables of `providers` (TOML), each
    /// with `key_info_manager = "sqlite-manager"`; `core_extra` as in [`Daemon::start_with`].
    pub(crate) fn start_with_providers(auth: Auth, core_extra: &str, providers: &str) -> Daemon {
        let mut daemon = Daemon::configure_with_providers(auth, core_extra, providers);
        daemon.spawn();
        daemon
    }

    /// A daemon configured as by [`Daemon::start_with_providers`] but not started: set `env`,
    /// then call [`Daemon::spawn`].
    pub(crate) fn configure_with_providers(
        auth: Auth,
        core_extra: &str,
        providers: &str,
    ) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("bulwark-e2e")
            .tempdir()
            .unwrap();
        let socket = dir.path().join("s.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            config_text(dir.path(), &auth, core_extra, providers),
        )
        .unwrap();
        Daemon {
            dir,
            child: None,
            socket,
            config,
            env: Vec::new(),
        }
    }

    /// A daemon that is configured but not started: set `env`, then call [`Daemon::spawn`].
    pub(crate) fn configure(auth: Auth) -> Daemon {
        let mut daemon = Daemon::start(auth);
        daemon.stop();
        daemon
    }

    /// The daemon's working directory (Mbed TLS key files live here).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the OpenSSL provider keeps its key-encryption key (the default: next to the key
    /// store).
    pub(crate) fn kek_path(&self) -> PathBuf {
        self.dir.path().join("kim/openssl-provider.kek")
    }

    /// Starts the process and waits until it answers.
    pub(crate) fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        self.spawn_with_stderr(log.into());
    }

    /// [`Daemon::spawn`], with the daemon's standard error going to `stderr` instead of the log
    /// file (standard output still goes there).
    pub(crate) fn spawn_with_stderr(&mut self, stderr: Stdio) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("bulwarkd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "bulwarkd did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// The daemon's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// Sends a signal to the daemon.
    pub(crate) fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("daemon running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }

    /// The daemon's exit status if it has exited, without waiting.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .expect("daemon started")
            .try_wait()
            .unwrap()
    }

    /// Replaces `from` with `to` in the configuration file (for the next start).
    pub(crate) fn edit_config(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        assert!(text.contains(from), "{from:?} is not in the configuration");
        std::fs::write(&self.config, text.replacen(from, to, 1)).unwrap();
    }

    /// Waits for the daemon to exit by itself and returns its exit status.
    pub(crate) fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.take().expect("daemon running").wait().unwrap()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            let status = child.wait().unwrap();
            assert!(
                status.success(),
                "bulwarkd stopped with {status}:\n{}",
                self.log()
            );
        }
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops (gracefully) and starts again on the same directory.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// One raw exchange: writes `request`, reads one response frame (or until EOF).
    pub(crate) fn send_raw(&self, request: &[u8]) -> Vec<u8> {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // A request the daemon refuses early may not be read whole: ignore write errors.
        let _ = stream.write_all(request);
        let mut response = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
            if response.len() >= 36 {
                let body_len = u32::from_le_bytes(response[22..26].try_into().unwrap()) as usize;
                if response.len() >= 36 + body_len {
                    break;
                }
            }
        }
        response
    }

    /// An upstream `parsec-client` for this daemon, authenticated as `app_name` (Direct) or as
    /// the calling process's uid (Unix peer credentials), with the default provider set.
    pub(crate) fn parsec_client(&self, app_name: &str) -> BasicClient {
        let mut client = BasicClient::default();
        client.set_ipc_handler(Box::new(
            Handler::new(self.socket.clone(), Some(Duration::from_secs(60))).unwrap(),
        ));
        client.set_default_provider().unwrap();
        client.set_default_auth(Some(app_name.to_owned())).unwrap();
        client
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}
