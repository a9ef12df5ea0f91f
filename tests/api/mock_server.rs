//! MockEntra as a server: https with its CA, key rollover, the control API and scenarios,
//! reset, the clock, concurrency, and no secret in the request log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::mock_wire::{JsonExt, ResponseExt};

use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::testing::{MockEntra, RotationMode};
use azure_cross_tenant::{
    ClientCertificate, ClientSecret, Expectations, TenantCredentialProvider, TokenValidator,
};

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
        .json_body(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json_value().await)
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
    let metadata: Value = r.json_value().await;
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

#[tokio::test]
async fn the_control_api_sets_up_what_the_in_process_api_can_and_answers_bad_input_with_400() {
    let entra = MockEntra::start().await;
    let (s, tenant) = control(
        &entra,
        "tenants",
        json!({"name": "customer", "domains": ["customer.example"]}),
    )
    .await;
    assert_eq!(s, 200, "{tenant}");
    control(
        &entra,
        "tenants",
        json!({"name": "home", "domains": ["home.example"]}),
    )
    .await;
    let (s, app) = control(
        &entra,
        "apps",
        json!({"name": "saas", "home": "home", "secrets": {"main": {}, "old": {"expired": true}}}),
    )
    .await;
    assert_eq!(s, 200, "{app}");
    let (s, consent) = control(&entra, "consent", json!({"tenant": "customer", "app": "saas", "roles": [{"resource": "https://vault.azure.net", "role": "R"}]})).await;
    assert_eq!(s, 200, "{consent}");
    let token_form = |secret: &str| {
        [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", app["client_id"].as_str().unwrap().to_owned()),
            ("client_secret", secret.to_owned()),
            ("scope", "https://vault.azure.net/.default".to_owned()),
        ]
    };
    let post = |secret: &str| {
        entra
            .http_client()
            .post(format!("{}customer.example/oauth2/v2.0/token", entra.uri()))
            .form(&token_form(secret))
            .send()
    };
    let r: Value = post(app["secrets"]["main"].as_str().unwrap())
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(
        decode_unverified(r["access_token"].as_str().unwrap())
            .unwrap()
            .roles,
        vec!["R".to_owned()]
    );
    let r: Value = post(app["secrets"]["old"].as_str().unwrap())
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(r["error_codes"][0], 7000222);
    // Faults, state and revoke.
    control(&entra, "faults", json!({"tenant": "customer", "times": 1, "fault": {"kind": "throttle", "retry_after_secs": 7}})).await;
    let throttled = post(app["secrets"]["main"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        (
            throttled.status().as_u16(),
            throttled.headers()["retry-after"].to_str().unwrap()
        ),
        (429, "7")
    );
    control(
        &entra,
        "app-state",
        json!({"tenant": "customer", "app": "saas", "blocked_by_conditional_access": true}),
    )
    .await;
    let r: Value = post(app["secrets"]["main"].as_str().unwrap())
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(r["error_codes"][0], 53003);
    control(
        &entra,
        "revoke",
        json!({"tenant": "customer", "app": "saas"}),
    )
    .await;
    let r: Value = post(app["secrets"]["main"].as_str().unwrap())
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(r["error_codes"][0], 700016);
    // The request log: per tenant, no secret anywhere.
    let log: Value = entra
        .http_client()
        .get(format!(
            "{}requests?tenant=customer&endpoint=token",
            entra.control_url()
        ))
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(log["count"], 5);
    let text = log.to_string();
    assert!(
        !text.contains(app["secrets"]["main"].as_str().unwrap()) && text.contains("<redacted>")
    );
    // Bad input: 400 naming the problem; wrong method named; unknown path 404.
    for (body, needle) in [
        (json!({"name": "x", "domainz": []}), "domainz"),
        (json!({"domains": ["not a domain"]}), "not a domain"),
        (json!([1]), "JSON"),
    ] {
        let (s, e) = control(&entra, "tenants", body).await;
        assert_eq!(s, 400);
        assert!(e["message"].as_str().unwrap().contains(needle), "{e}");
    }
    let (s, e) = control(
        &entra,
        "consent",
        json!({"tenant": "nowhere.example", "app": "saas"}),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unknown_tenant")));
    let r = entra
        .http_client()
        .post(entra.control_url().join("tenants").unwrap())
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = entra
        .http_client()
        .get(entra.control_url().join("reset").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json_value().await;
    assert!(e["message"].as_str().unwrap().contains("POST"), "{e}");
    let r = entra
        .http_client()
        .get(entra.control_url().join("nothing").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn reset_returns_to_the_startup_scenario_with_the_same_ids_and_secrets() {
    let entra = MockEntra::builder()
        .scenario(serde_json::from_str(SCENARIO).unwrap())
        .start()
        .await;
    let before = entra.setup();
    entra.add_tenant("later.example");
    entra.advance_clock(Duration::from_secs(7200));
    let (s, after) = control(&entra, "reset", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(
        after["setup"]["apps"]["saas"]["secrets"],
        before["apps"]["saas"]["secrets"]
    );
    assert_eq!(after["setup"]["tenants"], before["tenants"]);
    let (s, _) = control(&entra, "tenants", json!({"domains": ["later.example"]})).await;
    assert_eq!(s, 200, "the tenant added after start is gone");
    assert_eq!(entra.token_requests(), 0);
}

#[tokio::test]
async fn the_clock_moves_forward_over_http_so_expiry_is_testable_without_sleeping() {
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let app = entra.register_app(&home, "saas");
    let secret = entra.add_secret_expiring_in(&app, Duration::from_secs(3600));
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id()),
        ("client_secret", secret.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let url = format!("{}{home}/oauth2/v2.0/token", entra.uri());
    assert_eq!(
        entra
            .http_client()
            .post(&url)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (s, now) = control(&entra, "clock/advance", json!({"seconds": 3601})).await;
    assert_eq!(s, 200, "{now}");
    let r: Value = entra
        .http_client()
        .post(&url)
        .form(&form)
        .send()
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(
        r["error_codes"][0], 7000222,
        "the secret expired on the mock's clock"
    );
}

#[tokio::test]
async fn slow_answers_do_not_hold_up_other_requests() {
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    entra.set_latency(Duration::from_millis(400));
    let url = format!("{}{home}/oauth2/v2.0/token", entra.uri());
    #[allow(clippy::disallowed_methods)] // measures the mock's real latency
    let started = std::time::Instant::now();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (entra.http_client(), url.clone());
        requests.spawn(async move {
            client
                .post(url)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
        });
    }
    for r in requests.join_all().await {
        assert_eq!(r.unwrap().status(), 400);
    }
    assert!(
        started.elapsed() < Duration::from_millis(400 * 8),
        "16 delayed answers overlap: {:?}",
        started.elapsed()
    );
}

/// JSON shaped like scenario documents: their own keys and values of every kind, nested.
fn scenario_like() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let key = prop::sample::select(vec![
        "tenants",
        "apps",
        "users",
        "consents",
        "faults",
        "settings",
        "managed_identities",
        "resources",
        "home",
        "domains",
        "id",
        "secrets",
        "certificates",
        "api",
        "roles",
        "tenant",
        "app",
        "kind",
        "status",
        "times",
        "fault",
        "upn",
        "value",
        "expired",
        "pem",
        "app_id_uri",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            "home",
            "a.example",
            "throttle",
            "not a guid",
            "",
            "\u{0}",
            "api://x"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..5).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever a scenario says, the mock answers with a setup or an error, never a panic.
    #[test]
    fn any_scenario_document_is_applied_or_refused_without_a_panic(document in scenario_like()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let entra = runtime.block_on(MockEntra::start());
        let _ = entra.apply_scenario(&document);
        let _ = entra.apply_scenario(&json!({"tenants": {"t": {"domains": ["after.example"]}}})).unwrap();
    }
}

#[tokio::test]
async fn debug_output_never_shows_secrets_keys_or_the_identity_header() {
    let entra = MockEntra::builder()
        .scenario(serde_json::from_str(SCENARIO).unwrap())
        .start()
        .await;
    let setup = entra.setup();
    let secret = setup["apps"]["saas"]["secrets"]["main"].as_str().unwrap();
    let debug = format!("{entra:?}");
    assert!(!debug.contains(secret), "{debug}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(!debug.contains(&entra.identity_header()), "{debug}");
}
