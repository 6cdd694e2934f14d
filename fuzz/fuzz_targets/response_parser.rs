//! Arbitrary bytes as a response: header checks, framing, re-encoding, and the result body of
//! a successful response. The invariants are in `bulwark_fuzz::check_response_bytes`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bulwark_fuzz::check_response_bytes(data));
