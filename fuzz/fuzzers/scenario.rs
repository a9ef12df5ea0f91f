//! A `mock-entra` scenario document applied to a running mock: applied or refused with a
//! message, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::scenario(data));
