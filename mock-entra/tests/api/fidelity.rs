//! Three answers where the mock used to differ from Entra for real, unmodified clients:
//! instance discovery for the host name without its port (MSAL Python), a malformed tenant
//! at the token endpoint (AADSTS900023), and an expired client assertion (AADSTS700024,
//! an `invalid_client`: 401 like every other).

use std::time::Duration;

use serde_json::{Value, json};

use crate::wire::{json_of, setup, sign_ps256, with_query};
use mock_entra::MockEntra;

async fn discover(entra: &MockEntra, authorization_endpoint: &str) -> (u16, Value) {
    let url = format!("{}common/discovery/instance", entra.uri());
    let r = crate::http()
        .get(with_query(
            url,
            &[
                ("api-version", "1.0"),
                ("authorization_endpoint", authorization_endpoint),
            ],
        ))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), json_of(r).await)
}

/// MSAL Python asks instance discovery about `https://{host}{path}/oauth2/v2.0/authorize`
/// with the host name alone: a real authority has no port.
#[tokio::test]
async fn instance_discovery_knows_the_mocks_host_name_with_or_without_its_port() {
    let s = setup().await;
    let port = s.entra.address().port();
    for endpoint in [
        format!("https://127.0.0.1/{}/oauth2/v2.0/authorize", s.customer),
        format!(
            "https://127.0.0.1:{port}/{}/oauth2/v2.0/authorize",
            s.customer
        ),
    ] {
        let (status, body) = discover(&s.entra, &endpoint).await;
        assert_eq!(status, 200, "{endpoint}: {body}");
        assert_eq!(
            body["tenant_discovery_endpoint"],
            format!(
                "{}{}/v2.0/.well-known/openid-configuration",
                s.entra.uri(),
                s.customer
            ),
            "the tenant discovery endpoint keeps the port clients must use"
        );
    }
    for other in [
        format!("https://127.0.0.1:{}/x/oauth2/v2.0/authorize", port ^ 1),
        "https://127.0.0.2/x/oauth2/v2.0/authorize".to_owned(),
        "https://login.example.net/x/oauth2/v2.0/authorize".to_owned(),
    ] {
        let (status, body) = discover(&s.entra, &other).await;
        assert_eq!(
            (
                status,
                body["error"].as_str(),
                body["error_codes"][0].as_u64()
            ),
            (400, Some("invalid_instance"), Some(50049)),
            "{other}: {body}"
        );
    }
}

#[tokio::test]
async fn a_malformed_tenant_at_the_token_endpoint_is_invalid_request_900023_and_an_unknown_one_90002()
 {
    let s = setup().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secret", s.secret.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let post = |tenant: &str, v1: bool| {
        let path = if v1 {
            "oauth2/token"
        } else {
            "oauth2/v2.0/token"
        };
        let url = format!("{}{tenant}/{path}", s.entra.uri());
        async move {
            let r = crate::http().post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), json_of(r).await)
        }
    };
    for v1 in [false, true] {
        let (status, body) = post("not_a_tenant", v1).await;
        assert_eq!(
            (
                status,
                body["error"].as_str(),
                body["error_codes"][0].as_u64()
            ),
            (400, Some("invalid_request"), Some(900023)),
            "{body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS900023: Specified tenant identifier 'not_a_tenant' is neither a valid DNS name"),
            "{body}"
        );
        let (status, body) = post("nosuch.example", v1).await;
        assert_eq!(
            (status, body["error_codes"][0].as_u64()),
            (400, Some(90002)),
            "well-formed but unknown: {body}"
        );
    }
}

#[tokio::test]
async fn an_expired_client_assertion_is_invalid_client_401_on_the_certificate_and_federated_paths()
{
    let entra = MockEntra::start().await;
    let setup = entra
        .apply_scenario(&json!({
            "tenants": {"home": {"domains": ["provider.example"]}},
            "managed_identities": {"mi": {"tenant": "home"}},
            "apps": {"saas": {"home": "home", "certificates": {"main": {}}, "trust_managed_identities": ["mi"]}},
        }))
        .unwrap();
    let app = &setup["apps"]["saas"];
    let client_id = app["client_id"].as_str().unwrap();
    let tid = setup["tenants"]["home"]["id"].as_str().unwrap();
    let token_url = format!("{}{tid}/oauth2/v2.0/token", entra.uri());
    let now = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_secs();
    // Both assertions are valid now; the mock's clock then moves a day on.
    let cert = &app["certificates"]["main"];
    let certificate = sign_ps256(
        cert["private_key_pem"].as_str().unwrap(),
        &json!({"alg": "PS256", "typ": "JWT", "x5t#S256": cert["x5t_s256"]}),
        &json!({"aud": token_url, "iss": client_id, "sub": client_id, "jti": "j-1", "iat": now, "nbf": now, "exp": now + 600}),
    );
    let r = crate::http()
        .post(entra.control_url().join("managed-identity-token").unwrap())
        .header("content-type", "application/json")
        .body(json!({"managed_identity": "mi"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let federated = json_of(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    entra.advance_clock(Duration::from_secs(2 * 86_400));
    for assertion in [certificate, federated] {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://vault.azure.net/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
        ];
        let r = crate::http()
            .post(&token_url)
            .form(&form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = json_of(r).await;
        assert_eq!(
            (
                status,
                body["error"].as_str(),
                body["error_codes"][0].as_u64()
            ),
            (401, Some("invalid_client"), Some(700024)),
            "{body}"
        );
    }
}
