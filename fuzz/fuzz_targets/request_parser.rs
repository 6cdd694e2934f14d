//! Arbitrary bytes as a request: header checks, framing, re-encoding, and the body of the
//! operation the header names. The invariants are in `bulwark_fuzz::check_request_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bulwark_fuzz::check_request_bytes(data));
