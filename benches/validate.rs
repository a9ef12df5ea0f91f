//! `TokenValidator::validate` with cached keys against a bare `jsonwebtoken::decode` with
//! a prepared key, in the same run: the cost of our checks on top of the RSA verify.
//!
//! Run: `cargo bench --bench validate --all-features`

#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::sync::Arc;

use azure_cross_tenant::testing::MockEntra;
use azure_cross_tenant::{ClientSecret, Expectations, TenantCredentialProvider, TokenValidator};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

fn validate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (token, validator, expect, key, issuer) = rt.block_on(async {
        let entra = MockEntra::start().await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("fabrikam.example");
        let app = entra.register_app(&home, "bench");
        let secret = entra.add_secret(&app);
        let sp = entra.consent(&customer, &app);
        let credential = ClientSecret::new(app.client_id(), secret)
            .authority_host(entra.uri())
            .build()
            .unwrap();
        let token = credential
            .get_token(&customer, &["https://vault.azure.net/.default"])
            .await
            .unwrap();
        let validator = TokenValidator::new(entra.cloud()).unwrap();
        let expect = Expectations::new(customer.clone())
            .audience("https://vault.azure.net")
            .object_id(sp)
            .app_id(app.client_id());
        validator.validate(token.secret(), &expect).await.unwrap();

        let jwks: serde_json::Value = serde_json::from_slice(
            &reqwest::get(format!("{}{}/discovery/keys", entra.uri(), customer))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
        )
        .unwrap();
        let jwk = &jwks["keys"][0];
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )
        .unwrap();
        let issuer = entra.issuer_v1(&customer);
        // Keep the mock alive for the whole benchmark.
        std::mem::forget(entra);
        (token, validator, expect, key, issuer)
    });
    let token = Arc::new(token);

    let mut plain = Validation::new(Algorithm::RS256);
    plain.set_audience(&["https://vault.azure.net"]);
    plain.set_issuer(&[issuer]);

    let mut g = c.benchmark_group("validate_cached_keys");
    g.bench_function("ours", |b| {
        b.iter(|| {
            rt.block_on(validator.validate(token.secret(), &expect))
                .unwrap()
        })
    });
    g.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            rt.block_on(async {
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    token.secret(),
                    &key,
                    &plain,
                )
                .unwrap()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
