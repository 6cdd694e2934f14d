//! End-to-end tests: the real `bulwarkd` binary, driven over its socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_ops;
mod crosscheck;
mod harness;
mod lifecycle;
mod our_client;
mod parsec_tool;
mod persistence;
mod pipeline;
mod unix_tenancy;
mod upstream_service;
mod vectors;
