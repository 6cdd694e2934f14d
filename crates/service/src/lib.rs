//! bulwarkd, the service: a drop-in Parsec security service.
//!
//! See ARCHITECTURE.md for the crates, the path of one request and where to add an operation.
#![deny(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod builder;
pub mod config;
pub mod counters;
pub mod dispatch;
pub mod error;
pub mod fair;
pub mod front;
pub mod keystore;
pub mod logging;
pub mod metrics;
pub(crate) mod migration;
pub mod providers;
pub mod service;
pub(crate) mod status;
pub mod system;
#[doc(hidden)]
pub mod test_support;
