//! `bulwark`: the command-line tool for Parsec-compatible security services, a superset of
//! parsec-tool (same subcommands, flags, defaults and output, plus JSON and table output,
//! completions, a manual page, documented exit statuses and a few more commands).
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod csr;
mod describe;
mod encoding;
mod error;
mod input;
mod log;
mod output;
mod signing;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bulwark_client::{
    Auth, Client, ClientBuilder, ProviderId, TokenSource, DEFAULT_SOCKET_PATH, DEFAULT_TIMEOUT,
    ENDPOINT_VARIABLE,
};
use clap::{Parser as _, ValueEnum as _};

use crate::cli::{AuthMethod, Cli, OutputFormat};
use crate::error::{Context, Failure};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version go to standard output with status 0; argument errors exit 1,
            // as parsec-tool's do.
            return if e.use_stderr() {
                ExitCode::from(error::Exit::Failure as u8)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match commands::run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            log::error(format_args!("{failure}"));
            ExitCode::from(failure.exit as u8)
        }
    }
}

/// A client and what the command line says about it.
#[derive(Debug)]
pub struct Session {
    client: Client,
    app_name: String,
    timeout: Option<Duration>,
    /// The output format.
    pub format: OutputFormat,
}

/// `builder` with the authentication `--auth` and `--token-file` ask for.
fn with_auth(builder: ClientBuilder, cli: &Cli) -> Result<ClientBuilder, Failure> {
    let token = cli.token_file.as_ref().map(TokenSource::file);
    // The method as --auth spells it.
    let name = |method: AuthMethod| {
        method
            .to_possible_value()
            .map(|value| value.get_name().to_owned())
            .unwrap_or_default()
    };
    let needs_file = |method: AuthMethod| {
        Failure::generic(format!(
            "--auth {} reads the token from a file: give it with --token-file PATH",
            name(method)
        ))
    };
    Ok(match cli.auth {
        None => match token {
            Some(source) => builder.token(source.clone()).jwt_svid(source),
            None => builder,
        },
        Some(method @ (AuthMethod::Unix | AuthMethod::Direct)) if token.is_some() => {
            return Err(Failure::generic(format!(
                "--token-file is read only with --auth jwt-svid or --auth token, not with \
                 --auth {}",
                name(method)
            )));
        }
        Some(AuthMethod::Unix) => builder.auth(Auth::UnixPeerCredentials),
        Some(AuthMethod::Direct) => builder.auth(Auth::Direct(cli.app_name.clone())),
        Some(method @ AuthMethod::JwtSvid) => {
            builder.auth(Auth::JwtSvid(token.ok_or_else(|| needs_file(method))?))
        }
        Some(method @ AuthMethod::Token) => {
            builder.auth(Auth::Token(token.ok_or_else(|| needs_file(method))?))
        }
    })
}

/// The socket the client will use, for messages about failures before it exists.
fn endpoint_socket() -> PathBuf {
    match std::env::var(ENDPOINT_VARIABLE) {
        Ok(uri) => PathBuf::from(
            uri.strip_prefix("unix://")
                .or_else(|| uri.strip_prefix("unix:"))
                .unwrap_or(&uri),
        ),
        Err(_) => PathBuf::from(DEFAULT_SOCKET_PATH),
    }
}

impl Session {
    /// A client for `cli`: without identity and without any call to the service when
    /// `authenticated` is false (ping, list-providers, list-authenticators, list-opcodes),
    /// else with the provider and authenticator the service names, as parsec-tool.
    pub fn new(cli: &Cli, authenticated: bool) -> Result<Session, Failure> {
        let timeout = match cli.timeout {
            None => Some(DEFAULT_TIMEOUT),
            Some(0) => None,
            Some(seconds) => Some(Duration::from_secs(seconds.into())),
        };
        let provider = cli
            .provider
            .map(|id| {
                ProviderId::try_from(id).map_err(|_| {
                    Failure::generic(format!(
                        "the provider ID entered ({id}) does not map with an existing provider: \
                         use one of the IDs `bulwark list-providers` prints (0 to 5)"
                    ))
                })
            })
            .transpose()?;
        let mut builder = Client::builder().timeout(timeout);
        if let Some(provider) = provider {
            builder = builder.provider(provider);
        }
        builder = if authenticated {
            with_auth(builder.app_name(cli.app_name.as_str()), cli)?
        } else {
            builder.discover(false)
        };
        let socket = endpoint_socket();
        let client = builder.build().map_err(|e| {
            error::from_client(
                &e,
                Context {
                    socket: &socket,
                    timeout,
                    app_name: &cli.app_name,
                },
            )
        })?;
        Ok(Session {
            client,
            app_name: cli.app_name.clone(),
            timeout,
            format: cli.output,
        })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Runs `f` with the client, its error worded for the command line.
    pub fn call<T>(
        &self,
        f: impl FnOnce(&Client) -> bulwark_client::Result<T>,
    ) -> Result<T, Failure> {
        f(&self.client).map_err(|e| error::from_client(&e, self.context()))
    }

    fn context(&self) -> Context<'_> {
        Context {
            socket: self.socket(),
            timeout: self.timeout,
            app_name: &self.app_name,
        }
    }

    fn socket(&self) -> &Path {
        self.client.socket()
    }
}
