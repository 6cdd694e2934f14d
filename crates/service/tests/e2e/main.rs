//! End-to-end tests: the real `bulwarkd` binary, driven over its socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod client_ops;
mod crosscheck;
mod flood;
mod harness;
mod hostile;
mod hw_common;
mod hw_pkcs11;
mod hw_tpm;
mod lifecycle;
mod log_sinks;
mod our_client;
mod parsec_tool;
mod persistence;
mod pipeline;
mod storage;
mod unix_tenancy;
mod upstream_service;
mod vectors;
