//! Measurements about many keys and many connections rather than many requests:
//!
//! - [`populate`]: generate N ECC P-256 keys (real keys: with the OpenSSL provider each is
//!   wrapped under the key-encryption key, so a restart checks and loads them all);
//! - [`startup`]: start a daemon and time how long it takes to answer its first Ping;
//! - [`hold`]: open N connections, send one Ping on each and keep them all open, reporting the
//!   daemon's resident memory before and while they are held.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bulwark_client::{attributes, Client, EccFamily};
use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame, FLAG_KEEP_OPEN};
use zeroize::Zeroizing;

/// Generates keys `{prefix}{i}` for i in 0..count with `threads` threads; returns the seconds
/// taken.
pub(crate) fn populate(
    socket: &Path,
    app_name: &str,
    prefix: &str,
    count: usize,
    threads: usize,
) -> Result<f64> {
    let client = Client::builder()
        .socket(socket)
        .app_name(app_name)
        .reuse_connections(true)
        .max_idle_connections(threads.max(1))
        .timeout(Duration::from_secs(60))
        .build()
        .context("building the client")?;
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                let client = client.clone();
                let next = &next;
                scope.spawn(move || -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= count {
                            return Ok(());
                        }
                        let name = format!("{prefix}{i}");
                        client
                            .generate_key(
                                &name,
                                attributes::ecc_signing_key(EccFamily::SecpR1, 256),
                            )
                            .with_context(|| format!("generating {name}"))?;
                        if i > 0 && i % 10_000 == 0 {
                            eprintln!("{i} keys in {:.1} s", started.elapsed().as_secs_f64());
                        }
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a populating thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(started.elapsed().as_secs_f64())
}

/// A Ping request asking to keep its connection open, as raw bytes.
fn ping_request() -> Result<Zeroizing<Vec<u8>>> {
    let frame = RequestFrame {
        header: RequestHeader {
            flags: FLAG_KEEP_OPEN,
            ..RequestHeader::new(ProviderId::Core, Opcode::Ping, AuthType::NoAuth)
        },
        body: Zeroizing::new(Vec::new()),
        auth: Zeroizing::new(Vec::new()),
    };
    Ok(frame.to_bytes()?)
}

/// Sends a Ping on `stream` and reads its answer; `Ok` if it succeeded.
fn ping_on(stream: &mut UnixStream, request: &[u8]) -> Result<()> {
    stream.write_all(request)?;
    let response = ResponseFrame::read_from(stream, 1 << 20)?;
    if response.header.status != ResponseStatus::Success {
        bail!("Ping answered {:?}", response.header.status);
    }
    Ok(())
}

/// Starts `daemon --config config` in the config's directory and returns it with the time until
/// a Ping on `socket` succeeded (the socket is polled every 1 ms).
pub(crate) fn startup(
    daemon: &Path,
    config: &Path,
    socket: &Path,
    limit: Duration,
) -> Result<(Child, Duration)> {
    let request = ping_request()?;
    let directory = config.parent().unwrap_or(Path::new("."));
    let started = Instant::now();
    let mut child = Command::new(daemon)
        .arg("--config")
        .arg(config)
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", daemon.display()))?;
    loop {
        if let Ok(mut stream) = UnixStream::connect(socket) {
            if ping_on(&mut stream, &request).is_ok() {
                return Ok((child, started.elapsed()));
            }
        }
        if let Some(status) = child.try_wait()? {
            bail!("the daemon exited at start-up ({status})");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            bail!("no Ping answered within {limit:?}");
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub(crate) fn rss_kib(pid: i32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/PID/status")
}

/// Opens `count` connections to `socket`, sends one Ping on each, holds them all for `hold`
/// and returns the daemon's resident memory (KiB) before, and at the end of the hold.
pub(crate) fn hold(socket: &Path, count: usize, hold: Duration, pid: i32) -> Result<(u64, u64)> {
    let request = ping_request()?;
    let before = rss_kib(pid)?;
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream = UnixStream::connect(socket).with_context(|| format!("connection {i}"))?;
        ping_on(&mut stream, &request).with_context(|| format!("Ping on connection {i}"))?;
        streams.push(stream);
    }
    thread::sleep(hold);
    // Every connection must still be open: a Ping on each is answered.
    for (i, stream) in streams.iter_mut().enumerate() {
        let mut probe = [0u8; 1];
        stream.set_nonblocking(true)?;
        if let Ok(0) = stream.read(&mut probe) {
            bail!("the daemon closed held connection {i}");
        }
        stream.set_nonblocking(false)?;
    }
    let during = rss_kib(pid)?;
    Ok((before, during))
}
