//! The open-file limit: a daemon started under a low hard limit (`prlimit --nofile=64:64`)
//! with `max_connections` far above it caps its connections below the limit, logs the cap, and
//! keeps answering root while another uid ([`FLOOD_UID`], a copy of this test binary) opens
//! as many connections as it can, and reopens each one the daemon closes.

use std::io::{BufRead, Read};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::flood::{
    child_binary, child_lines, child_socket, next_line, ping_request, run_child, timed_ping,
    FLOOD_UID, HEAVY,
};
use crate::harness::{config_text, provider, provider_table, Auth, Daemon};

/// The hard and soft open-file limit the daemon runs under.
const NOFILE: u32 = 64;
/// Connections the other uid keeps trying to hold at once.
const SIEGE_CONNECTIONS: usize = 100;
/// A served connection that sends nothing is closed after this (`listener.timeout`, ms): long,
/// so that the connections the daemon serves stay held throughout the test.
const HOLD_MS: u64 = 60_000;

/// The daemon under `prlimit`, killed when dropped.
struct Limited {
    child: Child,
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks of CPU (user + system) the process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 of `rest` (from 1).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_low_open_file_limit_caps_connections_and_root_is_still_answered() {
    if !nix::unistd::getuid().is_root() {
        eprintln!("skipped: needs root to run a client as uid {FLOOD_UID}");
        return;
    }
    let _heavy = HEAVY.lock().unwrap_or_else(|e| e.into_inner());
    // A configured daemon, stopped, then started again under the low limit.
    let mut daemon = Daemon::start_with(Auth::unix(), "max_connections = 1000");
    daemon.stop();
    let config = config_text(
        daemon.dir(),
        &Auth::unix(),
        "max_connections = 1000",
        &provider_table(provider()),
    )
    .replace("timeout = 2000", &format!("timeout = {HOLD_MS}"));
    std::fs::write(&daemon.config, config).unwrap();
    let log_path = daemon.dir().join("daemon.log");
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let limited = Limited {
        child: Command::new("prlimit")
            .arg(format!("--nofile={NOFILE}:{NOFILE}"))
            .arg(env!("CARGO_BIN_EXE_bulwarkd"))
            .arg("--config")
            .arg(&daemon.config)
            .current_dir(daemon.dir())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .expect("prlimit (util-linux) runs bulwarkd"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while timed_ping(&daemon.socket, &ping_request()).is_err() {
        assert!(
            Instant::now() < deadline,
            "bulwarkd did not start:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // prlimit execs bulwarkd: the pid is the daemon's.
    let pid = limited.child.id();

    // The cap is logged, below the limit, with the figures (the last start-up is this one).
    let log_now = log();
    let line = log_now
        .lines()
        .rfind(|l| l.contains("open files: soft limit"))
        .unwrap_or_else(|| panic!("no open-file line in the log:\n{log_now}"));
    assert!(
        line.contains(&format!("hard limit {NOFILE}")),
        "the hard limit is not logged: {line}"
    );
    let cap: usize = line
        .split("serving at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no cap in: {line}"));
    assert!(
        cap > 0 && cap < NOFILE as usize,
        "cap {cap} not below the limit {NOFILE}: {line}"
    );
    assert!(line.contains("max_connections = 1000"), "{line}");

    // The other uid opens all the connections it can, and reopens each one closed.
    let (_dir, exe) = child_binary();
    let mut child = run_child(
        &exe,
        &daemon,
        FLOOD_UID,
        "descriptors::descriptors_child",
        &[],
    );
    let lines = child_lines(&mut child, "SIEGE");
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "started");
    std::thread::sleep(Duration::from_secs(2));

    // Root is answered throughout (each ping has a 10 s guard).
    for _ in 0..5 {
        if let Err(error) = timed_ping(&daemon.socket, &ping_request()) {
            panic!("root's ping failed during the siege: {error}\n{}", log());
        }
    }

    // The siege stops reopening: the connections left are held, and an idle daemon uses
    // (nearly) no CPU: it does not retry a failing accept in a loop.
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"hold\n").unwrap();
    assert_eq!(next_line(&lines, Duration::from_secs(60)), "holding");
    std::thread::sleep(Duration::from_millis(500));
    let ticks_per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .unwrap()
        .unwrap() as u64;
    let before = cpu_ticks(pid);
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    let used = cpu_ticks(pid) - before;
    eprintln!("daemon CPU with the siege held: {used} ticks ({ticks_per_second}/s) in {window:?}; cap {cap}");
    // A spinning accept loop takes a whole core: 3 s of CPU in 3 s. Idle is close to zero.
    assert!(
        used < ticks_per_second,
        "the daemon used {used} ticks ({ticks_per_second}/s) of CPU in {window:?} while idle"
    );
    if let Err(error) = timed_ping(&daemon.socket, &ping_request()) {
        panic!("root's ping failed with the siege held: {error}\n{}", log());
    }
    assert!(
        !log().contains("accept failed"),
        "accept failed under the cap:\n{}",
        log()
    );

    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"done\n").unwrap();
    assert!(child.wait().unwrap().success());
    drop(limited);
}

/// Run as [`FLOOD_UID`]: [`SIEGE_CONNECTIONS`] threads, each holding one connection that sends
/// nothing and reopening it whenever the daemon closes it, until told `hold`; then each keeps
/// the connection it has (if the daemon still serves it) until told `done`.
#[test]
fn descriptors_child() {
    let Some(socket) = child_socket("descriptors::descriptors_child") else {
        return;
    };
    let reopen = Arc::new(AtomicBool::new(true));
    let (held_tx, held_rx) = std::sync::mpsc::channel::<Option<UnixStream>>();
    for _ in 0..SIEGE_CONNECTIONS {
        let socket = socket.clone();
        let reopen = Arc::clone(&reopen);
        let held_tx = held_tx.clone();
        std::thread::spawn(move || loop {
            let Ok(mut stream) = UnixStream::connect(&socket) else {
                if !reopen.load(Ordering::SeqCst) {
                    let _ = held_tx.send(None);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let mut byte = [0u8; 1];
            loop {
                match stream.read(&mut byte) {
                    Ok(0) | Err(_) if !reopen.load(Ordering::SeqCst) => {
                        let _ = held_tx.send(Some(stream));
                        return;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    _ => break, // Closed by the daemon: reopen.
                }
            }
        });
    }
    drop(held_tx);
    println!("SIEGE started");
    let mut stdin = std::io::stdin().lock();
    let mut command = String::new();
    stdin.read_line(&mut command).unwrap();
    assert_eq!(command.trim(), "hold");
    reopen.store(false, Ordering::SeqCst);
    let held: Vec<_> = held_rx.iter().take(SIEGE_CONNECTIONS).collect();
    println!("SIEGE holding");
    command.clear();
    stdin.read_line(&mut command).unwrap();
    assert_eq!(command.trim(), "done");
    drop(held);
}
