//! A client for Parsec-compatible security services such as `bulwarkd`: easy to use and hard
//! to get wrong.
//!
//! - [`Client::new`] finds the service as upstream clients do (`PARSEC_SERVICE_ENDPOINT`, else
//!   `/run/parsec/parsec.sock`), asks it which provider and authenticator to use, and is ready.
//!   [`Client::builder`] overrides any of it.
//! - One typed method per operation ([`Client::generate_key`], [`Client::sign_hash`],
//!   [`Client::mac_compute`], ...), plus calls that take the algorithm from the key's policy
//!   ([`Client::sign_message`], [`Client::encrypt`], [`Client::aead_seal`]) and the
//!   [`attributes`] helpers that make keys for the common cases.
//! - Secrets come back as [`SecretBytes`], wiped from memory when dropped.
//! - Errors are an opaque [`Error`] with a [`ErrorKind`], the service's status when it
//!   answered one, and a message that says what to do.
//! - Connections are reused when the service says it keeps them open (a Bulwark extension of
//!   the header's `flags`) and opened per request when it does not; a `Client` is `Send + Sync` and cheap to clone.
//!
//! ```no_run
//! use bulwark_client::{attributes, Client, EccFamily};
//!
//! let client = Client::new("my-app")?;
//! client.generate_key("device-key", attributes::ecc_signing_key(EccFamily::SecpR1, 256))?;
//! let signature = client.sign_message("device-key", b"firmware v1.2")?;
//! client.verify_message("device-key", b"firmware v1.2", &signature)?;
//! client.destroy_key("device-key")?;
//! # Ok::<(), bulwark_client::Error>(())
//! ```
//!
//! # Connections
//!
//! The Parsec wire protocol answers one request per connection and then closes it. Bulwark
//! extends it with an opt-in: a request whose header `flags` carry
//! [`FLAG_KEEP_OPEN`](bulwark_interface::wire::FLAG_KEEP_OPEN) (`0x8000`) asks the service to keep
//! the connection open, and `bulwarkd` answers with the same bit when it does. The upstream
//! Parsec service ignores the field and answers 0, so every answer says for certain whether its
//! connection may carry another request. With reuse on (the default), the client sets the bit,
//! keeps a few idle connections whose answers carried it (a pool behind a mutex, never locked
//! across I/O) and, before reusing one, checks without blocking that the service has not closed
//! it meanwhile (`bulwarkd` closes connections idle for `listener.idle_timeout`). A request is
//! sent a second time only when a reused connection is found closed before the service could
//! have processed it: the write fails (`EPIPE`, `ECONNRESET`), or the connection ends before
//! the first byte of the answer. Against an upstream service every request gets its own
//! connection. Writes use `MSG_NOSIGNAL`, so a closed connection never raises `SIGPIPE`.
//! [`Client::connection_stats`] shows what happened.
#![forbid(unsafe_code)]

pub mod attributes;
mod builder;
mod client;
mod error;
mod token;
mod transport;
#[cfg(feature = "workload-api")]
mod workload;

#[cfg(test)]
mod tests;

pub use builder::{
    Auth, ClientBuilder, DEFAULT_MAX_IDLE_CONNECTIONS, DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_SOCKET_PATH, DEFAULT_TIMEOUT, ENDPOINT_VARIABLE,
};
pub use client::{
    ActivateCredentialChallenge, AttestationMechanismParams, AttestationOutput, AuthenticatorInfo,
    CheckType, Client, KeyInfo, KeyPattern, Payload, PrepareKeyAttestationOutput,
    PrepareKeyAttestationParams, ProviderInfo,
};
pub use error::{Error, ErrorKind, Result};
pub use token::TokenSource;
pub use transport::ConnectionStats;
#[cfg(feature = "workload-api")]
pub use workload::{DEFAULT_JWT_SVID_AUDIENCE, SPIFFE_ENDPOINT_VARIABLE};

/// The protocol crate: wire format, operations table, native request and response types.
pub use bulwark_interface as interface;
pub use bulwark_interface::ids::{AuthType, ProviderId};
pub use bulwark_interface::ops::Opcode;
/// The PSA Crypto types of keys and algorithms.
pub use bulwark_interface::psa_types as psa;
pub use bulwark_interface::psa_types::algorithm::{
    Aead, AeadWithDefaultLengthTag, Algorithm, AsymmetricEncryption, AsymmetricSignature, Cipher,
    FullLengthMac, Hash, KeyAgreement, Mac, RawKeyAgreement, SignHash,
};
pub use bulwark_interface::psa_types::key::{
    Attributes, DhFamily, EccFamily, Lifetime, Policy, Type as KeyType, UsageFlags,
};
pub use bulwark_interface::secret::SecretBytes;
pub use bulwark_interface::status::ResponseStatus;
pub use zeroize::Zeroizing;
