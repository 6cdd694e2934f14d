//! [`Error`]: why a call failed, what it was doing, and what to do about it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::WireError;
use bulwark_interface::BodyError;

/// What kind of failure an [`Error`] is.
///
/// [`ErrorKind::Service`] is the only kind the service itself chose; every other kind was
/// detected by the client. New kinds may be added: match with a wildcard arm.
///
/// ```no_run
/// use bulwark_client::{Client, ErrorKind, ResponseStatus};
///
/// let client = Client::builder().app_name("my-app").build()?;
/// match client.export_public_key("device-key") {
///     Ok(public_key) => println!("{} bytes", public_key.len()),
///     Err(e) if e.kind() == ErrorKind::Service(ResponseStatus::PsaErrorDoesNotExist) => {
///         println!("no such key yet")
///     }
///     Err(e) => return Err(e),
/// }
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The service received the request and answered with this error status.
    Service(ResponseStatus),
    /// The endpoint (`PARSEC_SERVICE_ENDPOINT` or the one given in code) is not a `unix:` URI
    /// with an absolute path.
    InvalidEndpoint,
    /// The service's socket could not be reached (missing, nobody listening, no permission).
    Connect,
    /// The service did not answer within the client's timeout.
    Timeout,
    /// The connection failed or was closed by the service before the answer was complete.
    ConnectionLost,
    /// The service's answer does not follow the wire protocol, or answers another request.
    Protocol,
    /// The answer is larger than the client's response size limit.
    ResponseTooLarge,
    /// A request could not be encoded, or an answer's body could not be decoded.
    Encoding,
    /// The service authenticates applications by name (Direct) and the client was given none.
    MissingAppName,
    /// The service offers no authenticator this client can use.
    NoAuthenticator,
    /// The token of [`Auth::Token`](crate::Auth::Token) or
    /// [`Auth::JwtSvid`](crate::Auth::JwtSvid) could not be obtained (unreadable or empty
    /// file, failed callback); nothing was sent.
    Credentials,
    /// The provider the call needs is not available (no crypto provider, or no TPM provider
    /// for attestation).
    NoProvider,
    /// No key of that name is visible to this application (found by the client, through
    /// ListKeys).
    KeyNotFound,
    /// The call cannot be made with these arguments (for example a key whose policy names no
    /// algorithm the convenience call can use).
    InvalidArgument,
}

/// Why a call failed.
///
/// An opaque error: [`Error::kind`] tells what kind of failure it is, [`Error::status`] the
/// status the service answered (if it did), and `Display` says what went wrong and what to do
/// about it.
///
/// ```no_run
/// let client = bulwark_client::Client::builder().app_name("my-app").build()?;
/// if let Err(error) = client.destroy_key("never-created") {
///     eprintln!("{error}"); // no key named "never-created" for this application: ...
///     assert!(error.is_key_not_found());
/// }
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    opcode: Option<Opcode>,
    key: Option<String>,
    socket: Option<PathBuf>,
    detail: Option<String>,
    source: Option<Source>,
}

enum Source {
    Io(io::Error),
    Wire(WireError),
    Body(BodyError),
}

/// A `Result` whose error is the client's [`Error`].
///
/// ```no_run
/// fn random_seed(client: &bulwark_client::Client) -> bulwark_client::Result<Vec<u8>> {
///     Ok(client.generate_random(32)?.to_vec())
/// }
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error(Box::new(Inner {
            kind,
            opcode: None,
            key: None,
            socket: None,
            detail: None,
            source: None,
        }))
    }

    pub(crate) fn service(status: ResponseStatus) -> Self {
        Error::new(ErrorKind::Service(status))
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.0.detail = Some(detail.into());
        self
    }

    pub(crate) fn with_socket(mut self, socket: &Path) -> Self {
        self.0.socket = Some(socket.to_path_buf());
        self
    }

    pub(crate) fn with_opcode(mut self, opcode: Opcode) -> Self {
        self.0.opcode.get_or_insert(opcode);
        self
    }

    pub(crate) fn with_key(mut self, key: &str) -> Self {
        self.0.key.get_or_insert_with(|| key.to_owned());
        self
    }

    pub(crate) fn with_io(mut self, error: io::Error) -> Self {
        self.0.source = Some(Source::Io(error));
        self
    }

    pub(crate) fn from_wire(error: WireError) -> Self {
        let kind = match error {
            WireError::Closed | WireError::Io(_) => ErrorKind::ConnectionLost,
            WireError::BodyTooLarge { .. } => ErrorKind::ResponseTooLarge,
            _ => ErrorKind::Protocol,
        };
        let mut e = Error::new(kind);
        e.0.source = Some(Source::Wire(error));
        e
    }

    pub(crate) fn from_body(error: BodyError) -> Self {
        let mut e = Error::new(ErrorKind::Encoding);
        e.0.source = Some(Source::Body(error));
        e
    }

    pub(crate) fn timeout(limit: Option<Duration>) -> Self {
        let e = Error::new(ErrorKind::Timeout);
        match limit {
            Some(limit) => e.with_detail(format!("{limit:?}")),
            None => e,
        }
    }

    /// What kind of failure this is.
    ///
    /// ```no_run
    /// # let client = bulwark_client::Client::builder().app_name("a").build()?;
    /// use bulwark_client::ErrorKind;
    /// match client.ping() {
    ///     Err(e) if e.kind() == ErrorKind::Connect => eprintln!("is bulwarkd running?"),
    ///     other => println!("{other:?}"),
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The status the service answered, when the service refused the request
    /// ([`ErrorKind::Service`]); `None` for failures the client detected.
    ///
    /// ```no_run
    /// # let client = bulwark_client::Client::builder().app_name("a").build()?;
    /// use bulwark_client::ResponseStatus;
    /// if let Err(error) = client.list_clients() {
    ///     assert_eq!(error.status(), Some(ResponseStatus::AdminOperation));
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn status(&self) -> Option<ResponseStatus> {
        match self.0.kind {
            ErrorKind::Service(status) => Some(status),
            _ => None,
        }
    }

    /// The operation that failed, when the failure belongs to one.
    ///
    /// ```no_run
    /// # let client = bulwark_client::Client::builder().app_name("a").build()?;
    /// if let Err(error) = client.export_key("k") {
    ///     println!("{:?}", error.opcode()); // Some(PsaExportKey)
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn opcode(&self) -> Option<Opcode> {
        self.0.opcode
    }

    /// The key the failed call was about, when it named one.
    ///
    /// ```no_run
    /// # let client = bulwark_client::Client::builder().app_name("a").build()?;
    /// if let Err(error) = client.export_key("k") {
    ///     assert_eq!(error.key_name(), Some("k"));
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn key_name(&self) -> Option<&str> {
        self.0.key.as_deref()
    }

    /// Whether the failure means "this application has no key of that name": either the client
    /// found none ([`ErrorKind::KeyNotFound`]) or the service answered `PsaErrorDoesNotExist` to
    /// an operation on a named key.
    ///
    /// ```no_run
    /// # let client = bulwark_client::Client::builder().app_name("a").build()?;
    /// match client.destroy_key("old-key") {
    ///     Err(e) if e.is_key_not_found() => {} // already gone: fine
    ///     other => other?,
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn is_key_not_found(&self) -> bool {
        match self.0.kind {
            ErrorKind::KeyNotFound => true,
            ErrorKind::Service(ResponseStatus::PsaErrorDoesNotExist) => self.0.key.is_some(),
            _ => false,
        }
    }

    fn op_name(&self) -> &'static str {
        self.0.opcode.map_or("the request", Opcode::name)
    }

    fn socket_text(&self) -> String {
        self.0.socket.as_deref().map_or_else(
            || "the service's socket".to_owned(),
            |p| p.display().to_string(),
        )
    }

    fn io_kind(&self) -> Option<io::ErrorKind> {
        match &self.0.source {
            Some(Source::Io(e)) => Some(e.kind()),
            Some(Source::Wire(WireError::Io(kind))) => Some(*kind),
            _ => None,
        }
    }

    fn source_text(&self) -> String {
        match &self.0.source {
            Some(Source::Io(e)) => e.to_string(),
            Some(Source::Wire(e)) => e.to_string(),
            Some(Source::Body(e)) => e.to_string(),
            None => String::new(),
        }
    }

    fn fmt_service(&self, f: &mut fmt::Formatter<'_>, status: ResponseStatus) -> fmt::Result {
        use ResponseStatus as S;
        let op = self.op_name();
        match (status, self.0.key.as_deref()) {
            (S::PsaErrorDoesNotExist, Some(key)) => write!(
                f,
                "no key named {key:?} for this application: create it first or check the name"
            ),
            (S::PsaErrorAlreadyExists, Some(key)) => write!(
                f,
                "a key named {key:?} already exists for this application: pick another name or \
                 destroy the existing key first"
            ),
            (S::PsaErrorNotPermitted, Some(key)) => write!(
                f,
                "{op} is not permitted with key {key:?}: its policy (usage flags and permitted \
                 algorithm) does not allow it; use the algorithm of the key's policy or create \
                 the key with a policy that allows this use"
            ),
            (S::PsaErrorInvalidSignature, _) => write!(
                f,
                "{op}: the signature or MAC does not match the data (wrong data, wrong key or \
                 tampered signature)"
            ),
            (S::PsaErrorNotSupported, _) => write!(
                f,
                "{op}: the provider does not support this key type, size or algorithm; check \
                 with can_do_crypto or choose another algorithm"
            ),
            (S::PsaErrorInvalidArgument, _) => write!(
                f,
                "{op}: the service rejected an argument as invalid (for example a hash, nonce \
                 or key size of the wrong length for the algorithm, or a key name longer than \
                 the service accepts)"
            ),
            (S::NotAuthenticated, _) => write!(
                f,
                "{op} needs an authenticated application: build the client with discovery \
                 (the default) or set an authentication method with ClientBuilder::auth"
            ),
            (S::AuthenticatorNotRegistered | S::AuthenticatorDoesNotExist, _) => write!(
                f,
                "{op}: the service does not use this client's authentication method; let the \
                 client discover it (the default) or set the one the service uses"
            ),
            (S::AuthenticationError, _) => write!(
                f,
                "{op}: the service rejected this client's credentials (for Unix peer \
                 credentials the uid must be the caller's own; a token must be signed by a key \
                 the service trusts, for its audience, and not expired)"
            ),
            (S::AdminOperation, _) => write!(
                f,
                "{op} is reserved to administrators: add this application to the service's \
                 `admins` list in its configuration"
            ),
            (S::ProviderNotRegistered, _) => write!(
                f,
                "{op}: the provider this client uses is not configured in the service; let the \
                 client discover the provider (the default) or choose one that list_providers \
                 names"
            ),
            (S::BodySizeExceedsLimit, _) => write!(
                f,
                "{op}: the request is larger than the service accepts (its \
                 `body_len_limit`); send less data per call"
            ),
            (S::ResponseTooLarge, _) => write!(
                f,
                "{op}: the answer would be larger than the service sends (its \
                 `buffer_size_limit`); ask for less data per call"
            ),
            (status, key) => {
                write!(
                    f,
                    "the service refused {op}: {} ({})",
                    status.description(),
                    status.name()
                )?;
                if let Some(key) = key {
                    write!(f, " [key {key:?}]")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.op_name();
        let detail = self.0.detail.as_deref().unwrap_or("");
        match self.0.kind {
            ErrorKind::Service(status) => self.fmt_service(f, status),
            ErrorKind::InvalidEndpoint => write!(
                f,
                "invalid service endpoint {detail:?}: expected unix:<absolute socket path>, as in \
                 PARSEC_SERVICE_ENDPOINT=unix:/run/parsec/parsec.sock"
            ),
            ErrorKind::Connect => {
                let socket = self.socket_text();
                match self.io_kind() {
                    Some(io::ErrorKind::NotFound) => write!(
                        f,
                        "the service is not running at {socket}: start bulwarkd or set \
                         PARSEC_SERVICE_ENDPOINT"
                    ),
                    Some(io::ErrorKind::ConnectionRefused) => write!(
                        f,
                        "nothing is listening at {socket} (a stale socket file?): start bulwarkd \
                         or set PARSEC_SERVICE_ENDPOINT"
                    ),
                    Some(io::ErrorKind::PermissionDenied) => write!(
                        f,
                        "permission denied on {socket}: run as a user allowed to reach the \
                         service (check the socket directory's permissions)"
                    ),
                    _ => write!(
                        f,
                        "cannot connect to the service at {socket}: {}; check that bulwarkd runs \
                         there or set PARSEC_SERVICE_ENDPOINT",
                        self.source_text()
                    ),
                }
            }
            ErrorKind::Timeout => write!(
                f,
                "the service did not answer {op} within the timeout{}: it may be overloaded or \
                 stuck; retry, or raise the timeout with ClientBuilder::timeout",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" ({detail})")
                }
            ),
            ErrorKind::ConnectionLost => write!(
                f,
                "the connection to the service was lost during {op}{}: the service may have \
                 restarted or crashed; check its logs and retry",
                match (self.source_text(), detail) {
                    (s, "") if s.is_empty() => String::new(),
                    (s, "") => format!(" ({s})"),
                    (_, d) => format!(" ({d})"),
                }
            ),
            ErrorKind::Protocol => write!(
                f,
                "the service's answer to {op} is not valid ({}): is the socket really a \
                 Parsec service?",
                if detail.is_empty() {
                    self.source_text()
                } else {
                    detail.to_owned()
                }
            ),
            ErrorKind::ResponseTooLarge => write!(
                f,
                "the answer to {op} is larger than this client accepts ({}): raise the limit \
                 with ClientBuilder::max_response_size",
                self.source_text()
            ),
            ErrorKind::Encoding => write!(
                f,
                "{op} could not be encoded or its answer decoded: {}",
                if detail.is_empty() {
                    self.source_text()
                } else {
                    detail.to_owned()
                }
            ),
            ErrorKind::MissingAppName => write!(
                f,
                "the service identifies applications by name (Direct authenticator) and this \
                 client has none: give one with ClientBuilder::app_name"
            ),
            ErrorKind::Credentials => write!(
                f,
                "{op} was not sent: the client's token could not be obtained ({detail})"
            ),
            ErrorKind::NoAuthenticator => write!(
                f,
                "the service offers no authenticator this client supports{}: set one with \
                 ClientBuilder::auth or check the service's [authenticator] configuration",
                if detail.is_empty() {
                    String::new()
                } else {
                    format!(" (it lists: {detail})")
                }
            ),
            ErrorKind::NoProvider => {
                if detail.is_empty() {
                    write!(
                        f,
                        "{op} needs a crypto provider and this client has none (the service \
                         lists none, or discovery was turned off): configure a provider in the \
                         service or choose one with ClientBuilder::provider"
                    )
                } else {
                    f.write_str(detail)
                }
            }
            ErrorKind::KeyNotFound => write!(
                f,
                "no key named {:?} for this application: create it first or check the name",
                self.0.key.as_deref().unwrap_or_default()
            ),
            ErrorKind::InvalidArgument => write!(f, "{op}: {detail}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind);
        if let Some(op) = self.0.opcode {
            d.field("opcode", &op);
        }
        if let Some(key) = &self.0.key {
            d.field("key", key);
        }
        if let Some(socket) = &self.0.socket {
            d.field("socket", socket);
        }
        if let Some(detail) = &self.0.detail {
            d.field("detail", detail);
        }
        match &self.0.source {
            Some(Source::Io(e)) => d.field("source", e),
            Some(Source::Wire(e)) => d.field("source", e),
            Some(Source::Body(e)) => d.field("source", e),
            None => &mut d,
        };
        d.field("message", &self.to_string()).finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.source {
            Some(Source::Io(e)) => Some(e),
            Some(Source::Wire(e)) => Some(e),
            Some(Source::Body(e)) => Some(e),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_errors_name_the_key_and_the_remedy() {
        let e = Error::service(ResponseStatus::PsaErrorDoesNotExist)
            .with_opcode(Opcode::PsaSignHash)
            .with_key("k1");
        assert_eq!(
            e.to_string(),
            "no key named \"k1\" for this application: create it first or check the name"
        );
        assert!(e.is_key_not_found());
        assert_eq!(e.status(), Some(ResponseStatus::PsaErrorDoesNotExist));
        assert_eq!(e.opcode(), Some(Opcode::PsaSignHash));
        let e = Error::service(ResponseStatus::PsaErrorAlreadyExists).with_key("k1");
        assert!(e.to_string().contains("already exists"), "{e}");
        assert!(!e.is_key_not_found());
        let e = Error::service(ResponseStatus::AdminOperation).with_opcode(Opcode::ListClients);
        assert!(e
            .to_string()
            .starts_with("ListClients is reserved to administrators"));
        let e = Error::service(ResponseStatus::PsaErrorHardwareFailure);
        assert!(e.to_string().contains("PsaErrorHardwareFailure"), "{e}");
    }

    #[test]
    fn client_side_errors_say_what_to_do() {
        let e = Error::new(ErrorKind::Connect)
            .with_socket(Path::new("/run/parsec/parsec.sock"))
            .with_io(io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(
            e.to_string(),
            "the service is not running at /run/parsec/parsec.sock: start bulwarkd or set \
             PARSEC_SERVICE_ENDPOINT"
        );
        assert_eq!(e.status(), None);
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::new(ErrorKind::MissingAppName);
        assert!(e.to_string().contains("ClientBuilder::app_name"));
        let e = Error::timeout(Some(Duration::from_secs(3))).with_opcode(Opcode::Ping);
        assert!(
            e.to_string()
                .contains("did not answer Ping within the timeout (3s)"),
            "{e}"
        );
        let e = Error::from_wire(WireError::BodyTooLarge { len: 10, limit: 5 });
        assert_eq!(e.kind(), ErrorKind::ResponseTooLarge);
        let e = Error::from_wire(WireError::BadMagic(7));
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert!(format!("{e:?}").contains("BadMagic"));
        let e = Error::new(ErrorKind::KeyNotFound).with_key("x");
        assert!(e.is_key_not_found());
        assert!(e.to_string().starts_with("no key named \"x\""));
    }
}
