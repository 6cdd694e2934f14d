//! End-to-end tests: the real `bulwarkd` binary, driven over its socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod authenticators;
mod check;
mod client_ops;
mod connections;
mod crosscheck;
mod descriptors;
mod fair_share;
mod flood;
mod harness;
mod hostile;
mod hw_common;
mod hw_pkcs11;
mod hw_tpm;
mod lifecycle;
mod limits;
mod log_sinks;
mod metrics;
mod migration;
mod our_client;
mod parsec_tool;
mod persistence;
mod pipeline;
mod reload;
mod service_manager;
mod status;
mod storage;
mod token_auth;
mod unix_tenancy;
mod upstream_behaviours;
mod upstream_service;
mod vectors;
mod working_directory;
mod workload_api;
