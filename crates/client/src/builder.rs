//! [`ClientBuilder`]: where the service is, how long to wait, who the client is, which provider
//! it uses; and [`Auth`], how the client identifies itself.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bulwark_interface::ids::{AuthType, ProviderId};
use zeroize::Zeroizing;

use crate::client::Client;
use crate::error::{Error, ErrorKind};
use crate::token::TokenSource;
use crate::transport::{socket_from_uri, Transport, TransportConfig};

/// The socket used when `PARSEC_SERVICE_ENDPOINT` is not set.
///
/// ```no_run
/// let client = bulwark_client::Client::builder()
///     .socket(bulwark_client::DEFAULT_SOCKET_PATH)
///     .app_name("my-app")
///     .build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub const DEFAULT_SOCKET_PATH: &str = "/run/parsec/parsec.sock";

/// The environment variable naming the service's endpoint, as `unix:<socket path>`.
///
/// ```no_run
/// std::env::set_var(bulwark_client::ENDPOINT_VARIABLE, "unix:/tmp/parsec.sock");
/// let client = bulwark_client::Client::new("my-app")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub const ENDPOINT_VARIABLE: &str = "PARSEC_SERVICE_ENDPOINT";

/// The default time a request may take, connection included: 60 s, as upstream clients.
///
/// ```no_run
/// let client = bulwark_client::Client::builder()
///     .timeout(bulwark_client::DEFAULT_TIMEOUT * 2)
///     .app_name("my-app")
///     .build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The default largest answer body the client accepts: 16 MiB (the service's own default limit
/// is 1 MiB).
///
/// ```no_run
/// let client = bulwark_client::Client::builder()
///     .max_response_size(bulwark_client::DEFAULT_MAX_RESPONSE_SIZE / 16)
///     .app_name("my-app")
///     .build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub const DEFAULT_MAX_RESPONSE_SIZE: usize = 16 << 20;

/// The default number of idle connections a client keeps open for reuse.
///
/// ```no_run
/// let client = bulwark_client::Client::builder()
///     .max_idle_connections(bulwark_client::DEFAULT_MAX_IDLE_CONNECTIONS * 2)
///     .app_name("my-app")
///     .build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 4;

/// How the client identifies itself to the service (docs/protocol.md#client-authentication).
///
/// Usually discovered: [`ClientBuilder::build`] asks the service which authenticator it uses.
///
/// ```no_run
/// use bulwark_client::{Auth, Client};
/// let client = Client::builder().auth(Auth::UnixPeerCredentials).build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Auth {
    /// No identity: only the operations open to everyone work (Ping, List*, random, hashes).
    None,
    /// Direct authentication: the application's name, sent as is (the service trusts it).
    Direct(String),
    /// The process's uid, which the service checks against the socket's peer credentials.
    UnixPeerCredentials,
    /// An authentication token (auth type 2): a JWT from an identity provider the service
    /// trusts, sent as its UTF-8 text.
    Token(TokenSource),
    /// A JWT-SVID (auth type 4) for the audience the service expects (`parsec` by default),
    /// sent as its UTF-8 text, exactly as upstream clients send it.
    JwtSvid(TokenSource),
}

impl Auth {
    /// The auth type and auth bytes of a request (the uid is read at each call, as upstream;
    /// tokens are asked of their source at each call).
    pub(crate) fn wire(&self) -> Result<(AuthType, Zeroizing<Vec<u8>>), Error> {
        let token = |source: &TokenSource| -> Result<Zeroizing<Vec<u8>>, Error> {
            Ok(Zeroizing::new(source.token()?.as_bytes().to_vec()))
        };
        Ok(match self {
            Auth::None => (AuthType::NoAuth, Zeroizing::new(Vec::new())),
            Auth::Direct(name) => (AuthType::Direct, Zeroizing::new(name.as_bytes().to_vec())),
            Auth::UnixPeerCredentials => (
                AuthType::UnixPeerCredentials,
                Zeroizing::new(nix::unistd::getuid().as_raw().to_le_bytes().to_vec()),
            ),
            Auth::Token(source) => (AuthType::Jwt, token(source)?),
            Auth::JwtSvid(source) => (AuthType::JwtSvid, token(source)?),
        })
    }
}

#[derive(Debug, Clone)]
enum Endpoint {
    Environment,
    Socket(PathBuf),
    Uri(String),
}

/// Configures and builds a [`Client`].
///
/// Defaults: the endpoint of `PARSEC_SERVICE_ENDPOINT` or [`DEFAULT_SOCKET_PATH`], a 60 s
/// timeout per request, discovery of the provider and authenticator, connection reuse with up
/// to 4 idle connections, answers up to 16 MiB.
///
/// ```no_run
/// use std::time::Duration;
/// use bulwark_client::{Client, ProviderId};
///
/// let client = Client::builder()
///     .socket("/tmp/bulwark.sock")
///     .timeout(Duration::from_secs(5))
///     .app_name("my-app")
///     .provider(ProviderId::MbedCrypto)
///     .build()?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientBuilder {
    endpoint: Endpoint,
    timeout: Option<Duration>,
    auth: Option<Auth>,
    app_name: Option<String>,
    token: Option<TokenSource>,
    jwt_svid: Option<TokenSource>,
    provider: Option<ProviderId>,
    discover: bool,
    reuse: bool,
    max_idle: usize,
    max_response: usize,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoint: Endpoint::Environment,
            timeout: Some(DEFAULT_TIMEOUT),
            auth: None,
            app_name: None,
            token: None,
            jwt_svid: None,
            provider: None,
            discover: true,
            reuse: true,
            max_idle: DEFAULT_MAX_IDLE_CONNECTIONS,
            max_response: DEFAULT_MAX_RESPONSE_SIZE,
        }
    }
}

impl ClientBuilder {
    /// A builder with the defaults (same as [`Client::builder`]).
    ///
    /// ```no_run
    /// let client = bulwark_client::ClientBuilder::new().app_name("my-app").build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Talks to the service on this socket, whatever `PARSEC_SERVICE_ENDPOINT` says.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder()
    ///     .socket("/tmp/bulwark.sock")
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.endpoint = Endpoint::Socket(path.into());
        self
    }

    /// Talks to the service at this endpoint URI (`unix:/path` or `unix:///path`), whatever
    /// `PARSEC_SERVICE_ENDPOINT` says. A malformed URI fails [`ClientBuilder::build`] with
    /// [`ErrorKind::InvalidEndpoint`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder()
    ///     .endpoint("unix:/run/parsec/parsec.sock")
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn endpoint(mut self, uri: impl Into<String>) -> Self {
        self.endpoint = Endpoint::Uri(uri.into());
        self
    }

    /// The longest a request may take, from connecting to the last byte of the answer
    /// (`None`: wait forever). Default 60 s.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let client = bulwark_client::Client::builder()
    ///     .timeout(Duration::from_secs(2))
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Identifies the client this way instead of asking the service which authenticator it
    /// uses.
    ///
    /// ```no_run
    /// use bulwark_client::{Auth, Client};
    /// let client = Client::builder().auth(Auth::Direct("my-app".into())).build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = Some(auth);
        self
    }

    /// The application's name, used if the service authenticates by name (Direct). Without
    /// it, a client of such a service fails to build with [`ErrorKind::MissingAppName`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder().app_name("my-app").build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn app_name(mut self, name: impl Into<String>) -> Self {
        self.app_name = Some(name.into());
        self
    }

    /// Sends crypto operations to this provider instead of the service's first one.
    ///
    /// ```no_run
    /// use bulwark_client::{Client, ProviderId};
    /// let client = Client::builder()
    ///     .app_name("my-app")
    ///     .provider(ProviderId::MbedCrypto)
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn provider(mut self, provider: ProviderId) -> Self {
        self.provider = Some(provider);
        self
    }

    /// The authentication token to use if discovery picks the service's token authenticator
    /// (auth type 2); see [`ClientBuilder::build`].
    ///
    /// ```no_run
    /// use bulwark_client::{Client, TokenSource};
    /// let client = Client::builder()
    ///     .token(TokenSource::file("/run/secrets/bulwark-token"))
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn token(mut self, source: TokenSource) -> Self {
        self.token = Some(source);
        self
    }

    /// The JWT-SVID to use if discovery picks the service's JWT-SVID authenticator (auth type
    /// 4), for instance the file a SPIFFE helper keeps renewed; see [`ClientBuilder::build`].
    ///
    /// ```no_run
    /// use bulwark_client::{Client, TokenSource};
    /// let client = Client::builder()
    ///     .jwt_svid(TokenSource::file("/run/spiffe/jwt_svid.token"))
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn jwt_svid(mut self, source: TokenSource) -> Self {
        self.jwt_svid = Some(source);
        self
    }

    /// Whether [`ClientBuilder::build`] asks the service for its providers (ListProviders) and
    /// authenticators (ListAuthenticators) to fill in what was not set. Default `true`.
    ///
    /// Without discovery nothing is sent when building: the client uses the provider and
    /// authentication it was given, else the core provider and [`Auth::Direct`] with the
    /// application name if one was given, else [`Auth::None`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder().discover(false).build()?;
    /// let (major, minor) = client.ping()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn discover(mut self, discover: bool) -> Self {
        self.discover = discover;
        self
    }

    /// Whether connections are kept open and reused for further requests. Default `true`: each
    /// request asks the service to keep its connection open (header flag `FLAG_KEEP_OPEN`), and
    /// a connection is reused only when its answer says the service did; an upstream service
    /// never does, and then every request gets its own connection. `false` opens a connection
    /// per request and never asks, as upstream clients do.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder()
    ///     .reuse_connections(false)
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn reuse_connections(mut self, reuse: bool) -> Self {
        self.reuse = reuse;
        self
    }

    /// How many idle connections the client keeps open for reuse (default 4). Requests made
    /// at the same time from several threads each use their own connection; beyond this many,
    /// connections are closed once their answer is read.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder()
    ///     .max_idle_connections(16)
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn max_idle_connections(mut self, count: usize) -> Self {
        self.max_idle = count;
        self
    }

    /// The largest answer body accepted, in bytes (default 16 MiB). A larger answer fails with
    /// [`ErrorKind::ResponseTooLarge`] before its body is read.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder()
    ///     .max_response_size(64 * 1024)
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn max_response_size(mut self, bytes: usize) -> Self {
        self.max_response = bytes;
        self
    }

    /// Builds the client; with discovery (the default), asks the service for its providers
    /// and authenticators.
    ///
    /// The implicit provider is the first one ListProviders names. The authentication is the
    /// first usable entry of ListAuthenticators, in the service's order: Direct (with the
    /// application name), Unix peer credentials, authentication tokens (when
    /// [`ClientBuilder::token`] gave a source) or JWT-SVID (when [`ClientBuilder::jwt_svid`]
    /// gave one); other entries are skipped.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidEndpoint`] for a malformed endpoint; with discovery, any error of a
    /// call ([`ErrorKind::Connect`] when the service is not running), [`ErrorKind::NoProvider`]
    /// when the service lists no provider, [`ErrorKind::MissingAppName`] when the service uses
    /// Direct authentication and no application name was given, [`ErrorKind::NoAuthenticator`]
    /// when it uses none this client supports.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder().app_name("my-app").build()?;
    /// println!("using {} as {:?}", client.provider(), client.auth());
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn build(self) -> Result<Client, Error> {
        let socket = match self.endpoint {
            Endpoint::Socket(path) => path,
            Endpoint::Uri(uri) => socket_from_uri(&uri)?,
            Endpoint::Environment => match std::env::var_os(ENDPOINT_VARIABLE) {
                None => PathBuf::from(DEFAULT_SOCKET_PATH),
                Some(value) => match value.to_str() {
                    Some(uri) => socket_from_uri(uri)?,
                    None => {
                        return Err(Error::new(ErrorKind::InvalidEndpoint)
                            .with_detail(value.to_string_lossy()))
                    }
                },
            },
        };
        let transport = Arc::new(Transport::new(TransportConfig {
            socket,
            timeout: self.timeout,
            max_response_body: self.max_response,
            reuse: self.reuse,
            max_idle: self.max_idle,
        }));
        let mut client = Client::from_parts(transport, Auth::None, ProviderId::Core);
        if !self.discover {
            client.set_provider(self.provider.unwrap_or(ProviderId::Core));
            client.set_auth(
                self.auth
                    .or(self.app_name.map(Auth::Direct))
                    .unwrap_or(Auth::None),
            );
            return Ok(client);
        }
        // Both discovery calls go out without identity, as upstream clients send them.
        let provider = match self.provider {
            Some(provider) => provider,
            None => client.discover_provider()?,
        };
        let auth = match self.auth {
            Some(auth) => auth,
            None => client.discover_auth(self.app_name, self.token, self.jwt_svid)?,
        };
        client.set_provider(provider);
        client.set_auth(auth);
        Ok(client)
    }
}
