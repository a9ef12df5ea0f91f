//! A certificate chain and private key in PEM (`chain NUL key`), as `ClientCertificate`
//! reads them: parsed (a key, its chain) or a typed error, never a panic. `build()` is
//! left out: it only adds an HTTP client, which costs more than the parse.
#![no_main]
use azure_cross_tenant::ClientCertificate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (chain, key) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[..0]),
    };
    let _ = ClientCertificate::from_pem("11111111-2222-3333-4444-555555555555", chain, key);
});
