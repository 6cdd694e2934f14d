//! Connections to the service: a small pool of idle connections, reused when the service says
//! it keeps them open, and a connection per request when it does not.
//!
//! # Reuse
//!
//! The Parsec wire protocol answers one request per connection and then closes it. Keeping a
//! connection open is an opt-in, per request, through the header's `flags`
//! ([`FLAG_KEEP_OPEN`]):
//!
//! 1. With reuse on, every request carries [`FLAG_KEEP_OPEN`]. `bulwarkd` answers with the same
//!    bit when it keeps the connection open for another request, and without it when it closes
//!    the connection after the answer (reuse turned off in its configuration, or stopping). The
//!    upstream Parsec service never reads the field and always answers 0. So each answer says
//!    for certain whether its connection may be used again: only then does it go back to the
//!    pool. Against an upstream service every request gets a fresh connection, with no guessing
//!    and no request sent twice.
//! 2. A request takes the most recently used idle connection, if any, and first *probes* it: a
//!    non-blocking peek. End of stream means the service closed it while it sat idle (its idle
//!    timeout, `listener.idle_timeout` for `bulwarkd`); the connection is dropped before
//!    anything was sent, and the next one is tried.
//! 3. The request is written with `MSG_NOSIGNAL` (no `SIGPIPE`) and the answer read.
//! 4. Only when the connection had been reused and the service is found to have closed it
//!    *before it could have processed the request* (its idle timeout struck between the probe
//!    and the write) is the request sent again, on a fresh connection. "Before it could have
//!    processed" is: the write failed with `EPIPE`, `ECONNRESET` or `ENOTCONN` and no answer is
//!    waiting; or the read ended (end of stream or `ECONNRESET`) before a single byte of the
//!    answer arrived. A failure on a fresh connection, a timeout, or a failure after any byte of
//!    the answer is never retried.
//!
//! The one remaining ambiguity is a reused connection on which the service read the whole
//! request and then closed without answering (it crashed while handling it): the end of
//! stream looks like case 4, and the request is sent once more on a fresh connection.
//!
//! The pool is a `Mutex<Vec<_>>` locked only to take or return a connection, never across I/O;
//! concurrent requests use separate connections.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bulwark_interface::ops::Opcode;
use bulwark_interface::wire::{RawHeader, ResponseFrame, WireError, FLAG_KEEP_OPEN, HEADER_LEN};
use nix::errno::Errno;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};

/// Socket timeouts are re-armed only when they differ from the time left by more than this.
const TIMEOUT_SLACK: Duration = Duration::from_millis(10);

/// Size of the first read of an answer: most answers fit in one read.
const FIRST_READ: usize = 4096;

/// What the transport is configured with.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    pub socket: PathBuf,
    pub timeout: Option<Duration>,
    pub max_response_body: usize,
    pub reuse: bool,
    pub max_idle: usize,
}

/// Counters of the connections a client used.
///
/// ```no_run
/// let client = bulwark_client::Client::builder().app_name("my-app").build()?;
/// for _ in 0..100 {
///     client.ping()?;
/// }
/// let stats = client.connection_stats();
/// println!("{} connections for {} reuses", stats.opened, stats.reused);
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Connections opened so far.
    pub opened: u64,
    /// Requests sent on a connection that had already served one.
    pub reused: u64,
    /// Requests sent again on a fresh connection because the reused one had been closed by
    /// the service before it could process them.
    pub retried: u64,
    /// Idle connections found closed by the service (dropped before anything was sent).
    pub found_closed: u64,
    /// Idle connections in the pool now.
    pub idle: usize,
    /// Whether the client opens a connection per request: reuse was turned off, or the
    /// service's last answer said it closes the connection after it.
    pub per_request: bool,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    reused: AtomicU64,
    retried: AtomicU64,
    found_closed: AtomicU64,
}

/// The connections to one service.
#[derive(Debug)]
pub(crate) struct Transport {
    config: TransportConfig,
    /// Whether the service's last answer said it closes its connection after it.
    closes_after_answer: AtomicBool,
    idle: Mutex<Vec<Conn>>,
    counters: Counters,
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    /// The read/write timeout currently set on the socket.
    armed: Option<Duration>,
}

/// How an exchange on one connection failed.
enum Failure {
    /// The service closed the connection before it could have processed the request.
    ClosedBeforeProcessing,
    /// Anything else: reported as is.
    Fatal(Error),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Fatal(error)
    }
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Self {
        Transport {
            config,
            closes_after_answer: AtomicBool::new(false),
            idle: Mutex::new(Vec::new()),
            counters: Counters::default(),
        }
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.config.socket
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.config.timeout
    }

    fn reuse(&self) -> bool {
        self.config.reuse && self.config.max_idle > 0
    }

    fn per_request(&self) -> bool {
        !self.reuse() || self.closes_after_answer.load(Ordering::Relaxed)
    }

    /// The header `flags` of every request: [`FLAG_KEEP_OPEN`] when connections are reused.
    pub(crate) fn request_flags(&self) -> u16 {
        if self.reuse() {
            FLAG_KEEP_OPEN
        } else {
            0
        }
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            opened: self.counters.opened.load(Ordering::Relaxed),
            reused: self.counters.reused.load(Ordering::Relaxed),
            retried: self.counters.retried.load(Ordering::Relaxed),
            found_closed: self.counters.found_closed.load(Ordering::Relaxed),
            idle: self.lock_idle().len(),
            per_request: self.per_request(),
        }
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        // The pool holds no invariant a panic could break: keep using it.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends one request and returns the answer, reusing a connection when possible.
    ///
    /// The connection goes back to the pool only when the answer carries [`FLAG_KEEP_OPEN`],
    /// echoes `opcode` (the request's) and is all the stream held.
    pub(crate) fn exchange(&self, request: &[u8], opcode: Opcode) -> Result<ResponseFrame, Error> {
        let deadline = self.config.timeout.map(|t| Instant::now() + t);
        loop {
            let (mut conn, reused) = match self.take_idle() {
                Some(conn) => (conn, true),
                None => (self.connect(deadline)?, false),
            };
            if reused {
                self.counters.reused.fetch_add(1, Ordering::Relaxed);
            }
            match conn.exchange(request, deadline, &self.config) {
                Ok((response, clean)) => {
                    let keeps_open = response.header.keeps_open();
                    self.closes_after_answer
                        .store(!keeps_open, Ordering::Relaxed);
                    if keeps_open && clean && response.header.opcode == opcode {
                        self.put_idle(conn);
                    }
                    return Ok(response);
                }
                Err(Failure::ClosedBeforeProcessing) if reused => {
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                }
                Err(Failure::ClosedBeforeProcessing) => {
                    return Err(Error::new(ErrorKind::ConnectionLost)
                        .with_detail("the service closed the connection without answering"));
                }
                Err(Failure::Fatal(error)) => {
                    if error.kind() == ErrorKind::Timeout {
                        return Err(Error::timeout(self.config.timeout));
                    }
                    return Err(error);
                }
            }
        }
    }

    /// The most recently used idle connection that is still open, if any.
    fn take_idle(&self) -> Option<Conn> {
        loop {
            let conn = self.lock_idle().pop()?;
            match conn.probe() {
                Probe::Open => return Some(conn),
                Probe::Closed => {
                    self.counters.found_closed.fetch_add(1, Ordering::Relaxed);
                }
                Probe::Unusable => {}
            }
        }
    }

    fn put_idle(&self, conn: Conn) {
        if self.per_request() {
            return;
        }
        let mut idle = self.lock_idle();
        if idle.len() < self.config.max_idle {
            idle.push(conn);
        }
    }

    fn connect(&self, deadline: Option<Instant>) -> Result<Conn, Error> {
        let socket = &self.config.socket;
        let connect_error = |e: io::Error| {
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                Error::timeout(self.config.timeout)
            } else {
                Error::new(ErrorKind::Connect)
                    .with_socket(socket)
                    .with_io(e)
            }
        };
        let fd: OwnedFd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| connect_error(e.into()))?;
        let stream = UnixStream::from(fd);
        let mut conn = Conn {
            stream,
            armed: None,
        };
        // The send timeout also bounds `connect` when the service's backlog is full.
        conn.arm(deadline).map_err(connect_error)?;
        let address = UnixAddr::new(socket.as_path()).map_err(|e| connect_error(e.into()))?;
        loop {
            match socket::connect(conn.stream.as_raw_fd(), &address) {
                Ok(()) | Err(Errno::EISCONN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(connect_error(e.into())),
            }
        }
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }
}

enum Probe {
    Open,
    Closed,
    Unusable,
}

impl Conn {
    /// Whether the service closed this idle connection (without blocking or consuming).
    fn probe(&self) -> Probe {
        let mut byte = [0u8; 1];
        match socket::recv(
            self.stream.as_raw_fd(),
            &mut byte,
            MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
        ) {
            Err(Errno::EAGAIN) => Probe::Open,
            Ok(0) | Err(Errno::ECONNRESET) => Probe::Closed,
            // Unsolicited bytes or a socket error: the stream cannot be trusted.
            Ok(_) | Err(_) => Probe::Unusable,
        }
    }

    /// Sets the socket's read and write timeouts to the time left, unless they are close
    /// enough already (one pair of system calls per connection in the common case).
    fn arm(&mut self, deadline: Option<Instant>) -> io::Result<()> {
        let Some(deadline) = deadline else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        if self
            .armed
            .is_some_and(|armed| armed.abs_diff(left) <= TIMEOUT_SLACK)
        {
            return Ok(());
        }
        self.stream.set_read_timeout(Some(left))?;
        self.stream.set_write_timeout(Some(left))?;
        self.armed = Some(left);
        Ok(())
    }

    /// Writes the request and reads one answer. `Ok((answer, clean))`: `clean` is false when
    /// the stream holds bytes past the answer or the service stopped reading the request, so the
    /// connection must not be reused.
    fn exchange(
        &mut self,
        request: &[u8],
        deadline: Option<Instant>,
        config: &TransportConfig,
    ) -> Result<(ResponseFrame, bool), Failure> {
        let write_failed = match self.write_all(request, deadline) {
            Ok(()) => false,
            Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => true,
            Err(Errno::EAGAIN) => return Err(Error::new(ErrorKind::Timeout).into()),
            Err(e) => {
                return Err(Error::new(ErrorKind::ConnectionLost)
                    .with_io(e.into())
                    .into())
            }
        };
        // After a failed write the service may still have answered (it refuses an oversized
        // request after its header, then closes): read what is there.
        let (response, clean) = self.read_response(deadline, config.max_response_body)?;
        Ok((response, clean && !write_failed))
    }

    fn write_all(&mut self, mut bytes: &[u8], deadline: Option<Instant>) -> Result<(), Errno> {
        while !bytes.is_empty() {
            self.arm(deadline).map_err(|_| Errno::EAGAIN)?;
            match socket::send(self.stream.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL) {
                Ok(0) => return Err(Errno::EPIPE),
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads one answer into a buffer that is wiped when dropped, applying the header checks
    /// as bytes arrive and the body limit before the body is read.
    fn read_response(
        &mut self,
        deadline: Option<Instant>,
        max_body: usize,
    ) -> Result<(ResponseFrame, bool), Failure> {
        let mut buf = Zeroizing::new(vec![0u8; FIRST_READ]);
        let mut filled = 0usize;
        let mut total: Option<usize> = None;
        loop {
            if total.is_some_and(|t| filled >= t) {
                break;
            }
            self.arm(deadline)
                .map_err(|_| Error::new(ErrorKind::Timeout))?;
            let n = match self.stream.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Error::new(ErrorKind::Timeout).into())
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset && filled == 0 => {
                    return Err(Failure::ClosedBeforeProcessing)
                }
                Err(e) => return Err(Error::new(ErrorKind::ConnectionLost).with_io(e).into()),
            };
            if n == 0 {
                if filled == 0 {
                    return Err(Failure::ClosedBeforeProcessing);
                }
                return Err(Error::new(ErrorKind::ConnectionLost)
                    .with_detail(format!(
                        "the service closed the connection after {filled} bytes of its answer"
                    ))
                    .into());
            }
            filled += n;
            if total.is_none() {
                let header = RawHeader::parse_partial(&buf[..filled]).map_err(Error::from_wire)?;
                let Some(header) = header else { continue };
                let body = header.body_len as usize;
                if body > max_body {
                    return Err(Error::from_wire(WireError::BodyTooLarge {
                        len: header.body_len,
                        limit: max_body,
                    })
                    .into());
                }
                let t = HEADER_LEN + body + usize::from(header.auth_len);
                if t > buf.len() {
                    // Grow into a fresh buffer so that no copy of the bytes is left unwiped.
                    let mut bigger = Zeroizing::new(vec![0u8; t]);
                    bigger[..filled].copy_from_slice(&buf[..filled]);
                    buf = bigger;
                }
                total = Some(t);
            }
        }
        let total = total.unwrap_or(filled);
        let (response, _) =
            ResponseFrame::parse(&buf[..total], max_body).map_err(Error::from_wire)?;
        // Bytes past the answer mean the stream is out of step: do not reuse it.
        Ok((response, filled == total))
    }
}

/// The socket path of a `unix:` endpoint URI: `unix:/p` and `unix:///p` both give `/p`.
pub(crate) fn socket_from_uri(uri: &str) -> Result<PathBuf, Error> {
    let invalid = || Error::new(ErrorKind::InvalidEndpoint).with_detail(uri);
    let path = uri
        .strip_prefix("unix://")
        .or_else(|| uri.strip_prefix("unix:"))
        .filter(|p| p.starts_with('/'))
        .ok_or_else(invalid)?;
    let path = percent_decode(path).ok_or_else(invalid)?;
    Ok(PathBuf::from(path))
}

/// Decodes `%XX` escapes, as a URI path may hold them.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hi = (bytes.next()? as char).to_digit(16)?;
            let lo = (bytes.next()? as char).to_digit(16)?;
            out.push(u8::try_from(hi * 16 + lo).ok()?);
        } else if b == b'?' || b == b'#' {
            break;
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}
