//! `TokenValidator::validate` in the same run as a bare `jsonwebtoken::decode` with a
//! prepared key (the control): the full path with cached keys (the cost of our checks on
//! top of the RSA verify), a hit of the validated-token cache (target: at most 1/10 of
//! the full path), and the full path with 10,000 allowed tenants (a hash lookup, so the
//! same as one).
//!
//! Run: `cargo bench -p azure-cross-tenant-benches --bench validate`

#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::sync::Arc;

use azure_cross_tenant::{
    ClientSecret, Expectations, TenantCredentialProvider, TenantId, TokenValidator,
};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mock_entra::MockEntra;

struct Setup {
    token: String,
    expect: Expectations,
    many: Expectations,
    full: TokenValidator,
    cached: TokenValidator,
    key: DecodingKey,
    issuer: String,
}

async fn setup() -> Setup {
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
    let full = TokenValidator::builder(entra.cloud())
        .cache_capacity(0)
        .build()
        .unwrap();
    let cached = TokenValidator::new(entra.cloud()).unwrap();
    let expect = Expectations::new(customer.clone())
        .audience("https://vault.azure.net")
        .object_id(&sp)
        .app_id(app.client_id());
    let mut tenants: Vec<TenantId> = (0..10_000)
        .map(|_| uuid::Uuid::new_v4().to_string().parse().unwrap())
        .collect();
    tenants.push(customer.clone());
    let many = Expectations::any_of(tenants)
        .audience("https://vault.azure.net")
        .object_id(&sp)
        .app_id(app.client_id());
    for v in [&full, &cached] {
        v.validate(token.secret(), &expect).await.unwrap();
    }

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
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let issuer = entra.issuer_v1(&customer);
    // Keep the mock alive for the whole benchmark.
    std::mem::forget(entra);
    Setup {
        token: token.secret().to_owned(),
        expect,
        many,
        full,
        cached,
        key,
        issuer,
    }
}

fn validate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = Arc::new(rt.block_on(setup()));

    let mut plain = Validation::new(Algorithm::RS256);
    plain.set_audience(&["https://vault.azure.net"]);
    plain.set_issuer(&[&s.issuer]);

    let mut g = c.benchmark_group("validate_cached_keys");
    g.bench_function("ours_full", |b| {
        b.iter(|| rt.block_on(s.full.validate(&s.token, &s.expect)).unwrap())
    });
    g.bench_function("ours_full_10000_allowed_tenants", |b| {
        b.iter(|| rt.block_on(s.full.validate(&s.token, &s.many)).unwrap())
    });
    g.bench_function("ours_validated_cache_hit", |b| {
        b.iter(|| rt.block_on(s.cached.validate(&s.token, &s.expect)).unwrap())
    });
    // In `block_on` too, so both sides pay the same executor overhead.
    g.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            rt.block_on(async {
                jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                    &s.token, &s.key, &plain,
                )
                .unwrap()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, validate);
criterion_main!(benches);
