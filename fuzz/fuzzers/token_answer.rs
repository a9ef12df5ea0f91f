//! A token endpoint answer (success or error body, status, `Retry-After`): parsed,
//! classified and the issued token checked, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| azure_cross_tenant::fuzzing::token_answer(data));
