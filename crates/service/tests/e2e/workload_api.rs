//! JWT-SVID bundles from the SPIFFE Workload API, against the real bulwarkd.
//!
//! SPIRE itself cannot be installed on the machines these tests run on, so the tests serve the
//! Workload API themselves: `FetchJWTBundles`, the published gRPC method an agent streams JWT
//! bundles with, on a Unix socket, written with tonic's server side (the same gRPC stack the
//! `spiffe` crate's client in bulwarkd uses) and the API's messages as prost types. Like an
//! agent, the server refuses calls without the `workload.spiffe.io: true` metadata. Keys, bundles
//! (JWKS) and tokens are made with OpenSSL and the `jsonwebtoken` crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bulwark_client::ResponseStatus;
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

type Bundles = HashMap<String, Vec<u8>>;
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
        let service = tower::service_fn(move |request: http::Request<tonic::body::Body>| {
            let receiver = receiver.clone();
            async move { Ok::<_, std::convert::Infallible>(serve(request, receiver).await) }
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

/// One gRPC call: FetchJWTBundles streams the bundles as they change; any other method is
/// unimplemented.
async fn serve(
    request: http::Request<tonic::body::Body>,
    receiver: watch::Receiver<Bundles>,
) -> http::Response<tonic::body::Body> {
    if request.uri().path() != "/SpiffeWorkloadAPI/FetchJWTBundles" {
        return tonic::Status::unimplemented("only FetchJWTBundles is served").into_http();
    }
    if request
        .headers()
        .get("workload.spiffe.io")
        .is_none_or(|v| v != "true")
    {
        return tonic::Status::invalid_argument("security header missing from request").into_http();
    }
    let method = tower::service_fn(move |_: tonic::Request<JwtBundlesRequest>| {
        let updates: ResponseStream = Box::pin(
            WatchStream::new(receiver.clone()).map(|bundles| Ok(JwtBundlesResponse { bundles })),
        );
        async move { Ok::<_, tonic::Status>(tonic::Response::new(updates)) }
    });
    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
        .server_streaming(method, request)
        .await
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
