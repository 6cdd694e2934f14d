//! JWT bundles from the SPIFFE Workload API, kept current through its bundle stream.
//!
//! A JwtSvid authenticator with a `workload_endpoint` follows the API's `FetchJWTBundles`
//! stream (the `spiffe` crate is the client) on a thread of its own, so the request path never
//! waits for the agent: tokens are still validated locally, against the bundles last received.
//! Each bundle set the agent sends replaces the trust domains it names, beside those read from
//! `bundles` files (a trust domain in both is the agent's), through
//! [`TokenValidator::replace_anchors`]: that empties the token cache, so a token signed with a
//! key the agent removed is refused from the next request on, without a restart.
//!
//! Until the first bundle set arrives only the file bundles are trusted. A failed connection or
//! an ended stream is retried after a delay that doubles up to [`MAX_RETRY`]; the last bundles
//! received stay trusted meanwhile (the agent is the authority on rotation, not its uptime).
//! The thread holds the validator weakly: when a reload replaces the service and the validator
//! is dropped, the thread ends within [`LIVENESS_CHECK`].

use std::sync::{Arc, Weak};
use std::time::Duration;

use spiffe::{JwtBundleSet, WorkloadApiClient};
use tokio_stream::StreamExt as _;

use super::keys::key_of_jwk_json;
use super::setup::JWT_SVID_KEY_USE;
use super::token::{Anchor, Anchors, TokenValidator};

/// The first delay before connecting again.
const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest delay before connecting again.
pub const MAX_RETRY: Duration = Duration::from_secs(30);
/// How often the thread checks that its validator is still in use.
pub const LIVENESS_CHECK: Duration = Duration::from_secs(1);

/// Starts following the Workload API at `endpoint` (`unix:/path` or `tcp://host:port`, as the
/// `spiffe` crate reads it) for `validator`, whose current anchors are the file bundles kept
/// beside the agent's. Tokens must name `audience`.
///
/// # Errors
/// The endpoint cannot be parsed, or the thread cannot be started.
pub fn follow(
    endpoint: &str,
    audience: &str,
    validator: &Arc<TokenValidator>,
) -> Result<(), String> {
    spiffe::transport::Endpoint::parse(endpoint)
        .map_err(|e| format!("not a Workload API endpoint: {e}"))?;
    let follower = Follower {
        endpoint: endpoint.to_owned(),
        audience: audience.to_owned(),
        files: validator.anchors(),
        validator: Arc::downgrade(validator),
    };
    std::thread::Builder::new()
        .name("workload-api".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the Workload API client");
                    return;
                }
            };
            runtime.block_on(follower.run());
        })
        .map(drop)
        .map_err(|e| format!("cannot start the Workload API thread: {e}"))
}

/// What the following thread owns.
struct Follower {
    endpoint: String,
    audience: String,
    /// The anchors of the `bundles` files, kept under the agent's.
    files: Arc<Anchors>,
    validator: Weak<TokenValidator>,
}

/// Why one connection ended.
enum Ended {
    /// The validator is no longer used: stop.
    Unused,
    /// The connection failed or the stream ended: connect again.
    Lost(String),
}

impl Follower {
    async fn run(self) {
        let mut delay = FIRST_RETRY;
        loop {
            let why = match self.stream(&mut delay).await {
                Ended::Unused => return,
                Ended::Lost(why) => why,
            };
            tracing::warn!(
                endpoint = %self.endpoint,
                reason = %why,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "Workload API bundle stream lost; the last bundles received stay trusted"
            );
            let deadline = tokio::time::Instant::now() + delay;
            while tokio::time::Instant::now() < deadline {
                if self.validator.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(LIVENESS_CHECK.min(delay)).await;
            }
            delay = (delay * 2).min(MAX_RETRY);
        }
    }

    /// Follows one connection's bundle stream; `delay` is reset once bundles arrive.
    async fn stream(&self, delay: &mut Duration) -> Ended {
        let client = match WorkloadApiClient::connect_to(&self.endpoint).await {
            Ok(client) => client,
            Err(e) => return Ended::Lost(format!("cannot connect: {e}")),
        };
        let mut updates = match client.stream_jwt_bundles().await {
            Ok(updates) => Box::pin(updates),
            Err(e) => return Ended::Lost(format!("cannot open the stream: {e}")),
        };
        let mut liveness = tokio::time::interval(LIVENESS_CHECK);
        loop {
            tokio::select! {
                update = updates.next() => match update {
                    None => return Ended::Lost("the agent ended the stream".to_owned()),
                    Some(Err(e)) => return Ended::Lost(e.to_string()),
                    Some(Ok(set)) => {
                        let Some(validator) = self.validator.upgrade() else {
                            return Ended::Unused;
                        };
                        let anchors = self.merge(&set);
                        tracing::info!(
                            trust_domains = anchors.len(),
                            "JWT bundles received from the Workload API"
                        );
                        validator.replace_anchors(anchors);
                        *delay = FIRST_RETRY;
                    }
                },
                _ = liveness.tick() => {
                    if self.validator.strong_count() == 0 {
                        return Ended::Unused;
                    }
                }
            }
        }
    }

    /// The file anchors with the agent's bundles over them.
    fn merge(&self, set: &JwtBundleSet) -> Anchors {
        let mut anchors = (*self.files).clone();
        for (trust_domain, bundle) in set.iter() {
            let mut keys = Vec::new();
            for authority in bundle.jwt_authorities() {
                match key_of_jwk_json(authority.jwk_json(), JWT_SVID_KEY_USE) {
                    Ok(key) => keys.push(key),
                    Err(why) => tracing::warn!(
                        trust_domain = %trust_domain,
                        kid = authority.key_id(),
                        "JWT bundle key left out: {why}"
                    ),
                }
            }
            anchors.insert(
                trust_domain.to_string(),
                Anchor {
                    keys,
                    audience: self.audience.clone(),
                    identity_claim: "sub".to_owned(),
                },
            );
        }
        anchors
    }
}
