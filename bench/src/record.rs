//! One result line: a load run, an in-process run or an idle-CPU sample.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// What a record measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// Clients driving a service over its socket.
    Load,
    /// Back-end calls without a service.
    InProcess,
    /// A daemon's CPU time while idle.
    Idle,
}

/// One JSON line. Latencies are in microseconds; CPU "cores" are CPU seconds per wall second
/// (1.0 = one core busy all the time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// What was measured.
    pub kind: Kind,
    /// The service (its `--target` label) or the back end (`openssl`, `mbedtls`).
    pub target: String,
    /// `upstream`, `bulwark` or `in-process`; empty for idle samples.
    pub client: String,
    /// The operation; empty for idle samples.
    pub op: String,
    /// Client threads.
    pub threads: usize,
    /// Wall time of the measured phase, in seconds.
    pub duration_s: f64,
    /// Operations completed successfully.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// The first failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// Successful operations per second.
    pub ops_per_s: f64,
    /// Median latency.
    pub p50_us: f64,
    /// 90th percentile latency.
    pub p90_us: f64,
    /// 99th percentile latency.
    pub p99_us: f64,
    /// Largest latency.
    pub max_us: f64,
    /// Mean latency.
    pub mean_us: f64,
    /// CPU time (user + system) of the load generator during the measured phase.
    pub bench_cpu_s: f64,
    /// `bench_cpu_s` per wall second.
    pub bench_cpu_cores: f64,
    /// CPU time of the daemon during the measured phase, when its pid was given.
    #[serde(default)]
    pub daemon_cpu_s: Option<f64>,
    /// `daemon_cpu_s` per wall second.
    #[serde(default)]
    pub daemon_cpu_cores: Option<f64>,
    /// CPUs of the machine.
    pub nproc: usize,
    /// The machine's 1-minute load average at the end of the measurement (other work on a
    /// shared machine shows here).
    #[serde(default)]
    pub load_avg_1m: Option<f64>,
}

/// Parses a JSON-lines file, skipping blank lines and lines that are not JSON objects (such as
/// the Markdown tables printed next to them).
///
/// # Errors
/// A line that starts like a record but is not one.
pub(crate) fn parse_lines(text: &str) -> Result<Vec<Record>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with('{'))
        .map(|(i, line)| {
            serde_json::from_str(line).with_context(|| format!("line {}: not a record", i + 1))
        })
        .collect()
}

/// The 1-minute load average, from /proc/loadavg.
pub(crate) fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The number of CPUs of this machine.
pub(crate) fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Record {
        Record {
            kind: Kind::Load,
            target: "bulwarkd-mbed".into(),
            client: "bulwark".into(),
            op: "ping".into(),
            threads: 1,
            duration_s: 3.0,
            ops: 30_000,
            errors: 0,
            first_error: None,
            ops_per_s: 10_000.0,
            p50_us: 95.0,
            p90_us: 120.0,
            p99_us: 200.0,
            max_us: 900.0,
            mean_us: 100.0,
            bench_cpu_s: 1.2,
            bench_cpu_cores: 0.4,
            daemon_cpu_s: Some(1.5),
            daemon_cpu_cores: Some(0.5),
            nproc: 2,
            load_avg_1m: Some(0.5),
        }
    }

    #[test]
    fn records_round_trip_and_other_lines_are_skipped() {
        let record = sample();
        let text = format!(
            "{}\n\n| a | table |\n{}\n",
            serde_json::to_string(&record).unwrap(),
            serde_json::to_string(&record).unwrap()
        );
        assert_eq!(parse_lines(&text).unwrap(), vec![record.clone(), record]);
        assert!(parse_lines("{ nope").is_err());
        assert!(load_avg().is_some());
    }
}
