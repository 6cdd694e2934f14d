//! One connection: read a frame, answer it, and close, or wait for the next one when the
//! client asked to keep the connection open.

use std::sync::Arc;
use std::time::Duration;

use bulwark_interface::wire::{
    RawHeader, RawRequest, RequestFrame, ResponseFrame, ResponseHeader, WireError, FLAG_KEEP_OPEN,
    HEADER_LEN,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout, timeout_at, Instant};
use zeroize::Zeroizing;

use super::clients::ClientSlot;
use super::listener::ServiceHandle;
use crate::auth::PeerCredentials;

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `listener.timeout`: longest time a whole request may take to arrive (from the connection,
    /// or from its first byte on a kept-open connection), and a whole response to be written.
    pub io_timeout: Duration,
    /// `listener.idle_timeout`: longest wait for the first byte of a further request on a
    /// connection kept open at its client's request; zero never keeps a connection open.
    pub idle_timeout: Duration,
}

/// The credentials of the peer of `stream`.
pub(crate) fn peer_credentials(stream: &UnixStream) -> std::io::Result<PeerCredentials> {
    let cred = stream.peer_cred()?;
    Ok(PeerCredentials {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    })
}

/// Serves one connection of the client `client` (whose credentials are `peer`) to its end.
///
/// The connection is closed right after its answer unless the request carried
/// [`FLAG_KEEP_OPEN`] and the daemon keeps connections open (`idle_timeout` > 0, not stopping):
/// then the answer carries the flag too, and the next request is awaited. Each request takes a
/// slot of the client's share of requests in flight, then one of the daemon's (`in_flight`),
/// waiting for them without blocking anything else.
pub(crate) async fn serve_connection(
    mut stream: UnixStream,
    peer: PeerCredentials,
    client: ClientSlot,
    service: ServiceHandle,
    in_flight: Arc<Semaphore>,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
) {
    let mut first = true;
    loop {
        let mut header = [0u8; HEADER_LEN];
        let mut filled = 0;
        if !first {
            // Between requests: wait for the next one, but not past the idle timeout and not
            // once the daemon is stopping. The wait is a read, not a readiness check: readiness
            // left over from the previous request would otherwise end the wait at once and
            // leave the connection to the much shorter per-request timeout.
            tokio::select! {
                read = timeout(limits.idle_timeout, stream.read(&mut header)) => match read {
                    Ok(Ok(n)) if n > 0 => filled = n,
                    // Closed by the peer, failed, or idle too long: nothing to answer.
                    _ => return,
                },
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
        }
        let service_now = service.current();
        let frame = read_frame(
            &mut stream,
            service_now.limits(),
            limits.io_timeout,
            header,
            filled,
        )
        .await;
        let (mut response, keep_open) = match frame {
            Ok(frame) => {
                let keep_open = frame.header.wants_keep_open()
                    && !limits.idle_timeout.is_zero()
                    && !*stop.borrow();
                // The client's own share first: a client waiting for its share holds none of
                // the daemon's slots, so it cannot keep other clients waiting.
                let queued = crate::metrics::Occupancy::queued();
                let Ok(own) = client.in_flight().acquire_owned().await else {
                    return; // Semaphores are never closed; nothing sensible to answer.
                };
                let Ok(global) = Arc::clone(&in_flight).acquire_owned().await else {
                    return;
                };
                drop(queued);
                let inline = if service_now.runs_inline(&frame) {
                    // Shorter than the two thread wake-ups of the blocking pool. A request
                    // that follows another on a kept-open connection lets the other ready
                    // connections run first: a client whose requests follow one another would
                    // otherwise keep the worker (tokio runs the task a release wakes next), and
                    // another client's request would wait behind many of them. The first
                    // request of a connection has just been accepted and queued like any other:
                    // yielding there would only cost a wake-up.
                    if !first {
                        tokio::task::yield_now().await;
                    }
                    // `None` when the key turned out to make the request long: it goes to the
                    // pool below, untouched.
                    service_now.handle_frame_inline(&frame, Some(&peer))
                } else {
                    None
                };
                let answer = match inline {
                    Some(response) => {
                        drop((global, own));
                        Ok(response)
                    }
                    None => {
                        let service = Arc::clone(&service_now);
                        tokio::task::spawn_blocking(move || {
                            let response = service.handle_frame(&frame, Some(&peer));
                            drop((global, own));
                            response
                        })
                        .await
                    }
                };
                match answer {
                    Ok(response) => (response, keep_open),
                    Err(_) => return,
                }
            }
            Err(WireError::Closed) => return,
            Err(error) => {
                tracing::debug!(%error, "malformed or interrupted request");
                (
                    ResponseFrame::error(ResponseHeader::bare(error.into())),
                    false,
                )
            }
        };
        // The answer says whether the connection stays open; without the flag the client knows
        // it is closed right after the answer (an upstream service always answers 0 here).
        response.header.flags = if keep_open { FLAG_KEEP_OPEN } else { 0 };
        let Ok(bytes) = response.to_bytes() else {
            return;
        };
        if !write_all(&mut stream, &bytes, limits.io_timeout).await || !keep_open {
            // Dropping the stream closes it: a client reading until the end of the stream
            // gets it now.
            return;
        }
        first = false;
    }
}

async fn write_all(stream: &mut UnixStream, bytes: &Zeroizing<Vec<u8>>, limit: Duration) -> bool {
    matches!(timeout(limit, stream.write_all(bytes)).await, Ok(Ok(())))
}

/// Reads one frame: the header with the sans-IO checks applied as bytes arrive, then the body
/// and auth once their lengths passed the limits.
///
/// The whole frame must arrive within `io_timeout` of the call: a client trickling its request
/// (a byte a second, say) is answered ConnectionError at that deadline, like one that sends
/// less than it announced, instead of holding its connection slot for as long as it likes.
/// `buf[..filled]` holds the start of the header when the caller already read it (the wait
/// between two requests on a kept-open connection).
async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
    limits: &bulwark_interface::wire::Limits,
    io_timeout: Duration,
    mut buf: [u8; HEADER_LEN],
    mut filled: usize,
) -> Result<RequestFrame, WireError> {
    let deadline = Instant::now() + io_timeout;
    let header = loop {
        if let Some(header) = RawHeader::parse_partial(&buf[..filled])? {
            break header;
        }
        let n = match timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            // The reference service answers ConnectionError to a connection closed before it
            // sent anything, and so do we.
            Ok(Ok(0)) => return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof)),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => return Err(WireError::Io(std::io::ErrorKind::TimedOut)),
        };
        filled += n;
    };
    limits.check(&header)?;
    let mut body = Zeroizing::new(vec![0u8; header.body_len as usize]);
    read_exact(stream, &mut body, deadline).await?;
    let mut auth = Zeroizing::new(vec![0u8; usize::from(header.auth_len)]);
    read_exact(stream, &mut auth, deadline).await?;
    RawRequest { header, body, auth }.try_into()
}

/// Reads exactly `buf.len()` bytes before `deadline`.
async fn read_exact(
    stream: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), WireError> {
    let mut filled = 0;
    while filled < buf.len() {
        match timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            Ok(Ok(0)) => return Err(WireError::Io(std::io::ErrorKind::UnexpectedEof)),
            Ok(Ok(n)) => filled += n,
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => return Err(WireError::Io(std::io::ErrorKind::TimedOut)),
        }
    }
    Ok(())
}
