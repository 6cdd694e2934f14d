//! Prometheus metrics: off unless `core_settings.metrics_endpoint` names where to serve them.
//!
//! Instrumented code calls the functions of this module; they record through the `metrics`
//! facade, which does nothing until [`start`] installs the Prometheus recorder, so a daemon
//! without an endpoint pays one atomic load per call and nothing else.
//!
//! **Label cardinality is bounded by construction:** labels are only the opcode, the provider
//! id, the response status, a denial reason, a connection limit and the build version, each
//! from a fixed set. Key names, application names, uids and anything secret are never labels
//! nor values.

mod endpoint;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bulwark_interface::ids::ProviderId;
use bulwark_interface::ops::Opcode;
use bulwark_interface::status::ResponseStatus;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde::{Deserialize, Deserializer};

/// Requests answered by `Service::handle_frame`, by opcode, provider and status.
pub const REQUESTS: &str = "bulwark_requests_total";
/// Time to answer a request, by opcode and provider (a histogram, in seconds).
pub const REQUEST_DURATION: &str = "bulwark_request_duration_seconds";
/// Requests being answered now on the blocking pool (cheap ones, answered in microseconds on
/// the thread that read them, are not counted).
pub const IN_FLIGHT: &str = "bulwark_requests_in_flight";
/// Requests read whole and waiting for a slot among `max_requests_in_flight`.
pub const QUEUED: &str = "bulwark_requests_queued";
/// Client connections open now.
pub const CONNECTIONS_OPEN: &str = "bulwark_connections_open";
/// Connections closed at once because a limit was reached, by limit.
pub const CONNECTIONS_REFUSED: &str = "bulwark_connections_refused_total";
/// Requests refused to their sender, by reason.
pub const DENIALS: &str = "bulwark_denials_total";
/// Key-store write transactions (group commit: concurrent writes share one).
pub const KEYSTORE_BATCHES: &str = "bulwark_keystore_write_batches_total";
/// Key-store transactions committed with an fsync (`synchronous=FULL`).
pub const KEYSTORE_FSYNCS: &str = "bulwark_keystore_fsyncs_total";
/// Audit records written.
pub const AUDIT_RECORDS: &str = "bulwark_audit_records_total";
/// Audit records that could not be written.
pub const AUDIT_FAILURES: &str = "bulwark_audit_write_failures_total";
/// Always 1, labelled with the version.
pub const BUILD_INFO: &str = "bulwark_build_info";
/// Keys held, by provider id (read from the key store at each scrape).
pub const KEYS: &str = "bulwark_keys";

/// Latency buckets, in seconds: from a hash (tens of microseconds) to an RSA key generation
/// on a slow token (seconds).
const DURATION_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

/// Where the metrics are served (`core_settings.metrics_endpoint`): `"127.0.0.1:9464"` (a
/// loopback address only: the figures describe the host's use of its keys) or
/// `"unix:/run/bulwark-metrics/metrics.sock"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address on the loopback interface.
    Tcp(SocketAddr),
    /// A Unix socket (mode 0660: the group of the daemon's user may read the metrics).
    Unix(PathBuf),
}

impl Endpoint {
    /// Parses `"unix:<path>"` or `"<loopback ip>:<port>"`.
    ///
    /// # Errors
    /// Neither form, or a TCP address that is not on the loopback interface.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("{text:?}: the socket path must be absolute"));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let address: SocketAddr = text.parse().map_err(|_| {
            format!("{text:?}: expected \"unix:/path\" or a loopback address such as \"127.0.0.1:9464\"")
        })?;
        if !address.ip().is_loopback() {
            return Err(format!(
                "{text:?}: metrics are served on the loopback interface only (127.0.0.1, ::1)"
            ));
        }
        Ok(Endpoint::Tcp(address))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(address) => write!(f, "http://{address}/metrics"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Endpoint::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Installs the recorder and serves the metrics at `endpoint` until the process ends. Call it
/// once, inside the runtime; a second call (a reload) changes nothing.
///
/// # Errors
/// The endpoint cannot be bound.
pub async fn start(endpoint: &Endpoint) -> std::io::Result<()> {
    let listener = endpoint::Listener::bind(endpoint).await?;
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(REQUEST_DURATION.to_owned()),
            DURATION_BUCKETS,
        )
        .map_err(std::io::Error::other)?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        return Ok(());
    }
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    tracing::info!(%endpoint, "serving metrics");
    tokio::spawn(endpoint::serve(listener, handle));
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        REQUESTS,
        "Requests answered, by opcode, provider and status."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer a request, by opcode and provider."
    );
    describe_gauge!(IN_FLIGHT, "Requests being answered.");
    describe_gauge!(QUEUED, "Requests waiting for a slot to be answered.");
    describe_gauge!(CONNECTIONS_OPEN, "Client connections open.");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed at once because a limit was reached, by limit."
    );
    describe_counter!(DENIALS, "Requests refused to their sender, by reason.");
    describe_counter!(KEYSTORE_BATCHES, "Key-store write transactions.");
    describe_counter!(
        KEYSTORE_FSYNCS,
        "Key-store transactions committed with an fsync."
    );
    describe_counter!(AUDIT_RECORDS, "Audit records written.");
    describe_counter!(AUDIT_FAILURES, "Audit records that could not be written.");
    describe_gauge!(BUILD_INFO, "Always 1, labelled with the version.");
    describe_gauge!(KEYS, "Keys held, by provider.");
}

/// What the endpoint calls at each scrape to learn how many keys each provider holds.
type KeyCounts = Box<dyn Fn() -> Vec<(ProviderId, u64)> + Send + Sync>;

static KEY_COUNTS: OnceLock<KeyCounts> = OnceLock::new();

/// Names where the number of keys per provider comes from: `source` is called at each scrape
/// (never on the request path), so the figure is exact when scraped and costs nothing between
/// scrapes. Only the first call counts.
pub fn count_keys_with(source: impl Fn() -> Vec<(ProviderId, u64)> + Send + Sync + 'static) {
    let _ = KEY_COUNTS.set(Box::new(source));
}

/// Sets the keys-per-provider gauges from the source given to [`count_keys_with`].
fn refresh_key_counts() {
    if let Some(source) = KEY_COUNTS.get() {
        for (provider, keys) in source() {
            #[allow(clippy::cast_precision_loss)] // exact below 2^53 keys
            gauge!(KEYS, "provider" => provider_label(provider)).set(keys as f64);
        }
    }
}

/// A request was answered with `status` after `elapsed`.
pub fn request_served(
    opcode: Opcode,
    provider: ProviderId,
    status: ResponseStatus,
    elapsed: Duration,
) {
    let provider = provider_label(provider);
    counter!(REQUESTS, "opcode" => opcode.name(), "provider" => provider, "status" => status.name())
        .increment(1);
    histogram!(REQUEST_DURATION, "opcode" => opcode.name(), "provider" => provider)
        .record(elapsed.as_secs_f64());
    if let Some(reason) = denial_reason(status) {
        counter!(DENIALS, "reason" => reason).increment(1);
    }
}

/// Connections open, requests in flight and queued, as the process counts them: the same
/// figures as the gauges, readable here whether or not the metrics endpoint is on (the status
/// operation reports them).
static IN_FLIGHT_NOW: AtomicU64 = AtomicU64::new(0);
static QUEUED_NOW: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_NOW: AtomicU64 = AtomicU64::new(0);

static STARTED: OnceLock<Instant> = OnceLock::new();

/// Marks when the daemon started; later calls change nothing.
pub fn mark_started() {
    STARTED.get_or_init(Instant::now);
}

/// Time since [`mark_started`] (or since the first call of either).
pub fn uptime() -> Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

/// What [`Occupancy`] counts, at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Occupied {
    /// Client connections open.
    pub connections: u64,
    /// Requests being answered.
    pub in_flight: u64,
    /// Requests waiting for a slot.
    pub queued: u64,
}

/// The occupancy figures now.
pub fn occupied() -> Occupied {
    Occupied {
        connections: CONNECTIONS_NOW.load(Ordering::Relaxed),
        in_flight: IN_FLIGHT_NOW.load(Ordering::Relaxed),
        queued: QUEUED_NOW.load(Ordering::Relaxed),
    }
}

/// Counts one more of `gauge` while it lives (requests in flight, queued, connections).
#[derive(Debug)]
pub struct Occupancy {
    gauge: &'static str,
    count: &'static AtomicU64,
}

impl Occupancy {
    /// One more request in flight.
    pub fn in_flight() -> Self {
        Occupancy::enter(IN_FLIGHT, &IN_FLIGHT_NOW)
    }

    /// One more request waiting for a slot.
    pub fn queued() -> Self {
        Occupancy::enter(QUEUED, &QUEUED_NOW)
    }

    /// One more connection open.
    pub fn connection() -> Self {
        Occupancy::enter(CONNECTIONS_OPEN, &CONNECTIONS_NOW)
    }

    fn enter(gauge: &'static str, count: &'static AtomicU64) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        gauge!(gauge).increment(1.0);
        Occupancy { gauge, count }
    }
}

impl Drop for Occupancy {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::Relaxed);
        gauge!(self.gauge).decrement(1.0);
    }
}

/// A connection was closed at once because `limit` (a configuration key) was reached.
pub fn connection_refused(limit: &'static str) {
    counter!(CONNECTIONS_REFUSED, "limit" => limit).increment(1);
}

/// A key-store write transaction ran, with an fsync (`synced`) or without.
pub fn keystore_batch(synced: bool) {
    counter!(KEYSTORE_BATCHES).increment(1);
    if synced {
        counter!(KEYSTORE_FSYNCS).increment(1);
    }
}

/// An audit record was written (`true`) or could not be (`false`).
pub fn audit_record(written: bool) {
    if written {
        counter!(AUDIT_RECORDS).increment(1);
    } else {
        counter!(AUDIT_FAILURES).increment(1);
    }
}

fn provider_label(provider: ProviderId) -> &'static str {
    match provider.value() {
        0 => "0",
        1 => "1",
        2 => "2",
        3 => "3",
        4 => "4",
        5 => "5",
        _ => "other",
    }
}

/// Why a request was refused to its sender, for the statuses that mean "not you" rather than
/// "not possible".
fn denial_reason(status: ResponseStatus) -> Option<&'static str> {
    match status {
        ResponseStatus::AuthenticationError => Some("authentication"),
        ResponseStatus::AdminOperation => Some("admin_only"),
        ResponseStatus::PsaErrorNotPermitted => Some("key_policy"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_loopback_or_unix() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:9464"),
            Ok(Endpoint::Tcp("127.0.0.1:9464".parse().unwrap()))
        );
        assert_eq!(
            Endpoint::parse("[::1]:9464"),
            Ok(Endpoint::Tcp("[::1]:9464".parse().unwrap()))
        );
        assert_eq!(
            Endpoint::parse("unix:/run/m.sock"),
            Ok(Endpoint::Unix(PathBuf::from("/run/m.sock")))
        );
        assert!(Endpoint::parse("0.0.0.0:9464")
            .unwrap_err()
            .contains("loopback"));
        assert!(Endpoint::parse("192.168.1.2:9464").is_err());
        assert!(Endpoint::parse("unix:relative.sock").is_err());
        assert!(Endpoint::parse("localhost").is_err());
    }
}
