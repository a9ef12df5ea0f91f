//! Client assertion signing: PS256 (`x5t#S256`, the default) vs RS256 (`x5t`, legacy),
//! 2048-bit RSA, in the same run. Each token request signs one assertion.
//!
//! Run: `cargo bench -p azure-cross-tenant-benches --bench certificate`

#![allow(missing_docs)] // criterion's macros generate undocumented functions

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use azure_cross_tenant::{AssertionAlgorithm, ClientCertificate, TenantId};
use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
}

fn signing(c: &mut Criterion) {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
    let key_pem = pem("PRIVATE KEY", pkcs8.as_ref());
    let cert = rcgen::CertificateParams::new(vec!["bench.example".to_owned()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::from_pem(&key_pem).unwrap())
        .unwrap()
        .pem();
    let tenant: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
    let mut g = c.benchmark_group("client_assertion_rsa2048");
    for (name, alg) in [
        ("ps256", AssertionAlgorithm::Ps256),
        ("rs256", AssertionAlgorithm::Rs256),
    ] {
        let cred =
            ClientCertificate::from_pem("11111111-2222-3333-4444-555555555555", &cert, &key_pem)
                .algorithm(alg)
                .build()
                .unwrap();
        g.bench_function(name, |b| b.iter(|| cred.client_assertion(&tenant).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
