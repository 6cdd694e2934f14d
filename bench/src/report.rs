//! Markdown tables of records: the table of one invocation, and the full report with the
//! Bulwark/upstream ratios that `bench/run.sh` puts in BENCHMARKS.md.
//!
//! Targets whose label starts with `parsec` are the baselines; targets whose label starts with
//! `bulwarkd` are compared with them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::ops::Op;
use crate::record::{Kind, Record};

const NONE: &str = "–";

fn rate(value: f64) -> String {
    format!("{value:.0}")
}

fn latency(us: f64) -> String {
    if us < 100.0 {
        format!("{us:.1}")
    } else {
        format!("{us:.0}")
    }
}

/// A number with two significant digits below 1 (0.71, 0.0046), two decimals up to 100, none
/// above.
fn significant(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        let decimals = (-value.log10()).ceil().max(0.0) as usize + 1;
        format!("{value:.decimals$}")
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    if theirs > 0.0 && ours > 0.0 {
        format!("{}×", significant(ours / theirs))
    } else {
        NONE.to_owned()
    }
}

fn cores(value: Option<f64>) -> String {
    value.map_or_else(|| NONE.to_owned(), |c| format!("{c:.2}"))
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// A header row and its alignment row: the first `left` columns (names) aligned left, the
/// others (numbers) right.
fn header_with(cells: &[String], left: usize) -> String {
    let mut out = row(cells);
    let alignment: Vec<String> = (0..cells.len())
        .map(|i| if i < left { "---" } else { "---:" }.to_owned())
        .collect();
    out.push_str(&row(&alignment));
    out
}

/// A header whose first two columns (operation, threads) are names.
fn header(cells: &[String]) -> String {
    header_with(cells, 2)
}

fn strings(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// The table of the records of one invocation, in the order measured.
pub(crate) fn run_table(records: &[Record]) -> String {
    let mut out = String::new();
    let (idle, runs): (Vec<&Record>, Vec<&Record>) =
        records.iter().partition(|r| r.kind == Kind::Idle);
    if !runs.is_empty() {
        out.push_str(&header_with(
            &strings(&[
                "target",
                "client",
                "operation",
                "threads",
                "ops/s",
                "p50 µs",
                "p90 µs",
                "p99 µs",
                "max µs",
                "errors",
                "load gen. CPU (cores)",
                "daemon CPU (cores)",
                "load avg",
            ]),
            3,
        ));
        for r in runs {
            out.push_str(&row(&[
                r.target.clone(),
                r.client.clone(),
                r.op.clone(),
                r.threads.to_string(),
                rate(r.ops_per_s),
                latency(r.p50_us),
                latency(r.p90_us),
                latency(r.p99_us),
                latency(r.max_us),
                r.errors.to_string(),
                cores(Some(r.bench_cpu_cores)),
                cores(r.daemon_cpu_cores),
                cores(r.load_avg_1m),
            ]));
        }
    }
    if !idle.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&idle_table(&idle));
    }
    out
}

fn idle_table(idle: &[&Record]) -> String {
    let mut out = header_with(
        &strings(&[
            "daemon",
            "idle period (s)",
            "CPU time (ms)",
            "% of one core",
        ]),
        1,
    );
    for r in idle {
        let used = r.daemon_cpu_s.unwrap_or(0.0);
        out.push_str(&row(&[
            r.target.clone(),
            format!("{:.1}", r.duration_s),
            format!("{:.0}", used * 1000.0),
            format!("{:.2}", r.daemon_cpu_cores.unwrap_or(0.0) * 100.0),
        ]));
    }
    out
}

type Key<'a> = (&'a str, &'a str, &'a str, usize);

/// Load and in-process records by (target, client, operation, threads); the last one wins.
struct Index<'a> {
    cells: BTreeMap<Key<'a>, &'a Record>,
    /// (target, client) pairs of load records, in order of first appearance.
    columns: Vec<(&'a str, &'a str)>,
    /// (operation, threads) rows, in table order.
    rows: BTreeSet<(usize, &'a str, usize)>,
}

impl<'a> Index<'a> {
    fn new(records: &'a [Record], kind: Kind) -> Index<'a> {
        let mut index = Index {
            cells: BTreeMap::new(),
            columns: Vec::new(),
            rows: BTreeSet::new(),
        };
        for r in records.iter().filter(|r| r.kind == kind) {
            index
                .cells
                .insert((&r.target, &r.client, &r.op, r.threads), r);
            if !index.columns.contains(&(&r.target, &r.client)) {
                index.columns.push((&r.target, &r.client));
            }
            index.rows.insert((Op::order_of(&r.op), &r.op, r.threads));
        }
        index
    }

    fn get(&self, target: &str, client: &str, op: &str, threads: usize) -> Option<&'a Record> {
        self.cells.get(&(target, client, op, threads)).copied()
    }

    fn targets_of(&self, client: &str) -> Vec<&'a str> {
        self.columns
            .iter()
            .filter(|(_, c)| *c == client)
            .map(|(t, _)| *t)
            .collect()
    }

    fn clients(&self) -> Vec<&'a str> {
        let mut clients: Vec<&str> = Vec::new();
        for (_, c) in &self.columns {
            if !clients.contains(c) {
                clients.push(c);
            }
        }
        clients
    }
}

fn is_ours(target: &str) -> bool {
    target.starts_with("bulwarkd")
}

fn is_baseline(target: &str) -> bool {
    target.starts_with("parsec")
}

/// One value of a record, how to print it, and how to compare ours with a baseline.
struct Metric {
    title: &'static str,
    /// `None` when the record does not have it (a daemon's CPU time without its pid).
    value: fn(&Record) -> Option<f64>,
    print: fn(f64) -> String,
}

const THROUGHPUT: Metric = Metric {
    title: "ops/s",
    value: |r| Some(r.ops_per_s),
    print: rate,
};

const P50: Metric = Metric {
    title: "p50 µs",
    value: |r| Some(r.p50_us),
    print: latency,
};

/// Microseconds of CPU time per successful operation from `cpu_s` seconds.
fn per_op(r: &Record, cpu_s: f64) -> f64 {
    cpu_s * 1e6 / r.ops as f64
}

/// CPU time of the daemon per operation: what one operation costs the service, whatever else
/// ran on the machine (unlike throughput).
const DAEMON_CPU_PER_OP: Metric = Metric {
    title: "daemon CPU µs/op",
    value: |r| r.daemon_cpu_s.map(|cpu| per_op(r, cpu)),
    print: latency,
};

/// CPU time of the load generator per operation; in process, the cost of the crypto itself.
const OWN_CPU_PER_OP: Metric = Metric {
    title: "CPU µs/op",
    value: |r| Some(per_op(r, r.bench_cpu_s)),
    print: latency,
};

/// A cell's value, or a dash when it is missing or had errors (shown as such).
fn cell(record: Option<&Record>, metric: &Metric) -> (String, f64) {
    match record {
        None => (NONE.to_owned(), 0.0),
        Some(r) if r.ops == 0 => (format!("failed ({} errors)", r.errors), 0.0),
        Some(r) => {
            let Some(value) = (metric.value)(r) else {
                return (NONE.to_owned(), 0.0);
            };
            let mut text = (metric.print)(value);
            if r.errors > 0 {
                let _ = write!(text, " ({} err.)", r.errors);
            }
            (text, value)
        }
    }
}

/// One table per client kind: every target side by side, then ours/baseline for each pair.
fn per_client_tables(index: &Index<'_>, metric: &Metric) -> String {
    let mut out = String::new();
    for client in index.clients() {
        let targets = index.targets_of(client);
        let pairs: Vec<(&str, &str)> = targets
            .iter()
            .filter(|t| is_ours(t))
            .flat_map(|ours| {
                targets
                    .iter()
                    .filter(|t| is_baseline(t))
                    .map(move |base| (*ours, *base))
            })
            .collect();
        let mut titles = strings(&["operation", "threads"]);
        titles.extend(targets.iter().map(|t| format!("{t} {}", metric.title)));
        titles.extend(pairs.iter().map(|(o, b)| format!("{o} / {b}")));
        let _ = writeln!(out, "Client: `{client}`\n");
        out.push_str(&header(&titles));
        for (_, op, threads) in &index.rows {
            let mut cells = vec![(*op).to_owned(), threads.to_string()];
            let mut values = BTreeMap::new();
            for target in &targets {
                let (text, value) = cell(index.get(target, client, op, *threads), metric);
                cells.push(text);
                values.insert(*target, value);
            }
            for (ours, base) in &pairs {
                cells.push(ratio(values[ours], values[base]));
            }
            out.push_str(&row(&cells));
        }
        out.push('\n');
    }
    out
}

/// What an application gets: our client on bulwarkd against the upstream client on the
/// upstream service.
fn headline_table(index: &Index<'_>, metric: &Metric) -> String {
    let ours: Vec<&str> = index
        .targets_of("bulwark")
        .into_iter()
        .filter(|t| is_ours(t))
        .collect();
    let bases: Vec<&str> = index
        .targets_of("upstream")
        .into_iter()
        .filter(|t| is_baseline(t))
        .collect();
    if ours.is_empty() || bases.is_empty() {
        return String::new();
    }
    let mut titles = strings(&["operation", "threads"]);
    titles.extend(ours.iter().map(|t| format!("{t} + bulwark-client")));
    titles.extend(bases.iter().map(|t| format!("{t} + parsec-client")));
    titles.extend(
        ours.iter()
            .flat_map(|o| bases.iter().map(move |b| format!("{o} / {b}"))),
    );
    let mut out = header(&titles);
    for (_, op, threads) in &index.rows {
        let mut cells = vec![(*op).to_owned(), threads.to_string()];
        let mut ours_values = Vec::new();
        let mut base_values = Vec::new();
        for t in &ours {
            let (text, value) = cell(index.get(t, "bulwark", op, *threads), metric);
            cells.push(text);
            ours_values.push(value);
        }
        for t in &bases {
            let (text, value) = cell(index.get(t, "upstream", op, *threads), metric);
            cells.push(text);
            base_values.push(value);
        }
        for o in &ours_values {
            for b in &base_values {
                cells.push(ratio(*o, *b));
            }
        }
        out.push_str(&row(&cells));
    }
    out.push('\n');
    out
}

/// CPU used by the load generator and by the daemon in each cell.
fn cpu_table(index: &Index<'_>) -> String {
    let mut titles = strings(&["operation", "threads"]);
    titles.extend(index.columns.iter().map(|(t, c)| format!("{t} / {c}")));
    let mut out = header(&titles);
    for (_, op, threads) in &index.rows {
        let mut cells = vec![(*op).to_owned(), threads.to_string()];
        for (t, c) in &index.columns {
            cells.push(match index.get(t, c, op, *threads) {
                None => NONE.to_owned(),
                Some(r) => format!(
                    "{} / {}",
                    cores(Some(r.bench_cpu_cores)),
                    cores(r.daemon_cpu_cores)
                ),
            });
        }
        out.push_str(&row(&cells));
    }
    out.push('\n');
    out
}

/// The back end of a bulwarkd target, by its label.
fn backend_of(target: &str) -> Option<&'static str> {
    let lower = target.to_ascii_lowercase();
    if lower.contains("openssl") {
        Some("openssl")
    } else if lower.contains("mbed") {
        Some("mbedtls")
    } else {
        None
    }
}

/// The in-process limit, and the share of it bulwarkd reaches with our client.
fn limit_table(inproc: &Index<'_>, load: &Index<'_>) -> String {
    let backends: Vec<&str> = inproc.columns.iter().map(|(t, _)| *t).collect();
    let services: Vec<&str> = load
        .targets_of("bulwark")
        .into_iter()
        .filter(|t| is_ours(t) && backend_of(t).is_some_and(|b| backends.contains(&b)))
        .collect();
    let mut titles = strings(&["operation", "threads"]);
    titles.extend(backends.iter().map(|b| format!("{b} ops/s")));
    titles.extend(backends.iter().map(|b| format!("{b} p50 µs")));
    titles.extend(backends.iter().map(|b| format!("{b} CPU µs/op")));
    titles.extend(
        services
            .iter()
            .map(|t| format!("{t} + bulwark-client, daemon CPU µs/op")),
    );
    let mut out = header(&titles);
    for (_, op, threads) in &inproc.rows {
        let mut cells = vec![(*op).to_owned(), threads.to_string()];
        for metric in [&THROUGHPUT, &P50, &OWN_CPU_PER_OP] {
            for b in &backends {
                cells.push(cell(inproc.get(b, "in-process", op, *threads), metric).0);
            }
        }
        for t in &services {
            cells.push(cell(load.get(t, "bulwark", op, *threads), &DAEMON_CPU_PER_OP).0);
        }
        out.push_str(&row(&cells));
    }
    out.push('\n');
    out
}

/// A few sentences with the figures that matter most, when the records have them.
fn key_figures(load: &Index<'_>, idle: &[&Record]) -> String {
    let mut out = String::new();
    let ping =
        |target: &str, client: &str| load.get(target, client, "ping", 1).filter(|r| r.ops > 0);
    let ours = load.targets_of("upstream").into_iter().find(|t| is_ours(t));
    if let (Some(ours), Some(theirs)) = (ours, ping("parsec-default", "upstream")) {
        if let Some(mine) = ping(ours, "upstream") {
            let _ = writeln!(
                out,
                "- Sequential ping through the upstream client (a connection per request): \
                 p50 {} µs (mean {}) on {ours} against {} µs (mean {}) on the upstream service \
                 with its default configuration: {} times lower.",
                latency(mine.p50_us),
                latency(mine.mean_us),
                latency(theirs.p50_us),
                latency(theirs.mean_us),
                significant(theirs.p50_us / mine.p50_us),
            );
        }
    }
    if let Some(busy) = ping("parsec-busy", "upstream") {
        let _ = writeln!(
            out,
            "- The upstream service with `idle_listener_sleep_duration = 0`, same client: \
             sequential ping p50 {} µs (mean {}), at the price of a core spinning while idle \
             (below).",
            latency(busy.p50_us),
            latency(busy.mean_us),
        );
    }
    for target in load
        .targets_of("bulwark")
        .into_iter()
        .filter(|t| is_ours(t))
    {
        if let Some(mine) = ping(target, "bulwark") {
            let _ = writeln!(
                out,
                "- Sequential ping through our client (reused connection) on {target}: p50 {} µs \
                 (mean {}).",
                latency(mine.p50_us),
                latency(mine.mean_us),
            );
        }
    }
    for r in idle {
        let _ = writeln!(
            out,
            "- Idle CPU of {}: {:.0} ms over {:.0} s ({:.2} % of one core).",
            r.target,
            r.daemon_cpu_s.unwrap_or(0.0) * 1000.0,
            r.duration_s,
            r.daemon_cpu_cores.unwrap_or(0.0) * 100.0
        );
    }
    if !out.is_empty() {
        out.insert_str(0, "### Key figures\n\n");
        out.push('\n');
    }
    out
}

/// The whole report: headline ratios, throughput and p50 per client kind, CPU, the
/// in-process limit, idle CPU.
pub(crate) fn full_report(records: &[Record]) -> String {
    let load = Index::new(records, Kind::Load);
    let inproc = Index::new(records, Kind::InProcess);
    let idle: Vec<&Record> = records.iter().filter(|r| r.kind == Kind::Idle).collect();
    let mut out = key_figures(&load, &idle);
    if !load.cells.is_empty() {
        let headline = headline_table(&load, &THROUGHPUT);
        if !headline.is_empty() {
            out.push_str(
                "### What an application gets: throughput (ops/s)\n\n\
                 Our client (reused connection) on bulwarkd against the upstream client \
                 (a connection per request) on the upstream service. Ratio > 1: Bulwark is \
                 faster.\n\n",
            );
            out.push_str(&headline);
            out.push_str(
                "### What an application gets: median latency (µs)\n\n\
                 Ratio < 1: Bulwark answers sooner.\n\n",
            );
            out.push_str(&headline_table(&load, &P50));
        }
        out.push_str(
            "### Throughput (ops/s), same client on every service\n\n\
             Ratio > 1: bulwarkd is faster with that client.\n\n",
        );
        out.push_str(&per_client_tables(&load, &THROUGHPUT));
        out.push_str(
            "### Median latency (µs), same client on every service\n\n\
             Ratio < 1: bulwarkd answers sooner with that client.\n\n",
        );
        out.push_str(&per_client_tables(&load, &P50));
        out.push_str(
            "### CPU used: load generator / daemon (cores: CPU seconds per wall second)\n\n\
             On a 2-core machine the load generator competes with the daemon: read the \
             throughput of a cell together with its load-generator share.\n\n",
        );
        out.push_str(&cpu_table(&load));
        out.push_str(
            "### Daemon CPU time per operation (µs), same client on every service\n\n\
             What one operation costs the service in CPU time. Unlike throughput, this hardly \
             depends on what else runs on the machine (resolution: one clock tick, 10 ms, per \
             cell). Ratio < 1: bulwarkd spends less.\n\n",
        );
        out.push_str(&per_client_tables(&load, &DAEMON_CPU_PER_OP));
    }
    if !inproc.cells.is_empty() {
        out.push_str(
            "### The limit: back ends called in process\n\n\
             No service, no socket, no encoding: the crypto alone, N threads. Mbed TLS calls \
             are serialised by one mutex, as in bulwarkd. CPU µs/op is the CPU time of the \
             crypto alone; next to it, the daemon's CPU time per operation of bulwarkd with \
             that back end (the difference is what the service adds: framing, \
             authentication, key store, scheduling).\n\n",
        );
        out.push_str(&limit_table(&inproc, &load));
    }
    if !idle.is_empty() {
        out.push_str("### Idle CPU\n\n");
        out.push_str(&idle_table(&idle));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    fn load(target: &str, client: &str, op: &str, threads: usize, ops_per_s: f64) -> Record {
        Record {
            target: target.into(),
            client: client.into(),
            op: op.into(),
            threads,
            ops_per_s,
            p50_us: 1e6 / ops_per_s,
            ..sample()
        }
    }

    #[test]
    fn the_report_compares_bulwarkd_with_the_baselines() {
        let mut records = vec![
            load("parsec-default", "upstream", "ping", 1, 100.0),
            load("parsec-busy", "upstream", "ping", 1, 1000.0),
            load("bulwarkd-mbed", "upstream", "ping", 1, 2000.0),
            load("bulwarkd-mbed", "bulwark", "ping", 1, 10000.0),
            load("bulwarkd-mbed", "bulwark", "ecdsa-p256-sign", 8, 5000.0),
            Record {
                kind: Kind::InProcess,
                ..load("mbedtls", "in-process", "ecdsa-p256-sign", 8, 10000.0)
            },
            Record {
                kind: Kind::Idle,
                daemon_cpu_s: Some(0.004),
                daemon_cpu_cores: Some(0.0008),
                duration_s: 5.0,
                ..load("bulwarkd-mbed", "", "", 0, 1.0)
            },
        ];
        records[0].errors = 3;
        let report = full_report(&records);
        // Same client: bulwarkd against each baseline.
        assert!(
            report.contains("| ping | 1 | 100 (3 err.) | 1000 | 2000 | 20.00× | 2.00× |"),
            "{report}"
        );
        // What an application gets: our client on bulwarkd against upstream on upstream.
        assert!(
            report.contains("| ping | 1 | 10000 | 100 (3 err.) | 1000 | 100× | 10.00× |"),
            "{report}"
        );
        // The limit.
        assert!(
            report.contains("| ecdsa-p256-sign | 8 | 10000 | 100 | 40.0 | 50.0 |"),
            "{report}"
        );
        assert!(
            report.contains("| bulwarkd-mbed | 5.0 | 4 | 0.08 |"),
            "{report}"
        );
        // Rows follow the order of the operations, not of the alphabet.
        let ping = report.find("| ping | 1 | 10000").unwrap();
        let sign = report.find("| ecdsa-p256-sign | 8 | 5000").unwrap();
        assert!(ping < sign);
    }

    #[test]
    fn the_run_table_lists_every_record() {
        let table = run_table(&[sample(), sample()]);
        assert_eq!(table.lines().count(), 4);
        assert!(table.contains("| bulwarkd-mbed | bulwark | ping | 1 | 10000 | 95.0 |"));
    }

    #[test]
    fn failed_cells_are_shown_as_such() {
        let mut failed = load("parsec-busy", "upstream", "ping", 1, 0.0);
        failed.ops = 0;
        failed.errors = 7;
        let (text, value) = cell(Some(&failed), &THROUGHPUT);
        assert_eq!((text.as_str(), value), ("failed (7 errors)", 0.0));
        assert_eq!(ratio(1.0, 0.0), NONE);
        assert_eq!(ratio(0.46, 100.0), "0.0046×");
        assert_eq!(ratio(71.0, 100.0), "0.71×");
        assert_eq!(ratio(1.0, 4.0), "0.25×");
        assert_eq!(ratio(567.2, 1.0), "567×");
        assert_eq!(ratio(5.678, 1.0), "5.68×");
    }
}
