//! The listening socket and the accept loop.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixListener as StdListener;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use nix::sys::socket;
use tokio::net::UnixListener;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use super::clients::Clients;
use super::connection::{peer_credentials, serve_now, serve_rest, ConnectionLimits, Context, Held};
use crate::service::Service;

/// The service currently answering requests; replaced as a whole on reload, so requests in
/// flight finish on the service they started with.
#[derive(Debug, Clone)]
pub struct ServiceHandle(Arc<RwLock<Arc<Service>>>);

impl ServiceHandle {
    /// A handle on `service`.
    pub fn new(service: Service) -> Self {
        ServiceHandle(Arc::new(RwLock::new(Arc::new(service))))
    }

    /// The service new requests go to.
    pub fn current(&self) -> Arc<Service> {
        match self.0.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Makes `service` answer every request from now on.
    pub fn replace(&self, service: Service) {
        let service = Arc::new(service);
        match self.0.write() {
            Ok(mut guard) => *guard = service,
            Err(poisoned) => *poisoned.into_inner() = service,
        }
    }
}

/// Removes the socket file when dropped, so a stopped daemon leaves no stale socket.
#[derive(Debug)]
pub struct SocketGuard {
    path: PathBuf,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the service socket at `path`.
///
/// A socket file left by a daemon that is gone is replaced; a socket another daemon still
/// answers on, or a file that is not a socket, is an error. The parent directory is created
/// if missing and the socket is made connectable by every local user (mode 0666): access
/// control is the authenticator's job, as upstream.
///
/// # Errors
/// The path is in use or cannot be bound.
pub fn bind(path: &Path) -> io::Result<(UnixListener, SocketGuard)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!(
                        "{}: another service is answering on this socket",
                        path.display()
                    ),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ));
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.exists() {
            // Created here, the directory must let every local user reach the socket.
            std::fs::create_dir_all(parent)?;
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok((
        listener,
        SocketGuard {
            path: path.to_owned(),
        },
    ))
}

/// After a failed `accept` (out of file descriptors, typically), wait this long before the
/// next: the failing connection stays pending, and retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning about failed accepts per this interval.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(1);

/// Limits of the accept loop (see the [module documentation](super) for the whole design).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests handed to providers at once; further ones wait for a slot.
    pub max_in_flight: usize,
    /// Connections one client (peer uid) may have open at once; a further one is closed as soon
    /// as it is accepted, unanswered, with a warning.
    pub max_connections_per_client: usize,
    /// Requests of one client (peer uid) handed to providers at once; further ones wait for
    /// one of them to finish.
    pub max_in_flight_per_client: usize,
    /// Per-connection timeouts.
    pub connection: ConnectionLimits,
}

/// What the accepting threads share with each other and with [`serve`].
struct Front {
    /// The socket connections are accepted on; replaced when a reload moves it.
    listener: RwLock<Arc<StdListener>>,
    service: ServiceHandle,
    limits: ServeLimits,
    /// A slot per connection served, taken before accepting.
    connections: Arc<Semaphore>,
    in_flight: Arc<Semaphore>,
    clients: Arc<Clients>,
    stop: watch::Receiver<bool>,
    runtime: Handle,
    last_accept_warning: Mutex<Option<Instant>>,
}

impl Front {
    fn listener(&self) -> Arc<StdListener> {
        Arc::clone(&self.listener.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// A connection slot, waiting for one when the daemon is full; `None` once stopping.
    fn connection_slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.connections).try_acquire_owned() {
            return Some(permit);
        }
        let connections = Arc::clone(&self.connections);
        let mut stop = self.stop.clone();
        self.runtime.block_on(async move {
            tokio::select! {
                permit = connections.acquire_owned() => permit.ok(),
                _ = stop.wait_for(|stopping| *stopping) => None,
            }
        })
    }

    fn warn_accept_failed(&self, error: &io::Error) {
        let mut last = self
            .last_accept_warning
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|last| last.elapsed() >= ACCEPT_WARNING_INTERVAL) {
            tracing::warn!(%error, "accept failed; retrying shortly");
            *last = Some(Instant::now());
        }
    }

    /// One accepting thread: accepts connections and serves each as far as it goes without
    /// waiting (see [`serve_now`]); the rest of a connection becomes a task on the runtime.
    fn accept_loop(&self) {
        loop {
            // Take a connection slot before accepting, so a full daemon stops accepting rather
            // than accepting and dropping.
            let Some(permit) = self.connection_slot() else {
                return;
            };
            let listener = self.listener();
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                // The listener was shut down: the daemon is stopping or the socket moved.
                Err(_) if self.stopping() => return,
                Err(_) if !Arc::ptr_eq(&listener, &self.listener()) => continue,
                Err(error) => {
                    self.warn_accept_failed(&error);
                    std::thread::sleep(ACCEPT_BACKOFF);
                    continue;
                }
            };
            // The client is known before anything is read: its share is checked here, so a
            // connection over it costs nothing but the accept.
            let peer = match peer_credentials(&stream) {
                Ok(peer) => peer,
                Err(error) => {
                    // Without credentials no authenticator can be trusted: drop, as upstream
                    // does.
                    tracing::warn!(%error, "could not read peer credentials; closing connection");
                    continue;
                }
            };
            let Some(client) = self.clients.admit(peer.uid) else {
                continue; // Dropping the stream closes it; `admit` logged why.
            };
            let context = Context {
                peer,
                client,
                in_flight: Arc::clone(&self.in_flight),
                limits: self.limits.connection,
                stop: self.stop.clone(),
                _held: Held {
                    _slot: permit,
                    _open: crate::metrics::Occupancy::connection(),
                },
            };
            // A panic here (there should be none: requests are answered under
            // `catch_unwind`) loses one connection, never the thread.
            let served = std::panic::catch_unwind(AssertUnwindSafe(|| {
                serve_now(stream, context, &self.service, &|rest| {
                    self.runtime.spawn(serve_rest(rest));
                });
            }));
            if served.is_err() {
                tracing::error!("a connection's answer panicked; the connection is closed");
            }
        }
    }
}

/// Shuts `listener` down for reading: it refuses further connections, and every thread blocked
/// in `accept` on it returns (with `EINVAL`) once the connections already queued are taken.
fn shut(listener: &StdListener) {
    let _ = socket::shutdown(listener.as_raw_fd(), socket::Shutdown::Read);
}

/// How many threads accept connections: one per CPU, so that every core can answer requests,
/// at most 64.
fn acceptor_count() -> usize {
    std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2)
        .clamp(1, 64)
}

/// Accepts and serves connections until `shutdown` completes, then waits for the
/// connections in progress to finish their current request; connections waiting between
/// requests are closed.
///
/// Connections are accepted by threads of their own, one per CPU, each blocked in `accept` on
/// the listening socket (the kernel wakes one of them per connection). A connection whose
/// request is already there whole and cheap is answered and closed on that thread, and never
/// meets the runtime; any other goes on as a task.
///
/// A listener received on `moves` replaces the current one (a reload that moved the socket):
/// the old listener is shut down, so its socket accepts no more connections, and the
/// connections it accepted go on as before.
///
/// # Panics
/// Outside a runtime.
pub async fn serve(
    listener: UnixListener,
    mut moves: mpsc::UnboundedReceiver<UnixListener>,
    service: ServiceHandle,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let Some(listener) = blocking(listener) else {
        return;
    };
    let max_connections = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let threads = acceptor_count();
    let (stop_tx, stop_rx) = watch::channel(false);
    let front = Arc::new(Front {
        listener: RwLock::new(Arc::new(listener)),
        service,
        limits,
        connections: Arc::new(Semaphore::new(max_connections)),
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
        clients: Clients::new(
            limits.max_connections_per_client,
            limits.max_in_flight_per_client,
            threads,
        ),
        stop: stop_rx,
        runtime: Handle::current(),
        last_accept_warning: Mutex::new(None),
    });
    let mut acceptors = Vec::new();
    for index in 0..threads {
        let front = Arc::clone(&front);
        match std::thread::Builder::new()
            .name(format!("bulwarkd-accept-{index}"))
            .spawn(move || front.accept_loop())
        {
            Ok(thread) => acceptors.push(thread),
            Err(error) => tracing::error!(%error, "cannot start an accepting thread"),
        }
    }
    if acceptors.is_empty() {
        return;
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(moved) = moves.recv() => {
                if let Some(moved) = blocking(moved) {
                    let old = std::mem::replace(
                        &mut *front.listener.write().unwrap_or_else(PoisonError::into_inner),
                        Arc::new(moved),
                    );
                    shut(&old);
                }
            }
            () = &mut shutdown => break,
        }
    }
    let _ = stop_tx.send(true);
    shut(&front.listener());
    // The accepting threads return once the listener is shut down (or their wait for a
    // connection slot sees the stop).
    let _ = tokio::task::spawn_blocking(move || {
        for thread in acceptors {
            let _ = thread.join();
        }
    })
    .await;
    // Drain: connections finish the request they are in; idle ones end at their timeout. Each
    // holds a connection slot until it ends: all slots back means all connections ended.
    let _ = front
        .connections
        .acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX))
        .await;
}

/// `listener` in blocking mode, for the accepting threads.
fn blocking(listener: UnixListener) -> Option<StdListener> {
    match listener.into_std().and_then(|listener| {
        listener.set_nonblocking(false)?;
        Ok(listener)
    }) {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::error!(%error, "cannot use the listening socket");
            None
        }
    }
}
