//! One connection: read a frame, answer it, and close, or wait for the next one when the
//! client asked to keep the connection open.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream as StdStream;
use std::sync::Arc;
use std::time::Duration;

use bulwark_interface::wire::{
    RawHeader, RawRequest, RequestFrame, ResponseFrame, ResponseHeader, WireError, FLAG_KEEP_OPEN,
    HEADER_LEN,
};
use nix::sys::socket::{self, MsgFlags};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::UnixStream;
use tokio::sync::{watch, Semaphore};
use tokio::time::{timeout, timeout_at, Instant};
use zeroize::{Zeroize, Zeroizing};

use super::clients::{ClientSlot, Relay, Turn};
use super::listener::ServiceHandle;
use crate::auth::PeerCredentials;
use crate::service::Service;

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
pub(crate) fn peer_credentials(stream: &impl AsFd) -> std::io::Result<PeerCredentials> {
    let cred = socket::getsockopt(stream, socket::sockopt::PeerCredentials)?;
    Ok(PeerCredentials {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: Some(cred.pid()),
    })
}

/// Registers `stream` with the runtime, for the waits of the asynchronous path.
fn register(stream: StdStream) -> Option<UnixStream> {
    stream.set_nonblocking(true).ok()?;
    UnixStream::from_std(stream).ok()
}

/// What one connection's requests are answered with, and under which limits.
pub(crate) struct Context {
    pub(crate) peer: PeerCredentials,
    pub(crate) client: ClientSlot,
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) limits: ConnectionLimits,
    pub(crate) stop: watch::Receiver<bool>,
    /// What the connection holds until it ends, given back by dropping it.
    pub(crate) _held: Held,
}

/// What a connection holds until it ends: its daemon-wide connection slot, and its count in
/// the open-connections gauge.
pub(crate) struct Held {
    pub(crate) _slot: tokio::sync::OwnedSemaphorePermit,
    pub(crate) _open: crate::metrics::Occupancy,
}

/// A connection the accepting thread could not finish without waiting, and where it stopped:
/// [`serve_rest`] finishes it on the runtime.
pub(crate) struct Rest {
    stream: StdStream,
    service: ServiceHandle,
    context: Context,
    deadline: Instant,
    step: Step,
}

enum Step {
    /// Nothing was taken from the socket: the request has not arrived whole, or is large.
    Read,
    /// The request is peeked whole, `unread` bytes of it still queued; answering it waits for
    /// a slot of the client's or the daemon's share, or runs on the blocking pool.
    Answer { frame: RequestFrame, unread: usize },
    /// The answer is written up to `written`: the socket could not take the rest at once.
    Write {
        bytes: Zeroizing<Vec<u8>>,
        written: usize,
        unread: usize,
        keep_open: bool,
    },
    /// Answered whole; the client keeps the connection for its next request.
    Next,
}

/// A connection whose first request is peeked whole and is cheap: it waits for one of its
/// client's turns on the accepting threads (see [`Relay`](super::clients::Relay)).
pub(crate) struct Pending {
    stream: StdStream,
    context: Context,
    service: ServiceHandle,
    service_now: Arc<Service>,
    deadline: Instant,
    frame: RequestFrame,
    unread: usize,
}

/// Serves the first request of a connection just accepted, as far as that goes without
/// waiting; what is left, if anything, is handed to `later` (which runs it with
/// [`serve_rest`]).
///
/// The connection is closed right after its answer unless the request carried
/// [`FLAG_KEEP_OPEN`] and the daemon keeps connections open (`idle_timeout` > 0, not stopping):
/// then the answer carries the flag too, and the next request is awaited.
///
/// `stream` is in blocking mode and not registered with the runtime: every call made on it
/// here says `MSG_DONTWAIT`. Clients write their request right after connecting, so it is
/// usually queued whole by now: it is then peeked, answered on the calling thread when it is
/// cheap, written and consumed with plain non-blocking calls, and a connection closed after
/// its answer never costs the runtime a registration, a task, a readiness event or a wake-up.
///
/// A cheap request is answered in one of its client's turns on the accepting threads, with a
/// slot of the daemon's requests in flight (`in_flight`). When the client has all the turns
/// its share allows, the request joins the client's relay and a thread holding one of them
/// answers it next (see [`Relay`](super::clients::Relay)): a thread never waits for a client,
/// and a client never holds more threads than its share. Anything else that would wait (a
/// request that has not arrived whole or is large, work for the blocking pool, no daemon slot
/// free, an answer the socket cannot take at once, a connection kept open) is left to the
/// runtime, where the request takes a slot of its client's share of requests in flight, then
/// one of the daemon's, waiting for them without blocking anything else.
pub(crate) fn serve_now(
    stream: StdStream,
    context: Context,
    service: &ServiceHandle,
    later: &impl Fn(Rest),
) {
    let deadline = Instant::now() + context.limits.io_timeout;
    let service_now = service.current();
    let rest = |stream, context, step| Rest {
        stream,
        service: service.clone(),
        context,
        deadline,
        step,
    };
    let Some((frame, unread)) = peek_now(&stream, service_now.limits()) else {
        return later(rest(stream, context, Step::Read));
    };
    let frame = match frame {
        Ok(frame) => frame,
        Err(error) => {
            if let Some(response) = refusal(error) {
                if let Some(step) = reply_now(&stream, response, false, unread) {
                    later(rest(stream, context, step));
                }
            }
            return;
        }
    };
    if !service_now.runs_inline(&frame) {
        return later(rest(stream, context, Step::Answer { frame, unread }));
    }
    let relay = context.client.relay();
    let pending = Pending {
        stream,
        context,
        service: service.clone(),
        service_now,
        deadline,
        frame,
        unread,
    };
    let Some((turn, pending)) = relay.enter(pending) else {
        return;
    };
    answer_turn(pending, later);
    answer_waiting(&relay, turn, later);
}

/// Ends `turn` once it has answered every request of its client waiting for a turn (see
/// [`Relay::next`](super::clients::Relay::next)).
fn answer_waiting(relay: &Relay, turn: Turn, later: &impl Fn(Rest)) {
    let mut next = relay.next(turn);
    while let Some((turn, pending)) = next {
        answer_turn(pending, later);
        next = relay.next(turn);
    }
}

/// The answer to `frame` when it can be made at once: a daemon-wide slot is free and the key
/// did not make the request long; `None` (nothing done) otherwise.
fn answer_quick(
    frame: &RequestFrame,
    service_now: &Service,
    context: &Context,
) -> Option<ResponseFrame> {
    let _global = context.in_flight.try_acquire().ok()?;
    service_now.handle_frame_inline(frame, Some(&context.peer))
}

/// Answers `pending` on the calling thread, which holds one of its client's turns.
fn answer_turn(pending: Pending, later: &impl Fn(Rest)) {
    let Pending {
        stream,
        context,
        service,
        service_now,
        deadline,
        frame,
        unread,
    } = pending;
    let rest = |stream, context, step| Rest {
        stream,
        service,
        context,
        deadline,
        step,
    };
    // No daemon-wide slot free (the runtime waits for one), or the key made the request long
    // (the blocking pool serves it).
    let Some(response) = answer_quick(&frame, &service_now, &context) else {
        return later(rest(stream, context, Step::Answer { frame, unread }));
    };
    let keep_open = keeps_open(&frame, &context);
    if let Some(step) = reply_now(&stream, response, keep_open, unread) {
        later(rest(stream, context, step));
    }
}

/// Writes `response` and takes the `unread` bytes of its request out of the socket, without
/// waiting; the step left for the runtime, if any (`None`: the connection is done, and
/// dropping it closes it).
fn reply_now(
    stream: &StdStream,
    response: ResponseFrame,
    keep_open: bool,
    unread: usize,
) -> Option<Step> {
    let bytes = encode(response, keep_open)?;
    let written = send_now(stream, &bytes);
    if written < bytes.len() {
        return Some(Step::Write {
            bytes,
            written,
            unread,
            keep_open,
        });
    }
    // A request that could not be taken whole closes the connection, as on the asynchronous
    // path: what follows it could not be told from its rest.
    (consume_now(stream, unread) && keep_open).then_some(Step::Next)
}

/// Goes on with a connection where [`serve_now`] stopped, registered with the runtime, to its
/// end.
pub(crate) async fn serve_rest(rest: Rest) {
    let Rest {
        stream,
        service,
        mut context,
        deadline,
        step,
    } = rest;
    let Some(mut stream) = register(stream) else {
        return;
    };
    let io_timeout = context.limits.io_timeout;
    let (bytes, written, unread, keep_open) = match step {
        Step::Read => return serve_registered(stream, service, &mut context, true).await,
        Step::Next => return serve_registered(stream, service, &mut context, false).await,
        Step::Answer { frame, unread } => {
            let service_now = service.current();
            let Some((bytes, keep_open)) =
                answer(Ok(frame), true, &service_now, &mut context).await
            else {
                return;
            };
            (bytes, 0, unread, keep_open)
        }
        Step::Write {
            bytes,
            written,
            unread,
            keep_open,
        } => (bytes, written, unread, keep_open),
    };
    if !write_all(&mut stream, &bytes[written..], io_timeout).await
        || !consume(&mut stream, unread, deadline).await
        || !keep_open
    {
        return;
    }
    serve_registered(stream, service, &mut context, false).await;
}

/// Serves the requests of a connection registered with the runtime until it ends; `first`
/// when none of its requests was answered yet.
async fn serve_registered(
    mut stream: UnixStream,
    service: ServiceHandle,
    context: &mut Context,
    mut first: bool,
) {
    let limits = context.limits;
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
                _ = context.stop.wait_for(|stopping| *stopping) => return,
            }
        }
        let service_now = service.current();
        let deadline = Instant::now() + limits.io_timeout;
        // The first request of a connection is peeked when it is small (see `peek_frame`):
        // `unread` bytes of it are still queued and are consumed once the answer is written.
        let peeked = if first {
            peek_frame(&stream, service_now.limits(), deadline).await
        } else {
            None
        };
        let (frame, unread) = match peeked {
            Some(peeked) => peeked,
            None => {
                let limits = service_now.limits();
                (
                    read_frame(&mut stream, limits, deadline, header, filled).await,
                    0,
                )
            }
        };
        let Some((bytes, keep_open)) = answer(frame, first, &service_now, context).await else {
            return;
        };
        if !write_all(&mut stream, &bytes, limits.io_timeout).await
            || !consume(&mut stream, unread, deadline).await
            || !keep_open
        {
            // Dropping the stream closes it: a client reading until the end of the stream
            // gets it now.
            return;
        }
        first = false;
    }
}

/// Whether the connection of `frame` stays open after its answer.
fn keeps_open(frame: &RequestFrame, context: &Context) -> bool {
    frame.header.wants_keep_open()
        && !context.limits.idle_timeout.is_zero()
        && !*context.stop.borrow()
}

/// The answer to a request that could not be read, `None` when there is nothing to answer
/// (the client closed before sending anything).
fn refusal(error: WireError) -> Option<ResponseFrame> {
    if matches!(error, WireError::Closed) {
        return None;
    }
    tracing::debug!(%error, "malformed or interrupted request");
    Some(ResponseFrame::error(ResponseHeader::bare(error.into())))
}

/// The bytes of `response`, which says whether the connection stays open; without the flag the
/// client knows it is closed right after the answer (an upstream service always answers 0
/// here).
fn encode(mut response: ResponseFrame, keep_open: bool) -> Option<Zeroizing<Vec<u8>>> {
    response.header.flags = if keep_open { FLAG_KEEP_OPEN } else { 0 };
    response.to_bytes().ok()
}

/// The encoded answer to one request (`frame` as read), and whether the connection stays open
/// after it; `None` when there is nothing to answer (the client closed before sending
/// anything, or the request's work was lost).
async fn answer(
    frame: Result<RequestFrame, WireError>,
    first: bool,
    service_now: &Arc<Service>,
    context: &mut Context,
) -> Option<(Zeroizing<Vec<u8>>, bool)> {
    let frame = match frame {
        Ok(frame) => frame,
        Err(error) => return Some((encode(refusal(error)?, false)?, false)),
    };
    let keep_open = keeps_open(&frame, context);
    let cheap = service_now.runs_inline(&frame);
    if !first && cheap {
        // A kept-open connection's later request that is cheap: answered in one of its
        // client's turns, as on the accepting threads, when one is free and nothing waits
        // for one. It first lets the other ready connections run: a client whose requests
        // follow one another would otherwise keep the worker (tokio runs the task a wake-up
        // makes ready next), and another client's request would wait behind many of them.
        tokio::task::yield_now().await;
        if let Some(response) = answer_in_turn(&frame, service_now, context) {
            return Some((encode(response, keep_open)?, keep_open));
        }
    }
    // The client's own share first: a client waiting for its share holds none of the
    // daemon's slots, so it cannot keep other clients waiting.
    let queued = crate::metrics::Occupancy::queued();
    // Semaphores are never closed; nothing sensible to answer if one were.
    let own = context.client.in_flight().acquire_owned().await.ok()?;
    let global = Arc::clone(&context.in_flight).acquire_owned().await.ok()?;
    drop(queued);
    let peer = context.peer;
    let inline = if cheap {
        // Shorter than the two thread wake-ups of the blocking pool. `None` when the key
        // turned out to make the request long: it goes to the pool below, untouched.
        service_now.handle_frame_inline(&frame, Some(&peer))
    } else {
        None
    };
    let response = match inline {
        Some(response) => {
            drop((global, own));
            response
        }
        None => {
            let service = Arc::clone(service_now);
            tokio::task::spawn_blocking(move || {
                let response = service.handle_frame(&frame, Some(&peer));
                drop((global, own));
                response
            })
            .await
            .ok()?
        }
    };
    Some((encode(response, keep_open)?, keep_open))
}

/// The answer to `frame`, made here in one of its client's turns and with a daemon-wide slot
/// when both are free; `None` (nothing done) otherwise, or when the key made the request long.
/// The turn then answers the client's requests waiting on the accepting threads, as a turn
/// there would.
fn answer_in_turn(
    frame: &RequestFrame,
    service_now: &Arc<Service>,
    context: &Context,
) -> Option<ResponseFrame> {
    let relay = context.client.relay();
    let turn = relay.try_turn()?;
    let answered = answer_quick(frame, service_now, context);
    answer_waiting(&relay, turn, &|rest| {
        tokio::spawn(serve_rest(rest));
    });
    answered
}

/// Writes as much of `bytes` as the socket takes without waiting; the count written.
fn send_now(stream: &StdStream, bytes: &[u8]) -> usize {
    let mut written = 0;
    while written < bytes.len() {
        match socket::send(
            stream.as_raw_fd(),
            &bytes[written..],
            MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
        ) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    written
}

/// Room for one small request on the stack, wiped on drop as far as it was written.
struct Scratch {
    bytes: [u8; PEEK_LIMIT],
    used: usize,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            bytes: [0; PEEK_LIMIT],
            used: 0,
        }
    }

    /// Receives at most `bytes[at..end]` with `flags` (and `MSG_DONTWAIT`), never waiting.
    fn recv(
        &mut self,
        stream: &StdStream,
        at: usize,
        end: usize,
        flags: MsgFlags,
    ) -> nix::Result<usize> {
        // The kernel may write the whole space offered before failing: wipe it all then.
        self.used = self.used.max(end);
        let n = socket::recv(
            stream.as_raw_fd(),
            &mut self.bytes[at..end],
            flags | MsgFlags::MSG_DONTWAIT,
        )?;
        self.used = self.used.max(at + n);
        Ok(n)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.bytes[..self.used].zeroize();
    }
}

/// Takes the `len` bytes (at most [`PEEK_LIMIT`]) of a peeked request out of the socket's
/// queue without waiting (they are there); false if they could not all be taken.
fn consume_now(stream: &StdStream, len: usize) -> bool {
    if len > PEEK_LIMIT {
        return false;
    }
    let mut scratch = Scratch::new();
    let mut taken = 0;
    while taken < len {
        // Never past the request: what follows it is the client's next request.
        match scratch.recv(stream, taken, len, MsgFlags::empty()) {
            Ok(0) => return false,
            Ok(n) => taken += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The first request of a connection when it is already queued whole and small (see
/// [`peek_frame`], which waits for it), and its length; `None` otherwise, nothing consumed.
fn peek_now(
    stream: &StdStream,
    limits: &bulwark_interface::wire::Limits,
) -> Option<(Result<RequestFrame, WireError>, usize)> {
    let mut scratch = Scratch::new();
    let n = scratch
        .recv(stream, 0, PEEK_LIMIT, MsgFlags::MSG_PEEK)
        .ok()?;
    match whole_frame_len(&scratch.bytes[..n], limits) {
        Peek::Whole(len) => {
            let frame = RequestFrame::parse(&scratch.bytes[..len], limits).map(|(frame, _)| frame);
            Some((frame, len))
        }
        Peek::Incomplete | Peek::Read => None,
    }
}

async fn write_all(stream: &mut UnixStream, bytes: &[u8], limit: Duration) -> bool {
    matches!(timeout(limit, stream.write_all(bytes)).await, Ok(Ok(())))
}

/// Largest request read by [`peek_frame`]: requests of this size or less (every signature,
/// verification, hash, key name or public key of usual size) can sit whole in a Unix socket's
/// queue, whatever the number of writes the client made of them.
const PEEK_LIMIT: usize = 4096;

/// Looks at the request queued on `stream` without taking it: the frame and its length once it
/// has arrived whole, or `None` when it is not a small, well-formed frame (larger than
/// [`PEEK_LIMIT`], refused by a header check or a limit, cut short by the end of the stream,
/// or not whole by `deadline`), which [`read_frame`] then reads and judges as usual (nothing
/// was consumed).
///
/// Why peek: taking bytes out of a Unix stream socket frees the sender's buffer space, which
/// wakes every thread sleeping on the sender's socket, and a client that wrote its request and
/// waits for the answer sleeps there. Its wake-up finds nothing to read and, on a busy machine,
/// preempts the daemon in the middle of the request. Consuming the request only after the
/// answer is written (see [`consume`]) frees the space when the client has already been woken
/// by the answer.
async fn peek_frame(
    stream: &UnixStream,
    limits: &bulwark_interface::wire::Limits,
    deadline: Instant,
) -> Option<(Result<RequestFrame, WireError>, usize)> {
    let mut buf = Zeroizing::new(vec![0u8; PEEK_LIMIT]);
    loop {
        let Ok(Ok(ready)) = timeout_at(deadline, stream.ready(Interest::READABLE)).await else {
            return None;
        };
        // An incomplete frame is reported as `WouldBlock`, which clears the socket's readiness:
        // the next wait then lasts until more bytes arrive (tokio clears only the readiness it
        // saw before the peek, so bytes arriving meanwhile are not missed).
        let peeked = stream.try_io(Interest::READABLE, || {
            let n = socket::recv(stream.as_raw_fd(), &mut buf, MsgFlags::MSG_PEEK)
                .map_err(std::io::Error::from)?;
            match whole_frame_len(&buf[..n], limits) {
                Peek::Whole(len) => Ok(Some(len)),
                // Nothing more can come once the client has ended its stream.
                Peek::Incomplete if ready.is_read_closed() => Ok(None),
                Peek::Incomplete => Err(std::io::ErrorKind::WouldBlock.into()),
                Peek::Read => Ok(None),
            }
        });
        match peeked {
            Ok(Some(len)) => {
                let frame = RequestFrame::parse(&buf[..len], limits).map(|(frame, _)| frame);
                return Some((frame, len));
            }
            Ok(None) => return None,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return None,
        }
    }
}

/// What a peeked prefix of `n` bytes allows.
enum Peek {
    /// A whole frame of this many bytes.
    Whole(usize),
    /// A valid start of a small frame: wait for the rest.
    Incomplete,
    /// Anything else: read the request the usual way.
    Read,
}

fn whole_frame_len(prefix: &[u8], limits: &bulwark_interface::wire::Limits) -> Peek {
    if prefix.is_empty() {
        return Peek::Read; // The end of the stream.
    }
    let header = match RawHeader::parse_partial(&prefix[..prefix.len().min(HEADER_LEN)]) {
        Ok(Some(header)) => header,
        Ok(None) => return Peek::Incomplete,
        Err(_) => return Peek::Read,
    };
    if limits.check(&header).is_err() {
        return Peek::Read;
    }
    let len = HEADER_LEN + header.body_len as usize + usize::from(header.auth_len);
    if len > PEEK_LIMIT {
        Peek::Read
    } else if prefix.len() >= len {
        Peek::Whole(len)
    } else {
        Peek::Incomplete
    }
}

/// Takes the `len` bytes of a peeked request out of the socket's queue (they are there: this
/// does not wait); false if the stream failed.
async fn consume(stream: &mut UnixStream, len: usize, deadline: Instant) -> bool {
    if len == 0 {
        return true;
    }
    let mut scratch = Zeroizing::new(vec![0u8; len]);
    read_exact(stream, &mut scratch, deadline).await.is_ok()
}

/// Reads one frame: the header with the sans-IO checks applied as bytes arrive, then the body
/// and auth once their lengths passed the limits.
///
/// The whole frame must arrive by `deadline`: a client trickling its request
/// (a byte a second, say) is answered ConnectionError at that deadline, like one that sends
/// less than it announced, instead of holding its connection slot for as long as it likes.
/// `buf[..filled]` holds the start of the header when the caller already read it (the wait
/// between two requests on a kept-open connection).
async fn read_frame(
    stream: &mut (impl AsyncRead + Unpin),
    limits: &bulwark_interface::wire::Limits,
    deadline: Instant,
    mut buf: [u8; HEADER_LEN],
    mut filled: usize,
) -> Result<RequestFrame, WireError> {
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

#[cfg(test)]
mod tests {
    use bulwark_interface::ids::{AuthType, ProviderId};
    use bulwark_interface::ops::Opcode;
    use bulwark_interface::wire::{Limits, RequestHeader};

    use super::*;

    fn request(body_len: usize) -> Vec<u8> {
        RequestFrame {
            header: RequestHeader::new(ProviderId::Core, Opcode::Ping, AuthType::Direct),
            body: Zeroizing::new(vec![7; body_len]),
            auth: Zeroizing::new(b"app".to_vec()),
        }
        .to_bytes()
        .unwrap()
        .to_vec()
    }

    #[test]
    fn a_small_request_is_taken_once_whole_and_waited_for_until_then() {
        let bytes = request(100);
        let limits = Limits::default();
        for cut in 1..bytes.len() {
            assert!(
                matches!(whole_frame_len(&bytes[..cut], &limits), Peek::Incomplete),
                "{cut} bytes"
            );
        }
        assert!(matches!(
            whole_frame_len(&bytes, &limits),
            Peek::Whole(len) if len == bytes.len()
        ));
        // Bytes of a next request do not count.
        let mut two = bytes.clone();
        two.extend_from_slice(&bytes);
        assert!(matches!(
            whole_frame_len(&two, &limits),
            Peek::Whole(len) if len == bytes.len()
        ));
        let (frame, _) = RequestFrame::parse(&two[..bytes.len()], &limits).unwrap();
        assert_eq!(frame.body.len(), 100);
    }

    #[test]
    fn anything_else_is_read_the_usual_way() {
        let limits = Limits::default();
        // The end of the stream, a bad magic number, a body over the limit, a large request.
        assert!(matches!(whole_frame_len(&[], &limits), Peek::Read));
        assert!(matches!(
            whole_frame_len(&[0xde, 0xad, 0xbe, 0xef], &limits),
            Peek::Read
        ));
        let small = Limits {
            body_len: 10,
            ..limits
        };
        assert!(matches!(
            whole_frame_len(&request(100)[..HEADER_LEN], &small),
            Peek::Read
        ));
        let large = request(PEEK_LIMIT);
        assert!(matches!(whole_frame_len(&large, &limits), Peek::Read));
    }

    #[test]
    fn a_queued_request_is_peeked_then_taken_without_touching_the_next() {
        use std::io::{Read, Write};
        let (mut client, server) = StdStream::pair().unwrap();
        let limits = Limits::default();
        // Nothing queued yet: no waiting, nothing taken.
        assert!(peek_now(&server, &limits).is_none());
        let first = request(100);
        let second = request(7);
        client.write_all(&first[..10]).unwrap();
        assert!(peek_now(&server, &limits).is_none(), "a partial request");
        client.write_all(&first[10..]).unwrap();
        client.write_all(&second).unwrap();
        let (frame, len) = peek_now(&server, &limits).expect("queued whole");
        assert_eq!(len, first.len());
        assert_eq!(frame.unwrap().body.len(), 100);
        // Peeking took nothing: the same request again.
        let (_, again) = peek_now(&server, &limits).unwrap();
        assert_eq!(again, len);
        assert!(consume_now(&server, len));
        let (frame, len) = peek_now(&server, &limits).expect("the second request");
        assert_eq!((frame.unwrap().body.len(), len), (7, second.len()));
        // An answer written without waiting reaches the client whole.
        assert_eq!(send_now(&server, b"answer"), 6);
        let mut answer = [0u8; 6];
        client.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"answer");
    }
}
