//! MockEntra's token endpoints as real clients see them over HTTP: `client_secret_basic`,
//! `client-request-id`, Entra's headers, the v1 endpoint, strict parameters, padded
//! thumbprints, bad input. Shared helpers for the mock's tests live here.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use azure_cross_tenant::TenantId;
use mock_entra::{MockApp, MockEntra};

pub(crate) struct Setup {
    pub(crate) entra: MockEntra,
    pub(crate) customer: TenantId,
    pub(crate) app: MockApp,
    pub(crate) secret: String,
}

pub(crate) async fn setup() -> Setup {
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let customer = entra.add_tenant("customer.example");
    let app = entra.register_app(&home, "saas");
    let secret = entra.add_secret(&app);
    entra.consent(&customer, &app);
    Setup {
        entra,
        customer,
        app,
        secret,
    }
}

/// The claims of a compact JWT, decoded here (not by the library under test), without
/// checking its signature.
pub(crate) fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("the payload is JSON")
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// JSON in and out without reqwest's `json` feature.
pub(crate) trait JsonExt {
    fn json_body(self, body: &Value) -> Self;
}

impl JsonExt for reqwest::RequestBuilder {
    fn json_body(self, body: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(body.to_string())
    }
}

/// `response.json_value().await`: the body as JSON, or a panic showing it.
pub(crate) trait ResponseExt {
    fn json_value(self) -> impl Future<Output = Value>;
}

impl ResponseExt for reqwest::Response {
    fn json_value(self) -> impl Future<Output = Value> {
        json_of(self)
    }
}

pub(crate) async fn json_of(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.expect("a body");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

pub(crate) fn with_query(url: String, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&url).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

fn v2_token_url(s: &Setup) -> String {
    format!("{}{}/oauth2/v2.0/token", s.entra.uri(), s.customer)
}

#[tokio::test]
async fn client_secret_basic_is_accepted_with_form_encoded_parts_and_refused_next_to_body_credentials()
 {
    let s = setup().await;
    let tricky = "p@ss w+rd&=:~%x";
    let url = format!("{}_mock/secrets", s.entra.uri());
    let added = crate::http()
        .post(url)
        .json_body(&json!({"app": s.app.client_id(), "value": tricky}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), 200);
    let basic = |secret: &str| {
        let raw = format!("{}:{}", form_encode(s.app.client_id()), form_encode(secret));
        format!("Basic {}", STANDARD.encode(raw))
    };
    let post = |form: Vec<(&'static str, String)>, auth: String| {
        crate::http()
            .post(v2_token_url(&s))
            .header("authorization", auth)
            .form(&form)
            .send()
    };
    let scope = ("scope", "https://vault.azure.net/.default".to_owned());
    let grant = ("grant_type", "client_credentials".to_owned());
    // client_id only in the header (RFC 6749 2.3.1).
    let r = post(vec![grant.clone(), scope.clone()], basic(tricky))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // Also in the body.
    let with_id = vec![
        grant.clone(),
        scope.clone(),
        ("client_id", s.app.client_id().to_owned()),
    ];
    assert_eq!(post(with_id, basic(&s.secret)).await.unwrap().status(), 200);
    // A wrong secret in Basic is the usual 7000215.
    let r = post(vec![grant.clone(), scope.clone()], basic("wrong-secret"))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(json_of(r).await["error_codes"][0], 7000215);
    // Basic and a body secret: one method per request (RFC 6749 2.3).
    let both = vec![grant, scope, ("client_secret", s.secret.clone())];
    let r = post(both, basic(&s.secret)).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(json_of(r).await["error"], "invalid_request");
    assert_eq!(
        s.entra.requests()[0].credential,
        mock_entra::CredentialKind::SecretBasic
    );
}

#[tokio::test]
async fn client_request_id_from_header_or_query_is_the_correlation_id_and_echoed_when_asked() {
    let s = setup().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secret", "wrong"),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let r = crate::http()
        .post(format!(
            "{}?client-request-id=from-the-query",
            v2_token_url(&s)
        ))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["correlation_id"], "from-the-query");
    let r = crate::http()
        .post(v2_token_url(&s))
        .header("client-request-id", "from-the-header")
        .header("return-client-request-id", "true")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["client-request-id"], "from-the-header");
    assert_eq!(json_of(r).await["correlation_id"], "from-the-header");
    assert_eq!(
        s.entra.requests()[1].client_request_id.as_deref(),
        Some("from-the-header")
    );
}

#[tokio::test]
async fn token_answers_carry_entras_headers_and_the_error_trace_id_as_request_id() {
    let s = setup().await;
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secret", s.secret.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    for expect_ok in [true, false] {
        if !expect_ok {
            form[2].1 = "wrong";
        }
        let r = crate::http()
            .post(v2_token_url(&s))
            .form(&form)
            .send()
            .await
            .unwrap();
        let h = r.headers().clone();
        assert_eq!(r.status().is_success(), expect_ok);
        assert_eq!(h["cache-control"], "no-store, no-cache");
        assert_eq!(h["pragma"], "no-cache");
        assert_eq!(h["expires"], "-1");
        assert_eq!(h["content-type"], "application/json; charset=utf-8");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain http"
        );
        let body = json_of(r).await;
        if !expect_ok {
            assert_eq!(
                h["x-ms-request-id"].to_str().unwrap(),
                body["trace_id"].as_str().unwrap()
            );
        }
    }
}

#[tokio::test]
async fn the_v1_token_endpoint_takes_resource_and_answers_with_string_numbers() {
    let s = setup().await;
    let url = format!("{}{}/oauth2/token", s.entra.uri(), s.customer);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secret", s.secret.as_str()),
        ("resource", "https://vault.azure.net"),
    ];
    let r = crate::http().post(&url).form(&form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body = json_of(r).await;
    assert_eq!(body["expires_in"], "3599");
    assert_eq!(body["resource"], "https://vault.azure.net");
    let on: u64 = body["expires_on"].as_str().unwrap().parse().unwrap();
    let before: u64 = body["not_before"].as_str().unwrap().parse().unwrap();
    assert_eq!(on - before, 3599);
    let token = body["access_token"].as_str().unwrap();
    let claims = claims_of(token);
    assert_eq!(
        (&claims["ver"], &claims["aud"]),
        (&json!("1.0"), &json!("https://vault.azure.net"))
    );
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["x5t"], header["kid"], "v1 tokens carry x5t = kid");
    // `resource` on v2 and no `resource` on v1 are refused like Entra does.
    let v2 = [
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secret", s.secret.as_str()),
        ("resource", "https://vault.azure.net"),
    ];
    let r = crate::http()
        .post(v2_token_url(&s))
        .form(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["error_codes"][0], 901002);
    let r = crate::http()
        .post(&url)
        .form(&form[..3])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["error_codes"][0], 900144);
}

#[tokio::test]
async fn strict_mode_names_an_unknown_parameter_and_tolerates_what_msal_sends() {
    let s = setup().await;
    let msal_node = [
        ("client_id", s.app.client_id()),
        ("scope", "https://vault.azure.net/.default"),
        ("grant_type", "client_credentials"),
        ("x-client-SKU", "msal.js.node"),
        ("x-client-VER", "7.2.3"),
        ("x-client-OS", "linux"),
        ("x-client-CPU", "x64"),
        ("x-ms-lib-capability", "retry-after, h429"),
        ("x-client-current-telemetry", "5|771,2,,,|,"),
        ("x-client-last-telemetry", "5|0|||0,0"),
        ("client-request-id", "c0ffee00-0000-4000-8000-000000000000"),
        ("client_secret", s.secret.as_str()),
        (
            "claims",
            r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#,
        ),
        ("client_info", "1"),
    ];
    let r = crate::http()
        .post(format!(
            "{}?client-request-id=c0ffee00-0000-4000-8000-000000000000",
            v2_token_url(&s)
        ))
        .header(
            "content-type",
            "application/x-www-form-urlencoded;charset=utf-8",
        )
        .body(serde_urlencoded(&msal_node))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let typo = [
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secert", s.secret.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let r = crate::http()
        .post(v2_token_url(&s))
        .form(&typo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let description = json_of(r).await["error_description"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        description.contains("'client_secert'") && description.contains("--loose"),
        "{description}"
    );
    // Loose: the unknown parameter is ignored (and the missing secret is what fails).
    let loose = MockEntra::builder().loose().start().await;
    let home = loose.add_tenant("provider.example");
    let app = loose.register_app(&home, "saas");
    let typo = [
        ("grant_type", "client_credentials"),
        ("client_id", app.client_id()),
        ("client_secert", "x"),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let r = crate::http()
        .post(format!("{}{home}/oauth2/v2.0/token", loose.uri()))
        .form(&typo)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["error_codes"][0], 7000218);
}

fn serde_urlencoded(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn bad_requests_get_errors_not_panics() {
    let s = setup().await;
    let client = crate::http();
    // Bad UTF-8 in the form, a huge body, garbage Basic.
    let r = client
        .post(v2_token_url(&s))
        .body(vec![0xff, 0xfe, b'=', 0xc3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The mock stops reading at its cap and answers 413; the client may see that, or a
    // reset while it still writes the rest of the body.
    match client
        .post(v2_token_url(&s))
        .body(vec![b'a'; 5 * 1024 * 1024])
        .send()
        .await
    {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(!e.is_timeout(), "{e}"),
    }
    let r = client
        .post(v2_token_url(&s))
        .header("authorization", "Basic !!!")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client
        .get(format!("{}nope/nothing", s.entra.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The mock still answers.
    let r = client
        .get(format!("{}_mock/health", s.entra.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A PEM's first block, as DER.
pub(crate) fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).unwrap()
}

/// A compact JWT signed PS256 with the PKCS#8 PEM key `key_pem` (a client assertion).
pub(crate) fn sign_ps256(key_pem: &str, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pem_der(key_pem)).unwrap();
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn a_certificate_assertion_with_padded_thumbprints_is_accepted_as_msal_python_sends_it() {
    let entra = MockEntra::start().await;
    let setup = entra
        .apply_scenario(&json!({
            "tenants": {"home": {"domains": ["provider.example"]}},
            "apps": {"saas": {"home": "home", "certificates": {"main": {}}}},
        }))
        .unwrap();
    let app = &setup["apps"]["saas"];
    let client_id = app["client_id"].as_str().unwrap();
    let cert = &app["certificates"]["main"];
    let der = pem_der(cert["certificate_pem"].as_str().unwrap());
    let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    // MSAL Python: urlsafe_b64encode, with its '=' padding.
    let padded = base64::engine::general_purpose::URL_SAFE.encode(sha256);
    assert!(padded.ends_with('='));
    let tid = setup["tenants"]["home"]["id"].as_str().unwrap();
    let token_url = format!("{}{tid}/oauth2/v2.0/token", entra.uri());
    let now = std::time::SystemTime::UNIX_EPOCH
        .elapsed()
        .unwrap()
        .as_secs();
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": padded});
    let claims = json!({"aud": token_url, "iss": client_id, "sub": client_id, "jti": "j-1", "iat": now, "nbf": now, "exp": now + 600});
    let assertion = sign_ps256(cert["private_key_pem"].as_str().unwrap(), &header, &claims);
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
    assert_eq!(r.status(), 200, "{}", json_of(r).await);
    // The same assertion again is a replay.
    let r = crate::http()
        .post(&token_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r).await["error_codes"][0], 700027);
}

#[tokio::test]
async fn a_scripted_redirect_fault_answers_with_its_location() {
    let s = setup().await;
    let (status, body) = {
        let r = crate::http()
            .post(format!("{}_mock/faults", s.entra.uri()))
            .json_body(&json!({"tenant": "customer.example", "fault": {"kind": "redirect", "status": 307, "location": "https://attacker.example/steal"}}))
            .send()
            .await
            .unwrap();
        (r.status(), json_of(r).await)
    };
    assert_eq!(status, 200, "{body}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only(Vec::new())
        .build()
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", s.app.client_id()),
        ("client_secret", s.secret.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let r = client
        .post(v2_token_url(&s))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(r.headers()["location"], "https://attacker.example/steal");
    let r = client
        .post(v2_token_url(&s))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "served once");
}
