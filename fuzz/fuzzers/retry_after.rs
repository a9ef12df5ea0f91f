//! `Retry-After` as seconds or an HTTP date: a wait of at most an hour, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::retry_after(data));
