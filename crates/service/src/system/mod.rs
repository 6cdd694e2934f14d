//! Running as a system service: which configuration file is read, where the listening socket
//! comes from, and how many connections the open-file limit allows ([`descriptors`]).
//!
//! All three are decided once at start-up, here rather than in `bulwarkd`'s `main`, so that
//! they can be tested without a process of their own.
//!
//! - The configuration is the file given with `--config`; without it, the system-wide file
//!   [`DEFAULT_CONFIG_PATH`] when it exists; otherwise the embedded default. The choice is
//!   logged at start-up.
//! - The socket is the one the service manager passes (systemd socket activation:
//!   `LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`, descriptors from 3) when there is one, and
//!   is bound at `listener.socket_path` otherwise. A passed socket belongs to the service
//!   manager: bulwarkd neither removes its file at exit nor can move it on reload.
//! - The connections served at once are capped below the open-file limit, which is raised
//!   first ([`fit_connections`]).

pub mod descriptors;
mod ffi;

use std::fmt;
use std::io;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

use crate::front::{self, SocketGuard};

pub use descriptors::fit_connections;

/// The configuration file read when `--config` is not given and the file exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/parsec/config.toml";

/// Environment variable that replaces [`DEFAULT_CONFIG_PATH`] (an empty value: no default
/// file, the embedded default is used). Tests use it so that they never read the machine's
/// own configuration.
pub const DEFAULT_CONFIG_ENV: &str = "BULWARKD_DEFAULT_CONFIG";

/// The name (`FileDescriptorName=` in the socket unit) of the passed socket to serve on when
/// the service manager passes several; a single passed socket is used whatever its name.
pub const SOCKET_NAME: &str = "parsec";

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// The file named with `--config`.
    Argument(PathBuf),
    /// The system-wide file, found at its default path.
    DefaultFile(PathBuf),
    /// The embedded default: no `--config`, and no file at the default path.
    Embedded(Option<PathBuf>),
}

impl ConfigSource {
    /// Chooses the configuration: `argument` (from `--config`) if given, else the default
    /// file if it exists, else the embedded default. When the default file is chosen,
    /// `argument` is set to it, so that a reload reads the same file again.
    pub fn resolve(argument: &mut Option<PathBuf>) -> Self {
        if let Some(path) = argument {
            return ConfigSource::Argument(path.clone());
        }
        let default = match std::env::var_os(DEFAULT_CONFIG_ENV) {
            Some(value) if value.is_empty() => None,
            Some(value) => Some(PathBuf::from(value)),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)),
        };
        match default {
            Some(path) if path.exists() => {
                *argument = Some(path.clone());
                ConfigSource::DefaultFile(path)
            }
            other => ConfigSource::Embedded(other),
        }
    }

    /// The file read, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ConfigSource::Argument(path) | ConfigSource::DefaultFile(path) => Some(path),
            ConfigSource::Embedded(_) => None,
        }
    }
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::Argument(path) => write!(f, "configuration read from {}", path.display()),
            ConfigSource::DefaultFile(path) => write!(
                f,
                "configuration read from {} (the default file)",
                path.display()
            ),
            ConfigSource::Embedded(Some(path)) => write!(
                f,
                "embedded default configuration used (no --config, no {})",
                path.display()
            ),
            ConfigSource::Embedded(None) => {
                write!(f, "embedded default configuration used (no --config)")
            }
        }
    }
}

/// The listening socket, and where its file is and who owns it.
#[derive(Debug)]
pub struct Listening {
    /// The socket to accept connections on.
    pub listener: UnixListener,
    /// Its file; keep it for as long as the daemon serves.
    pub socket: SocketFile,
}

/// The file of the listening socket.
#[derive(Debug)]
pub struct SocketFile {
    /// Where it is.
    pub path: PathBuf,
    /// `None` when the service manager passed the socket (it owns the file); otherwise the
    /// guard that removes the file when the daemon stops.
    guard: Option<SocketGuard>,
}

impl SocketFile {
    /// Whether the service manager passed the socket (socket activation).
    pub fn is_activated(&self) -> bool {
        self.guard.is_none()
    }

    /// Why a reload cannot move a passed socket to `new_path`, for the log (a bound socket
    /// moves: see [`bind`]).
    pub fn path_change(&self, new_path: &Path) -> String {
        format!(
            "listener.socket_path changed to {}: the socket cannot move, the service manager \
             owns it (change the socket unit's ListenStream= instead)",
            new_path.display()
        )
    }
}

/// The socket to serve on: the one the service manager passed, if any, else one bound at
/// `socket_path` (see [`front::bind`]). Call it once, inside the runtime.
///
/// # Errors
/// The passed descriptors are not what socket activation promises (not a listening Unix
/// stream socket, several without one named [`SOCKET_NAME`]), or the socket cannot be bound.
pub fn listen(socket_path: &Path) -> io::Result<Listening> {
    if let Some((listener, name)) = activated_socket()? {
        listener.set_nonblocking(true)?;
        let path = listener
            .local_addr()?
            .as_pathname()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if path != socket_path {
            tracing::warn!(
                "the service manager passed the socket {} (\"{name}\"), not listener.socket_path \
                 {}: serving on the passed one",
                path.display(),
                socket_path.display()
            );
        }
        tracing::info!(socket = %path.display(), "listening on the socket passed by the service manager");
        return Ok(Listening {
            listener: UnixListener::from_std(listener)?,
            socket: SocketFile { path, guard: None },
        });
    }
    bind(socket_path)
}

/// A socket bound at `socket_path` (see [`front::bind`]), whose file is removed when its
/// [`SocketFile`] is dropped: the start-up socket without socket activation, and the socket a
/// reload moves to.
///
/// # Errors
/// The socket cannot be bound.
pub fn bind(socket_path: &Path) -> io::Result<Listening> {
    let (listener, guard) = front::bind(socket_path)?;
    Ok(Listening {
        listener,
        socket: SocketFile {
            path: socket_path.to_path_buf(),
            guard: Some(guard),
        },
    })
}

/// The socket passed by the service manager to this process, with its name.
fn activated_socket() -> io::Result<Option<(StdUnixListener, String)>> {
    // The variables are left in place (changing the environment of a threaded process is not
    // safe); they name this process in LISTEN_PID, so no child could take them for its own.
    let passed: Vec<_> = sd_notify::listen_fds_with_names(false)?.collect();
    let chosen = match passed.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        several => several
            .iter()
            .find(|(_, name)| name == SOCKET_NAME)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = several.iter().map(|(_, n)| n.as_str()).collect();
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "the service manager passed {} sockets ({}) and none is named \
                         \"{SOCKET_NAME}\" (FileDescriptorName=)",
                        several.len(),
                        names.join(", ")
                    ),
                )
            })?,
    };
    let (fd, name) = chosen;
    Ok(Some((ffi::take_passed_listener(fd)?, name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argument_wins_over_the_default_file() {
        let mut argument = Some(PathBuf::from("/somewhere/config.toml"));
        let source = ConfigSource::resolve(&mut argument);
        assert_eq!(
            source,
            ConfigSource::Argument(PathBuf::from("/somewhere/config.toml"))
        );
        assert_eq!(source.path(), Some(Path::new("/somewhere/config.toml")));
        assert_eq!(argument, Some(PathBuf::from("/somewhere/config.toml")));
    }

    #[test]
    fn a_bound_socket_is_ours_and_a_passed_one_cannot_move() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let bound = listen(&dir.path().join("s.sock")).unwrap().socket;
            // A bound socket moves on reload (bulwarkd binds the new path); its file is ours.
            assert!(!bound.is_activated());
            assert!(dir.path().join("s.sock").exists());
            drop(bound);
            assert!(
                !dir.path().join("s.sock").exists(),
                "our socket file is removed"
            );
            let passed = SocketFile {
                path: dir.path().join("p.sock"),
                guard: None,
            };
            assert!(passed
                .path_change(Path::new("/elsewhere"))
                .contains("cannot move"));
        });
    }
}
