//! A shared-cache value read back from Redis (not trusted): opened or refused, and a
//! sealed token opens to itself under its own entry only.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::sealed_value(data));
