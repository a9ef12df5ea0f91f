//! Sign-in (authorization code with PKCE, `id_token`) and admin consent over HTTP, the
//! flow Microsoft recommends: prove the admin's tenant by sign-in, then consent for it.

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::wire::{JsonExt, ResponseExt, claims_of};

use azure_cross_tenant::TenantId;
use mock_entra::{MockApp, MockEntra, MockError, MockUser};

const REDIRECT: &str = "https://saas.example/callback";

struct Flow {
    entra: MockEntra,
    customer: TenantId,
    app: MockApp,
    secret: String,
    admin: MockUser,
}

async fn flow() -> Flow {
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let customer = entra.add_tenant("customer.example");
    let app = entra.register_app(&home, "saas");
    let secret = entra.add_secret(&app);
    let admin = entra.add_admin(&customer, "admin@customer.example");
    Flow {
        entra,
        customer,
        app,
        secret,
        admin,
    }
}

fn authorize_url(f: &Flow, authority: &str, extra: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, b"the-verifier"));
    format!(
        "{}{authority}/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri={REDIRECT}&scope=openid%20profile&state=S1&nonce=N1&code_challenge={challenge}&code_challenge_method=S256{extra}",
        f.entra.uri(),
        f.app.client_id()
    )
}

async fn redeem(f: &Flow, authority: &str, code: &str, verifier: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", f.app.client_id()),
        ("client_secret", f.secret.as_str()),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("scope", "openid profile"),
    ];
    let r = crate::http()
        .post(format!("{}{authority}/oauth2/v2.0/token", f.entra.uri()))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json_value().await)
}

#[tokio::test]
async fn an_admin_signs_in_through_organizations_and_the_id_token_proves_their_tenant() {
    let f = flow().await;
    let back = f
        .entra
        .follow(&authorize_url(
            &f,
            "organizations",
            "&login_hint=admin@customer.example",
        ))
        .await
        .unwrap();
    assert_eq!(back.target.as_str(), REDIRECT);
    assert_eq!(back.get("state"), Some("S1"));
    let code = back.get("code").unwrap().to_owned();
    let (status, body) = redeem(&f, "organizations", &code, "the-verifier").await;
    assert_eq!(status, 200, "{body}");
    let id = claims_of(body["id_token"].as_str().unwrap());
    let tid = f.entra.tenant_guid(&f.customer);
    assert_eq!(id["aud"], f.app.client_id());
    assert_eq!(id["iss"], format!("{}{tid}/v2.0", f.entra.uri()));
    assert_eq!(
        (id["tid"].as_str(), id["oid"].as_str()),
        (Some(tid.as_str()), Some(f.admin.object_id.as_str()))
    );
    assert_eq!(id["nonce"], "N1");
    assert_eq!(id["preferred_username"], "admin@customer.example");
    assert_eq!(id["ver"], "2.0");
    assert!(f.entra.signed_by_mock(body["id_token"].as_str().unwrap()));
    // The code is single-use.
    let (status, again) = redeem(&f, "organizations", &code, "the-verifier").await;
    assert_eq!(
        (status, again["error_codes"][0].as_u64()),
        (400, Some(54005))
    );
}

#[tokio::test]
async fn pkce_redirect_uri_and_tenant_are_checked_when_the_code_is_redeemed() {
    let f = flow().await;
    f.entra.sign_in(&f.admin);
    let code = |extra: &'static str| {
        let url = authorize_url(&f, f.customer.as_str(), extra);
        let entra = f.entra.clone();
        async move {
            entra
                .follow(&url)
                .await
                .unwrap()
                .get("code")
                .unwrap()
                .to_owned()
        }
    };
    let (status, body) = redeem(&f, f.customer.as_str(), &code("").await, "another-verifier").await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (400, Some(501481))
    );
    let c = code("").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", f.app.client_id()),
        ("client_secret", f.secret.as_str()),
        ("code", c.as_str()),
        ("redirect_uri", "https://elsewhere.example/cb"),
        ("code_verifier", "the-verifier"),
    ];
    let r = crate::http()
        .post(format!("{}{}/oauth2/v2.0/token", f.entra.uri(), f.customer))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // A user of another tenant cannot sign in at this tenant's authority.
    let stranger_tenant = f.entra.add_tenant("stranger.example");
    let stranger = f
        .entra
        .add_admin(&stranger_tenant, "admin@stranger.example");
    f.entra.sign_in(&stranger);
    let back = f
        .entra
        .follow(&authorize_url(&f, f.customer.as_str(), ""))
        .await
        .unwrap();
    assert_eq!(back.get("error"), Some("access_denied"));
    assert!(
        back.get("error_description")
            .unwrap()
            .starts_with("AADSTS50020")
    );
}

#[tokio::test]
async fn form_post_answers_with_a_page_that_posts_the_code() {
    let f = flow().await;
    f.entra.sign_in(&f.admin);
    let back = f
        .entra
        .follow(&authorize_url(
            &f,
            "organizations",
            "&response_mode=form_post",
        ))
        .await
        .unwrap();
    assert_eq!(back.target.as_str(), REDIRECT);
    assert_eq!(back.get("state"), Some("S1"));
    assert!(back.get("code").is_some());
}

#[tokio::test]
async fn admin_consent_records_consent_in_the_signed_in_admins_tenant_with_the_required_roles() {
    let f = flow().await;
    f.entra
        .require_role(&f.app, "https://vault.azure.net", "Secrets.Read");
    f.entra.sign_in(&f.admin);
    let url = format!(
        "{}organizations/v2.0/adminconsent?client_id={}&scope=https://vault.azure.net/.default&redirect_uri={REDIRECT}&state=S2",
        f.entra.uri(),
        f.app.client_id()
    );
    let back = f.entra.follow(&url).await.unwrap();
    let tid = f.entra.tenant_guid(&f.customer);
    assert_eq!(
        (
            back.get("admin_consent"),
            back.get("tenant"),
            back.get("state")
        ),
        (Some("True"), Some(tid.as_str()), Some("S2"))
    );
    assert_eq!(back.get("scope"), Some("https://vault.azure.net/.default"));
    // Consented, with the role: a client-credentials token in that tenant carries it.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", f.app.client_id()),
        ("client_secret", f.secret.as_str()),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let r = crate::http()
        .post(format!("{}{tid}/oauth2/v2.0/token", f.entra.uri()))
        .form(&form)
        .send()
        .await
        .unwrap();
    let body: Value = r.json_value().await;
    let claims = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(claims["roles"], serde_json::json!(["Secrets.Read"]));
    // v1 names the tenant and has no scope.
    let other = f.entra.add_tenant("other.example");
    let v1 = format!(
        "{}{other}/adminconsent?client_id={}&redirect_uri={REDIRECT}&state=S3",
        f.entra.uri(),
        f.app.client_id()
    );
    let other_admin = f.entra.add_admin(&other, "admin@other.example");
    f.entra.sign_in(&other_admin);
    let back = f.entra.follow(&v1).await.unwrap();
    assert_eq!(
        (back.get("admin_consent"), back.get("scope")),
        (Some("True"), None)
    );
    assert!(f.entra.service_principal_id(&other, &f.app).is_some());
}

#[tokio::test]
async fn a_declined_consent_or_a_non_admin_gets_access_denied_and_nothing_is_consented() {
    let f = flow().await;
    let url = format!(
        "{}organizations/v2.0/adminconsent?client_id={}&redirect_uri={REDIRECT}&state=S2",
        f.entra.uri(),
        f.app.client_id()
    );
    f.entra.sign_in(&f.admin);
    f.entra.decline_next_admin_consent();
    let back = f.entra.follow(&url).await.unwrap();
    assert_eq!(
        (back.get("error"), back.get("state")),
        (Some("access_denied"), Some("S2"))
    );
    // v2 error callbacks may also say admin_consent=True: clients must check `error` first.
    assert_eq!(back.get("admin_consent"), Some("True"));
    let user = f.entra.add_user(&f.customer, "user@customer.example");
    f.entra.sign_in(&user);
    let back = f.entra.follow(&url).await.unwrap();
    assert_eq!(back.get("error"), Some("access_denied"));
    assert!(
        back.get("error_description")
            .unwrap()
            .starts_with("AADSTS90094")
    );
    assert_eq!(f.entra.service_principal_id(&f.customer, &f.app), None);
}

#[tokio::test]
async fn a_redirect_uri_not_registered_gets_an_error_page_not_a_redirect() {
    let f = flow().await;
    f.entra.add_redirect_uri(&f.app, REDIRECT);
    let url = format!(
        "{}organizations/v2.0/adminconsent?client_id={}&redirect_uri=https://evil.example/cb&state=S",
        f.entra.uri(),
        f.app.client_id()
    );
    match f.entra.follow(&url).await {
        Err(MockError::Http { status, body }) => {
            assert_eq!(status, 400);
            assert!(body.contains("50011"), "{body}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_v1_authorize_endpoint_yields_a_v1_id_token_at_the_v1_token_endpoint_only() {
    let f = flow().await;
    f.entra.sign_in(&f.admin);
    let url = format!(
        "{}{}/oauth2/authorize?client_id={}&response_type=code&redirect_uri={REDIRECT}&resource=https://graph.microsoft.com&nonce=N2&state=S",
        f.entra.uri(),
        f.customer,
        f.app.client_id()
    );
    let code = |entra: MockEntra, url: String| async move {
        entra
            .follow(&url)
            .await
            .unwrap()
            .get("code")
            .unwrap()
            .to_owned()
    };
    let form = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", f.app.client_id().to_owned()),
            ("client_secret", f.secret.clone()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("resource", "https://graph.microsoft.com".to_owned()),
        ]
    };
    let c = code(f.entra.clone(), url.clone()).await;
    let r = crate::http()
        .post(format!("{}{}/oauth2/token", f.entra.uri(), f.customer))
        .form(&form(&c))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.json_value().await;
    assert_eq!(
        body["expires_in"].as_str(),
        Some("3599"),
        "v1 numbers are strings"
    );
    let id_token = body["id_token"].as_str().unwrap();
    let id = claims_of(id_token);
    let tid = f.entra.tenant_guid(&f.customer);
    assert_eq!(id["ver"], "1.0");
    assert_eq!(id["iss"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(id["unique_name"], "admin@customer.example");
    assert_eq!(id["nonce"], "N2");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(id_token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["x5t"], header["kid"]);
    // A v1 code is not redeemed at the v2 endpoint.
    let c = code(f.entra.clone(), url).await;
    let r = crate::http()
        .post(format!("{}{}/oauth2/v2.0/token", f.entra.uri(), f.customer))
        .form(&form(&c)[..5])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json_value().await["error_codes"][0], 70000);
}

/// Like Entra, the mock puts `wids` (the user's directory roles) in id tokens only for an
/// app that asks for them, and only for a user who holds one.
#[tokio::test]
async fn id_tokens_carry_directory_roles_only_when_the_app_opts_in() {
    const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
    const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
    let f = flow().await;
    let member = f.entra.add_user(&f.customer, "member@customer.example");
    assert!(!member.is_admin && member.directory_roles.is_empty());
    assert_eq!(f.admin.directory_roles, [GLOBAL_ADMINISTRATOR]);
    let apps = f.entra.add_user_with_roles(
        &f.customer,
        "apps@customer.example",
        &[&APPLICATION_ADMINISTRATOR.to_uppercase()],
    );
    assert!(apps.is_admin);
    assert_eq!(apps.directory_roles, [APPLICATION_ADMINISTRATOR]);

    let wids = |upn: &'static str| {
        let f = &f;
        async move {
            let hint = format!("&login_hint={upn}");
            let back = f
                .entra
                .follow(&authorize_url(f, "organizations", &hint))
                .await
                .unwrap();
            let code = back.get("code").unwrap().to_owned();
            let (status, body) = redeem(f, "organizations", &code, "the-verifier").await;
            assert_eq!(status, 200, "{body}");
            let id = claims_of(body["id_token"].as_str().unwrap());
            id.get("wids").cloned()
        }
    };
    assert_eq!(wids("admin@customer.example").await, None, "not asked for");
    f.entra.emit_wids(&f.app, true);
    assert_eq!(
        wids("admin@customer.example").await,
        Some(serde_json::json!([GLOBAL_ADMINISTRATOR]))
    );
    assert_eq!(
        wids("apps@customer.example").await,
        Some(serde_json::json!([APPLICATION_ADMINISTRATOR]))
    );
    assert_eq!(wids("member@customer.example").await, None, "no role held");

    // The control API takes the same: a user's roles, an app's opt-in.
    let post = |path: &str, body: Value| {
        let url = f.entra.control_url().join(path).unwrap();
        let client = f.entra.http_client();
        async move {
            let r = client.post(url).json_body(&body).send().await.unwrap();
            (r.status().as_u16(), r.json_value().await)
        }
    };
    let (status, user) = post(
        "users",
        serde_json::json!({"tenant": "customer.example", "upn": "reader@customer.example",
            "directory_roles": ["4a5d8f65-41da-4de4-8968-e035b65339cf"]}),
    )
    .await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["admin"], false);
    assert_eq!(
        user["directory_roles"],
        serde_json::json!(["4a5d8f65-41da-4de4-8968-e035b65339cf"])
    );
    let (status, _) = post(
        "users",
        serde_json::json!({"tenant": "customer.example", "upn": "x@customer.example",
            "directory_roles": ["Global Administrator"]}),
    )
    .await;
    assert_eq!(status, 400, "a role is a template id");
    let (status, app) = post(
        "apps",
        serde_json::json!({"home": "customer.example", "emit_wids": true}),
    )
    .await;
    assert_eq!(status, 200, "{app}");
    let (status, _) = post(
        "emit-wids",
        serde_json::json!({"app": f.app.client_id(), "emit": false}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        wids("admin@customer.example").await,
        None,
        "opted out again"
    );
}
