//! The listening socket and the accept loop.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

use super::clients::Clients;
use super::connection::{peer_credentials, serve_connection, ConnectionLimits};
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

/// `listener` watched by the runtime for connections to accept, which are accepted without
/// being registered themselves (see [`accept_one`]).
fn unregistered(listener: UnixListener) -> Option<AsyncFd<std::os::unix::net::UnixListener>> {
    match listener.into_std().and_then(super::ffi::watch) {
        Ok(listener) => Some(listener),
        Err(error) => {
            tracing::error!(%error, "cannot watch the listening socket");
            None
        }
    }
}

/// The next connection of `listener`, not registered with the runtime: a connection whose
/// request has arrived whole by the time its task runs is answered and closed with plain
/// non-blocking system calls, and is never registered (see
/// [`serve_connection`](super::connection::serve_connection)).
async fn accept_one(
    listener: &AsyncFd<std::os::unix::net::UnixListener>,
) -> io::Result<std::os::unix::net::UnixStream> {
    loop {
        let mut ready = listener.readable().await?;
        if let Ok(accepted) = ready.try_io(|listener| listener.get_ref().accept()) {
            return accepted.map(|(stream, _)| stream);
        }
    }
}

/// Accepts and serves connections until `shutdown` completes, then waits for the
/// connections in progress to finish their current request; connections waiting between
/// requests are closed.
///
/// A listener received on `moves` replaces the current one (a reload that moved the socket):
/// the old listener is closed, so its socket accepts no more connections, and the connections
/// it accepted go on as before.
pub async fn serve(
    listener: UnixListener,
    mut moves: mpsc::UnboundedReceiver<UnixListener>,
    service: ServiceHandle,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) {
    let Some(mut listener) = unregistered(listener) else {
        return;
    };
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    let clients = Clients::new(
        limits.max_connections_per_client,
        limits.max_in_flight_per_client,
    );
    let mut last_accept_warning: Option<Instant> = None;
    let mut tasks = JoinSet::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // Take a connection slot before accepting, so a full daemon stops accepting rather
        // than accepting and dropping.
        let permit = tokio::select! {
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = accept_one(&listener) => accepted,
            Some(moved) = moves.recv() => {
                if let Some(moved) = unregistered(moved) {
                    listener = moved;
                }
                continue;
            }
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok(stream) => stream,
            Err(error) => {
                if last_accept_warning.is_none_or(|last| last.elapsed() >= ACCEPT_WARNING_INTERVAL)
                {
                    tracing::warn!(%error, "accept failed; retrying shortly");
                    last_accept_warning = Some(Instant::now());
                }
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        // The client is known before anything is read: its share is checked here, so a
        // connection over it costs nothing but the accept.
        let peer = match peer_credentials(&stream) {
            Ok(peer) => peer,
            Err(error) => {
                // Without credentials no authenticator can be trusted: drop, as upstream does.
                tracing::warn!(%error, "could not read peer credentials; closing connection");
                continue;
            }
        };
        let Some(client) = clients.admit(peer.uid) else {
            continue; // Dropping the stream closes it; `admit` logged why.
        };
        let service = service.clone();
        let in_flight = Arc::clone(&in_flight);
        let stop = stop_rx.clone();
        tasks.spawn(async move {
            let _open = crate::metrics::Occupancy::connection();
            serve_connection(
                stream,
                peer,
                client,
                service,
                in_flight,
                limits.connection,
                stop,
            )
            .await;
            drop(permit);
        });
        // Reap finished tasks so the set does not grow with the connection count.
        while tasks.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Drain: connections finish the request they are in; idle ones end at their timeout.
    while tasks.join_next().await.is_some() {}
}
