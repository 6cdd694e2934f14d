//! The one step of socket activation that the `sd-notify` crate leaves to its caller: owning a
//! descriptor the service manager passed.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::sync::Mutex;

use nix::sys::socket::{getsockopt, sockopt};

/// Descriptors already taken: each passed descriptor gets one owner, or two owners would
/// close it twice.
static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());

/// Takes ownership of `fd`, which `sd_notify::listen_fds_with_names` reported as passed to
/// this process, and checks that it is a listening Unix stream socket.
pub(super) fn take_passed_listener(fd: RawFd) -> io::Result<UnixListener> {
    let mut taken = TAKEN
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if taken.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("passed descriptor {fd} is already in use"),
        ));
    }
    // SAFETY: `fd` comes from `sd_notify::listen_fds_with_names`, which returns only the
    // descriptors from 3 that the service manager passed to this very process (LISTEN_PID is
    // checked) and has just marked close-on-exec, so it is open. Nothing else in the process
    // opens or owns these descriptors (they are inherited, not allocated by the process), and
    // `TAKEN` makes this the only owner ever created for it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    taken.push(fd);
    drop(taken);
    let kind = getsockopt(&owned, sockopt::SockType).map_err(io::Error::from)?;
    let listening = getsockopt(&owned, sockopt::AcceptConn).map_err(io::Error::from)?;
    let listener = UnixListener::from(owned);
    // `local_addr` fails for a socket that is not AF_UNIX.
    let is_unix = listener.local_addr().is_ok();
    if kind != nix::sys::socket::SockType::Stream || !listening || !is_unix {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("passed descriptor {fd} is not a listening Unix stream socket"),
        ));
    }
    Ok(listener)
}
