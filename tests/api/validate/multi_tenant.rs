//! Multi-tenant mode (`Discovery::Organizations` / `Common`): one metadata document and
//! one key set for every tenant, the `{tenantid}` issuer template filled from a checked
//! `tid`, keys bound to a tenant by their own `issuer`; and the attacks on it.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use azure_cross_tenant::{
    Cloud, Discovery, Expectations, TenantId, TokenValidator, ValidationError,
};
use serde_json::{Value, json};

use super::site::{Reply, Site};
use super::{claims, now, rs256, validator};
use crate::common::World;

const VAULT_AUD: &str = "https://vault.azure.net";

fn shared(tenants: impl IntoIterator<Item = TenantId>) -> Expectations {
    Expectations::any_of(tenants)
        .discovery(Discovery::Organizations)
        .audience(VAULT_AUD)
}

/// A genuine v1 vault token of `tenant`, signed by the mock.
fn v1_of(w: &World, tenant: &TenantId) -> String {
    let mut c = claims(w);
    c["tid"] = json!(tenant.as_str());
    c["iss"] = json!(w.entra.issuer_v1(tenant));
    w.entra.sign_token(&rs256(), &c)
}

async fn refused_shared(w: &World, token: &str, expect: &Expectations) -> ValidationError {
    validator(w)
        .validate(token, expect)
        .await
        .expect_err("the token must be refused")
}

#[tokio::test]
async fn one_organizations_key_set_validates_tokens_of_every_allowed_tenant() {
    let w = World::new().await;
    w.entra.consent(&w.stranger, &w.app);
    let v = validator(&w);
    let expect = shared([w.customer.clone(), w.stranger.clone()]).app_id(w.app.client_id());
    for tenant in [&w.customer, &w.stranger] {
        let token = w.token(tenant).await;
        let claims = v.validate(token.secret(), &expect).await.unwrap();
        assert_eq!(claims.tid.as_deref(), Some(tenant.as_str()));
    }
    // v2 tokens of both tenants, through the v2 organizations document.
    for tenant in [&w.customer, &w.stranger] {
        let t = now(&w);
        let token = w.entra.sign_token(
            &rs256(),
            &json!({
                "aud": "api://saas-api", "iss": w.entra.issuer_v2(tenant), "tid": tenant.as_str(),
                "azp": w.app.client_id(), "ver": "2.0", "idtyp": "app",
                "iat": t, "nbf": t, "exp": t + 3600,
            }),
        );
        let e = Expectations::any_of([w.customer.clone(), w.stranger.clone()])
            .discovery(Discovery::Organizations)
            .audience("api://saas-api");
        v.validate(&token, &e).await.unwrap();
    }
    // One metadata document and one key set per version, not one per tenant.
    assert_eq!(w.entra.metadata_requests(), 2);
    assert_eq!(w.entra.jwks_requests(), 2);
}

#[tokio::test]
async fn common_keys_validate_too() {
    let w = World::new().await;
    let token = w.token(&w.customer).await;
    let expect = shared([w.customer.clone()]).discovery(Discovery::Common);
    validator(&w)
        .validate(token.secret(), &expect)
        .await
        .unwrap();
}

#[tokio::test]
async fn ten_thousand_allowed_tenants_are_accepted_and_others_refused_before_any_fetch() {
    let w = World::new().await;
    let mut tenants: Vec<TenantId> = (0..10_000)
        .map(|_| uuid::Uuid::new_v4().to_string().parse().unwrap())
        .collect();
    tenants.push(w.customer.clone());
    let expect = shared(tenants);
    let v = validator(&w);

    let err = v
        .validate(&v1_of(&w, &w.stranger), &expect)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ValidationError::WrongTenant {
            expected: "one of 10001 allowed tenants".into(),
            found: w.stranger.to_string(),
        }
    );
    assert_eq!(
        (w.entra.metadata_requests(), w.entra.jwks_requests()),
        (0, 0)
    );
    v.validate(&v1_of(&w, &w.customer), &expect).await.unwrap();
}

#[tokio::test]
async fn tenants_onboarded_at_run_time_are_accepted_once_the_check_says_so() {
    let w = World::new().await;
    let onboarded: Arc<RwLock<HashSet<TenantId>>> = Arc::default();
    let registry = onboarded.clone();
    let expect = Expectations::any_tenant(move |tid| registry.read().unwrap().contains(tid))
        .discovery(Discovery::Organizations)
        .audience(VAULT_AUD);
    let v = validator(&w);
    let token = v1_of(&w, &w.customer);

    let err = v.validate(&token, &expect).await.unwrap_err();
    assert!(
        matches!(err, ValidationError::WrongTenant { .. }),
        "{err:?}"
    );
    assert_eq!(w.entra.metadata_requests(), 0, "refused before any fetch");

    onboarded.write().unwrap().insert(w.customer.clone());
    v.validate(&token, &expect).await.unwrap();
}

#[tokio::test]
async fn templated_issuer_abuse_is_refused() {
    let w = World::new().await;
    let both = shared([w.customer.clone(), w.stranger.clone()]);
    let template = "https://sts.windows.net/{tenantid}/";
    let cases: Vec<(Value, Value, &str)> = vec![
        // The unfilled template as the issuer.
        (
            json!(w.customer.as_str()),
            json!(template),
            "IssuerMismatch",
        ),
        // tid the literal `{tenantid}`: filling the template with it would give back the
        // template itself, which is what the token claims. Refused as not a GUID first.
        (json!("{tenantid}"), json!(template), "TenantNotGuid"),
        // Another allowed tenant's issuer with this tid.
        (
            json!(w.customer.as_str()),
            json!(w.entra.issuer_v1(&w.stranger)),
            "IssuerMismatch",
        ),
        // The tid inside an issuer of another shape.
        (
            json!(w.customer.as_str()),
            json!(format!("https://sts.windows.net/{}/x/", w.customer)),
            "IssuerMismatch",
        ),
        (
            json!(w.customer.as_str()),
            json!(format!("https://evil.example/{}/", w.customer)),
            "IssuerMismatch",
        ),
        // tid not a GUID, or naming a shared document.
        (json!("fabrikam.example"), json!(template), "TenantNotGuid"),
        (json!("organizations"), json!(template), "TenantNotGuid"),
        (json!("../common"), json!(template), "TenantNotGuid"),
        (json!(42), json!(template), "MissingClaim"),
    ];
    for (tid, iss, kind) in cases {
        let mut c = claims(&w);
        c["tid"] = tid.clone();
        c["iss"] = iss.clone();
        let token = w.entra.sign_token(&rs256(), &c);
        let err = refused_shared(&w, &token, &both).await;
        assert!(
            format!("{err:?}").starts_with(kind),
            "tid {tid} iss {iss}: {err:?}"
        );
    }
}

/// An authority whose `organizations` v2 keys are the mock's, each bound by its own
/// `issuer` to `key_issuer`.
async fn authority_with_key_issuer(w: &World, key_issuer: &str) -> Site {
    let site = Site::http().await;
    let body = reqwest::get(format!(
        "{}organizations/discovery/v2.0/keys",
        w.entra.uri()
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .unwrap();
    let mut jwks: Value = serde_json::from_slice(&body).unwrap();
    for key in jwks["keys"].as_array_mut().unwrap() {
        key["issuer"] = json!(key_issuer.replace("{site}", site.base()));
    }
    site.route(
        "/organizations/v2.0/.well-known/openid-configuration",
        Reply::Json(
            json!({
                "issuer": format!("{}{{tenantid}}/v2.0", site.base()),
                "jwks_uri": format!("{}organizations/discovery/v2.0/keys", site.base()),
            })
            .to_string(),
        ),
    );
    site.route(
        "/organizations/discovery/v2.0/keys",
        Reply::Json(jwks.to_string()),
    );
    site
}

fn v2_token_at(w: &World, site: &Site, tenant: &TenantId) -> String {
    let t = now(w);
    w.entra.sign_token(
        &rs256(),
        &json!({
            "aud": "api://saas-api", "iss": format!("{}{tenant}/v2.0", site.base()),
            "tid": tenant.as_str(), "azp": w.app.client_id(), "ver": "2.0",
            "iat": t, "nbf": t, "exp": t + 3600,
        }),
    )
}

#[tokio::test]
async fn a_shared_key_bound_to_another_tenant_cannot_sign_for_this_one() {
    let w = World::new().await;
    let site = authority_with_key_issuer(&w, &format!("{{site}}{}/v2.0", w.stranger)).await;
    let v = TokenValidator::builder(Cloud::custom(site.base(), "api://x").unwrap())
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let expect = Expectations::any_of([w.customer.clone(), w.stranger.clone()])
        .discovery(Discovery::Organizations)
        .audience("api://saas-api");

    // The stranger's key signs for the stranger...
    v.validate(&v2_token_at(&w, &site, &w.stranger), &expect)
        .await
        .unwrap();
    // ...and never for the customer, although the template issuer would match.
    let err = v
        .validate(&v2_token_at(&w, &site, &w.customer), &expect)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ValidationError::IssuerMismatch {
            expected: format!("{}{}/v2.0", site.base(), w.stranger),
            found: format!("{}{}/v2.0", site.base(), w.customer),
        }
    );
}

#[tokio::test]
async fn a_shared_key_templated_for_another_host_is_refused() {
    let w = World::new().await;
    let site = authority_with_key_issuer(&w, "https://other.example/{tenantid}/v2.0").await;
    let v = TokenValidator::builder(Cloud::custom(site.base(), "api://x").unwrap())
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let expect = Expectations::new(w.customer.clone())
        .discovery(Discovery::Organizations)
        .audience("api://saas-api");
    let err = v
        .validate(&v2_token_at(&w, &site, &w.customer), &expect)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::IssuerMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn shared_metadata_without_a_tenant_template_is_not_trusted() {
    let w = World::new().await;
    let site = authority_with_key_issuer(&w, "{site}{tenantid}/v2.0").await;
    // A fixed issuer would bind no token to its tid.
    site.route(
        "/organizations/v2.0/.well-known/openid-configuration",
        Reply::Json(
            json!({
                "issuer": format!("{}{}/v2.0", site.base(), w.customer),
                "jwks_uri": format!("{}organizations/discovery/v2.0/keys", site.base()),
            })
            .to_string(),
        ),
    );
    let v = TokenValidator::builder(Cloud::custom(site.base(), "api://x").unwrap())
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let expect = Expectations::new(w.customer.clone())
        .discovery(Discovery::Organizations)
        .audience("api://saas-api");
    let err = v
        .validate(&v2_token_at(&w, &site, &w.customer), &expect)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::KeysUnavailable { .. }),
        "{err:?}"
    );
}
