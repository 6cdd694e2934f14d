//! Why a command failed, the exit status scripts can rely on, and messages that name a fix.

use std::fmt;
use std::io;
use std::path::Path;
use std::time::Duration;

use bulwark_client::{Error as ClientError, ErrorKind, ResponseStatus};

/// The documented exit statuses (also in `bulwark --help` and README.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Any failure without a code of its own, and bad arguments (as parsec-tool).
    Failure = 1,
    /// The service cannot be reached: not running, wrong endpoint, no answer in time.
    Unreachable = 3,
    /// No key of that name for this application.
    KeyNotFound = 4,
    /// A key of that name already exists.
    KeyExists = 5,
    /// The key's policy or the caller's rights do not allow the operation.
    NotPermitted = 6,
    /// A signature or hash does not match.
    InvalidSignature = 7,
    /// The service refused the client's authentication.
    AuthFailed = 8,
    /// The key type, size or algorithm is not supported.
    NotSupported = 9,
}

/// A failed command: its exit status and a message naming the cause and a fix.
#[derive(Debug)]
pub struct Failure {
    /// The exit status.
    pub exit: Exit,
    /// What went wrong and what to do.
    pub message: String,
}

impl Failure {
    /// A failure with exit status `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// A generic failure (exit status 1).
    pub fn generic(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Failure, message)
    }

    /// Not supported by this tool (exit status 9).
    pub fn not_supported(message: impl Into<String>) -> Failure {
        Failure::new(Exit::NotSupported, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What the CLI knows when a client call fails, to word the fix.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    /// The socket the client talked to.
    pub socket: &'a Path,
    /// The timeout in force (`None`: no limit).
    pub timeout: Option<Duration>,
    /// The application name sent with Direct authentication.
    pub app_name: &'a str,
}

/// The exit status for a client error.
pub(crate) fn exit_for(error: &ClientError) -> Exit {
    use ResponseStatus as S;
    if error.is_key_not_found() {
        return Exit::KeyNotFound;
    }
    match error.kind() {
        ErrorKind::Connect
        | ErrorKind::Timeout
        | ErrorKind::ConnectionLost
        | ErrorKind::InvalidEndpoint => Exit::Unreachable,
        ErrorKind::KeyNotFound => Exit::KeyNotFound,
        ErrorKind::MissingAppName | ErrorKind::NoAuthenticator | ErrorKind::Credentials => {
            Exit::AuthFailed
        }
        ErrorKind::Service(status) => match status {
            S::PsaErrorDoesNotExist => Exit::KeyNotFound,
            S::PsaErrorAlreadyExists => Exit::KeyExists,
            S::PsaErrorNotPermitted | S::AdminOperation => Exit::NotPermitted,
            S::PsaErrorInvalidSignature => Exit::InvalidSignature,
            S::NotAuthenticated
            | S::AuthenticationError
            | S::AuthenticatorNotRegistered
            | S::AuthenticatorDoesNotExist => Exit::AuthFailed,
            S::PsaErrorNotSupported | S::DeprecatedPrimitive => Exit::NotSupported,
            _ => Exit::Failure,
        },
        _ => Exit::Failure,
    }
}

fn io_kind(error: &ClientError) -> Option<io::ErrorKind> {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        source = e.source();
    }
    None
}

/// The message for a client error, worded for the command line: the client's own message,
/// except where it names a library call and the command line has a flag or a setting instead.
pub(crate) fn message_for(error: &ClientError, ctx: Context<'_>) -> String {
    use ResponseStatus as S;
    let socket = ctx.socket.display();
    let op = error.opcode().map_or("the request", |op| op.name());
    match error.kind() {
        ErrorKind::Connect => match io_kind(error) {
            Some(io::ErrorKind::NotFound) => format!(
                "bulwarkd is not running at {socket} (no such socket): start it or set \
                 PARSEC_SERVICE_ENDPOINT=unix:<socket path>"
            ),
            Some(io::ErrorKind::ConnectionRefused) => format!(
                "bulwarkd is not running at {socket} (connection refused: a stale socket file?): \
                 start it or set PARSEC_SERVICE_ENDPOINT=unix:<socket path>"
            ),
            _ => error.to_string(),
        },
        ErrorKind::Timeout => format!(
            "the service at {socket} did not answer {op} within {}: it may be overloaded or \
             stuck; retry, or raise the limit with -t/--timeout <seconds> (0: no limit)",
            match ctx.timeout {
                Some(t) => format!("{}s", t.as_secs()),
                None => "the timeout".to_owned(),
            }
        ),
        ErrorKind::ResponseTooLarge => format!(
            "the answer to {op} is larger than this tool accepts: ask for less data at once"
        ),
        ErrorKind::NoAuthenticator => format!(
            "the service at {socket} offers no authenticator this tool can use (Direct, Unix \
             peer credentials, or with --token-file JWT-SVID and authentication tokens): check \
             its [authenticator] configuration, or give the token with --token-file"
        ),
        ErrorKind::NoProvider => format!(
            "{op} needs a crypto provider and none is selected: the service lists none (check \
             its [[provider]] configuration), or choose one with -p/--provider <id> (see \
             `bulwark list-providers`)"
        ),
        ErrorKind::Service(S::AdminOperation) => format!(
            "{op} is reserved to administrators: add this application to the service's \
             [authenticator] admins list (the name {:?} with Direct authentication, your uid \
             with Unix peer credentials, the SPIFFE ID of a JWT-SVID, <issuer>#<name> for a \
             token)",
            ctx.app_name
        ),
        ErrorKind::Service(S::NotAuthenticated) => format!(
            "{op} needs an authenticated application and the service did not accept this \
             one: check the service's [authenticator] configuration"
        ),
        ErrorKind::Service(S::AuthenticatorNotRegistered | S::AuthenticatorDoesNotExist) => {
            format!(
                "{op}: the service does not use the authentication method this tool chose: \
                 check the service's [authenticator] configuration"
            )
        }
        ErrorKind::Service(S::ProviderNotRegistered | S::ProviderDoesNotExist) => format!(
            "{op}: the provider this command targets is not configured in the service: choose \
             one that `bulwark list-providers` names with -p/--provider <id>"
        ),
        ErrorKind::Service(S::PsaErrorNotSupported) => format!(
            "{op}: the provider does not support this key type, size or algorithm; choose \
             another (see `bulwark create-rsa-key --help`)"
        ),
        _ => error.to_string(),
    }
}

/// A client error as a command failure.
pub(crate) fn from_client(error: &ClientError, ctx: Context<'_>) -> Failure {
    Failure::new(exit_for(error), message_for(error, ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct_and_documented() {
        let codes = [
            Exit::Failure,
            Exit::Unreachable,
            Exit::KeyNotFound,
            Exit::KeyExists,
            Exit::NotPermitted,
            Exit::InvalidSignature,
            Exit::AuthFailed,
            Exit::NotSupported,
        ];
        let help = crate::cli::AFTER_LONG_HELP_FOR_TESTS;
        for (i, a) in codes.iter().enumerate() {
            assert!(
                help.contains(&format!("\n  {}  ", *a as u8)),
                "{a:?} is not in the help text"
            );
            for b in &codes[i + 1..] {
                assert_ne!(*a as u8, *b as u8);
            }
        }
    }
}
