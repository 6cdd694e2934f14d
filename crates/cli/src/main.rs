//! `bulwark`: the command-line tool for Parsec-compatible security services.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use anyhow::Result;
use bulwark_client::Client;
use clap::{Parser, Subcommand};

/// Talk to a Parsec-compatible security service (bulwarkd or Parsec).
#[derive(Debug, Parser)]
#[command(name = "bulwark", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check that the service answers, and print its wire protocol version.
    Ping,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bulwark: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let client = Client::from_env()?;
    match cli.command {
        Command::Ping => {
            let (major, minor) = client.ping()?;
            println!("{major}.{minor}");
        }
    }
    Ok(())
}
