//! [`Client`]: one typed method per operation, and convenience calls on top.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bulwark_interface::ids::{AuthType, ProviderId};
use bulwark_interface::ops::{
    self, attest_key, can_do_crypto, list_authenticators, list_keys, list_providers,
    prepare_key_attestation, Opcode, Operation,
};
use bulwark_interface::psa_types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    Hash, Mac, RawKeyAgreement, SignHash,
};
use bulwark_interface::psa_types::key::Attributes;
use bulwark_interface::secret::SecretBytes;
use bulwark_interface::status::ResponseStatus;
use bulwark_interface::wire::{RequestFrame, RequestHeader};

use crate::builder::{Auth, ClientBuilder};
use crate::error::{Error, ErrorKind, Result};
use crate::token::TokenSource;
use crate::transport::{ConnectionStats, Transport};

pub use attest_key::{AttestationMechanismParams, AttestationOutput};
pub use can_do_crypto::CheckType;
pub use list_authenticators::AuthenticatorInfo;
pub use list_keys::{KeyInfo, KeyPattern};
pub use list_providers::ProviderInfo;
pub use prepare_key_attestation::{PrepareKeyAttestationOutput, PrepareKeyAttestationParams};

/// A client of a Parsec-compatible service.
///
/// Cheap to clone (clones share their connections) and usable from many threads at once
/// (`Client: Send + Sync`). Connections are reused while the service keeps them open; see
/// [`ClientBuilder::reuse_connections`].
///
/// ```no_run
/// use bulwark_client::{attributes, Client, EccFamily};
///
/// let client = Client::new("my-app")?;
/// client.generate_key("device-key", attributes::ecc_signing_key(EccFamily::SecpR1, 256))?;
/// let signature = client.sign_message("device-key", b"hello")?;
/// client.verify_message("device-key", b"hello", &signature)?;
/// client.destroy_key("device-key")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
    auth: Auth,
    provider: ProviderId,
    /// The key-name limit each provider stated in ListProviders when the client discovered
    /// its provider (a Bulwark extension; empty for an upstream service or without
    /// discovery).
    key_name_limits: Arc<BTreeMap<ProviderId, u32>>,
}

/// What a verifier needs to build a TPM `ActivateCredential` challenge for a key.
///
/// ```no_run
/// let client = bulwark_client::Client::new("my-app")?;
/// let challenge = client.prepare_activate_credential("attested-key", None)?;
/// println!("{} bytes of TPM2B_PUBLIC", challenge.public.len());
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActivateCredentialChallenge {
    /// The `TPM2B_NAME` contents of the attested key.
    pub name: Vec<u8>,
    /// The `TPM2B_PUBLIC` public area of the attested key.
    pub public: Vec<u8>,
    /// The attesting key's public part, in PsaExportPublicKey format.
    pub attesting_key_pub: Vec<u8>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("socket", &self.transport.socket())
            .field("provider", &self.provider)
            .field("auth", &self.auth)
            .field("timeout", &self.transport.timeout())
            .finish_non_exhaustive()
    }
}

/// Attaches the key name to an error of an operation on that key.
/// The start of a key name too long to be quoted whole in an error message.
fn key_prefix(key: &str) -> &str {
    let mut end = key.len().min(64);
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    &key[..end]
}

fn on_key<T>(key: &str, result: Result<T>) -> Result<T> {
    result.map_err(|e| e.with_key(key))
}

impl Client {
    pub(crate) fn from_parts(transport: Arc<Transport>, auth: Auth, provider: ProviderId) -> Self {
        Client {
            transport,
            auth,
            provider,
            key_name_limits: Arc::default(),
        }
    }

    /// A builder to configure the endpoint, timeout, identity and provider.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::builder()
    ///     .socket("/tmp/bulwark.sock")
    ///     .app_name("my-app")
    ///     .build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// A client for the service at `PARSEC_SERVICE_ENDPOINT` (or the default socket) with the
    /// provider and authenticator discovered, identified as `app_name` if the service
    /// authenticates by name. Same as `Client::builder().app_name(app_name).build()`.
    ///
    /// # Errors
    /// As [`ClientBuilder::build`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn new(app_name: &str) -> Result<Client> {
        Client::builder().app_name(app_name).build()
    }

    /// A client for the service at `PARSEC_SERVICE_ENDPOINT` (or the default socket) that makes
    /// no call when created: no identity and the core provider, so only the operations open to
    /// everyone on the core provider work (ping, list_providers, list_authenticators,
    /// list_opcodes). Same as `Client::builder().discover(false).build()`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidEndpoint`] when the variable is set but not a `unix:` URI.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// let (major, minor) = client.ping()?;
    /// println!("wire protocol {major}.{minor}");
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn from_env() -> Result<Client> {
        Client::builder().discover(false).build()
    }

    /// How the client identifies itself.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// println!("{:?}", client.auth());
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Changes how the client identifies itself (clones made before keep theirs).
    ///
    /// ```no_run
    /// use bulwark_client::{Auth, Client};
    /// let mut client = Client::new("my-app")?;
    /// client.set_auth(Auth::Direct("other-app".into()));
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn set_auth(&mut self, auth: Auth) {
        self.auth = auth;
    }

    /// The provider crypto operations go to.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// println!("{}", client.provider());
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn provider(&self) -> ProviderId {
        self.provider
    }

    /// Changes the provider crypto operations go to (clones made before keep theirs).
    ///
    /// ```no_run
    /// use bulwark_client::{Client, ProviderId};
    /// let mut client = Client::new("my-app")?;
    /// client.set_provider(ProviderId::MbedCrypto);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn set_provider(&mut self, provider: ProviderId) {
        self.provider = provider;
    }

    /// The longest key name the service accepts for the client's provider, in bytes, as the
    /// service stated it in ListProviders when the client was built with discovery (`None`
    /// for a service that does not state one, such as upstream Parsec, or without discovery).
    ///
    /// Calls naming a longer key are refused by the client, before anything is sent, with
    /// [`ErrorKind::InvalidArgument`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// if let Some(limit) = client.max_key_name_len() {
    ///     println!("key names up to {limit} bytes");
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn max_key_name_len(&self) -> Option<usize> {
        self.key_name_limits
            .get(&self.provider)
            .or_else(|| self.key_name_limits.values().min())
            .and_then(|limit| usize::try_from(*limit).ok())
    }

    /// Runs `call`, a request naming key `key`, unless the name is longer than the service
    /// accepts; its error names the key.
    fn with_key<T>(&self, key: &str, call: impl FnOnce() -> Result<T>) -> Result<T> {
        if let Some(limit) = self.max_key_name_len() {
            if key.len() > limit {
                return Err(Error::new(ErrorKind::InvalidArgument)
                    .with_key(key_prefix(key))
                    .with_detail(format!(
                        "the key name is {} bytes long, and the service accepts at most {limit} \
                         (its core_settings.max_key_name_len): choose a shorter name",
                        key.len()
                    )));
            }
        }
        on_key(key, call())
    }

    /// The socket the client talks to.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// println!("{}", client.socket().display());
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn socket(&self) -> &Path {
        self.transport.socket()
    }

    /// The longest a request may take (`None`: no limit).
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// assert_eq!(client.timeout(), Some(bulwark_client::DEFAULT_TIMEOUT));
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn timeout(&self) -> Option<Duration> {
        self.transport.timeout()
    }

    /// Counters of the connections used so far (shared by clones).
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// client.ping()?;
    /// client.ping()?;
    /// assert_eq!(client.connection_stats().opened, 1);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn connection_stats(&self) -> ConnectionStats {
        self.transport.stats()
    }

    // -----------------------------------------------------------------------------------------
    // Generic call.

    /// Sends operation `O` to `provider` with the client's identity and returns its typed
    /// answer. Every operation of the table works through this; the methods below wrap it.
    ///
    /// # Errors
    /// [`ErrorKind::Service`] with the status the service answered, or a client-side failure.
    ///
    /// ```no_run
    /// use bulwark_client::{interface::ops, Client, ProviderId};
    /// let client = Client::new("my-app")?;
    /// let answer = client.call::<ops::PsaGenerateRandom>(
    ///     ProviderId::MbedCrypto,
    ///     ops::psa_generate_random::Request { size: 16 },
    /// )?;
    /// assert_eq!(answer.random_bytes.len(), 16);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn call<O: Operation>(
        &self,
        provider: ProviderId,
        request: O::Request,
    ) -> Result<O::Response> {
        self.send::<O>(provider, &self.auth, request)
    }

    fn send<O: Operation>(
        &self,
        provider: ProviderId,
        auth: &Auth,
        request: O::Request,
    ) -> Result<O::Response> {
        self.send_inner::<O>(provider, auth, request)
            .map_err(|e| e.with_opcode(O::OPCODE))
    }

    fn send_inner<O: Operation>(
        &self,
        provider: ProviderId,
        auth: &Auth,
        request: O::Request,
    ) -> Result<O::Response> {
        let (auth_type, auth_bytes) = auth.wire()?;
        let frame = RequestFrame {
            header: RequestHeader {
                flags: self.transport.request_flags(),
                ..RequestHeader::new(provider, O::OPCODE, auth_type)
            },
            body: ops::encode_request::<O>(request).map_err(Error::from_body)?,
            auth: auth_bytes,
        };
        let bytes = frame.to_bytes().map_err(|e| {
            Error::new(ErrorKind::Encoding)
                .with_detail(format!("the request does not fit the wire format: {e}"))
        })?;
        let response = self.transport.exchange(&bytes, O::OPCODE)?;
        let status = response.header.status;
        if !status.is_success() {
            return Err(Error::service(status));
        }
        if response.header.opcode != O::OPCODE {
            return Err(Error::new(ErrorKind::Protocol).with_detail(format!(
                "it answers {} to a {} request",
                response.header.opcode,
                O::OPCODE
            )));
        }
        ops::decode_response::<O>(&response.body).map_err(Error::from_body)
    }

    /// The provider for crypto operations, refusing the core provider before any I/O.
    fn crypto<O: Operation>(&self, request: O::Request) -> Result<O::Response> {
        if self.provider == ProviderId::Core {
            return Err(Error::new(ErrorKind::NoProvider).with_opcode(O::OPCODE));
        }
        self.send::<O>(self.provider, &self.auth, request)
    }

    fn core<O: Operation>(&self, request: O::Request) -> Result<O::Response> {
        self.send::<O>(ProviderId::Core, &self.auth, request)
    }

    /// The first provider the service lists; also records the key-name limits it states.
    pub(crate) fn discover_provider(&mut self) -> Result<ProviderId> {
        let providers = self.list_providers_as(&Auth::None)?;
        self.key_name_limits = Arc::new(
            providers
                .iter()
                .filter_map(|p| p.max_key_name_len.map(|limit| (p.id, limit)))
                .collect(),
        );
        providers.first().map(|p| p.id).ok_or_else(|| {
            Error::new(ErrorKind::NoProvider)
                .with_opcode(Opcode::ListProviders)
                .with_detail(
                    "the service lists no provider: check its configuration ([[provider]])",
                )
        })
    }

    /// The walk of docs/protocol.md#client-authentication: the first usable authenticator the service lists.
    /// Token authenticators are used only with a source for their token.
    pub(crate) fn discover_auth(
        &self,
        app_name: Option<String>,
        token: Option<TokenSource>,
        jwt_svid: Option<TokenSource>,
    ) -> Result<Auth> {
        let answer = self.send::<ops::ListAuthenticators>(
            ProviderId::Core,
            &Auth::None,
            list_authenticators::Request,
        )?;
        for authenticator in &answer.authenticators {
            match authenticator.id {
                AuthType::Direct => {
                    return app_name
                        .map(Auth::Direct)
                        .ok_or_else(|| Error::new(ErrorKind::MissingAppName))
                }
                AuthType::UnixPeerCredentials => return Ok(Auth::UnixPeerCredentials),
                AuthType::Jwt => {
                    if let Some(source) = &token {
                        return Ok(Auth::Token(source.clone()));
                    }
                }
                AuthType::JwtSvid => {
                    if let Some(source) = &jwt_svid {
                        return Ok(Auth::JwtSvid(source.clone()));
                    }
                }
                AuthType::NoAuth => {}
            }
        }
        let listed: Vec<&str> = answer
            .authenticators
            .iter()
            .map(|a| a.id.display_name())
            .collect();
        Err(
            Error::new(ErrorKind::NoAuthenticator).with_detail(if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join(", ")
            }),
        )
    }

    // -----------------------------------------------------------------------------------------
    // Core operations.

    /// Checks the service answers; returns the highest wire protocol version it speaks
    /// (major, minor). Sent without identity.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// assert_eq!(client.ping()?, (1, 0));
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn ping(&self) -> Result<(u8, u8)> {
        let answer = self.send::<ops::Ping>(ProviderId::Core, &Auth::None, ops::ping::Request)?;
        Ok((
            answer.wire_protocol_version_maj,
            answer.wire_protocol_version_min,
        ))
    }

    /// The providers the service runs, the one to use by default first and the core provider
    /// last.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// for provider in client.list_providers()? {
    ///     println!("{}: {}", provider.id, provider.description);
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_providers(&self) -> Result<Vec<ProviderInfo>> {
        self.list_providers_as(&self.auth)
    }

    fn list_providers_as(&self, auth: &Auth) -> Result<Vec<ProviderInfo>> {
        Ok(self
            .send::<ops::ListProviders>(ProviderId::Core, auth, list_providers::Request)?
            .providers)
    }

    /// The operations `provider` serves (the MAC operations and the administrative ones are
    /// served but not listed, as upstream).
    ///
    /// # Errors
    /// As [`Client::call`]; `ProviderNotRegistered` when the service does not run `provider`.
    ///
    /// ```no_run
    /// use bulwark_client::{Client, Opcode, ProviderId};
    /// let client = Client::from_env()?;
    /// let opcodes = client.list_opcodes(ProviderId::MbedCrypto)?;
    /// assert!(opcodes.contains(&Opcode::PsaSignHash));
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_opcodes(&self, provider: ProviderId) -> Result<BTreeSet<Opcode>> {
        Ok(self
            .core::<ops::ListOpcodes>(ops::list_opcodes::Request {
                provider_id: provider,
            })?
            .opcodes)
    }

    /// The authenticators the service accepts.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::from_env()?;
    /// for authenticator in client.list_authenticators()? {
    ///     println!("{}", authenticator.description);
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_authenticators(&self) -> Result<Vec<AuthenticatorInfo>> {
        Ok(self
            .core::<ops::ListAuthenticators>(list_authenticators::Request)?
            .authenticators)
    }

    /// This application's keys, in every provider.
    ///
    /// # Errors
    /// As [`Client::call`]; `NotAuthenticated` without an identity.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// for key in client.list_keys()? {
    ///     println!("{} ({} bits)", key.name, key.attributes.bits);
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        Ok(self
            .core::<ops::ListKeys>(list_keys::Request::default())?
            .keys)
    }

    /// This application's keys whose names match `pattern`: `*` matches within one path
    /// segment, `**` across segments, every other character itself ([`KeyPattern`]). `bulwarkd`
    /// filters them; a service that ignores the pattern (upstream Parsec) answers every key,
    /// which the client then filters the same way, so the result is the same with both.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidArgument`] for a pattern longer than
    /// [`MAX_PATTERN_LEN`](list_keys::MAX_PATTERN_LEN) bytes; as [`Client::list_keys`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// for key in client.list_keys_matching("/keys/rsa/*")? {
    ///     println!("{}", key.name);
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_keys_matching(&self, pattern: &str) -> Result<Vec<KeyInfo>> {
        let pattern = KeyPattern::new(pattern).map_err(|_| {
            Error::new(ErrorKind::InvalidArgument)
                .with_opcode(Opcode::ListKeys)
                .with_detail(format!(
                    "the pattern is {} bytes long; at most {} bytes and {} wildcards are \
                     accepted",
                    pattern.len(),
                    list_keys::MAX_PATTERN_LEN,
                    list_keys::MAX_PATTERN_WILDCARDS
                ))
        })?;
        let mut keys = self
            .core::<ops::ListKeys>(list_keys::Request {
                pattern: Some(pattern.clone()),
            })?
            .keys;
        keys.retain(|key| pattern.matches(&key.name));
        Ok(keys)
    }

    /// The attributes of this application's key `key` in the client's provider
    /// ([`Client::provider`]), found through ListKeys (one request). A key of that name in
    /// another provider is not this one: it is not looked at.
    ///
    /// # Errors
    /// [`ErrorKind::KeyNotFound`] when no key has that name, or an error of ListKeys.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let attributes = client.key_attributes("device-key")?;
    /// println!("{:?}", attributes.policy.permitted_algorithms);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn key_attributes(&self, key: &str) -> Result<Attributes> {
        let keys = self.with_key(key, || self.list_keys())?;
        keys.iter()
            .find(|k| k.name == key && k.provider_id == self.provider)
            .map(|k| k.attributes)
            .ok_or_else(|| Error::new(ErrorKind::KeyNotFound).with_key(key))
    }

    /// The applications that own keys (administrators only).
    ///
    /// # Errors
    /// As [`Client::call`]; `AdminOperation` when this application is not an administrator.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("admin")?;
    /// for name in client.list_clients()? {
    ///     println!("{name}");
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_clients(&self) -> Result<Vec<String>> {
        Ok(self
            .core::<ops::ListClients>(ops::list_clients::Request)?
            .clients)
    }

    /// The owners of keys as (application name, authenticator), for a service that runs
    /// several authenticators (administrators only). A service that does not say (upstream
    /// Parsec) gives an empty list: use [`Client::list_clients`] there.
    ///
    /// # Errors
    /// As [`Client::list_clients`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("admin")?;
    /// for owner in client.list_owners()? {
    ///     println!("{} ({:?})", owner.name, owner.auth_type);
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn list_owners(&self) -> Result<Vec<ops::list_clients::Owner>> {
        Ok(self
            .core::<ops::ListClients>(ops::list_clients::Request)?
            .owners)
    }

    /// Destroys every key of application `client` under every authenticator (administrators
    /// only).
    ///
    /// # Errors
    /// As [`Client::call`]; `AdminOperation` when this application is not an administrator,
    /// `PsaErrorDoesNotExist` when `client` owns no key (an upstream service answers Success).
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("admin")?;
    /// client.delete_client("retired-app")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn delete_client(&self, client: &str) -> Result<()> {
        self.core::<ops::DeleteClient>(ops::delete_client::Request {
            client: client.to_owned(),
            auth_type: None,
        })?;
        Ok(())
    }

    /// Destroys every key application `client` owns under the authenticator `auth_type` only
    /// (administrators only; a Bulwark service: an upstream service ignores the authenticator
    /// and destroys the name's keys).
    ///
    /// # Errors
    /// As [`Client::delete_client`]; `PsaErrorDoesNotExist` when `client` owns no key under
    /// that authenticator.
    ///
    /// ```no_run
    /// use bulwark_client::AuthType;
    /// let client = bulwark_client::Client::new("admin")?;
    /// client.delete_client_under("retired-app", AuthType::Direct)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn delete_client_under(&self, client: &str, auth_type: AuthType) -> Result<()> {
        self.core::<ops::DeleteClient>(ops::delete_client::Request {
            client: client.to_owned(),
            auth_type: Some(auth_type),
        })?;
        Ok(())
    }

    /// The state of the service: version, uptime, providers and their health, connections,
    /// requests, key counts, audit log (administrators only; a Bulwark service only).
    ///
    /// # Errors
    /// As [`Client::call`]; `AdminOperation` when this application is not an administrator,
    /// `OpcodeDoesNotExist` from a service that is not Bulwark.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("admin")?;
    /// let status = client.status()?;
    /// println!("{} keys, up {} s", status.keys, status.uptime_seconds);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn status(&self) -> Result<ops::bulwark_status::Response> {
        self.core::<ops::BulwarkStatus>(ops::bulwark_status::Request)
    }

    // -----------------------------------------------------------------------------------------
    // Key management.

    /// Generates a key named `key` with `attributes` (see [`crate::attributes`] for common
    /// ones).
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorAlreadyExists` when the name is taken.
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client};
    /// let client = Client::new("my-app")?;
    /// client.generate_key("storage-key", attributes::aes_gcm_key(256))?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn generate_key(&self, key: &str, attributes: Attributes) -> Result<()> {
        self.with_key(key, || {
            self.crypto::<ops::PsaGenerateKey>(ops::psa_generate_key::Request {
                key_name: key.to_owned(),
                attributes,
            })
        })?;
        Ok(())
    }

    /// Imports `data` as a key named `key` with `attributes` (`bits` 0: taken from the data).
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorAlreadyExists` when the name is taken.
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client};
    /// let client = Client::new("my-app")?;
    /// client.import_key("imported", attributes::aes_gcm_key(128), &[0x42; 16])?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn import_key(&self, key: &str, attributes: Attributes, data: &[u8]) -> Result<()> {
        self.with_key(key, || {
            self.crypto::<ops::PsaImportKey>(ops::psa_import_key::Request {
                key_name: key.to_owned(),
                attributes,
                data: SecretBytes::from(data),
            })
        })?;
        Ok(())
    }

    /// The public part of key `key` (for ECC, the uncompressed point `04 ‖ X ‖ Y`; for RSA,
    /// the DER `RSAPublicKey`).
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let public_key = client.export_public_key("device-key")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn export_public_key(&self, key: &str) -> Result<Vec<u8>> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaExportPublicKey>(ops::psa_export_public_key::Request {
                    key_name: key.to_owned(),
                })
            })?
            .data)
    }

    /// The key material of key `key` (its policy must allow export); wiped when dropped.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorNotPermitted` when the key is not exportable.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let secret = client.export_key("exportable-key")?;
    /// println!("{} bytes", secret.len());
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn export_key(&self, key: &str) -> Result<SecretBytes> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaExportKey>(ops::psa_export_key::Request {
                    key_name: key.to_owned(),
                })
            })?
            .data)
    }

    /// Destroys key `key`.
    ///
    /// # Errors
    /// As [`Client::call`]; a missing key satisfies [`Error::is_key_not_found`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// client.destroy_key("device-key")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn destroy_key(&self, key: &str) -> Result<()> {
        self.with_key(key, || {
            self.crypto::<ops::PsaDestroyKey>(ops::psa_destroy_key::Request {
                key_name: key.to_owned(),
            })
        })?;
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Signatures.

    /// Signs `hash`, a digest computed with the hash `alg` names, with key `key`.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorNotPermitted` when the key's policy does not allow `alg`,
    /// `PsaErrorInvalidArgument` when the hash has the wrong length.
    ///
    /// ```no_run
    /// use bulwark_client::{AsymmetricSignature, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = AsymmetricSignature::Ecdsa { hash_alg: Hash::Sha256.into() };
    /// let hash = client.hash_compute(Hash::Sha256, b"message")?;
    /// let signature = client.sign_hash("device-key", alg, &hash)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn sign_hash(&self, key: &str, alg: AsymmetricSignature, hash: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaSignHash>(ops::psa_sign_hash::Request {
                    key_name: key.to_owned(),
                    alg,
                    hash: hash.to_vec(),
                })
            })?
            .signature)
    }

    /// Checks `signature` over `hash` with key `key`.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidSignature` when the signature does not match.
    ///
    /// ```no_run
    /// use bulwark_client::{AsymmetricSignature, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = AsymmetricSignature::Ecdsa { hash_alg: Hash::Sha256.into() };
    /// let hash = client.hash_compute(Hash::Sha256, b"message")?;
    /// let signature = client.sign_hash("device-key", alg, &hash)?;
    /// client.verify_hash("device-key", alg, &hash, &signature)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn verify_hash(
        &self,
        key: &str,
        alg: AsymmetricSignature,
        hash: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        self.with_key(key, || {
            self.crypto::<ops::PsaVerifyHash>(ops::psa_verify_hash::Request {
                key_name: key.to_owned(),
                alg,
                hash: hash.to_vec(),
                signature: signature.to_vec(),
            })
        })?;
        Ok(())
    }

    /// Signs `message` with key `key` and algorithm `alg` (the service hashes it).
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{AsymmetricSignature, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = AsymmetricSignature::Ecdsa { hash_alg: Hash::Sha256.into() };
    /// let signature = client.sign_message_with("device-key", alg, b"message")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn sign_message_with(
        &self,
        key: &str,
        alg: AsymmetricSignature,
        message: &[u8],
    ) -> Result<Vec<u8>> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaSignMessage>(ops::psa_sign_message::Request {
                    key_name: key.to_owned(),
                    alg,
                    message: message.to_vec(),
                })
            })?
            .signature)
    }

    /// Checks `signature` over `message` with key `key` and algorithm `alg`.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidSignature` when the signature does not match.
    ///
    /// ```no_run
    /// use bulwark_client::{AsymmetricSignature, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = AsymmetricSignature::Ecdsa { hash_alg: Hash::Sha256.into() };
    /// let signature = client.sign_message_with("device-key", alg, b"message")?;
    /// client.verify_message_with("device-key", alg, b"message", &signature)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn verify_message_with(
        &self,
        key: &str,
        alg: AsymmetricSignature,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        self.with_key(key, || {
            self.crypto::<ops::PsaVerifyMessage>(ops::psa_verify_message::Request {
                key_name: key.to_owned(),
                alg,
                message: message.to_vec(),
                signature: signature.to_vec(),
            })
        })?;
        Ok(())
    }

    /// Signs `message` with key `key`, using the signature algorithm of the key's policy
    /// (a policy allowing any hash signs with SHA-256). One ListKeys call, then the signature.
    ///
    /// # Errors
    /// [`ErrorKind::KeyNotFound`]; [`ErrorKind::InvalidArgument`] when the key's policy is not
    /// a signature algorithm over a hash; the errors of [`Client::sign_message_with`].
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client, EccFamily};
    /// let client = Client::new("my-app")?;
    /// client.generate_key("k", attributes::ecc_signing_key(EccFamily::SecpR1, 256))?;
    /// let signature = client.sign_message("k", b"message")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn sign_message(&self, key: &str, message: &[u8]) -> Result<Vec<u8>> {
        let alg = self
            .signature_algorithm(key)
            .map_err(|e| e.with_opcode(Opcode::PsaSignMessage))?;
        self.sign_message_with(key, alg, message)
    }

    /// Checks `signature` over `message` with key `key`, using the signature algorithm of the
    /// key's policy (as [`Client::sign_message`] chooses it).
    ///
    /// # Errors
    /// As [`Client::sign_message`]; `PsaErrorInvalidSignature` when the signature does not
    /// match.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let signature = client.sign_message("device-key", b"message")?;
    /// client.verify_message("device-key", b"message", &signature)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn verify_message(&self, key: &str, message: &[u8], signature: &[u8]) -> Result<()> {
        let alg = self
            .signature_algorithm(key)
            .map_err(|e| e.with_opcode(Opcode::PsaVerifyMessage))?;
        self.verify_message_with(key, alg, message, signature)
    }

    /// The signature algorithm [`Client::sign_message`] uses with key `key`: its policy's,
    /// with SHA-256 where the policy allows any hash.
    ///
    /// # Errors
    /// [`ErrorKind::KeyNotFound`]; [`ErrorKind::InvalidArgument`] when the key's policy is not
    /// a signature algorithm over a hash.
    ///
    /// ```no_run
    /// use bulwark_client::Client;
    /// let client = Client::new("my-app")?;
    /// let alg = client.signature_algorithm("device-key")?;
    /// println!("device-key signs with {alg:?}");
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn signature_algorithm(&self, key: &str) -> Result<AsymmetricSignature> {
        let policy = self.key_attributes(key)?.policy.permitted_algorithms;
        let Algorithm::AsymmetricSignature(alg) = policy else {
            return Err(not_for(key, policy, "a signature algorithm"));
        };
        let sha256 = SignHash::Specific(Hash::Sha256);
        Ok(match alg {
            AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Any,
            } => AsymmetricSignature::Ecdsa { hash_alg: sha256 },
            AsymmetricSignature::DeterministicEcdsa {
                hash_alg: SignHash::Any,
            } => AsymmetricSignature::DeterministicEcdsa { hash_alg: sha256 },
            AsymmetricSignature::RsaPss {
                hash_alg: SignHash::Any,
            } => AsymmetricSignature::RsaPss { hash_alg: sha256 },
            AsymmetricSignature::RsaPkcs1v15Sign {
                hash_alg: SignHash::Any,
            } => AsymmetricSignature::RsaPkcs1v15Sign { hash_alg: sha256 },
            AsymmetricSignature::EcdsaAny | AsymmetricSignature::RsaPkcs1v15SignRaw => {
                return Err(Error::new(ErrorKind::InvalidArgument)
                    .with_key(key)
                    .with_detail(format!(
                        "key {key:?} signs hashes only (policy {alg:?}): use sign_hash with a \
                         hash you computed"
                    )))
            }
            specific => specific,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Asymmetric encryption.

    /// Encrypts `plaintext` with key `key` (an RSA key) and padding `alg`; `salt` is the OAEP
    /// label (`None`: no label).
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{AsymmetricEncryption, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = AsymmetricEncryption::RsaOaep { hash_alg: Hash::Sha256 };
    /// let ciphertext = client.asymmetric_encrypt("rsa-key", alg, b"secret", None)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn asymmetric_encrypt(
        &self,
        key: &str,
        alg: AsymmetricEncryption,
        plaintext: &[u8],
        salt: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaAsymmetricEncrypt>(ops::psa_asymmetric_encrypt::Request {
                    key_name: key.to_owned(),
                    alg,
                    plaintext: SecretBytes::from(plaintext),
                    salt: salt.map(<[u8]>::to_vec),
                })
            })?
            .ciphertext)
    }

    /// Decrypts `ciphertext` with key `key` and padding `alg`; `salt` is the OAEP label. The
    /// plaintext is wiped when dropped.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidPadding` when the ciphertext is not valid.
    ///
    /// ```no_run
    /// use bulwark_client::{AsymmetricEncryption, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = AsymmetricEncryption::RsaOaep { hash_alg: Hash::Sha256 };
    /// let ciphertext = client.asymmetric_encrypt("rsa-key", alg, b"secret", None)?;
    /// let plaintext = client.asymmetric_decrypt("rsa-key", alg, &ciphertext, None)?;
    /// assert_eq!(&plaintext[..], b"secret");
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn asymmetric_decrypt(
        &self,
        key: &str,
        alg: AsymmetricEncryption,
        ciphertext: &[u8],
        salt: Option<&[u8]>,
    ) -> Result<SecretBytes> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaAsymmetricDecrypt>(ops::psa_asymmetric_decrypt::Request {
                    key_name: key.to_owned(),
                    alg,
                    ciphertext: ciphertext.to_vec(),
                    salt: salt.map(<[u8]>::to_vec),
                })
            })?
            .plaintext)
    }

    /// Encrypts `plaintext` with key `key` using the padding of the key's policy, without a
    /// label. One ListKeys call, then the encryption.
    ///
    /// # Errors
    /// [`ErrorKind::KeyNotFound`]; [`ErrorKind::InvalidArgument`] when the key's policy is not
    /// an asymmetric encryption algorithm; the errors of [`Client::asymmetric_encrypt`].
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client};
    /// let client = Client::new("my-app")?;
    /// client.generate_key("rsa", attributes::rsa_encryption_key(2048))?;
    /// let ciphertext = client.encrypt("rsa", b"secret")?;
    /// assert_eq!(&client.decrypt("rsa", &ciphertext)?[..], b"secret");
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn encrypt(&self, key: &str, plaintext: &[u8]) -> Result<Vec<u8>> {
        let alg = self
            .encryption_algorithm(key)
            .map_err(|e| e.with_opcode(Opcode::PsaAsymmetricEncrypt))?;
        self.asymmetric_encrypt(key, alg, plaintext, None)
    }

    /// Decrypts `ciphertext` with key `key` using the padding of the key's policy, without a
    /// label; the plaintext is wiped when dropped.
    ///
    /// # Errors
    /// As [`Client::encrypt`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let ciphertext = client.encrypt("rsa", b"secret")?;
    /// let plaintext = client.decrypt("rsa", &ciphertext)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn decrypt(&self, key: &str, ciphertext: &[u8]) -> Result<SecretBytes> {
        let alg = self
            .encryption_algorithm(key)
            .map_err(|e| e.with_opcode(Opcode::PsaAsymmetricDecrypt))?;
        self.asymmetric_decrypt(key, alg, ciphertext, None)
    }

    fn encryption_algorithm(&self, key: &str) -> Result<AsymmetricEncryption> {
        match self.key_attributes(key)?.policy.permitted_algorithms {
            Algorithm::AsymmetricEncryption(alg) => Ok(alg),
            other => Err(not_for(key, other, "an asymmetric encryption algorithm")),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Symmetric encryption.

    /// Encrypts and authenticates `payload.msg` (and authenticates `payload.aad`) with key
    /// `key`, AEAD algorithm `alg` and `nonce`; returns ciphertext ‖ tag. Never use a nonce
    /// twice with one key: prefer [`Client::aead_seal`], which picks a fresh random one.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{Aead, AeadWithDefaultLengthTag, Client, Payload};
    /// let client = Client::new("my-app")?;
    /// let alg = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    /// let nonce = client.generate_random(12)?;
    /// let payload = Payload { msg: b"secret", aad: b"header" };
    /// let ciphertext = client.aead_encrypt("aes-key", alg, &nonce, payload)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn aead_encrypt<'a>(
        &self,
        key: &str,
        alg: Aead,
        nonce: &[u8],
        payload: impl Into<Payload<'a>>,
    ) -> Result<Vec<u8>> {
        let Payload { msg, aad } = payload.into();
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaAeadEncrypt>(ops::psa_aead_encrypt::Request {
                    key_name: key.to_owned(),
                    alg,
                    nonce: nonce.to_vec(),
                    additional_data: aad.to_vec(),
                    plaintext: SecretBytes::from(msg),
                })
            })?
            .ciphertext)
    }

    /// Checks and decrypts `payload.msg` (ciphertext ‖ tag) with key `key`, `alg`, `nonce` and
    /// `payload.aad`; the plaintext is wiped when dropped.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidSignature` when the data was tampered with.
    ///
    /// ```no_run
    /// use bulwark_client::{Aead, AeadWithDefaultLengthTag, Client, Payload};
    /// let client = Client::new("my-app")?;
    /// let alg = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);
    /// let nonce = client.generate_random(12)?;
    /// let ciphertext =
    ///     client.aead_encrypt("aes-key", alg, &nonce, Payload { msg: b"secret", aad: b"header" })?;
    /// let payload = Payload { msg: &ciphertext, aad: b"header" };
    /// let plaintext = client.aead_decrypt("aes-key", alg, &nonce, payload)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn aead_decrypt<'a>(
        &self,
        key: &str,
        alg: Aead,
        nonce: &[u8],
        payload: impl Into<Payload<'a>>,
    ) -> Result<SecretBytes> {
        let Payload { msg, aad } = payload.into();
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaAeadDecrypt>(ops::psa_aead_decrypt::Request {
                    key_name: key.to_owned(),
                    alg,
                    nonce: nonce.to_vec(),
                    additional_data: aad.to_vec(),
                    ciphertext: msg.to_vec(),
                })
            })?
            .plaintext)
    }

    /// Encrypts and authenticates `payload.msg` with key `key` and the AEAD algorithm of its
    /// policy, under a fresh random nonce from the service; returns `nonce ‖ ciphertext ‖ tag`,
    /// which [`Client::aead_open`] takes back. `payload.aad` is authenticated, not encrypted,
    /// and must be given again to open. Three requests: ListKeys (for the key's algorithm),
    /// GenerateRandom (the nonce), then the encryption.
    ///
    /// # Errors
    /// [`ErrorKind::KeyNotFound`]; [`ErrorKind::InvalidArgument`] when the key's policy is not
    /// an AEAD algorithm; the errors of [`Client::aead_encrypt`].
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client, Payload};
    /// let client = Client::new("my-app")?;
    /// client.generate_key("aes", attributes::aes_gcm_key(256))?;
    /// let sealed = client.aead_seal("aes", Payload { msg: b"secret", aad: b"record 7" })?;
    /// let opened = client.aead_open("aes", Payload { msg: &sealed, aad: b"record 7" })?;
    /// assert_eq!(&opened[..], b"secret");
    /// // Without additional data, the message alone:
    /// let sealed = client.aead_seal("aes", b"secret")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn aead_seal<'a>(&self, key: &str, payload: impl Into<Payload<'a>>) -> Result<Vec<u8>> {
        let payload = payload.into();
        let (alg, nonce_len) = self
            .aead_algorithm(key)
            .map_err(|e| e.with_opcode(Opcode::PsaAeadEncrypt))?;
        let nonce = self.generate_random(nonce_len)?;
        let ciphertext = self.aead_encrypt(key, alg, &nonce, payload)?;
        let mut sealed = Vec::with_capacity(nonce_len + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Checks and decrypts `payload.msg`, what [`Client::aead_seal`] returned, with the same
    /// key and `payload.aad`; the plaintext is wiped when dropped. Two requests: ListKeys (for
    /// the key's algorithm), then the decryption.
    ///
    /// # Errors
    /// As [`Client::aead_seal`]; [`ErrorKind::InvalidArgument`] when the sealed data is shorter
    /// than a nonce; `PsaErrorInvalidSignature` when it was tampered with.
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let sealed = client.aead_seal("aes", b"secret")?;
    /// let plaintext = client.aead_open("aes", &sealed)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn aead_open<'a>(&self, key: &str, payload: impl Into<Payload<'a>>) -> Result<SecretBytes> {
        let Payload { msg: sealed, aad } = payload.into();
        let (alg, nonce_len) = self
            .aead_algorithm(key)
            .map_err(|e| e.with_opcode(Opcode::PsaAeadDecrypt))?;
        let (Some(nonce), Some(ciphertext)) = (sealed.get(..nonce_len), sealed.get(nonce_len..))
        else {
            return Err(Error::new(ErrorKind::InvalidArgument)
                .with_opcode(Opcode::PsaAeadDecrypt)
                .with_key(key)
                .with_detail(format!(
                    "the sealed data ({} bytes) is shorter than its {nonce_len}-byte nonce",
                    sealed.len()
                )));
        };
        self.aead_decrypt(
            key,
            alg,
            nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
    }

    /// The AEAD algorithm of a key's policy and the nonce length to use with it.
    fn aead_algorithm(&self, key: &str) -> Result<(Aead, usize)> {
        let policy = self.key_attributes(key)?.policy.permitted_algorithms;
        let Algorithm::Aead(alg) = policy else {
            return Err(not_for(key, policy, "an AEAD algorithm"));
        };
        let base = match alg {
            Aead::AeadWithDefaultLengthTag(base) => base,
            Aead::AeadWithShortenedTag { aead_alg, .. } => aead_alg,
        };
        let nonce_len = match base {
            AeadWithDefaultLengthTag::Ccm => 13,
            AeadWithDefaultLengthTag::Gcm | AeadWithDefaultLengthTag::Chacha20Poly1305 => 12,
        };
        Ok((alg, nonce_len))
    }

    /// Encrypts `plaintext` with key `key` and unauthenticated cipher mode `alg`; returns
    /// IV ‖ ciphertext (the service picks the IV). Prefer AEAD ([`Client::aead_seal`]) unless
    /// a protocol needs a bare cipher.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{Cipher, Client};
    /// let client = Client::new("my-app")?;
    /// let ciphertext = client.cipher_encrypt("aes-cbc", Cipher::CbcPkcs7, b"data")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn cipher_encrypt(&self, key: &str, alg: Cipher, plaintext: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaCipherEncrypt>(ops::psa_cipher_encrypt::Request {
                    key_name: key.to_owned(),
                    alg,
                    plaintext: SecretBytes::from(plaintext),
                })
            })?
            .ciphertext)
    }

    /// Decrypts IV ‖ ciphertext with key `key` and cipher mode `alg`; the plaintext is wiped
    /// when dropped.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidPadding` for a bad PKCS#7 padding.
    ///
    /// ```no_run
    /// use bulwark_client::{Cipher, Client};
    /// let client = Client::new("my-app")?;
    /// let ciphertext = client.cipher_encrypt("aes-cbc", Cipher::CbcPkcs7, b"data")?;
    /// let plaintext = client.cipher_decrypt("aes-cbc", Cipher::CbcPkcs7, &ciphertext)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn cipher_decrypt(&self, key: &str, alg: Cipher, ciphertext: &[u8]) -> Result<SecretBytes> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaCipherDecrypt>(ops::psa_cipher_decrypt::Request {
                    key_name: key.to_owned(),
                    alg,
                    ciphertext: ciphertext.to_vec(),
                })
            })?
            .plaintext)
    }

    // -----------------------------------------------------------------------------------------
    // MAC, key agreement, hashes, random.

    /// Computes the MAC of `input` with key `key` and algorithm `alg` (which must be the key's
    /// policy algorithm). A `bulwarkd` extension: the upstream service does not serve it.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// client.generate_key("hmac", attributes::hmac_key(Hash::Sha256))?;
    /// let mac = client.mac_compute("hmac", attributes::hmac(Hash::Sha256), b"data")?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn mac_compute(&self, key: &str, alg: Mac, input: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaMacCompute>(ops::psa_mac_compute::Request {
                    key_name: key.to_owned(),
                    alg,
                    input: input.to_vec(),
                })
            })?
            .mac)
    }

    /// Checks `mac` over `input` with key `key` and algorithm `alg`, in constant time.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidSignature` when the MAC does not match.
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let alg = attributes::hmac(Hash::Sha256);
    /// let mac = client.mac_compute("hmac", alg, b"data")?;
    /// client.mac_verify("hmac", alg, b"data", &mac)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn mac_verify(&self, key: &str, alg: Mac, input: &[u8], mac: &[u8]) -> Result<()> {
        self.with_key(key, || {
            self.crypto::<ops::PsaMacVerify>(ops::psa_mac_verify::Request {
                key_name: key.to_owned(),
                alg,
                input: input.to_vec(),
                mac: mac.to_vec(),
            })
        })?;
        Ok(())
    }

    /// The shared secret of key pair `key` and `peer_key` (for ECDH, the peer's uncompressed
    /// point); wiped when dropped. Feed it to a key derivation function, never use it as a key.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{Client, RawKeyAgreement};
    /// let client = Client::new("my-app")?;
    /// let peer = client.export_public_key("peer-key")?;
    /// let secret = client.raw_key_agreement("my-ecdh-key", RawKeyAgreement::Ecdh, &peer)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn raw_key_agreement(
        &self,
        key: &str,
        alg: RawKeyAgreement,
        peer_key: &[u8],
    ) -> Result<SecretBytes> {
        Ok(self
            .with_key(key, || {
                self.crypto::<ops::PsaRawKeyAgreement>(ops::psa_raw_key_agreement::Request {
                    alg,
                    private_key_name: key.to_owned(),
                    peer_key: peer_key.to_vec(),
                })
            })?
            .shared_secret)
    }

    /// The digest of `input` with hash `alg`.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{Client, Hash};
    /// let client = Client::new("my-app")?;
    /// assert_eq!(client.hash_compute(Hash::Sha256, b"abc")?.len(), 32);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn hash_compute(&self, alg: Hash, input: &[u8]) -> Result<Vec<u8>> {
        Ok(self
            .crypto::<ops::PsaHashCompute>(ops::psa_hash_compute::Request {
                alg,
                input: input.to_vec(),
            })?
            .hash)
    }

    /// Checks that `hash` is the digest of `input` with hash `alg`.
    ///
    /// # Errors
    /// As [`Client::call`]; `PsaErrorInvalidSignature` when it is not.
    ///
    /// ```no_run
    /// use bulwark_client::{Client, Hash};
    /// let client = Client::new("my-app")?;
    /// let hash = client.hash_compute(Hash::Sha256, b"abc")?;
    /// client.hash_compare(Hash::Sha256, b"abc", &hash)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn hash_compare(&self, alg: Hash, input: &[u8], hash: &[u8]) -> Result<()> {
        self.crypto::<ops::PsaHashCompare>(ops::psa_hash_compare::Request {
            alg,
            input: input.to_vec(),
            hash: hash.to_vec(),
        })?;
        Ok(())
    }

    /// `size` random bytes from the provider's generator; wiped when dropped.
    ///
    /// # Errors
    /// As [`Client::call`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let seed = client.generate_random(32)?;
    /// assert_eq!(seed.len(), 32);
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn generate_random(&self, size: usize) -> Result<SecretBytes> {
        Ok(self
            .crypto::<ops::PsaGenerateRandom>(ops::psa_generate_random::Request { size })?
            .random_bytes)
    }

    /// Whether the provider supports `check_type` on keys with `attributes` (`bits` 0: any
    /// size): `Ok(false)` when the service answers `PsaErrorNotSupported`.
    ///
    /// # Errors
    /// As [`Client::call`], except `PsaErrorNotSupported`.
    ///
    /// ```no_run
    /// use bulwark_client::{attributes, CheckType, Client};
    /// let client = Client::new("my-app")?;
    /// if client.can_do_crypto(CheckType::Generate, attributes::rsa_encryption_key(4096))? {
    ///     client.generate_key("rsa", attributes::rsa_encryption_key(4096))?;
    /// }
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn can_do_crypto(&self, check_type: CheckType, attributes: Attributes) -> Result<bool> {
        match self.crypto::<ops::CanDoCrypto>(can_do_crypto::Request {
            check_type,
            attributes,
        }) {
            Ok(can_do_crypto::Response) => Ok(true),
            Err(e) if e.status() == Some(ResponseStatus::PsaErrorNotSupported) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Attestation (TPM provider).

    fn require_tpm(&self, opcode: Opcode) -> Result<()> {
        if self
            .list_providers()?
            .iter()
            .any(|p| p.id == ProviderId::Tpm)
        {
            return Ok(());
        }
        Err(Error::new(ErrorKind::NoProvider)
            .with_opcode(opcode)
            .with_detail(format!(
                "{opcode} needs the TPM provider (id 3), which the service does not run: \
                 configure a TPM provider in the service"
            )))
    }

    /// PrepareKeyAttestation, sent to the TPM provider (id 3) whatever the client's provider.
    ///
    /// # Errors
    /// [`ErrorKind::NoProvider`] when the service has no TPM provider; as [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{Client, PrepareKeyAttestationParams};
    /// let client = Client::new("my-app")?;
    /// let output = client.prepare_key_attestation(PrepareKeyAttestationParams::ActivateCredential {
    ///     attested_key_name: "attested-key".into(),
    ///     attesting_key_name: None,
    /// })?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn prepare_key_attestation(
        &self,
        parameters: PrepareKeyAttestationParams,
    ) -> Result<PrepareKeyAttestationOutput> {
        self.require_tpm(Opcode::PrepareKeyAttestation)?;
        let PrepareKeyAttestationParams::ActivateCredential {
            attested_key_name, ..
        } = &parameters;
        let key = attested_key_name.clone();
        Ok(self
            .with_key(&key, || {
                self.send::<ops::PrepareKeyAttestation>(
                    ProviderId::Tpm,
                    &self.auth,
                    prepare_key_attestation::Request { parameters },
                )
            })?
            .output)
    }

    /// AttestKey, sent to the TPM provider (id 3): attests key `attested_key` with the
    /// challenge in `parameters`, using `attesting_key` (`None`: the default attesting key).
    ///
    /// # Errors
    /// [`ErrorKind::NoProvider`] when the service has no TPM provider; as [`Client::call`].
    ///
    /// ```no_run
    /// use bulwark_client::{AttestationMechanismParams, Client};
    /// let client = Client::new("my-app")?;
    /// let output = client.attest_key(
    ///     "attested-key",
    ///     AttestationMechanismParams::ActivateCredential {
    ///         credential_blob: vec![],
    ///         secret: vec![],
    ///     },
    ///     None,
    /// )?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn attest_key(
        &self,
        attested_key: &str,
        parameters: AttestationMechanismParams,
        attesting_key: Option<&str>,
    ) -> Result<AttestationOutput> {
        self.require_tpm(Opcode::AttestKey)?;
        Ok(self
            .with_key(attested_key, || {
                self.send::<ops::AttestKey>(
                    ProviderId::Tpm,
                    &self.auth,
                    attest_key::Request {
                        attested_key_name: attested_key.to_owned(),
                        parameters,
                        attesting_key_name: attesting_key.map(str::to_owned),
                    },
                )
            })?
            .output)
    }

    /// The first half of TPM `ActivateCredential` attestation: what a verifier needs to build
    /// its challenge for key `attested_key` (attested by `attesting_key`, `None`: the default).
    ///
    /// # Errors
    /// As [`Client::prepare_key_attestation`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let challenge = client.prepare_activate_credential("attested-key", None)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn prepare_activate_credential(
        &self,
        attested_key: &str,
        attesting_key: Option<&str>,
    ) -> Result<ActivateCredentialChallenge> {
        let PrepareKeyAttestationOutput::ActivateCredential {
            name,
            public,
            attesting_key_pub,
        } = self.prepare_key_attestation(PrepareKeyAttestationParams::ActivateCredential {
            attested_key_name: attested_key.to_owned(),
            attesting_key_name: attesting_key.map(str::to_owned),
        })?;
        Ok(ActivateCredentialChallenge {
            name,
            public,
            attesting_key_pub,
        })
    }

    /// The second half: answers the verifier's challenge (`credential_blob`, `secret`) and
    /// returns the decrypted credential, wiped when dropped.
    ///
    /// # Errors
    /// As [`Client::attest_key`].
    ///
    /// ```no_run
    /// let client = bulwark_client::Client::new("my-app")?;
    /// let (blob, secret) = (vec![], vec![]); // from the verifier
    /// let credential = client.activate_credential("attested-key", None, blob, secret)?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn activate_credential(
        &self,
        attested_key: &str,
        attesting_key: Option<&str>,
        credential_blob: Vec<u8>,
        secret: Vec<u8>,
    ) -> Result<SecretBytes> {
        let AttestationOutput::ActivateCredential { credential } = self.attest_key(
            attested_key,
            AttestationMechanismParams::ActivateCredential {
                credential_blob,
                secret,
            },
            attesting_key,
        )?;
        Ok(credential)
    }
}

/// The error of a convenience call whose key's policy names the wrong kind of algorithm.
fn not_for(key: &str, policy: Algorithm, wanted: &str) -> Error {
    Error::new(ErrorKind::InvalidArgument)
        .with_key(key)
        .with_detail(format!(
            "key {key:?} has policy algorithm {policy:?}, not {wanted}: create the key with a \
             matching policy (see the `attributes` module) or call the operation with an \
             explicit algorithm"
        ))
}

/// The data of an AEAD operation and the additional data authenticated with it, named so that
/// the two cannot be swapped by mistake. A bare message converts into a payload without
/// additional data.
///
/// ```
/// use bulwark_client::Payload;
/// let with_aad = Payload { msg: b"secret", aad: b"header" };
/// let without: Payload = b"secret".into();
/// assert!(without.aad.is_empty());
/// # let _ = with_aad;
/// ```
///
/// Two bare byte strings, whichever their order, are not a payload:
///
/// ```compile_fail
/// # let client = bulwark_client::Client::new("my-app")?;
/// let sealed = client.aead_seal("aes", b"header", b"secret")?;
/// # Ok::<(), bulwark_client::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Payload<'a> {
    /// The message: plaintext to encrypt, or ciphertext (with its tag) to decrypt.
    pub msg: &'a [u8],
    /// The additional data: authenticated, never encrypted.
    pub aad: &'a [u8],
}

impl fmt::Debug for Payload<'_> {
    /// Lengths only: the message may be a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payload")
            .field("msg_len", &self.msg.len())
            .field("aad_len", &self.aad.len())
            .finish()
    }
}

impl<'a> From<&'a [u8]> for Payload<'a> {
    fn from(msg: &'a [u8]) -> Self {
        Payload { msg, aad: &[] }
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Payload<'a> {
    fn from(msg: &'a [u8; N]) -> Self {
        Payload { msg, aad: &[] }
    }
}

impl<'a> From<&'a Vec<u8>> for Payload<'a> {
    fn from(msg: &'a Vec<u8>) -> Self {
        Payload { msg, aad: &[] }
    }
}
