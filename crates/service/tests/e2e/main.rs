//! End-to-end tests: the real `bulwarkd` binary, driven over its socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod lifecycle;
mod parsec_tool;
mod persistence;
mod pipeline;
mod unix_tenancy;
mod vectors;
mod client_ops;
mod crosscheck;
mod our_client;
mod upstream_service;
