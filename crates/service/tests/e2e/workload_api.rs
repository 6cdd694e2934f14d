//! The SPIFFE Workload API, against the real bulwarkd: JWT bundles bulwarkd follows, and
//! JWT-SVIDs bulwark-client fetches for its workload.
//!
//! SPIRE itself cannot be installed on the machines these tests run on, so the tests serve the
//! Workload API themselves: `FetchJWTBundles` (the stream an agent sends JWT bundles on) and
//! `FetchJWTSVID` (a workload's SVID), the published gRPC methods, on a Unix socket, written
//! with tonic's server side (the gRPC stack of the `spiffe` crate, which bulwarkd and
//! bulwark-client use as clients) and the API's messages as prost types. One server stands for
//! the agent as one workload sees it (an agent tells workloads apart by their process; two
//! workloads here are two sockets). Like an agent, the server refuses calls without the
//! `workload.spiffe.io: true` metadata. Keys, bundles (JWKS) and SVIDs are made with OpenSSL
//! and the `jsonwebtoken` crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_client::{attributes, Auth, Client, EccFamily, ResponseStatus, TokenSource};
use bulwark_interface::ids::AuthType;
use tokio::sync::watch;
use tokio_stream::wrappers::{UnixListenerStream, WatchStream};
use tokio_stream::{Stream, StreamExt as _};
use tonic::codegen::http;

use crate::harness::{Auth as DaemonAuth, Daemon};
use crate::token_auth::{auth_status, jwks, svid_claims, Signer};

/// `JWTBundlesRequest` of the Workload API (no fields).
#[derive(Clone, PartialEq, prost::Message)]
struct JwtBundlesRequest {}

/// `JWTBundlesResponse` of the Workload API: trust domain ID → JWKS document.
#[derive(Clone, PartialEq, prost::Message)]
struct JwtBundlesResponse {
    #[prost(map = "string, bytes", tag = "1")]
    bundles: HashMap<String, Vec<u8>>,
}

/// `JWTSVIDRequest` of the Workload API.
#[derive(Clone, PartialEq, prost::Message)]
struct JwtSvidRequest {
    #[prost(string, repeated, tag = "1")]
    audience: Vec<String>,
    #[prost(string, tag = "2")]
    spiffe_id: String,
}

/// `JWTSVID` of the Workload API.
#[derive(Clone, PartialEq, prost::Message)]
struct JwtSvid {
    #[prost(string, tag = "1")]
    spiffe_id: String,
    #[prost(string, tag = "2")]
    svid: String,
    #[prost(string, tag = "3")]
    hint: String,
}

/// `JWTSVIDResponse` of the Workload API.
#[derive(Clone, PartialEq, prost::Message)]
struct JwtSvidResponse {
    #[prost(message, repeated, tag = "1")]
    svids: Vec<JwtSvid>,
}

type Bundles = HashMap<String, Vec<u8>>;

/// The workload a server hands SVIDs to: its SPIFFE ID, the key that signs its SVIDs, their
/// lifetime in seconds, and how many it handed out.
struct Workload {
    id: String,
    signer: Arc<Signer>,
    lifetime: u64,
    fetched: AtomicUsize,
}

/// What one server answers with.
struct State {
    bundles: watch::Receiver<Bundles>,
    workload: Option<Arc<Workload>>,
}
type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<JwtBundlesResponse, tonic::Status>> + Send + 'static>>;

/// A Workload API server on a Unix socket streaming the bundles last set.
struct WorkloadApi {
    socket: PathBuf,
    bundles: watch::Sender<Bundles>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl WorkloadApi {
    /// Serves `bundles` at `socket`.
    fn start(socket: &Path, bundles: Bundles) -> WorkloadApi {
        WorkloadApi::serving(socket, bundles, None)
    }

    /// Serves `bundles`, and SVIDs of `workload` when given, at `socket`.
    fn serving(socket: &Path, bundles: Bundles, workload: Option<Arc<Workload>>) -> WorkloadApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (sender, receiver) = watch::channel(bundles);
        let listener = {
            let _guard = runtime.enter();
            tokio::net::UnixListener::bind(socket).unwrap()
        };
        let state = Arc::new(State {
            bundles: receiver,
            workload,
        });
        let service = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
            let state = Arc::clone(&state);
            async move { Ok::<_, std::convert::Infallible>(serve(request, state).await) }
        });
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .serve_with_incoming(service, UnixListenerStream::new(listener))
                .await
                .unwrap();
        });
        WorkloadApi {
            socket: socket.to_owned(),
            bundles: sender,
            runtime: Some(runtime),
        }
    }

    /// `unix:<socket>`, as `workload_endpoint` names it.
    fn endpoint(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    /// Streams `bundles` to every client from now on (a rotation at the agent).
    fn set(&self, bundles: Bundles) {
        self.bundles.send_replace(bundles);
    }
}

impl Drop for WorkloadApi {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// One gRPC call: FetchJWTBundles streams the bundles as they change; FetchJWTSVID signs an
/// SVID for the server's workload; any other method is unimplemented.
async fn serve(
    request: http::Request<tonic::body::Body>,
    state: Arc<State>,
) -> http::Response<tonic::body::Body> {
    if request
        .headers()
        .get("workload.spiffe.io")
        .is_none_or(|v| v != "true")
    {
        return tonic::Status::invalid_argument("security header missing from request").into_http();
    }
    match request.uri().path() {
        "/SpiffeWorkloadAPI/FetchJWTBundles" => {
            let method = tower::service_fn(move |_: tonic::Request<JwtBundlesRequest>| {
                let updates: ResponseStream = Box::pin(
                    WatchStream::new(state.bundles.clone())
                        .map(|bundles| Ok(JwtBundlesResponse { bundles })),
                );
                async move { Ok::<_, tonic::Status>(tonic::Response::new(updates)) }
            });
            tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                .server_streaming(method, request)
                .await
        }
        "/SpiffeWorkloadAPI/FetchJWTSVID" => {
            let method = tower::service_fn(move |call: tonic::Request<JwtSvidRequest>| {
                let answer = state
                    .workload
                    .as_ref()
                    .ok_or_else(|| tonic::Status::permission_denied("no identity issued"))
                    .map(|workload| {
                        workload.fetched.fetch_add(1, Ordering::SeqCst);
                        let now = jsonwebtoken::get_current_timestamp();
                        let claims = serde_json::json!({
                            "sub": workload.id,
                            "aud": call.get_ref().audience,
                            "iat": now,
                            "exp": now + workload.lifetime,
                        });
                        tonic::Response::new(JwtSvidResponse {
                            svids: vec![JwtSvid {
                                spiffe_id: workload.id.clone(),
                                svid: workload.signer.sign(&claims),
                                hint: String::new(),
                            }],
                        })
                    });
                async move { answer }
            });
            tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
                .unary(method, request)
                .await
        }
        _ => tonic::Status::unimplemented("not served here").into_http(),
    }
}

/// `signers`' JWKS as the bundle of the trust domain `example.org`.
fn bundle_of(signers: &[&Signer]) -> Bundles {
    HashMap::from([(
        "spiffe://example.org".to_owned(),
        jwks(signers, "jwt-svid").into_bytes(),
    )])
}

/// A daemon whose JwtSvid authenticator follows `api` (and has no bundle file).
fn daemon_following(api: &WorkloadApi) -> Daemon {
    let mut daemon = Daemon::configure(DaemonAuth::unix());
    daemon.edit_config(
        "[authenticator]\nauth_type = \"UnixPeerCredentials\"\nadmins = [  ]",
        &format!(
            "[[authenticator]]\nauth_type = \"UnixPeerCredentials\"\n\n\
             [[authenticator]]\nauth_type = \"JwtSvid\"\nworkload_endpoint = \"{}\"\n",
            api.endpoint()
        ),
    );
    daemon.spawn();
    daemon
}

/// Waits (10 s at most) until a ListKeys with `token` as a JWT-SVID gets `status`.
fn wait_for(daemon: &Daemon, token: &str, status: ResponseStatus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = auth_status(daemon, AuthType::JwtSvid, token.as_bytes());
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {now:?}, not {status:?}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bundles_come_from_the_workload_api_stream() {
    let dir = tempfile::tempdir().unwrap();
    let old = Signer::ec("old");
    let api = WorkloadApi::start(&dir.path().join("agent.sock"), bundle_of(&[&old]));
    let daemon = daemon_following(&api);
    let token = old.sign(&svid_claims("spiffe://example.org/app"));
    wait_for(&daemon, &token, ResponseStatus::Success);
    // A trust domain the agent sends no bundle for, and a key it does not hold.
    let stranger = Signer::ec("old");
    assert_eq!(
        auth_status(
            &daemon,
            AuthType::JwtSvid,
            stranger
                .sign(&svid_claims("spiffe://example.org/app"))
                .as_bytes()
        ),
        ResponseStatus::AuthenticationError
    );
    assert_eq!(
        auth_status(
            &daemon,
            AuthType::JwtSvid,
            old.sign(&svid_claims("spiffe://other.org/app")).as_bytes()
        ),
        ResponseStatus::AuthenticationError
    );
}

#[test]
fn a_bundle_rotation_is_picked_up_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = Signer::ec("old");
    let new = Signer::ec("new");
    let api = WorkloadApi::start(&dir.path().join("agent.sock"), bundle_of(&[&old]));
    let daemon = daemon_following(&api);
    let pid = daemon.pid();
    let by_old = old.sign(&svid_claims("spiffe://example.org/app"));
    let by_new = new.sign(&svid_claims("spiffe://example.org/app"));
    // The old key's token is accepted (and so cached); the new key is not trusted yet.
    wait_for(&daemon, &by_old, ResponseStatus::Success);
    assert_eq!(
        auth_status(&daemon, AuthType::JwtSvid, by_new.as_bytes()),
        ResponseStatus::AuthenticationError
    );

    // The agent adds the new key: both are trusted.
    api.set(bundle_of(&[&old, &new]));
    wait_for(&daemon, &by_new, ResponseStatus::Success);
    assert_eq!(
        auth_status(&daemon, AuthType::JwtSvid, by_old.as_bytes()),
        ResponseStatus::Success
    );

    // The agent removes the old key: its token is refused, although it was validated (and
    // cached) before and has not expired.
    api.set(bundle_of(&[&new]));
    wait_for(&daemon, &by_old, ResponseStatus::AuthenticationError);
    assert_eq!(
        auth_status(&daemon, AuthType::JwtSvid, by_new.as_bytes()),
        ResponseStatus::Success
    );
    assert_eq!(daemon.pid(), pid, "the daemon was not restarted");
    assert!(
        daemon
            .log()
            .contains("JWT bundles received from the Workload API"),
        "{}",
        daemon.log()
    );
}

#[test]
fn clients_fetch_their_jwt_svids_from_the_workload_api_and_renew_them() {
    let dir = tempfile::tempdir().unwrap();
    // Both workloads' SVIDs are signed by the trust domain's one authority.
    let authority = Arc::new(Signer::ec("authority"));
    let workload = |name: &str, lifetime: u64| {
        Arc::new(Workload {
            id: format!("spiffe://example.org/{name}"),
            signer: Arc::clone(&authority),
            lifetime,
            fetched: AtomicUsize::new(0),
        })
    };
    let (a, b) = (workload("a", 4), workload("b", 600));
    let api_a = WorkloadApi::serving(
        &dir.path().join("a.sock"),
        bundle_of(&[authority.as_ref()]),
        Some(Arc::clone(&a)),
    );
    let api_b = WorkloadApi::serving(
        &dir.path().join("b.sock"),
        bundle_of(&[authority.as_ref()]),
        Some(Arc::clone(&b)),
    );
    let daemon = daemon_following(&api_a);
    let client = |api: &WorkloadApi| {
        Client::builder()
            .socket(&daemon.socket)
            .auth(Auth::JwtSvid(TokenSource::workload_api_at(
                api.endpoint(),
                bulwark_client::DEFAULT_JWT_SVID_AUDIENCE,
            )))
            .build()
            .unwrap()
    };
    let (client_a, client_b) = (client(&api_a), client(&api_b));
    // The daemon learns the bundle asynchronously: wait for it.
    let probe = authority.sign(&svid_claims("spiffe://example.org/probe"));
    wait_for(&daemon, &probe, ResponseStatus::Success);

    // Two workloads, two owners of "k".
    let attrs = attributes::ecc_signing_key(EccFamily::SecpR1, 256);
    client_a.generate_key("k", attrs).unwrap();
    client_b.generate_key("k", attrs).unwrap();
    assert_ne!(
        client_a.export_public_key("k").unwrap(),
        client_b.export_public_key("k").unwrap()
    );
    assert_eq!(b.fetched.load(Ordering::SeqCst), 1, "b's SVID is reused");

    // a's SVIDs live 4 s: requests over 5 s all succeed, on SVIDs renewed before they expire
    // (a request with an expired one would be refused).
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert_eq!(client_a.list_keys().unwrap().len(), 1);
        std::thread::sleep(Duration::from_millis(100));
    }
    let fetched = a.fetched.load(Ordering::SeqCst);
    assert!(
        (3..=20).contains(&fetched),
        "a fetched {fetched} SVIDs over 5 s: renewed at half-life, not per request"
    );
    client_b.list_keys().unwrap();
    assert_eq!(b.fetched.load(Ordering::SeqCst), 1);
}

#[test]
fn an_agent_restart_is_followed_and_its_last_bundles_kept_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let old = Signer::ec("old");
    let new = Signer::ec("new");
    let api = WorkloadApi::start(&socket, bundle_of(&[&old]));
    let daemon = daemon_following(&api);
    let by_old = old.sign(&svid_claims("spiffe://example.org/app"));
    let by_new = new.sign(&svid_claims("spiffe://example.org/app"));
    wait_for(&daemon, &by_old, ResponseStatus::Success);

    // The agent stops: its stream ends, and the bundles it sent last stay trusted.
    drop(api);
    std::fs::remove_file(&socket).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        auth_status(&daemon, AuthType::JwtSvid, by_old.as_bytes()),
        ResponseStatus::Success
    );

    // It comes back with a rotated bundle: bulwarkd connects again and follows it.
    let _api = WorkloadApi::start(&socket, bundle_of(&[&new]));
    wait_for(&daemon, &by_new, ResponseStatus::Success);
    wait_for(&daemon, &by_old, ResponseStatus::AuthenticationError);
    assert!(
        daemon.log().contains("Workload API bundle stream lost"),
        "{}",
        daemon.log()
    );
}

/// The threads of process `pid` named `name`.
fn threads_named(pid: u32, name: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

#[test]
fn a_reload_replaces_the_follower_and_the_old_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let key = Signer::ec("k");
    let api = WorkloadApi::start(&dir.path().join("agent.sock"), bundle_of(&[&key]));
    let daemon = daemon_following(&api);
    let token = key.sign(&svid_claims("spiffe://example.org/app"));
    wait_for(&daemon, &token, ResponseStatus::Success);
    assert_eq!(threads_named(daemon.pid(), "workload-api"), 1);
    let mut most = 1;
    for _ in 0..3 {
        daemon.signal(nix::sys::signal::Signal::SIGHUP);
        std::thread::sleep(Duration::from_millis(200));
        most = most.max(threads_named(daemon.pid(), "workload-api"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.log().matches("configuration reloaded").count() < 3 {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Each reload built a validator and a follower (so several ran at once); the replaced ones
    // end within a second.
    assert!(most > 1, "no reload started a follower");
    let deadline = Instant::now() + Duration::from_secs(10);
    while threads_named(daemon.pid(), "workload-api") != 1 {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(&daemon, &token, ResponseStatus::Success);
}
