//! The one call of the front end that the runtime marks unsafe: watching the listening socket
//! for readiness without registering the connections it accepts.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::net::UnixListener;

use tokio::io::unix::AsyncFd;

/// `listener` (non-blocking), watched by the current runtime for connections to accept.
///
/// # Panics
/// Outside a runtime.
pub(super) fn watch(listener: UnixListener) -> io::Result<AsyncFd<UnixListener>> {
    // SAFETY: the runtime asks that the descriptor stay open, and the same, for as long as the
    // `AsyncFd` holds it. It does: `listener` owns its descriptor (closed only when the
    // listener is dropped, which only the `AsyncFd` can do from here on, after deregistering
    // it), and `as_raw_fd` of a `UnixListener` always returns that one descriptor.
    unsafe { AsyncFd::register(listener) }.map_err(io::Error::from)
}
