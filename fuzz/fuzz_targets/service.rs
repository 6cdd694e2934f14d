//! Arbitrary bytes as one request to the whole service (framing, Direct authentication,
//! dispatch, the Mbed Crypto provider, a SQLite key store in a temporary directory). The
//! invariants are in `src/service.rs` (`check_service_request`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The seed builders are used by the corpus replay test only.
#[allow(dead_code)]
#[path = "../src/service.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::check_service_request(data));
