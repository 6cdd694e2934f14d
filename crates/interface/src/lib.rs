//! The Parsec wire protocol 1.0 and every operation contract.
//!
//! - [`wire`]: the fixed header, request and response frames, with every check of the
//!   protocol in the order the reference service applies them.
//! - [`ops`]: the operations table and one module per operation (native types, conversions,
//!   policy checks).
//! - [`status`], [`ids`]: the status codes and the small enums of the header.
//! - [`proto`]: the protobuf messages generated from `proto/*.proto`; [`psa`]: their
//!   conversions to the PSA types of the `psa-crypto` crate.
//!
//! This crate does no I/O beyond `std::io::Read`/`Write` adapters and has no `unsafe`.
#![forbid(unsafe_code)]

pub mod error;
pub mod ids;
pub mod ops;
pub mod proto;
pub mod psa;
pub mod secret;
pub mod status;
pub mod wire;

pub use error::BodyError;
pub use psa_crypto::types as psa_types;
