//! Protobuf message types for every operation body, generated at build time from
//! `proto/*.proto` (see `build.rs`).
//!
//! Each module is one protobuf package; operation packages contain an `Operation` (request body)
//! and a `Result` (response body) message. `psa_key_attributes` and `psa_algorithm` hold the
//! shared PSA types; their conversions to native types live in [`crate::psa`]. The modules are
//! siblings so that prost's `super::psa_algorithm::...` paths resolve.

// Generated code: no docs, no Debug on every type, fully qualified paths, and whatever style
// prost chooses.
#![allow(
    missing_docs,
    missing_debug_implementations,
    unused_qualifications,
    clippy::all,
    clippy::pedantic,
    clippy::nursery
)]

/// Key attributes: type, size and policy (`psa_key_attributes.proto`).
pub mod psa_key_attributes {
    include!(concat!(env!("OUT_DIR"), "/psa_key_attributes.rs"));
}

/// Algorithm descriptions (`psa_algorithm.proto`).
pub mod psa_algorithm {
    include!(concat!(env!("OUT_DIR"), "/psa_algorithm.rs"));
}

// One module per operation, named as its `ops` module: the operations table lists them.
crate::__operation_table!(__proto_modules());
