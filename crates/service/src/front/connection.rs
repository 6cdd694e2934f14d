//! One connection: read a frame, answer it, repeat until the peer closes or fails.

use std::sync::Arc;
use std::time::Duration;

use bulwark_interface::wire::{
    RawHeader, RawRequest, RequestFrame, ResponseFrame, ResponseHeader, WireError, HEADER_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;
use zeroize::Zeroizing;

use super::listener::ServiceHandle;
use crate::auth::PeerCredentials;

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for any single read or write once a frame has started
    /// (`listener.timeout`).
    pub io_timeout: Duration,
    /// Longest wait for the first byte of a further request on a kept-open connection.
    pub idle_timeout: Duration,
}

/// Serves one connection to its end.
pub(crate) async fn serve_connection(
    mut stream: UnixStream,
    service: ServiceHandle,
    in_flight: Arc<Semaphore>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let peer = match stream.peer_cred() {
        Ok(cred) => PeerCredentials {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        },
        Err(error) => {
            // Without credentials no authenticator can be trusted: drop, as upstream does.
            tracing::warn!(%error, "could not read peer credentials; closing connection");
            return;
        }
    };
    let mut first = true;
    loop {
        if !first {
            // Between requests: wait for the next one, but not past the idle timeout and not
            // once the daemon is stopping.
            tokio::select! {
                ready = timeout(limits.idle_timeout, stream.readable()) => {
                    if !matches!(ready, Ok(Ok(()))) {
                        return;
                    }
                }
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
        }
        let service_now = service.current();
        let frame = read_frame(&mut stream, service_now.limits(), limits.io_timeout, !first).await;
        let (response, keep_open) = match frame {
            Ok(frame) => {
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    return; // The semaphore is closed: the daemon is stopping.
                };
                let service = Arc::clone(&service_now);
                let answer = tokio::task::spawn_blocking(move || {
                    let response = service.handle_frame(&frame, Some(&peer));
                    drop(permit);
                    response
                })
                .await;
                first = false;
                match answer {
                    Ok(response) => (response, true),
                    Err(_) => return,
                }
            }
            Err(WireError::Closed) => return,
            Err(error) => {
                first = false;
                tracing::debug!(%error, "malformed or interrupted request");
                (
                    ResponseFrame::error(ResponseHeader::bare(error.into())),
                    false,
                )
            }
        };
        let Ok(bytes) = response.to_bytes() else {
            return;
        };
        if !write_all(&mut stream, &bytes, limits.io_timeout).await || !keep_open {
            return;
        }
    }
}

async fn write_all(stream: &mut UnixStream, bytes: &Zeroizing<Vec<u8>>, limit: Duration) -> bool {
    matches!(timeout(limit, stream.write_all(bytes)).await, Ok(Ok(())))
}

/// Reads one frame: the header with the sans-IO checks applied as bytes arrive, then the body
/// and auth once their lengths passed the limits.
async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
    limits: &bulwark_interface::wire::Limits,
    io_timeout: Duration,
    idle: bool,
) -> Result<RequestFrame, WireError> {
    let mut buf = [0u8; HEADER_LEN];
    let mut filled = 0;
    let header = loop {
        let n = match timeout(io_timeout, stream.read(&mut buf[filled..])).await {
            Ok(Ok(0)) if filled == 0 => return Err(WireError::Closed),
            Ok(Ok(0)) => return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof)),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => return Err(error.into()),
            // Nothing arrived on a kept-open connection: close it without an answer.
            Err(_) if filled == 0 && idle => return Err(WireError::Closed),
            Err(_) => return Err(WireError::Io(std::io::ErrorKind::TimedOut)),
        };
        filled += n;
        if let Some(header) = RawHeader::parse_partial(&buf[..filled])? {
            break header;
        }
    };
    limits.check(&header)?;
    let mut body = Zeroizing::new(vec![0u8; header.body_len as usize]);
    read_exact(stream, &mut body, io_timeout).await?;
    let mut auth = Zeroizing::new(vec![0u8; usize::from(header.auth_len)]);
    read_exact(stream, &mut auth, io_timeout).await?;
    RawRequest { header, body, auth }.try_into()
}

/// Reads exactly `buf.len()` bytes, each read having to progress within `io_timeout`.
async fn read_exact(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    io_timeout: Duration,
) -> Result<(), WireError> {
    let mut filled = 0;
    while filled < buf.len() {
        match timeout(io_timeout, stream.read(&mut buf[filled..])).await {
            Ok(Ok(0)) => return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof)),
            Ok(Ok(n)) => filled += n,
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => return Err(WireError::Io(std::io::ErrorKind::TimedOut)),
        }
    }
    Ok(())
}
