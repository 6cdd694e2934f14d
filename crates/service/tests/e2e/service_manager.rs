//! bulwarkd as a system service: the socket a service manager passes (socket activation, here
//! through `systemd-socket-activate`, which systemd's socket units behave like), and the
//! configuration read when `--config` is not given.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{Auth, Daemon};

/// `bulwark_service::system::DEFAULT_CONFIG_ENV`.
const DEFAULT_CONFIG_ENV: &str = "BULWARKD_DEFAULT_CONFIG";

fn wait_for_socket(path: &Path, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "no socket at {}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(mut child: Child, log: &Path) -> String {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "stopped with {status}:\n{log}");
    log
}

#[test]
fn a_socket_passed_by_the_service_manager_is_served_and_left_to_it() {
    let daemon = Daemon::configure(Auth::direct());
    let log = daemon.dir().join("activated.log");
    let output = File::create(&log).unwrap();
    // systemd-socket-activate binds the socket, waits for the first connection, then becomes
    // bulwarkd (same pid) with LISTEN_FDS=1, LISTEN_PID and LISTEN_FDNAMES set.
    let mut child = Command::new("systemd-socket-activate")
        .arg("--listen")
        .arg(&daemon.socket)
        .arg("--fdname=parsec")
        .arg(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--config")
        .arg(&daemon.config)
        .current_dir(daemon.dir())
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd) is installed");
    wait_for_socket(&daemon.socket, &mut child, &log);

    // The first connection starts the daemon; it is answered on the passed socket.
    let client = daemon.parsec_client("activated");
    client.ping().unwrap();
    assert!(client.list_keys().unwrap().is_empty());

    let log = stop(child, &log);
    assert!(
        log.contains("listening on the socket passed by the service manager"),
        "{log}"
    );
    // The socket belongs to the service manager: a stopped daemon leaves it in place.
    assert!(daemon.socket.exists(), "{log}");
}

#[test]
fn without_config_the_default_file_is_read_when_it_exists() {
    let daemon = Daemon::configure(Auth::direct());
    let log = daemon.dir().join("default.log");
    let output = File::create(&log).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .env(DEFAULT_CONFIG_ENV, &daemon.config)
        .current_dir(daemon.dir())
        .stdin(Stdio::null())
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap();
    wait_for_socket(&daemon.socket, &mut child, &log);
    daemon.parsec_client("default-file").ping().unwrap();
    let log = stop(child, &log);
    let expected = format!(
        "configuration read from {} (the default file)",
        daemon.config.display()
    );
    assert!(log.contains(&expected), "{log}");

    // No file there: the embedded default, and the log says so.
    let missing = daemon.dir().join("missing.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_bulwarkd"))
        .arg("--check")
        .env(DEFAULT_CONFIG_ENV, &missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // `--check` runs every check of start-up: as root, the embedded default (allow_root off)
    // is refused, after saying which configuration it read.
    let as_root = nix::unistd::getuid().is_root();
    assert_eq!(output.status.success(), !as_root, "{stderr}");
    if as_root {
        assert!(stderr.contains("refusing to run as root"), "{stderr}");
    }
    let expected = format!(
        "embedded default configuration used (no --config, no {})",
        missing.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}
