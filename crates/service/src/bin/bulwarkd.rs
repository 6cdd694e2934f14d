//! `bulwarkd`: process concerns only — arguments, configuration file, logging, privileges,
//! signals, systemd — around the library's builder and front end.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use bulwark_service::builder::{self, Resources};
use bulwark_service::config::{Config, LogLevel, EMBEDDED_DEFAULT};
use bulwark_service::front::{self, ConnectionLimits, ServeLimits, ServiceHandle};
use bulwark_service::logging::StderrWriter;
use bulwark_service::system::{self, ConfigSource};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// A Parsec-compatible security service: named, per-client isolated keys over a Unix socket.
#[derive(Debug, Parser)]
#[command(name = "bulwarkd", version, about)]
struct Args {
    /// Configuration file (the Parsec config.toml format). Without it, /etc/parsec/config.toml
    /// when it exists, else the embedded default configuration (see --print-default-config).
    #[arg(short, long, value_name = "PATH")]
    config: Option<PathBuf>,

    /// Print the embedded default configuration and exit.
    #[arg(long)]
    print_default_config: bool,

    /// Check the configuration as start-up does (key store, providers, devices, files), without
    /// binding the socket or creating or changing any file, and exit.
    #[arg(long)]
    check: bool,
}

fn main() -> ExitCode {
    bulwark_service::metrics::mark_started();
    let args = Args::parse();
    if args.print_default_config {
        print!("{EMBEDDED_DEFAULT}");
        return ExitCode::SUCCESS;
    }
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Not `eprintln!`, which panics when standard error cannot be written.
            let _ = writeln!(std::io::stderr(), "bulwarkd: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&PathBuf>) -> Result<Config> {
    Ok(match path {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default(),
    })
}

fn run(mut args: Args) -> Result<()> {
    // Everything the daemon creates (key store, Mbed TLS key files, KEK, audit log) is for its
    // own user only; the socket alone is opened to everyone, explicitly, when it is bound.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let source = ConfigSource::resolve(&mut args.config);
    let config = load(args.config.as_ref())?;
    init_logging(
        config.core_settings.log_level,
        config.core_settings.log_timestamp,
    );
    tracing::info!("{source}");
    for key in &config.unknown_keys {
        tracing::warn!("ignoring unknown configuration key {key}");
    }
    if nix::unistd::getuid().is_root() && !config.core_settings.allow_root {
        bail!(
            "refusing to run as root: run as a dedicated user, or set \
             core_settings.allow_root = true"
        );
    }
    if args.check {
        // The builder start-up runs, on resources that change no file: every check of
        // start-up but binding the socket.
        builder::build(&config, &mut Resources::for_check()?)?;
        println!("configuration is valid");
        return Ok(());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(config.core_settings.thread_pool_size.max(1))
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    // The service runs as a task on the worker threads, not on this thread: a connection task
    // spawned by the accept loop then starts on the worker that accepted it, where a spawn
    // from outside the workers had to wake one of them (two thread wake-ups per connection).
    runtime.block_on(async move {
        tokio::spawn(serve(args, config))
            .await
            .context("the service task ended abnormally")?
    })
}

async fn serve(args: Args, config: Config) -> Result<()> {
    // Signals are registered before anything that can take time, so none is lost.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;

    let mut resources = Resources::new();
    let service = builder::build(&config, &mut resources)?;
    let handle = ServiceHandle::new(service);
    let mut socket_path = config.listener.socket_path.clone();
    let system::Listening {
        listener,
        mut socket,
    } = system::listen(&socket_path).with_context(|| {
        format!(
            "listener.socket_path: cannot listen on {}",
            socket_path.display()
        )
    })?;
    let (move_listener, moves) = tokio::sync::mpsc::unbounded_channel();
    if let Some(endpoint) = &config.core_settings.metrics_endpoint {
        // Keys are counted by the service in use at the time of the scrape (a reload may
        // change the providers).
        let counted = handle.clone();
        bulwark_service::metrics::count_keys_with(move || counted.current().keys_by_provider());
        bulwark_service::metrics::start(endpoint)
            .await
            .with_context(|| {
                format!("core_settings.metrics_endpoint: cannot serve on {endpoint}")
            })?;
    }
    let limits = system::fit_connections(
        &config.core_settings,
        ServeLimits {
            max_connections: config.core_settings.max_connections,
            max_in_flight: config.core_settings.max_requests_in_flight,
            max_connections_per_client: config.core_settings.connections_per_client(),
            max_in_flight_per_client: config.core_settings.requests_in_flight_per_client(),
            connection: ConnectionLimits {
                io_timeout: config.listener.timeout_duration(),
                idle_timeout: config.listener.idle_timeout_duration(),
            },
        },
    );

    let reload_handle = handle.clone();
    let ready_path = socket.path.clone();
    let reload = async move {
        loop {
            hangup.recv().await;
            notify(&[sd_notify::NotifyState::Reloading]);
            match load(args.config.as_ref()).and_then(|c| {
                // A moved socket is bound before the service is built, so a failure of either
                // keeps everything as it was (a new socket bound in vain is removed). A socket
                // passed by the service manager cannot move.
                let moved = if c.listener.socket_path == socket_path {
                    None
                } else if socket.is_activated() {
                    tracing::warn!("{}", socket.path_change(&c.listener.socket_path));
                    None
                } else {
                    let path = c.listener.socket_path.clone();
                    Some(bind(&path)?)
                };
                Ok((builder::build(&c, &mut resources)?, moved))
            }) {
                Ok((service, moved)) => {
                    reload_handle.replace(service);
                    if let Some(system::Listening {
                        listener,
                        socket: file,
                    }) = moved
                    {
                        // The old listener closes once serve takes the new one; replacing
                        // the socket file's guard removes the old file.
                        let _ = move_listener.send(listener);
                        tracing::info!(
                            from = %socket_path.display(),
                            to = %file.path.display(),
                            "listening on the new socket"
                        );
                        socket_path = file.path.clone();
                        drop(std::mem::replace(&mut socket, file));
                    }
                    tracing::info!("configuration reloaded");
                }
                Err(error) => {
                    tracing::error!("reload failed, keeping the running configuration: {error:#}")
                }
            }
            notify(&[sd_notify::NotifyState::Ready]);
        }
    };
    let shutdown = async {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stopping: finishing requests in flight");
        notify(&[sd_notify::NotifyState::Stopping]);
    };

    notify(&[sd_notify::NotifyState::Ready]);
    tracing::info!(socket = %ready_path.display(), "bulwarkd is ready");
    tokio::select! {
        () = front::serve(listener, moves, handle, limits, shutdown) => {}
        () = reload => {}
    }
    tracing::info!("stopped");
    Ok(())
}

fn bind(path: &std::path::Path) -> Result<system::Listening> {
    system::bind(path)
        .with_context(|| format!("listener.socket_path: cannot listen on {}", path.display()))
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    // Outside systemd (no NOTIFY_SOCKET) this does nothing.
    let _ = sd_notify::notify(false, state);
}

fn init_logging(level: Option<LogLevel>, timestamps: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = match level {
        Some(level) => EnvFilter::new(level.to_string()),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // A log line that cannot be written is counted, never a panic (`logging.rs`).
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrWriter)
        .log_internal_errors(false);
    if timestamps {
        builder.init();
    } else {
        builder.without_time().init();
    }
}
