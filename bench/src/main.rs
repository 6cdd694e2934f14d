//! `bulwark-bench`: a closed-loop load generator for Parsec-compatible services, the in-process
//! limit of the crypto back ends, an idle-CPU probe and the Markdown report of their results.
//!
//! Modes (one per invocation):
//!
//! - `--socket PATH`: N client threads send one operation back to back for a fixed time after a
//!   warm-up, through the upstream `parsec-client` (`--client upstream`, a connection per
//!   request) or `bulwark-client` (`--client bulwark`, reused connections). One JSON line per
//!   (operation, thread count), then a Markdown table.
//! - `--in-process`: the same crypto operations called directly on OpenSSL and Mbed TLS.
//! - `--idle-cpu SECONDS --daemon-pid PID`: the CPU time a daemon uses while nobody talks to it.
//! - `--report FILE`: the Markdown tables (with Bulwark/upstream ratios) of a JSON-lines file.
//! - `--populate N --socket PATH`: generate N ECC P-256 keys (`--threads` at a time).
//! - `--startup CONFIG --daemon-bin BIN --socket PATH`: start the daemon, time its first Ping
//!   answer, then sign with `--startup-sign-key` (if given) and stop it.
//! - `--hold N --socket PATH --daemon-pid PID`: hold N connections open (each after one Ping)
//!   for `--duration` seconds and report the daemon's resident memory.
//!
//! See `bench/run.sh` for the whole comparison and BENCHMARKS.md for its results.

mod cpu;
mod fleet;
mod inproc;
mod load;
mod measure;
mod ops;
mod record;
mod report;
mod svid;

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use crate::ops::Op;
use crate::record::Record;

/// Which client library drives the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClientKind {
    /// The upstream `parsec-client` 0.16: a new connection for every request.
    Upstream,
    /// `bulwark-client`: connections kept open and reused.
    Bulwark,
    /// A raw client that, like the upstream Go client, writes one request on a new connection
    /// and reads until the service closes it, never closing its own side first. Only `ping`,
    /// `list-providers` and `random-32`.
    UntilClose,
}

impl ClientKind {
    /// The name used in records and tables.
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Upstream => "upstream",
            ClientKind::Bulwark => "bulwark",
            ClientKind::UntilClose => "until-close",
        }
    }
}

/// How `--client bulwark` authenticates (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthKind {
    /// Direct authentication as --app-name.
    Direct,
    /// Unix peer credentials (the process's uid).
    Unix,
    /// The JWT-SVID of --token-file.
    JwtSvid,
}

/// Which back end `--in-process` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// OpenSSL through the `openssl` crate.
    Openssl,
    /// Mbed TLS through `psa-crypto` (calls serialised by one mutex).
    Mbed,
    /// Both.
    All,
}

/// Load generator and benchmark harness for bulwarkd and the upstream Parsec service.
#[derive(Debug, Parser)]
#[command(name = "bulwark-bench", version, about)]
struct Args {
    /// Drive the service listening on this socket.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["in_process", "idle_cpu", "report"])]
    socket: Option<PathBuf>,

    /// Measure the crypto back ends called directly, without a service.
    #[arg(long, conflicts_with_all = ["idle_cpu", "report"])]
    in_process: bool,

    /// Sample the CPU time of --daemon-pid over this many idle seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "daemon_pid",
        conflicts_with = "report"
    )]
    idle_cpu: Option<f64>,

    /// Print the Markdown tables of the records in this JSON-lines file.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    /// Client library used with --socket.
    #[arg(long, value_enum, default_value = "bulwark")]
    client: ClientKind,

    /// Label of the service in records (default: the socket path). Labels starting with
    /// `parsec` are the baselines of the report's ratios, labels starting with `bulwarkd`
    /// are compared with them.
    #[arg(long)]
    target: Option<String>,

    /// How the bulwark client authenticates (the other clients use Direct).
    #[arg(long, value_enum, default_value = "direct")]
    auth: AuthKind,

    /// The JWT-SVID for --auth jwt-svid (read once).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// Write a new P-256 JWT bundle (DIR/bundle.jwks, trust domain bench.example) and a JWT-SVID
    /// signed by its key (DIR/svid.token, spiffe://bench.example/load, audience parsec, valid
    /// for a day), and an authentication token of the same key (DIR/issuer.pem, DIR/idp.token,
    /// issuer `https://idp.bench.example`, subject `alice`), then stop.
    #[arg(long, value_name = "DIR")]
    make_jwt_svid: Option<PathBuf>,

    /// Application name used with Direct authentication.
    #[arg(long, default_value = "bulwark-bench")]
    app_name: String,

    /// Operations, comma-separated (default: all but the last two). One of: ping,
    /// list-providers, random-32, sha256-1k, ecdsa-p256-sign, ecdsa-p256-verify, rsa2048-sign,
    /// aes128gcm-encrypt-1k, ecc-p256-generate-destroy, rsa4096-generate-destroy, rsa8192-sign
    /// (the last two load a service while another client measures it).
    #[arg(long, value_delimiter = ',')]
    ops: Vec<Op>,

    /// Thread counts, comma-separated; each is one run.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 8])]
    threads: Vec<usize>,

    /// Measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,

    /// Warm-up seconds before each run (not measured).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,

    /// The service's process id: its CPU time is reported with each run.
    #[arg(long, value_name = "PID")]
    daemon_pid: Option<i32>,

    /// Back ends measured by --in-process.
    #[arg(long, value_enum, default_value = "all")]
    backend: Backend,

    /// Append the JSON lines to this file instead of printing them.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// Do not print the Markdown table after the runs.
    #[arg(long)]
    no_markdown: bool,

    /// Generate this many ECC P-256 keys named `fleet-<i>` through --socket, then stop.
    #[arg(long, value_name = "N")]
    populate: Option<usize>,

    /// Start `--daemon-bin --config CONFIG` (in the config's directory) and time its first
    /// Ping answer on --socket; the daemon is stopped afterwards.
    #[arg(long, value_name = "CONFIG", requires_all = ["daemon_bin", "socket"])]
    startup: Option<PathBuf>,

    /// The daemon binary for --startup.
    #[arg(long, value_name = "BIN")]
    daemon_bin: Option<PathBuf>,

    /// With --socket: create this file once the keys the operations use are set up, before
    /// the first run (another process can then start measuring while this one loads).
    #[arg(long, value_name = "FILE", requires = "socket")]
    ready_file: Option<PathBuf>,

    /// Hold this many connections to --socket open (each after one Ping) for --duration
    /// seconds, reporting --daemon-pid's resident memory before and during.
    #[arg(long, value_name = "N", requires_all = ["daemon_pid", "socket"])]
    hold: Option<usize>,
}

fn seconds(value: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("--{what} {value}: not a duration"))
}

/// Where JSON lines go: appended to `--json FILE`, else printed as they come.
struct Sink {
    file: Option<std::fs::File>,
}

impl Sink {
    fn new(path: Option<&PathBuf>) -> Result<Sink> {
        let file = path
            .map(|path| {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))
            })
            .transpose()?;
        Ok(Sink { file })
    }

    fn write(&mut self, record: &Record) -> Result<()> {
        let line = serde_json::to_string(record)? + "\n";
        match &mut self.file {
            Some(file) => file.write_all(line.as_bytes())?,
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()?;
            }
        }
        Ok(())
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(path) = &args.report {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let records = record::parse_lines(&text)?;
        print!("{}", report::full_report(&records));
        return Ok(());
    }
    if let Some(dir) = &args.make_jwt_svid {
        return svid::make(dir);
    }
    if run_fleet(&args)? {
        return Ok(());
    }
    let mut sink = Sink::new(args.json.as_ref())?;
    let records = run(&args, &mut |record| sink.write(record))?;
    if !args.no_markdown {
        println!("\n{}", report::run_table(&records));
    }
    Ok(())
}

/// The --populate, --startup and --hold modes: results printed as text.
fn run_fleet(args: &Args) -> Result<bool> {
    if let Some(count) = args.populate {
        let socket = args.socket.as_ref().context("--populate needs --socket")?;
        let threads = args.threads.iter().copied().max().unwrap_or(1);
        let seconds = fleet::populate(socket, &args.app_name, "fleet-", count, threads)?;
        println!(
            "populated {count} keys in {seconds:.1} s ({:.0} keys/s, {threads} threads)",
            count as f64 / seconds
        );
        return Ok(true);
    }
    if let Some(config) = &args.startup {
        let (daemon, socket) = match (&args.daemon_bin, &args.socket) {
            (Some(daemon), Some(socket)) => (daemon, socket),
            _ => bail!("--startup needs --daemon-bin and --socket"),
        };
        let (mut child, elapsed) =
            fleet::startup(daemon, config, socket, Duration::from_secs(120))?;
        let rss = fleet::rss_kib(i32::try_from(child.id())?).unwrap_or(0);
        println!(
            "start-up to first Ping answer: {:.1} ms (resident memory then: {} KiB)",
            elapsed.as_secs_f64() * 1e3,
            rss
        );
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id())?),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        child.wait()?;
        return Ok(true);
    }
    if let Some(count) = args.hold {
        let (socket, pid) = match (&args.socket, args.daemon_pid) {
            (Some(socket), Some(pid)) => (socket, pid),
            _ => bail!("--hold needs --socket and --daemon-pid"),
        };
        let (before, during) =
            fleet::hold(socket, count, seconds(args.duration, "duration")?, pid)?;
        println!(
            "resident memory: {before} KiB before, {during} KiB with {count} connections held \
             ({:.1} KiB per connection)",
            (during as f64 - before as f64) / count.max(1) as f64
        );
        return Ok(true);
    }
    Ok(false)
}

fn run(args: &Args, sink: &mut dyn FnMut(&Record) -> Result<()>) -> Result<Vec<Record>> {
    if let Some(idle) = args.idle_cpu {
        let pid = args.daemon_pid.context("--idle-cpu needs --daemon-pid")?;
        let target = args.target.clone().unwrap_or_else(|| format!("pid {pid}"));
        let record = measure::idle_cpu(&target, pid, seconds(idle, "idle-cpu")?)?;
        eprintln!(
            "{target}: {:.3} s of CPU over {:.1} s idle ({:.2} % of one core)",
            record.daemon_cpu_s.unwrap_or(0.0),
            record.duration_s,
            record.daemon_cpu_cores.unwrap_or(0.0) * 100.0
        );
        sink(&record)?;
        return Ok(vec![record]);
    }
    if args.threads.is_empty() || args.threads.contains(&0) {
        bail!("--threads: give one or more thread counts above 0");
    }
    let warmup = seconds(args.warmup, "warmup")?;
    let duration = seconds(args.duration, "duration")?;
    if duration.is_zero() {
        bail!("--duration must be above 0");
    }
    if args.in_process {
        let ops = if args.ops.is_empty() {
            Op::IN_PROCESS.to_vec()
        } else {
            args.ops.clone()
        };
        let plan = inproc::Plan {
            backend: args.backend,
            ops,
            threads: args.threads.clone(),
            warmup,
            duration,
        };
        return inproc::run(&plan, sink);
    }
    let Some(socket) = args.socket.clone() else {
        bail!("give one of --socket PATH, --in-process, --idle-cpu SECONDS or --report FILE");
    };
    let ops = if args.ops.is_empty() {
        Op::DEFAULT.to_vec()
    } else {
        args.ops.clone()
    };
    let plan = load::Plan {
        target: args
            .target
            .clone()
            .unwrap_or_else(|| socket.display().to_string()),
        socket,
        client: args.client,
        app_name: args.app_name.clone(),
        auth: match args.auth {
            AuthKind::Direct => None,
            AuthKind::Unix => Some(bulwark_client::Auth::UnixPeerCredentials),
            // Read once, as an application holds its token: the figure is the service's cost,
            // not that of checking the file for changes at each request.
            AuthKind::JwtSvid => {
                let path = args
                    .token_file
                    .as_ref()
                    .context("--auth jwt-svid needs --token-file")?;
                let token = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Some(bulwark_client::Auth::JwtSvid(
                    bulwark_client::TokenSource::fixed(token.trim()),
                ))
            }
        },
        ops,
        threads: args.threads.clone(),
        warmup,
        duration,
        daemon_pid: args.daemon_pid,
        ready_file: args.ready_file.clone(),
    };
    load::run(&plan, sink)
}
