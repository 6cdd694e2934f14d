//! The closed loop: N threads, each calling its worker back to back, a warm-up, then a measured
//! phase of fixed length; latencies in one HDR histogram, CPU time of this process and of the
//! daemon around the measured phase.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use hdrhistogram::Histogram;

use crate::cpu;
use crate::record::{load_avg, nproc, Kind, Record};

/// One thread's view of an operation: each call performs it once.
pub(crate) trait Worker: Send {
    /// Performs the operation once.
    ///
    /// # Errors
    /// Whatever the operation failed with; the loop counts it and goes on.
    fn call(&mut self) -> Result<()>;
}

/// Latencies are recorded in nanoseconds, from 1 ns to 10 minutes, 3 significant digits.
const MAX_LATENCY_NS: u64 = 600_000_000_000;

/// What to call a record.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    /// See [`Record::kind`].
    pub kind: Kind,
    /// See [`Record::target`].
    pub target: String,
    /// See [`Record::client`].
    pub client: String,
    /// See [`Record::op`].
    pub op: String,
}

struct ThreadResult {
    /// When the measured phase started and ended in this thread.
    span: Option<(Instant, Instant)>,
    histogram: Histogram<u64>,
    ops: u64,
    errors: u64,
    first_error: Option<String>,
}

fn histogram() -> Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).map_err(|e| anyhow!("histogram: {e}"))
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// After a failure, wait this long before the next call, so a dead service is not hammered in
/// a tight loop.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);

fn run_thread(
    mut worker: Box<dyn Worker>,
    warmup: Duration,
    duration: Duration,
    start: &Barrier,
) -> Result<ThreadResult> {
    let mut result = ThreadResult {
        span: None,
        histogram: histogram()?,
        ops: 0,
        errors: 0,
        first_error: None,
    };
    let warm_end = Instant::now() + warmup;
    while Instant::now() < warm_end {
        if let Err(e) = worker.call() {
            result.first_error.get_or_insert_with(|| format!("{e:#}"));
            std::thread::sleep(ERROR_BACKOFF);
        }
    }
    start.wait();
    let began = Instant::now();
    let end = began + duration;
    loop {
        let before = Instant::now();
        if before >= end {
            break;
        }
        let outcome = worker.call();
        let latency = before.elapsed();
        match outcome {
            Ok(()) => {
                result.histogram.saturating_record(nanos(latency).max(1));
                result.ops += 1;
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{e:#}"));
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
    }
    result.span = Some((began, Instant::now()));
    Ok(result)
}

/// Runs one closed-loop measurement with one thread per worker.
///
/// All threads warm up for `warmup`, wait for each other, then call their worker until
/// `duration` has passed; the operation in progress at the deadline completes and counts.
/// Throughput is successful operations over the wall time from the first thread's start of
/// the measured phase to the last thread's end.
///
/// # Errors
/// When a thread cannot be started or panics, or the CPU times cannot be read.
pub(crate) fn closed_loop(
    label: Label,
    workers: Vec<Box<dyn Worker>>,
    warmup: Duration,
    duration: Duration,
    daemon_pid: Option<i32>,
) -> Result<Record> {
    let threads = workers.len();
    let start = Arc::new(Barrier::new(threads + 1));
    let mut handles = Vec::with_capacity(threads);
    for (i, worker) in workers.into_iter().enumerate() {
        let start = Arc::clone(&start);
        let handle = std::thread::Builder::new()
            .name(format!("bench-{i}"))
            .spawn(move || run_thread(worker, warmup, duration, &start))?;
        handles.push(handle);
    }
    start.wait();
    let own_before = cpu::own()?;
    // A daemon that is gone (it crashed) has no CPU time: the cell still counts what happened.
    let daemon_before = daemon_pid.and_then(|pid| cpu::of_process(pid).ok());

    let mut total = ThreadResult {
        span: None,
        histogram: histogram()?,
        ops: 0,
        errors: 0,
        first_error: None,
    };
    for handle in handles {
        let result = handle
            .join()
            .map_err(|_| anyhow!("a load thread panicked"))??;
        total
            .histogram
            .add(&result.histogram)
            .map_err(|e| anyhow!("merging histograms: {e}"))?;
        total.span = match (total.span, result.span) {
            (Some((b0, e0)), Some((b1, e1))) => Some((b0.min(b1), e0.max(e1))),
            (span, None) | (None, span) => span,
        };
        total.ops += result.ops;
        total.errors += result.errors;
        if total.first_error.is_none() {
            total.first_error = result.first_error;
        }
    }
    let elapsed = total
        .span
        .map_or(duration, |(began, ended)| ended - began)
        .as_secs_f64();
    let own_cpu = (cpu::own()? - own_before).as_secs_f64();
    let daemon_cpu = match (daemon_pid, daemon_before) {
        (Some(pid), Some(before)) => cpu::of_process(pid)
            .ok()
            .map(|after| after.saturating_sub(before).as_secs_f64()),
        _ => None,
    };
    let h = &total.histogram;
    let (p50, p90, p99, max, mean) = if total.ops == 0 {
        (0.0, 0.0, 0.0, 0.0, 0.0)
    } else {
        (
            micros(h.value_at_quantile(0.50)),
            micros(h.value_at_quantile(0.90)),
            micros(h.value_at_quantile(0.99)),
            micros(h.max()),
            h.mean() / 1000.0,
        )
    };
    Ok(Record {
        kind: label.kind,
        target: label.target,
        client: label.client,
        op: label.op,
        threads,
        duration_s: elapsed,
        ops: total.ops,
        errors: total.errors,
        first_error: total.first_error,
        ops_per_s: total.ops as f64 / elapsed,
        p50_us: p50,
        p90_us: p90,
        p99_us: p99,
        max_us: max,
        mean_us: mean,
        bench_cpu_s: own_cpu,
        bench_cpu_cores: own_cpu / elapsed,
        daemon_cpu_s: daemon_cpu,
        daemon_cpu_cores: daemon_cpu.map(|c| c / elapsed),
        nproc: nproc(),
        load_avg_1m: load_avg(),
    })
}

/// The CPU time daemon `pid` uses over `period` while this process sends it nothing.
///
/// # Errors
/// When the daemon's CPU time cannot be read (it is not running).
pub(crate) fn idle_cpu(target: &str, pid: i32, period: Duration) -> Result<Record> {
    let before = cpu::of_process(pid)?;
    let began = Instant::now();
    std::thread::sleep(period);
    let used = cpu::of_process(pid)?.saturating_sub(before).as_secs_f64();
    let elapsed = began.elapsed().as_secs_f64();
    Ok(Record {
        kind: Kind::Idle,
        target: target.to_owned(),
        client: String::new(),
        op: String::new(),
        threads: 0,
        duration_s: elapsed,
        ops: 0,
        errors: 0,
        first_error: None,
        ops_per_s: 0.0,
        p50_us: 0.0,
        p90_us: 0.0,
        p99_us: 0.0,
        max_us: 0.0,
        mean_us: 0.0,
        bench_cpu_s: 0.0,
        bench_cpu_cores: 0.0,
        daemon_cpu_s: Some(used),
        daemon_cpu_cores: Some(used / elapsed),
        nproc: nproc(),
        load_avg_1m: load_avg(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleeper(Duration);

    impl Worker for Sleeper {
        fn call(&mut self) -> Result<()> {
            std::thread::sleep(self.0);
            Ok(())
        }
    }

    struct Failing;

    impl Worker for Failing {
        fn call(&mut self) -> Result<()> {
            Err(anyhow!("refused"))
        }
    }

    fn label() -> Label {
        Label {
            kind: Kind::Load,
            target: "t".into(),
            client: "c".into(),
            op: "o".into(),
        }
    }

    #[test]
    fn a_closed_loop_counts_calls_and_measures_their_latency() {
        let workers: Vec<Box<dyn Worker>> = (0..2)
            .map(|_| Box::new(Sleeper(Duration::from_millis(2))) as Box<dyn Worker>)
            .collect();
        let me = i32::try_from(std::process::id()).unwrap();
        let record = closed_loop(
            label(),
            workers,
            Duration::from_millis(10),
            Duration::from_millis(200),
            Some(me),
        )
        .unwrap();
        assert_eq!(record.threads, 2);
        assert_eq!(record.errors, 0);
        // 2 threads × ~200 ms / ~2 ms, with room for a loaded machine.
        assert!(record.ops > 20 && record.ops <= 200, "{record:?}");
        assert!(record.p50_us >= 2000.0, "{record:?}");
        assert!(record.max_us >= record.p99_us && record.p99_us >= record.p50_us);
        assert!(record.duration_s >= 0.2);
        assert!(record.daemon_cpu_s.is_some());
    }

    #[test]
    fn failures_are_counted_with_the_first_message() {
        let record = closed_loop(
            label(),
            vec![Box::new(Failing)],
            Duration::ZERO,
            Duration::from_millis(20),
            None,
        )
        .unwrap();
        assert_eq!(record.ops, 0);
        assert!(record.errors > 0);
        assert_eq!(record.first_error.as_deref(), Some("refused"));
        assert_eq!(record.p50_us, 0.0);
    }

    #[test]
    fn idle_cpu_of_a_sleeping_process_is_small() {
        let me = i32::try_from(std::process::id()).unwrap();
        let record = idle_cpu("me", me, Duration::from_millis(50)).unwrap();
        assert_eq!(record.kind, Kind::Idle);
        assert!(record.daemon_cpu_cores.unwrap() < 2.0);
    }
}
