//! Driving a service over its socket with either client library.
//!
//! Set-up discovers the provider and authenticator as each client does, creates the keys the
//! operations need once (a key per thread where threads would otherwise share one; one RSA key
//! for all, since RSA key generation is slow), runs every (operation, thread count) cell, and
//! destroys the keys, also when a cell failed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::measure::{closed_loop, Label, Worker};
use crate::ops::{digest, next_nonce, payload, Op, RANDOM_LEN};
use crate::record::{Kind, Record};
use crate::ClientKind;

/// What to run against one service.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The service's label in records.
    pub target: String,
    /// Its socket.
    pub socket: PathBuf,
    /// Which client library.
    pub client: ClientKind,
    /// The application name for Direct authentication.
    pub app_name: String,
    /// With the bulwark client: another authentication than Direct.
    pub auth: Option<bulwark_client::Auth>,
    /// The operations, each run with every thread count.
    pub ops: Vec<Op>,
    /// The thread counts.
    pub threads: Vec<usize>,
    /// Warm-up of each cell.
    pub warmup: Duration,
    /// Measured time of each cell.
    pub duration: Duration,
    /// The daemon's pid, for its CPU time.
    pub daemon_pid: Option<i32>,
    /// A file created once the keys are set up, before the first cell starts.
    pub ready_file: Option<PathBuf>,
}

/// The time any one request may take before the client gives up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The keys the operations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// ECC P-256 key pair for ECDSA with SHA-256.
    EccP256,
    /// RSA key pair of this many bits for PKCS#1 v1.5 signatures with SHA-256.
    Rsa(usize),
    /// AES-128 key for GCM.
    Aes128Gcm,
}

/// The signature schemes used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// ECDSA with SHA-256.
    EcdsaSha256,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RsaPkcs1Sha256,
}

/// The calls of either client library the operations are made of.
pub(crate) trait Api: Send {
    /// Ping.
    fn ping(&self) -> Result<()>;
    /// Ping with the client's authentication.
    fn ping_auth(&self) -> Result<()> {
        bail!("only the bulwark client sends an authenticated ping")
    }
    /// ListProviders.
    fn list_providers(&self) -> Result<()>;
    /// PsaGenerateRandom.
    fn random(&self, size: usize) -> Result<()>;
    /// PsaHashCompute with SHA-256.
    fn sha256(&self, input: &[u8]) -> Result<()>;
    /// PsaSignHash.
    fn sign(&self, key: &str, scheme: Scheme, hash: &[u8]) -> Result<Vec<u8>>;
    /// PsaVerifyHash.
    fn verify(&self, key: &str, scheme: Scheme, hash: &[u8], signature: &[u8]) -> Result<()>;
    /// PsaAeadEncrypt with AES-GCM and no additional data.
    fn aes_gcm_encrypt(&self, key: &str, nonce: &[u8], plaintext: &[u8]) -> Result<()>;
    /// PsaGenerateKey.
    fn generate(&self, key: &str, kind: KeyKind) -> Result<()>;
    /// PsaDestroyKey.
    fn destroy(&self, key: &str) -> Result<()>;
    /// PsaImportKey of an RSA key pair (PKCS#1 DER) for PKCS#1 v1.5 signatures with SHA-256,
    /// its size taken from the data.
    fn import_rsa(&self, key: &str, der: &[u8]) -> Result<()>;
}

// ---------------------------------------------------------------------------------------------
// bulwark-client

mod ours {
    use bulwark_client::{attributes, Aead, AeadWithDefaultLengthTag, Client, EccFamily, Hash};

    use super::{Api, KeyKind, Result, Scheme};

    fn scheme(scheme: Scheme) -> bulwark_client::AsymmetricSignature {
        match scheme {
            Scheme::EcdsaSha256 => bulwark_client::AsymmetricSignature::Ecdsa {
                hash_alg: Hash::Sha256.into(),
            },
            Scheme::RsaPkcs1Sha256 => bulwark_client::AsymmetricSignature::RsaPkcs1v15Sign {
                hash_alg: Hash::Sha256.into(),
            },
        }
    }

    const GCM: Aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);

    impl Api for Client {
        fn ping(&self) -> Result<()> {
            Client::ping(self)?;
            Ok(())
        }
        fn ping_auth(&self) -> Result<()> {
            self.call::<bulwark_client::interface::ops::Ping>(
                bulwark_client::ProviderId::Core,
                bulwark_client::interface::ops::ping::Request,
            )?;
            Ok(())
        }
        fn list_providers(&self) -> Result<()> {
            Client::list_providers(self)?;
            Ok(())
        }
        fn random(&self, size: usize) -> Result<()> {
            self.generate_random(size)?;
            Ok(())
        }
        fn sha256(&self, input: &[u8]) -> Result<()> {
            self.hash_compute(Hash::Sha256, input)?;
            Ok(())
        }
        fn sign(&self, key: &str, s: Scheme, hash: &[u8]) -> Result<Vec<u8>> {
            Ok(self.sign_hash(key, scheme(s), hash)?)
        }
        fn verify(&self, key: &str, s: Scheme, hash: &[u8], signature: &[u8]) -> Result<()> {
            Ok(self.verify_hash(key, scheme(s), hash, signature)?)
        }
        fn aes_gcm_encrypt(&self, key: &str, nonce: &[u8], plaintext: &[u8]) -> Result<()> {
            self.aead_encrypt(key, GCM, nonce, plaintext)?;
            Ok(())
        }
        fn generate(&self, key: &str, kind: KeyKind) -> Result<()> {
            let attributes = match kind {
                KeyKind::EccP256 => attributes::ecc_signing_key(EccFamily::SecpR1, 256),
                KeyKind::Rsa(bits) => attributes::rsa_signing_key(bits),
                KeyKind::Aes128Gcm => attributes::aes_gcm_key(128),
            };
            Ok(self.generate_key(key, attributes)?)
        }
        fn destroy(&self, key: &str) -> Result<()> {
            Ok(self.destroy_key(key)?)
        }
        fn import_rsa(&self, key: &str, der: &[u8]) -> Result<()> {
            Ok(self.import_key(key, attributes::rsa_signing_key(0), der)?)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// parsec-client 0.16

mod upstream {
    use std::path::{Path, PathBuf};

    use anyhow::Context;
    use parsec_client::auth::Authentication;
    use parsec_client::core::interface::operations::psa_algorithm::{
        Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricSignature, Hash, SignHash,
    };
    use parsec_client::core::interface::operations::psa_key_attributes::{
        Attributes, EccFamily, Lifetime, Policy, Type, UsageFlags,
    };
    use parsec_client::core::interface::requests::ProviderId;
    use parsec_client::core::ipc_handler::unix_socket::Handler;
    use parsec_client::BasicClient;

    use super::{Api, KeyKind, Result, Scheme, REQUEST_TIMEOUT};

    /// What discovery found, to make one `BasicClient` per thread without asking again.
    #[derive(Debug, Clone)]
    pub(super) struct Setup {
        socket: PathBuf,
        provider: ProviderId,
        auth: Authentication,
    }

    fn naked(socket: &Path) -> Result<BasicClient> {
        let mut client = BasicClient::default();
        let handler = Handler::new(socket.to_path_buf(), Some(REQUEST_TIMEOUT))
            .with_context(|| format!("socket {}", socket.display()))?;
        client.set_ipc_handler(Box::new(handler));
        Ok(client)
    }

    impl Setup {
        /// Asks the service for its providers and authenticators, as `BasicClient::new` does.
        pub(super) fn discover(socket: PathBuf, app_name: &str) -> Result<Setup> {
            let mut client = naked(&socket)?;
            client.set_default_provider().context("ListProviders")?;
            client
                .set_default_auth(Some(app_name.to_owned()))
                .context("ListAuthenticators")?;
            Ok(Setup {
                socket,
                provider: client.implicit_provider(),
                auth: client.auth_data(),
            })
        }

        /// A client for one thread.
        pub(super) fn client(&self) -> Result<BasicClient> {
            let mut client = naked(&self.socket)?;
            client.set_implicit_provider(self.provider);
            client.set_auth_data(self.auth.clone());
            Ok(client)
        }
    }

    fn scheme(scheme: Scheme) -> AsymmetricSignature {
        match scheme {
            Scheme::EcdsaSha256 => AsymmetricSignature::Ecdsa {
                hash_alg: SignHash::Specific(Hash::Sha256),
            },
            Scheme::RsaPkcs1Sha256 => AsymmetricSignature::RsaPkcs1v15Sign {
                hash_alg: SignHash::Specific(Hash::Sha256),
            },
        }
    }

    const GCM: Aead = Aead::AeadWithDefaultLengthTag(AeadWithDefaultLengthTag::Gcm);

    fn attributes(kind: KeyKind) -> Attributes {
        let mut usage_flags = UsageFlags::default();
        let (key_type, bits, alg): (Type, usize, Algorithm) = match kind {
            KeyKind::EccP256 => {
                usage_flags.set_sign_hash().set_verify_hash();
                (
                    Type::EccKeyPair {
                        curve_family: EccFamily::SecpR1,
                    },
                    256,
                    scheme(Scheme::EcdsaSha256).into(),
                )
            }
            KeyKind::Rsa(bits) => {
                usage_flags.set_sign_hash().set_verify_hash();
                (
                    Type::RsaKeyPair,
                    bits,
                    scheme(Scheme::RsaPkcs1Sha256).into(),
                )
            }
            KeyKind::Aes128Gcm => {
                usage_flags.set_encrypt().set_decrypt();
                (Type::Aes, 128, GCM.into())
            }
        };
        Attributes {
            lifetime: Lifetime::Persistent,
            key_type,
            bits,
            policy: Policy {
                usage_flags,
                permitted_algorithms: alg,
            },
        }
    }

    impl Api for BasicClient {
        fn ping(&self) -> Result<()> {
            BasicClient::ping(self)?;
            Ok(())
        }
        fn list_providers(&self) -> Result<()> {
            BasicClient::list_providers(self)?;
            Ok(())
        }
        fn random(&self, size: usize) -> Result<()> {
            self.psa_generate_random(size)?;
            Ok(())
        }
        fn sha256(&self, input: &[u8]) -> Result<()> {
            self.psa_hash_compute(Hash::Sha256, input)?;
            Ok(())
        }
        fn sign(&self, key: &str, s: Scheme, hash: &[u8]) -> Result<Vec<u8>> {
            Ok(self.psa_sign_hash(key, hash, scheme(s))?)
        }
        fn verify(&self, key: &str, s: Scheme, hash: &[u8], signature: &[u8]) -> Result<()> {
            Ok(self.psa_verify_hash(key, hash, scheme(s), signature)?)
        }
        fn aes_gcm_encrypt(&self, key: &str, nonce: &[u8], plaintext: &[u8]) -> Result<()> {
            self.psa_aead_encrypt(key, GCM, nonce, &[], plaintext)?;
            Ok(())
        }
        fn generate(&self, key: &str, kind: KeyKind) -> Result<()> {
            Ok(self.psa_generate_key(key, attributes(kind))?)
        }
        fn destroy(&self, key: &str) -> Result<()> {
            Ok(self.psa_destroy_key(key)?)
        }
        fn import_rsa(&self, key: &str, der: &[u8]) -> Result<()> {
            Ok(self.psa_import_key(key, der, attributes(KeyKind::Rsa(0)))?)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A raw client that reads until the service closes the connection

mod until_close {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    use anyhow::{bail, ensure, Context};
    use bulwark_interface::ids::{AuthType, ProviderId};
    use bulwark_interface::ops::{self, Operation};
    use bulwark_interface::wire::{RequestFrame, RequestHeader, ResponseFrame};
    use zeroize::Zeroizing;

    use super::{Api, KeyKind, Result, Scheme, REQUEST_TIMEOUT};

    /// Direct authentication as `app_name`; provider 1 for crypto operations.
    pub(super) struct UntilClose {
        pub socket: PathBuf,
        pub app_name: String,
    }

    impl UntilClose {
        /// One request on a new connection, written whole; then everything the service sends
        /// until it closes the connection (our side stays open), which must be one answer.
        fn call<O: Operation>(
            &self,
            provider: ProviderId,
            request: O::Request,
        ) -> Result<O::Response> {
            let frame = RequestFrame {
                header: RequestHeader::new(provider, O::OPCODE, AuthType::Direct),
                body: ops::encode_request::<O>(request)?,
                auth: Zeroizing::new(self.app_name.as_bytes().to_vec()),
            };
            let mut stream = UnixStream::connect(&self.socket).context("connect")?;
            stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
            stream.write_all(&frame.to_bytes()?)?;
            let mut received = Zeroizing::new(Vec::new());
            stream
                .read_to_end(&mut received)
                .context("reading until the service closes")?;
            let (response, used) = ResponseFrame::parse(&received, usize::MAX)?;
            ensure!(
                used == received.len(),
                "{} bytes after the answer",
                received.len() - used
            );
            ensure!(
                response.header.status.is_success(),
                "the service answered {:?}",
                response.header.status
            );
            Ok(ops::decode_response::<O>(&response.body)?)
        }
    }

    fn unsupported<T>(what: &str) -> Result<T> {
        bail!("the until-close client does not do {what}")
    }

    impl Api for UntilClose {
        fn ping(&self) -> Result<()> {
            self.call::<ops::Ping>(ProviderId::Core, ops::ping::Request)?;
            Ok(())
        }
        fn list_providers(&self) -> Result<()> {
            self.call::<ops::ListProviders>(ProviderId::Core, ops::list_providers::Request)?;
            Ok(())
        }
        fn random(&self, size: usize) -> Result<()> {
            let random = self.call::<ops::PsaGenerateRandom>(
                ProviderId::MbedCrypto,
                ops::psa_generate_random::Request { size },
            )?;
            ensure!(random.random_bytes.len() == size, "short random answer");
            Ok(())
        }
        fn sha256(&self, _input: &[u8]) -> Result<()> {
            unsupported("sha256")
        }
        fn sign(&self, _key: &str, _s: Scheme, _hash: &[u8]) -> Result<Vec<u8>> {
            unsupported("signatures")
        }
        fn verify(&self, _key: &str, _s: Scheme, _hash: &[u8], _signature: &[u8]) -> Result<()> {
            unsupported("verification")
        }
        fn aes_gcm_encrypt(&self, _key: &str, _nonce: &[u8], _plaintext: &[u8]) -> Result<()> {
            unsupported("AES-GCM")
        }
        fn generate(&self, _key: &str, _kind: KeyKind) -> Result<()> {
            unsupported("key generation")
        }
        fn destroy(&self, _key: &str) -> Result<()> {
            unsupported("key destruction")
        }
        fn import_rsa(&self, _key: &str, _der: &[u8]) -> Result<()> {
            unsupported("key import")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections and keys

/// Makes one [`Api`] per thread.
enum Connector {
    Upstream(upstream::Setup),
    Bulwark(bulwark_client::Client),
    UntilClose(PathBuf, String),
}

impl Connector {
    fn new(plan: &Plan) -> Result<Connector> {
        let max_threads = plan.threads.iter().copied().max().unwrap_or(1);
        if plan.auth.is_some() && plan.client != ClientKind::Bulwark {
            anyhow::bail!("--auth other than direct needs --client bulwark");
        }
        match plan.client {
            ClientKind::Upstream => Ok(Connector::Upstream(upstream::Setup::discover(
                plan.socket.clone(),
                &plan.app_name,
            )?)),
            ClientKind::Bulwark => {
                let mut builder = bulwark_client::Client::builder()
                    .socket(&plan.socket)
                    .timeout(REQUEST_TIMEOUT)
                    .app_name(&plan.app_name)
                    .reuse_connections(true)
                    .max_idle_connections(
                        max_threads.max(bulwark_client::DEFAULT_MAX_IDLE_CONNECTIONS),
                    );
                if let Some(auth) = &plan.auth {
                    builder = builder.auth(auth.clone());
                }
                let client = builder.build().context("building the client (discovery)")?;
                Ok(Connector::Bulwark(client))
            }
            ClientKind::UntilClose => Ok(Connector::UntilClose(
                plan.socket.clone(),
                plan.app_name.clone(),
            )),
        }
    }

    /// A client for one thread: its own `BasicClient` (each request opens its own connection
    /// anyway), or a clone of the shared `Client` (one pool of connections, as an application
    /// would share it).
    fn api(&self) -> Result<Box<dyn Api>> {
        Ok(match self {
            Connector::Upstream(setup) => Box::new(setup.client()?),
            Connector::Bulwark(client) => Box::new(client.clone()),
            Connector::UntilClose(socket, app_name) => Box::new(until_close::UntilClose {
                socket: socket.clone(),
                app_name: app_name.clone(),
            }),
        })
    }
}

/// Key names of one run: unique per process so that runs never meet each other's keys.
#[derive(Debug, Clone)]
struct Keys {
    prefix: String,
}

impl Keys {
    fn new(client: ClientKind) -> Keys {
        Keys {
            prefix: format!("bench-{}-{}", std::process::id(), client.name()),
        }
    }
    fn ecdsa(&self, thread: usize) -> String {
        format!("{}-ecdsa-{thread}", self.prefix)
    }
    fn aes(&self, thread: usize) -> String {
        format!("{}-aes-{thread}", self.prefix)
    }
    fn rsa(&self) -> String {
        format!("{}-rsa", self.prefix)
    }
    fn rsa8192(&self) -> String {
        format!("{}-rsa8192", self.prefix)
    }
    fn generated(&self, thread: usize) -> String {
        format!("{}-gen-{thread}", self.prefix)
    }
}

/// The keys the plan needs, created once.
fn create_keys(api: &dyn Api, plan: &Plan, keys: &Keys, created: &mut Vec<String>) -> Result<()> {
    let max_threads = plan.threads.iter().copied().max().unwrap_or(1);
    let mut wanted = Vec::new();
    if plan
        .ops
        .iter()
        .any(|op| matches!(op, Op::EcdsaSign | Op::EcdsaVerify))
    {
        wanted.extend((0..max_threads).map(|t| (keys.ecdsa(t), KeyKind::EccP256)));
    }
    if plan.ops.contains(&Op::AesGcmEncrypt) {
        wanted.extend((0..max_threads).map(|t| (keys.aes(t), KeyKind::Aes128Gcm)));
    }
    if plan.ops.contains(&Op::RsaSign) {
        wanted.push((keys.rsa(), KeyKind::Rsa(2048)));
    }
    for (name, kind) in wanted {
        api.generate(&name, kind)
            .with_context(|| format!("set-up: generating {kind:?} key {name}"))?;
        created.push(name);
    }
    if plan.ops.contains(&Op::Rsa8192Sign) {
        // Services generate RSA keys of at most 4096 bits, but import larger ones.
        let name = keys.rsa8192();
        let der = openssl::rsa::Rsa::generate(8192)
            .and_then(|rsa| rsa.private_key_to_der())
            .context("set-up: making an RSA-8192 key")?;
        api.import_rsa(&name, &der)
            .with_context(|| format!("set-up: importing RSA-8192 key {name}"))?;
        created.push(name);
    }
    Ok(())
}

/// Destroys what set-up created and any key a generate-destroy cell left behind.
fn destroy_keys(api: &dyn Api, plan: &Plan, keys: &Keys, created: &[String]) {
    for name in created {
        if let Err(e) = api.destroy(name) {
            eprintln!("clean-up: destroying {name}: {e:#}");
        }
    }
    if plan
        .ops
        .iter()
        .any(|op| matches!(op, Op::EccGenerateDestroy | Op::Rsa4096GenerateDestroy))
    {
        let max_threads = plan.threads.iter().copied().max().unwrap_or(1);
        for t in 0..max_threads {
            // Normally already destroyed: only a cell stopped between the two calls leaves one.
            let _ = api.destroy(&keys.generated(t));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Workers

struct OpWorker {
    api: Box<dyn Api>,
    op: Op,
    key: String,
    payload: Arc<Vec<u8>>,
    digest: [u8; 32],
    signature: Vec<u8>,
}

impl Worker for OpWorker {
    fn call(&mut self) -> Result<()> {
        let api = &*self.api;
        match self.op {
            Op::Ping => api.ping(),
            Op::PingAuth => api.ping_auth(),
            Op::ListProviders => api.list_providers(),
            Op::Random32 => api.random(RANDOM_LEN),
            Op::Sha256 => api.sha256(&self.payload),
            Op::EcdsaSign => api
                .sign(&self.key, Scheme::EcdsaSha256, &self.digest)
                .map(drop),
            Op::EcdsaVerify => api.verify(
                &self.key,
                Scheme::EcdsaSha256,
                &self.digest,
                &self.signature,
            ),
            Op::RsaSign => api
                .sign(&self.key, Scheme::RsaPkcs1Sha256, &self.digest)
                .map(drop),
            Op::AesGcmEncrypt => api.aes_gcm_encrypt(&self.key, &next_nonce(), &self.payload),
            Op::EccGenerateDestroy | Op::Rsa4096GenerateDestroy => {
                let kind = if self.op == Op::EccGenerateDestroy {
                    KeyKind::EccP256
                } else {
                    KeyKind::Rsa(4096)
                };
                if let Err(e) = api.generate(&self.key, kind) {
                    // A key left by an earlier failure would make every later call fail.
                    let _ = api.destroy(&self.key);
                    return Err(e);
                }
                api.destroy(&self.key)
            }
            Op::Rsa8192Sign => api
                .sign(&self.key, Scheme::RsaPkcs1Sha256, &self.digest)
                .map(drop),
        }
    }
}

fn worker(
    connector: &Connector,
    keys: &Keys,
    op: Op,
    thread: usize,
    payload: &Arc<Vec<u8>>,
) -> Result<Box<dyn Worker>> {
    let api = connector.api()?;
    let key = match op {
        Op::EcdsaSign | Op::EcdsaVerify => keys.ecdsa(thread),
        Op::AesGcmEncrypt => keys.aes(thread),
        Op::RsaSign => keys.rsa(),
        Op::EccGenerateDestroy | Op::Rsa4096GenerateDestroy => keys.generated(thread),
        Op::Rsa8192Sign => keys.rsa8192(),
        Op::Ping | Op::PingAuth | Op::ListProviders | Op::Random32 | Op::Sha256 => String::new(),
    };
    let digest = digest();
    let signature = if op == Op::EcdsaVerify {
        api.sign(&key, Scheme::EcdsaSha256, &digest)
            .with_context(|| format!("set-up: signing with {key} for verification"))?
    } else {
        Vec::new()
    };
    Ok(Box::new(OpWorker {
        api,
        op,
        key,
        payload: Arc::clone(payload),
        digest,
        signature,
    }))
}

/// Prints one line of progress on standard error.
pub(crate) fn progress(record: &Record) {
    let errors = match (&record.first_error, record.errors) {
        (Some(e), n) if n > 0 => format!(" ({n} errors, first: {e})"),
        (Some(e), _) => format!(" (warm-up error: {e})"),
        _ => String::new(),
    };
    eprintln!(
        "{:<18} {:<9} {:<26} x{:<2} {:>10.0} ops/s  p50 {:>9.1} us  p99 {:>9.1} us  \
         bench cpu {:.2} cores{errors}",
        record.target,
        record.client,
        record.op,
        record.threads,
        record.ops_per_s,
        record.p50_us,
        record.p99_us,
        record.bench_cpu_cores,
    );
}

/// Runs every cell of the plan; `sink` gets each record as soon as it is measured.
///
/// # Errors
/// When discovery or key set-up fails, or a cell cannot be started. Failed operations inside a
/// cell are counted in its record instead.
pub(crate) fn run(plan: &Plan, sink: &mut dyn FnMut(&Record) -> Result<()>) -> Result<Vec<Record>> {
    let connector = Connector::new(plan)?;
    let admin = connector.api()?;
    let keys = Keys::new(plan.client);
    let mut created = Vec::new();
    let outcome = create_keys(&*admin, plan, &keys, &mut created)
        .and_then(|()| match &plan.ready_file {
            Some(path) => {
                std::fs::write(path, b"").with_context(|| format!("creating {}", path.display()))
            }
            None => Ok(()),
        })
        .and_then(|()| run_cells(plan, &connector, &keys, sink));
    destroy_keys(&*admin, plan, &keys, &created);
    outcome
}

fn run_cells(
    plan: &Plan,
    connector: &Connector,
    keys: &Keys,
    sink: &mut dyn FnMut(&Record) -> Result<()>,
) -> Result<Vec<Record>> {
    let payload = Arc::new(payload());
    let mut records = Vec::new();
    for &op in &plan.ops {
        for &threads in &plan.threads {
            let workers = (0..threads)
                .map(|t| worker(connector, keys, op, t, &payload))
                .collect::<Result<Vec<_>>>()?;
            let label = Label {
                kind: Kind::Load,
                target: plan.target.clone(),
                client: plan.client.name().to_owned(),
                op: op.name().to_owned(),
            };
            let record = closed_loop(label, workers, plan.warmup, plan.duration, plan.daemon_pid)?;
            progress(&record);
            sink(&record)?;
            records.push(record);
            if let Some(pid) = plan.daemon_pid {
                if crate::cpu::of_process(pid).is_err() {
                    bail!(
                        "the daemon (pid {pid}) exited during {} with {threads} threads",
                        op.name()
                    );
                }
            }
        }
    }
    Ok(records)
}
