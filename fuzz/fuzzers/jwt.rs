//! Token text: JOSE splitting, strict base64url, the header (an object) and claims, and
//! the validator's checks before and after the signature, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::jwt(data));
