//! JWT-SVIDs fetched from the SPIFFE Workload API (feature `workload-api`).
//!
//! [`TokenSource::workload_api`] asks the agent named by `SPIFFE_ENDPOINT_SOCKET` (the variable
//! SPIFFE tooling reads) for a JWT-SVID of the configured audience, through the `spiffe` crate,
//! and keeps it until half of its remaining lifetime at fetch time has passed: an SVID is never
//! sent close to its expiry, and the agent is asked about twice per SVID lifetime, not per
//! request. The fetch runs on a thread of its own with a runtime of its own, so the client stays
//! blocking and may be called from inside an async runtime.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind};
use crate::token::TokenSource;

/// The variable naming the Workload API endpoint (`unix:/path/to/agent.sock`).
pub const SPIFFE_ENDPOINT_VARIABLE: &str = "SPIFFE_ENDPOINT_SOCKET";

/// The audience bulwarkd (and upstream Parsec) expect by default.
pub const DEFAULT_JWT_SVID_AUDIENCE: &str = "parsec";

/// The SVID in use and when to fetch the next one.
struct Held {
    token: Zeroizing<String>,
    renew_at: SystemTime,
}

/// What a Workload API source keeps between requests.
struct Fetcher {
    endpoint: String,
    audience: String,
    runtime: Option<tokio::runtime::Runtime>,
    held: Option<Held>,
}

impl TokenSource {
    /// JWT-SVIDs for `audience` from the Workload API that `SPIFFE_ENDPOINT_SOCKET` names.
    ///
    /// # Errors
    /// [`ErrorKind::Credentials`] when the variable is not set.
    pub fn workload_api(audience: impl Into<String>) -> Result<Self, Error> {
        let endpoint = std::env::var(SPIFFE_ENDPOINT_VARIABLE).map_err(|_| {
            Error::new(ErrorKind::Credentials)
                .with_detail(format!("{SPIFFE_ENDPOINT_VARIABLE} is not set"))
        })?;
        Ok(Self::workload_api_at(endpoint, audience))
    }

    /// JWT-SVIDs for `audience` from the Workload API at `endpoint` (`unix:/path` or
    /// `tcp://host:port`), fetched at the first request and renewed once half of an SVID's
    /// remaining lifetime has passed. A failed fetch fails that request with
    /// [`ErrorKind::Credentials`]; the next request tries again.
    ///
    /// ```no_run
    /// use bulwark_client::{Auth, Client, TokenSource};
    /// let svid = TokenSource::workload_api_at("unix:/run/spire/agent/public/api.sock", "parsec");
    /// let client = Client::builder().auth(Auth::JwtSvid(svid)).build()?;
    /// # Ok::<(), bulwark_client::Error>(())
    /// ```
    pub fn workload_api_at(endpoint: impl Into<String>, audience: impl Into<String>) -> Self {
        let fetcher = Mutex::new(Fetcher {
            endpoint: endpoint.into(),
            audience: audience.into(),
            runtime: None,
            held: None,
        });
        TokenSource::callback(move || {
            fetcher
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .token()
        })
    }
}

impl Fetcher {
    /// The SVID held, or a new one when it is due for renewal.
    fn token(&mut self) -> Result<Zeroizing<String>, String> {
        let now = SystemTime::now();
        if let Some(held) = &self.held {
            if now < held.renew_at {
                return Ok(held.token.clone());
            }
        }
        if self.runtime.is_none() {
            self.runtime = Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the Workload API client: {e}"))?,
            );
        }
        let runtime = self.runtime.as_ref().ok_or("no runtime")?;
        let (endpoint, audience) = (self.endpoint.as_str(), self.audience.as_str());
        let fetched = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    runtime.block_on(async {
                        let client = spiffe::WorkloadApiClient::connect_to(endpoint).await?;
                        client.fetch_jwt_svid([audience], None).await
                    })
                })
                .join()
        })
        .map_err(|_| "the Workload API fetch panicked".to_owned())?
        .map_err(|e| format!("Workload API at {endpoint}: {e}"))?;
        let expiry = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(fetched.expiry().unix_timestamp()).unwrap_or(0));
        let left = expiry.duration_since(now).unwrap_or_default();
        let token = Zeroizing::new(fetched.token().to_owned());
        self.held = Some(Held {
            token: token.clone(),
            renew_at: now + left / 2,
        });
        Ok(token)
    }
}
