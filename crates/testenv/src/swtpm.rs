//! A swtpm TPM 2.0 simulator on a temporary path.
//!
//! [`Swtpm::start`] manufactures a fresh TPM in a temporary state directory (`swtpm_setup
//! --tpm2 --createek`, offline: no certificate authority is involved), then serves it with
//! `swtpm socket` on two free local TCP ports: the command channel on `port` and the control
//! channel on `port + 1`, started and `TPM2_Startup(CLEAR)`ed by swtpm itself.
//!
//! [`Swtpm::tcti`] is the TCTI string for the TSS 2.0 libraries: `swtpm:host=127.0.0.1,port=P`.
//! (The `mssim` TCTI does not work with swtpm: it sends Microsoft-simulator platform commands to
//! the control port, which swtpm's control protocol refuses.)
//!
//! [`Swtpm::restart`] kills the simulator and starts it again on the same state and ports: a TPM
//! reset (the seeds and NV survive, every loaded object and session is gone). The simulator is
//! killed and its directory removed on drop.
//!
//! The simulator inherits none of this process's file descriptors (see `isolated`): the TSS
//! library's swtpm TCTI opens its socket without close-on-exec, and a connection to another
//! simulator, inherited, would outlive its owner and hold that simulator, which serves one
//! connection at a time, so that the next connection to it is never answered.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// What to install when swtpm is missing.
const INSTALL_HINT: &str = "install the packages swtpm and swtpm-tools \
                            (scripts/install-deps.sh --test)";

/// How long the simulator may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running swtpm TPM 2.0 on temporary state; killed on drop.
#[derive(Debug)]
pub struct Swtpm {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Swtpm {
    /// Manufactures a TPM in a new temporary directory and starts it on free ports.
    ///
    /// # Panics
    /// When swtpm or swtpm_setup is missing (the message names the packages), manufacturing
    /// fails, or the simulator does not listen within 10 seconds.
    pub fn start() -> Swtpm {
        let dir = tempfile::Builder::new()
            .prefix("bulwark-swtpm-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make a temporary directory for swtpm: {e}"));
        let state = dir.path().join("state");
        std::fs::create_dir(&state)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", state.display()));
        // swtpm_setup reads its configuration from the user's files unless given one; an own
        // file keeps it away from the system's certificate authority.
        let config = dir.path().join("swtpm_setup.conf");
        std::fs::write(&config, "active_pcr_banks = sha256\n")
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let output = isolated("swtpm_setup")
            .arg("--tpm2")
            .arg("--tpmstate")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .arg("--createek")
            .arg("--overwrite")
            .output()
            .unwrap_or_else(|e| panic!("cannot run bash for swtpm_setup ({e})"));
        assert!(
            output.status.success(),
            "swtpm_setup failed ({}; {INSTALL_HINT} if it is missing): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let log = dir.path().join("swtpm.log");
        let mut last_error = String::new();
        // Ports are free when chosen but may be taken before swtpm binds them: a few tries.
        for _ in 0..5 {
            let port = free_port_pair();
            match spawn(&state, &log, port) {
                Ok(child) => {
                    return Swtpm {
                        dir,
                        port,
                        child: Some(child),
                    }
                }
                Err(error) => last_error = error,
            }
        }
        panic!("swtpm did not start: {last_error}");
    }

    /// The TCTI string reaching this TPM: `swtpm:host=127.0.0.1,port=P`.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// The command port (the control port is the next one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the TPM's state.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The temporary directory of this simulator (state and log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the simulator and starts it again on the same state and ports: a TPM reset.
    ///
    /// # Panics
    /// When the simulator does not come back within 10 seconds.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match spawn(
                &self.state_dir(),
                &self.dir.path().join("swtpm.log"),
                self.port,
            ) {
                Ok(child) => {
                    self.child = Some(child);
                    return;
                }
                // The old sockets may linger a moment.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(error) => panic!("swtpm did not restart: {error}"),
            }
        }
    }

    /// Kills the simulator (a TPM power loss); [`Swtpm::restart`] brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `swtpm socket` on `state`, on `port` and `port + 1`, and waits until it listens.
fn spawn(state: &Path, log: &Path, port: u16) -> Result<Child, String> {
    let mut child = isolated("swtpm")
        .arg("socket")
        .arg("--tpm2")
        .arg("--tpmstate")
        .arg(format!("dir={}", state.display()))
        .arg("--server")
        .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
        .arg("--ctrl")
        .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
        .arg("--flags")
        .arg("not-need-init,startup-clear")
        .arg("--log")
        .arg(format!("file={},level=1", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run bash for swtpm ({e})"))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
            }
            return Err(format!(
                "swtpm exited ({status}; {INSTALL_HINT} if it is missing): {stderr}"
            ));
        }
        // The control channel is probed, so the command channel stays untouched.
        let control = SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1));
        if TcpStream::connect_timeout(&control, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("swtpm did not listen within 10 seconds".to_owned());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Closes every file descriptor but standard input, output and error, then runs the program
/// given as `$0` with the arguments that follow (bash: `{fd}>&-` closes descriptors above 9).
const CLOSE_INHERITED: &str = r#"for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then exec {fd}>&-; fi; done; exec "$0" "$@""#;

/// A command running `program` with none of this process's file descriptors but 0 to 2, even
/// those opened without close-on-exec (by C libraries, such as the TSS library's swtpm TCTI):
/// a shell closes them before it becomes `program`, so the child's pid is the program's.
fn isolated(program: &str) -> Command {
    let mut command = Command::new("bash");
    command.arg("-c").arg(CLOSE_INHERITED).arg(program);
    command
}

/// A port `p` such that `p` and `p + 1` were both free a moment ago.
fn free_port_pair() -> u16 {
    loop {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("cannot bind a local port: {e}"));
        let port = first
            .local_addr()
            .unwrap_or_else(|e| panic!("cannot read a local address: {e}"))
            .port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_restarts_and_stops() {
        let mut tpm = Swtpm::start();
        assert!(tpm.tcti().starts_with("swtpm:host=127.0.0.1,port="));
        assert!(tpm.state_dir().join("tpm2-00.permall").is_file());
        let port = tpm.port();
        tpm.restart();
        assert_eq!(tpm.port(), port);
        let control = SocketAddr::from((Ipv4Addr::LOCALHOST, port + 1));
        assert!(TcpStream::connect(control).is_ok());
        drop(tpm);
        assert!(TcpStream::connect(control).is_err(), "swtpm outlived drop");
    }

    /// The inode numbers of the sockets open in process `pid`.
    fn sockets_of(pid: u32) -> Vec<u64> {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter_map(|target| {
                let target = target.to_str()?;
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .parse()
                    .ok()
            })
            .collect()
    }

    #[test]
    fn a_descriptor_without_close_on_exec_is_not_inherited() {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
        // As the TSS library's TCTI opens its connections: no close-on-exec.
        let leaky = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        let inode = nix::sys::stat::fstat(&leaky).unwrap().st_ino;
        assert!(sockets_of(std::process::id()).contains(&inode));
        let tpm = Swtpm::start();
        let pid = tpm.child.as_ref().unwrap().id();
        let theirs = sockets_of(pid);
        assert!(!theirs.is_empty(), "swtpm's own listening sockets");
        assert!(
            !theirs.contains(&inode),
            "swtpm holds this process's socket"
        );
    }
}
