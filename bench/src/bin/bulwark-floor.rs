//! `bulwark-floor`: the least a connection-per-request service can cost on this machine.
//!
//! A reference server for the connection-per-request figures of BENCHMARKS.md: each of its
//! threads blocks in `accept` on the listening socket, reads the caller's peer credentials,
//! peeks one whole request, answers it, takes the request out of the socket and closes the
//! connection. Nothing else: no authentication, no key store, no per-client limits, no protobuf
//! decoding. (Peeking first and taking the request after the answer is the cheapest order
//! measured: taking it first frees the client's send buffer, which wakes the client for
//! nothing while the answer is being made.) Two operations are answered here, the
//! ones the load generator measures on this path:
//!
//! - Ping: the fixed answer (wire protocol 1.0).
//! - PsaSignHash: an ECDSA P-256 signature, made with the same OpenSSL call as bulwarkd's
//!   OpenSSL provider, of a fixed hash with one key made at start (the request's key name and
//!   hash are not read).
//!
//! Every other request (the load generator's discovery, key generation and destruction) is
//! relayed to the real service given with `--forward`, on a connection of its own.
//!
//! A connection whose request asks to be kept open (as `bulwark-client`'s do) is then served by
//! a thread of its own, blocked in `read` until the next request: the least the kept-open path
//! can cost, for `--client bulwark`.
//!
//! Driven by `bulwark-bench` with `--daemon-pid` set to this process, it gives
//! the daemon CPU per request of a server that does only what the wire protocol requires; the
//! gap between that and bulwarkd's figure is what bulwarkd's own work costs.
//!
//! ```text
//! bulwark-floor --listen /tmp/floor.sock --forward /run/bulwark/api.sock [--threads N]
//! ```

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use nix::sys::socket::{getsockopt, recv, sockopt::PeerCredentials, MsgFlags};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::Private;

/// Length of the fixed request and response header.
const HEADER: usize = 36;
/// The header's magic number.
const MAGIC: u32 = 0x5EC0_A710;
/// Largest request read (the load generator's are far smaller).
const MAX_REQUEST: usize = 64 * 1024;
const OPCODE_PING: u32 = 0x0001;
const OPCODE_SIGN_HASH: u32 = 0x0004;
/// The request flag that asks to keep the connection open, answered in kind by bulwarkd.
const FLAG_KEEP_OPEN: u16 = 0x8000;

#[derive(Debug, Parser)]
#[command(about = "The least a connection-per-request service can cost: a reference server")]
struct Args {
    /// Socket to listen on (replaced if it exists).
    #[arg(long)]
    listen: PathBuf,
    /// The real service, which answers every request other than Ping and PsaSignHash.
    #[arg(long)]
    forward: PathBuf,
    /// Accepting threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(usize::from)
            .unwrap_or(1)
    });
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = Arc::new(EcKey::generate(&group)?);
    let _ = std::fs::remove_file(&args.listen);
    let listener = Arc::new(
        UnixListener::bind(&args.listen)
            .with_context(|| format!("binding {}", args.listen.display()))?,
    );
    let forward = Arc::new(args.forward);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (listener, key, forward) = (listener.clone(), key.clone(), forward.clone());
            std::thread::spawn(move || accept_loop(&listener, &key, &forward))
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

fn accept_loop(listener: &UnixListener, key: &Arc<EcKey<Private>>, forward: &Arc<PathBuf>) {
    loop {
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        // Errors end this connection only; the load generator counts them.
        let _ = serve(stream, key, forward);
    }
}

/// Reads one request and answers it; closes the connection (by dropping it) unless the request
/// asked to keep it open.
fn serve(mut stream: UnixStream, key: &Arc<EcKey<Private>>, forward: &Arc<PathBuf>) -> Result<()> {
    // What a service needs to know who is calling; kept, as bulwarkd's is.
    let _credentials = getsockopt(&stream, PeerCredentials)?;
    // Usually queued whole by now; otherwise read as it comes.
    let (request, peeked) = match peek_message(&stream)? {
        Some(request) => (request, true),
        None => (read_message(&mut stream)?, false),
    };
    let relayed = !matches!(opcode(&request)?, OPCODE_PING | OPCODE_SIGN_HASH);
    if peeked && relayed {
        take(&mut stream, request.len())?;
    }
    stream.write_all(&answer(&request, key, forward)?)?;
    if peeked && !relayed {
        take(&mut stream, request.len())?;
    }
    if keeps_open(&request) {
        // The later requests of a kept-open connection, on a thread of their own that waits for
        // each in a blocking read.
        let (key, forward) = (key.clone(), forward.clone());
        std::thread::spawn(move || -> Result<()> {
            loop {
                let request = read_message(&mut stream)?;
                stream.write_all(&answer(&request, &key, &forward)?)?;
            }
        });
    }
    Ok(())
}

fn opcode(request: &[u8]) -> Result<u32> {
    Ok(u32::from_le_bytes(request[28..32].try_into()?))
}

/// Whether `request` carries the flag that asks to keep its connection open.
fn keeps_open(request: &[u8]) -> bool {
    u16::from_le_bytes([request[8], request[9]]) & FLAG_KEEP_OPEN != 0
}

/// The answer to `request`: made here for Ping and PsaSignHash, by the service otherwise.
fn answer(request: &[u8], key: &EcKey<Private>, forward: &PathBuf) -> Result<Vec<u8>> {
    Ok(match opcode(request)? {
        OPCODE_PING => response(request, &[0x08, 0x01]),
        OPCODE_SIGN_HASH => {
            let signature = EcdsaSig::sign(&[0x5a; 32], key)?;
            let mut body = vec![0x0a, 64];
            body.extend_from_slice(&signature.r().to_vec_padded(32)?);
            body.extend_from_slice(&signature.s().to_vec_padded(32)?);
            response(request, &body)
        }
        _ => {
            let mut upstream = UnixStream::connect(forward)?;
            upstream.write_all(request)?;
            read_message(&mut upstream)?
        }
    })
}

/// Takes the `len` bytes of a peeked request (at most 4 KiB) out of the socket.
fn take(stream: &mut UnixStream, len: usize) -> Result<()> {
    let mut sink = [0; 4096];
    stream.read_exact(sink.get_mut(..len).context("request too large")?)?;
    Ok(())
}

/// The whole message queued on `stream`, left there; `None` when it is not all there yet.
fn peek_message(stream: &UnixStream) -> Result<Option<Vec<u8>>> {
    let mut message = vec![0; 4096];
    let have = recv(stream.as_raw_fd(), &mut message, MsgFlags::MSG_PEEK)?;
    Ok(whole_length(&message[..have])?
        .filter(|&whole| whole <= have)
        .map(|whole| {
            message.truncate(whole);
            message
        }))
}

/// The length of the message that `bytes` starts, once its header is there.
fn whole_length(bytes: &[u8]) -> Result<Option<usize>> {
    if bytes.len() < HEADER {
        return Ok(None);
    }
    anyhow::ensure!(
        u32::from_le_bytes(bytes[0..4].try_into()?) == MAGIC,
        "not a Parsec message"
    );
    let body = u32::from_le_bytes(bytes[22..26].try_into()?) as usize;
    let auth = usize::from(u16::from_le_bytes(bytes[26..28].try_into()?));
    let whole = HEADER + body + auth;
    anyhow::ensure!(whole <= MAX_REQUEST, "message too large");
    Ok(Some(whole))
}

/// One whole message (header, body and authentication field) read from `stream`, in one `read`
/// when it is already there.
fn read_message(stream: &mut UnixStream) -> Result<Vec<u8>> {
    let mut message = vec![0; 4096];
    let mut have = 0;
    loop {
        let read = stream.read(&mut message[have..])?;
        anyhow::ensure!(read > 0, "connection closed before a whole message");
        have += read;
        match whole_length(&message[..have])? {
            Some(whole) if whole <= have => {
                message.truncate(whole);
                return Ok(message);
            }
            Some(whole) if message.len() < whole => message.resize(whole, 0),
            _ => {}
        }
    }
}

/// A success response to `request` carrying `body`: the request's header with the content and
/// accept types, authentication type and lengths of a response, and status 0.
fn response(request: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&request[..HEADER]);
    out[19..22].fill(0); // content type, accept type, authentication type
    out[22..26].copy_from_slice(&(body.len() as u32).to_le_bytes());
    out[26..28].fill(0); // no authentication field
    out[32..36].fill(0); // status Success, reserved bytes
    out.extend_from_slice(body);
    out
}
