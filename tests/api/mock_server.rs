//! The library against MockEntra as a server: certificate credentials and the validator
//! over the mock's https, and a credential across a key rollover. (The mock's own server
//! behaviour is tested in mock-entra/tests.)

use std::time::Duration;

use serde_json::{Value, json};

use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    ClientCertificate, ClientSecret, Expectations, TenantCredentialProvider, TokenValidator,
};
use mock_entra::{MockEntra, RotationMode};

const SCENARIO: &str = r#"{
  "tenants": {"home": {"domains": ["provider.example"]}, "customer": {"domains": ["customer.example"]}},
  "apps": {
    "saas": {"home": "home", "secrets": {"main": {}}, "certificates": {"cert": {}}},
    "api": {"home": "customer", "api": {"app_id_uri": "api://customer-api", "roles": ["Commands.Send"]}}
  },
  "consents": [{"tenant": "customer", "app": "saas", "roles": [{"resource": "api://customer-api", "role": "Commands.Send"}]}]
}"#;

async fn control(entra: &MockEntra, path: &str, body: Value) -> (u16, Value) {
    let r = entra
        .http_client()
        .post(entra.control_url().join(path).unwrap())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), json_of(r).await)
}

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn over_tls_every_advertised_url_and_audience_uses_the_https_origin() {
    let entra = MockEntra::builder()
        .tls()
        .scenario(serde_json::from_str(SCENARIO).unwrap())
        .start()
        .await;
    assert_eq!(entra.uri().scheme(), "https");
    let setup = entra.setup();
    let client_id = setup["apps"]["saas"]["client_id"].as_str().unwrap();
    let customer = setup["tenants"]["customer"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let cert = &setup["apps"]["saas"]["certificates"]["cert"];
    // A certificate assertion's `aud` is the https token endpoint, and the mock expects it.
    let credential = ClientCertificate::from_pem(
        client_id,
        cert["certificate_pem"].as_str().unwrap(),
        cert["private_key_pem"].as_str().unwrap(),
    )
    .authority_host(entra.uri())
    .http_client(crate::common::mock_http(&entra))
    .build()
    .unwrap();
    let token = credential
        .get_token(&customer, &["api://customer-api/.default"])
        .await
        .unwrap();
    let claims = decode_unverified(token.secret()).unwrap();
    assert_eq!(
        claims.iss,
        Some(format!("{}{}/v2.0", entra.uri(), customer))
    );
    assert_eq!(claims.roles, vec!["Commands.Send".to_owned()]);
    // A validator over https finds the keys through the https metadata.
    let validator = TokenValidator::builder(entra.cloud())
        .http_client(crate::common::mock_http(&entra))
        .build()
        .unwrap();
    let api_id = setup["apps"]["api"]["client_id"].as_str().unwrap();
    validator
        .validate(
            token.secret(),
            &Expectations::new(customer.clone()).audience(api_id),
        )
        .await
        .unwrap();
    let r = entra
        .http_client()
        .get(format!(
            "{}{customer}/v2.0/.well-known/openid-configuration",
            entra.uri()
        ))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age=")
    );
    let metadata: Value = json_of(r).await;
    assert!(
        metadata["jwks_uri"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
    // Plain http to the https port gets no answer.
    assert!(
        reqwest::get(format!(
            "http://127.0.0.1:{}/_mock/health",
            entra.address().port()
        ))
        .await
        .is_err()
    );
}

#[tokio::test]
async fn a_rollover_publishes_the_new_key_before_it_signs_with_it() {
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let app = entra.register_app(&home, "saas");
    let secret = entra.add_secret(&app);
    let credential = ClientSecret::new(app.client_id(), secret)
        .authority_host(entra.uri())
        .build()
        .unwrap();
    let kid_of = |token: &str| -> String {
        let header = token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap(),
        )
        .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let old = entra.current_kid();
    entra.set_key_rollover_delay(Duration::from_secs(3600));
    entra.rotate_keys();
    let published = entra.published_kids();
    let new: Vec<&String> = published.iter().filter(|k| **k != old).collect();
    assert!(
        published.contains(&old) && new.len() >= 2,
        "old key stays, new key published: {published:?}"
    );
    let token = credential
        .get_token(&home, &["https://vault.azure.net/.default"])
        .await
        .unwrap();
    assert_eq!(kid_of(token.secret()), old, "still signed by the old key");
    // After the delay on the mock's clock, the new key signs; the old one stays published.
    entra.advance_clock(Duration::from_secs(3601));
    let token = credential
        .get_token(&home, &["https://vault.azure.net/.default"])
        .await
        .unwrap();
    let signing = kid_of(token.secret());
    assert_ne!(signing, old);
    assert!(entra.published_kids().contains(&old) && entra.published_kids().contains(&signing));
    // An emergency rotation signs at once.
    entra.rotate_keys_with(RotationMode::Emergency);
    assert_ne!(entra.current_kid(), signing);
    // Over the control API: a rollover reports its pending key, promote-key ends it.
    let (status, keys) = control(&entra, "rotate-keys", json!({"mode": "rollover"})).await;
    assert_eq!(status, 200);
    let pending = keys["pending"]["kid"].as_str().unwrap().to_owned();
    assert_ne!(keys["signing_kid"], pending.as_str());
    let (_, promoted) = control(&entra, "promote-key", json!({})).await;
    assert_eq!(promoted["signing_kid"], pending.as_str());
}
