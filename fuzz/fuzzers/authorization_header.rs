//! The `Authorization` header a service's tower layer reads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::authorization_header(data));
