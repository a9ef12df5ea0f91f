//! MockEntra as a server: the control API and scenarios, reset, the clock, concurrency,
//! and no secret in the request log. (https with the library's credentials and validator,
//! and key rollover as a credential sees it, are tested at the root: tests/api/mock_server.rs.)

use std::time::Duration;

use serde_json::{Value, json};

use crate::wire::{JsonExt, ResponseExt};

use crate::wire::claims_of;
use mock_entra::MockEntra;

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
        claims_of(r["access_token"].as_str().unwrap())["roles"],
        json!(["R"])
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
        .header("content-type", "application/json")
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
