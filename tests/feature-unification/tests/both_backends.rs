//! With both jsonwebtoken backends enabled in the application's build (Cargo unifies
//! features; a library cannot prevent it), `TokenValidator` still validates: it verifies
//! RS256 with aws-lc-rs itself and never asks jsonwebtoken to choose a backend. The mock
//! that issues the token signs with jsonwebtoken's aws-lc-rs backend named explicitly, so
//! it works in such a build too.

use azure_cross_tenant::{ClientSecret, Expectations, TenantCredentialProvider, TokenValidator};
use mock_entra::MockEntra;

#[tokio::test]
async fn a_token_validates_when_the_application_enables_both_jsonwebtoken_backends() {
    // Both backends are really in this build (each path exists only with its feature)...
    let _ = (
        &jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER,
        &jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER,
    );
    // ...and jsonwebtoken's own verify panics because of it: the hazard is live here.
    let hazard = std::panic::catch_unwind(|| {
        let key = jsonwebtoken::DecodingKey::from_secret(b"k");
        jsonwebtoken::crypto::verify("c2ln", b"m", &key, jsonwebtoken::Algorithm::HS256)
    });
    assert!(hazard.is_err(), "jsonwebtoken picked a backend by itself");

    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let customer = entra.add_tenant("fabrikam.example");
    let app = entra.register_app(&home, "saas");
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
    let claims = validator.validate(token.secret(), &expect).await.unwrap();
    assert_eq!(claims.tid.as_deref(), Some(customer.as_str()));
}
