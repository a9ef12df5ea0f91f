//! The query of an admin sign-in or consent callback, as a browser delivers it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::consent_callback(data));
