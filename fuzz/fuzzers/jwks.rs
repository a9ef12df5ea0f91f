//! OpenID metadata and a JWKS (`metadata NUL jwks`): keys read or skipped, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::jwks(data));
