//! A client for Parsec-compatible security services such as `bulwarkd`.
//!
//! [`Client::call`] sends any operation of the operations table to a provider and returns its
//! typed response; thin wrappers such as [`Client::ping`] sit on top of it.
//!
//! ```no_run
//! let client = bulwark_client::Client::from_env()?;
//! let (major, minor) = client.ping()?;
//! println!("wire protocol {major}.{minor}");
//! # Ok::<(), bulwark_client::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{self, Operation, Ping};
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame, WireError};
use bulwark_interface::BodyError;

/// The socket used when `PARSEC_SERVICE_ENDPOINT` is not set.
pub const DEFAULT_SOCKET_PATH: &str = "/run/parsec/parsec.sock";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error status.
    #[error("the service refused the request: {0}")]
    Service(ResponseStatus),
    /// The endpoint URI is not `unix:<path>`.
    #[error("invalid service endpoint {0:?}: expected unix:<socket path>")]
    InvalidEndpoint(String),
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source}; is the service running?")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The exchange failed or the response was malformed.
    #[error("communication with the service failed: {0}")]
    Wire(#[from] WireError),
    /// A body could not be encoded or decoded.
    #[error("bad message body: {0}")]
    Body(#[from] BodyError),
    /// The response does not answer the request that was sent.
    #[error("the service answered a different operation")]
    UnexpectedResponse,
}

/// How the client identifies itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No identity: only operations open to everyone work.
    None,
    /// Direct authentication with an application name.
    Direct(String),
    /// The process's uid, checked by the service against the socket peer.
    UnixPeerCredentials,
}

/// A connection factory to one service.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Option<Duration>,
    auth: Auth,
}

impl Client {
    /// A client for the socket at `socket`, without authentication and with a 60 s timeout.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
            timeout: Some(Duration::from_secs(60)),
            auth: Auth::None,
        }
    }

    /// A client for the endpoint in `PARSEC_SERVICE_ENDPOINT` (`unix:<path>`), or the default
    /// socket.
    ///
    /// # Errors
    /// [`Error::InvalidEndpoint`] when the variable is set but not a `unix:` URI.
    pub fn from_env() -> Result<Self, Error> {
        match std::env::var("PARSEC_SERVICE_ENDPOINT") {
            Ok(endpoint) => Ok(Client::new(socket_from_uri(&endpoint)?)),
            Err(_) => Ok(Client::new(DEFAULT_SOCKET_PATH)),
        }
    }

    /// Sets how the client identifies itself.
    pub fn with_auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the read and write timeout of each exchange (`None`: wait forever).
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Pings the service; returns the highest wire protocol version it speaks.
    ///
    /// # Errors
    /// Any [`Error`] of [`Client::call`].
    pub fn ping(&self) -> Result<(u8, u8), Error> {
        let response = self.call_as::<Ping>(ProviderId::Core, ops::ping::Request, &Auth::None)?;
        Ok((
            response.wire_protocol_version_maj,
            response.wire_protocol_version_min,
        ))
    }

    /// Sends operation `O` to `provider` with the client's identity.
    ///
    /// # Errors
    /// [`Error::Service`] with the status the service answered, or a local failure.
    pub fn call<O: Operation>(
        &self,
        provider: ProviderId,
        request: O::Request,
    ) -> Result<O::Response, Error> {
        self.call_as::<O>(provider, request, &self.auth)
    }

    fn call_as<O: Operation>(
        &self,
        provider: ProviderId,
        request: O::Request,
        auth: &Auth,
    ) -> Result<O::Response, Error> {
        let (auth_type, auth_bytes) = match auth {
            Auth::None => (AuthType::NoAuth, Vec::new()),
            Auth::Direct(name) => (AuthType::Direct, name.as_bytes().to_vec()),
            Auth::UnixPeerCredentials => (
                AuthType::UnixPeerCredentials,
                nix::unistd::getuid().as_raw().to_le_bytes().to_vec(),
            ),
        };
        let frame = RequestFrame {
            header: RequestHeader::new(provider, O::OPCODE, auth_type),
            body: ops::encode_request::<O>(request)?,
            auth: auth_bytes.into(),
        };
        let mut stream = UnixStream::connect(&self.socket).map_err(|source| Error::Connect {
            path: self.socket.clone(),
            source,
        })?;
        stream
            .set_read_timeout(self.timeout)
            .map_err(WireError::from)?;
        stream
            .set_write_timeout(self.timeout)
            .map_err(WireError::from)?;
        stream
            .write_all(&frame.to_bytes()?)
            .map_err(WireError::from)?;
        let response = ResponseFrame::read_from(&mut stream, usize::MAX)?;
        if !response.header.status.is_success() {
            return Err(Error::Service(response.header.status));
        }
        if response.header.opcode != O::OPCODE {
            return Err(Error::UnexpectedResponse);
        }
        Ok(ops::decode_response::<O>(&response.body)?)
    }
}

/// The socket path of a `unix:` endpoint URI (`unix:/p` and `unix:///p` both give `/p`).
fn socket_from_uri(uri: &str) -> Result<PathBuf, Error> {
    let path = uri
        .strip_prefix("unix://")
        .or_else(|| uri.strip_prefix("unix:"))
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| Error::InvalidEndpoint(uri.to_owned()))?;
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_uris_name_the_socket() {
        assert_eq!(
            socket_from_uri("unix:/tmp/s.sock").unwrap(),
            PathBuf::from("/tmp/s.sock")
        );
        assert_eq!(
            socket_from_uri("unix:///tmp/s.sock").unwrap(),
            PathBuf::from("/tmp/s.sock")
        );
        assert!(matches!(
            socket_from_uri("tcp://x"),
            Err(Error::InvalidEndpoint(_))
        ));
        assert!(matches!(
            socket_from_uri("unix:relative"),
            Err(Error::InvalidEndpoint(_))
        ));
    }
}
