//! Measures ping throughput and latency from one thread, on a reused connection and with a
//! connection per request, against the service at `PARSEC_SERVICE_ENDPOINT`.
//!
//! ```text
//! PARSEC_SERVICE_ENDPOINT=unix:/tmp/bulwark.sock cargo run --release --example ping_bench [N]
//! ```

use std::time::{Duration, Instant};

use bulwark_client::Client;

fn run(client: &Client, count: usize) -> Result<(f64, Duration, Duration), bulwark_client::Error> {
    // Warm up (and open the first connection) outside the measurement.
    for _ in 0..100 {
        client.ping()?;
    }
    let mut latencies = Vec::with_capacity(count);
    let start = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        client.ping()?;
        latencies.push(t.elapsed());
    }
    let total = start.elapsed();
    latencies.sort_unstable();
    let p50 = latencies.get(count / 2).copied().unwrap_or_default();
    let p99 = latencies.get(count * 99 / 100).copied().unwrap_or_default();
    Ok((count as f64 / total.as_secs_f64(), p50, p99))
}

fn main() -> Result<(), bulwark_client::Error> {
    let count = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    for reuse in [true, false] {
        let client = Client::builder()
            .discover(false)
            .reuse_connections(reuse)
            .build()?;
        let (rate, p50, p99) = run(&client, count)?;
        let stats = client.connection_stats();
        println!(
            "{:<24} {count} pings: {rate:>9.0} requests/s, p50 {:>7.1} µs, p99 {:>7.1} µs \
             ({} connections)",
            if reuse {
                "reused connection"
            } else {
                "connection per request"
            },
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            stats.opened,
        );
    }
    Ok(())
}
