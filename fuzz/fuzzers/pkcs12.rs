//! A PKCS#12 archive, as `ClientCertificate::from_pkcs12` reads it (without `build()`,
//! which only adds an HTTP client).
#![no_main]
use azure_cross_tenant::ClientCertificate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ClientCertificate::from_pkcs12("11111111-2222-3333-4444-555555555555", data, "fuzz");
});
