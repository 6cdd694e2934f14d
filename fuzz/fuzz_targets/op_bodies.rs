//! An operation selector byte then a body, decoded and re-encoded as both the request and the
//! response of that operation. The invariants are in `bulwark_fuzz::check_op_body`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| bulwark_fuzz::check_op_body(data));
