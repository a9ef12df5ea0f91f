//! `TokenValidator::validate_id_token` against the mock's metadata and keys over real
//! HTTP: a genuine admin sign-in passes and says who signed in; every forgery is refused
//! with the error naming the failed check.

use std::time::Duration;

use azure_cross_tenant::{IdTokenExpectations, TenantCredentialProvider, ValidationError};
use serde_json::{Value, json};

use super::{now, rs256, validator};
use crate::common::World;

const NONCE: &str = "n-0S6_WzA2Mj";
const ADMIN_OID: &str = "00000000-0000-0000-66f3-3332eca7ea81";

/// The claims of a genuine v2 id token of an admin of the world's customer, for our app.
fn id_claims(w: &World) -> Value {
    let t = now(w);
    json!({
        "aud": w.app.client_id(),
        "iss": w.entra.issuer_v2(&w.customer),
        "iat": t, "nbf": t, "exp": t + 3600,
        "name": "Megan Bowen",
        "preferred_username": "megan@fabrikam.example",
        "oid": ADMIN_OID,
        "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
        "tid": w.customer.as_str(),
        "nonce": NONCE,
        "ver": "2.0",
    })
}

fn id_expect(w: &World) -> IdTokenExpectations {
    IdTokenExpectations::new(w.app.client_id(), NONCE)
}

async fn id_refused(w: &World, claims: &Value) -> ValidationError {
    let token = w.entra.sign_token(&rs256(), claims);
    validator(w)
        .validate_id_token(&token, &id_expect(w))
        .await
        .expect_err("the id token must be refused")
}

/// An id token repeating a claim is refused, whichever copy is the genuine one: the
/// nonce, the tenant and the user are read once, by every reader alike.
#[tokio::test]
async fn an_id_token_repeating_a_claim_is_refused() {
    let w = World::new().await;
    let header = format!(
        r#"{{"typ":"JWT","alg":"RS256","kid":"{}"}}"#,
        w.entra.current_kid()
    );
    let c = id_claims(&w);
    let other = w.entra.tenant_guid(&w.stranger);
    for extra in [
        r#""nonce":"replayed-nonce""#.to_owned(),
        format!(r#""tid":"{other}""#),
        r#""oid":"00000000-0000-0000-0000-00000000dead""#.to_owned(),
    ] {
        let token = w
            .entra
            .sign_token_raw(&header, &super::with_members_first(&c, &extra));
        let err = validator(&w)
            .validate_id_token(&token, &id_expect(&w))
            .await
            .expect_err("the id token must be refused");
        assert_eq!(
            err,
            ValidationError::Malformed("the header or the claims repeat a member"),
            "{extra}"
        );
    }
    let token = w.entra.sign_token_raw(&header, &c.to_string());
    validator(&w)
        .validate_id_token(&token, &id_expect(&w))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_genuine_admin_id_token_says_who_signed_in_through_the_organizations_keys() {
    let w = World::new().await;
    let token = w.entra.sign_token(&rs256(), &id_claims(&w));
    let admin = validator(&w)
        .validate_id_token(&token, &id_expect(&w))
        .await
        .unwrap();
    assert_eq!(admin.tid, w.customer);
    assert_eq!(admin.oid, ADMIN_OID);
    assert_eq!(admin.name.as_deref(), Some("Megan Bowen"));
    assert_eq!(
        admin.preferred_username.as_deref(),
        Some("megan@fabrikam.example")
    );
    assert_eq!(admin.raw["nonce"], NONCE);
}

#[tokio::test]
async fn a_v1_id_token_validates_against_the_v1_issuer() {
    let w = World::new().await;
    let mut claims = id_claims(&w);
    claims["ver"] = json!("1.0");
    claims["iss"] = json!(w.entra.issuer_v1(&w.customer));
    let token = w.entra.sign_token(&rs256(), &claims);
    let admin = validator(&w)
        .validate_id_token(&token, &id_expect(&w))
        .await
        .unwrap();
    assert_eq!(admin.tid, w.customer);
}

#[tokio::test]
async fn a_pinned_tenant_uses_its_own_keys_and_refuses_others_before_fetching() {
    let w = World::new().await;
    let v = validator(&w);
    let pinned = id_expect(&w).tenant(w.customer.clone());
    let token = w.entra.sign_token(&rs256(), &id_claims(&w));
    v.validate_id_token(&token, &pinned).await.unwrap();

    let mut other = id_claims(&w);
    other["tid"] = json!(w.stranger.as_str());
    other["iss"] = json!(w.entra.issuer_v2(&w.stranger));
    let token = w.entra.sign_token(&rs256(), &other);
    let fetches = (w.entra.metadata_requests(), w.entra.jwks_requests());
    let err = v.validate_id_token(&token, &pinned).await.unwrap_err();
    assert!(
        matches!(err, ValidationError::WrongTenant { .. }),
        "{err:?}"
    );
    assert_eq!(
        (w.entra.metadata_requests(), w.entra.jwks_requests()),
        fetches
    );
}

#[tokio::test]
async fn nonce_audience_and_oid_must_be_ours() {
    let w = World::new().await;
    let mut c = id_claims(&w);
    c["nonce"] = json!("another-sign-in");
    assert_eq!(id_refused(&w, &c).await, ValidationError::WrongNonce);

    let mut c = id_claims(&w);
    c.as_object_mut().unwrap().remove("nonce");
    assert_eq!(
        id_refused(&w, &c).await,
        ValidationError::MissingClaim("nonce")
    );

    let mut c = id_claims(&w);
    c["aud"] = json!("00000000-0000-0000-0000-00000000beef");
    assert!(matches!(
        id_refused(&w, &c).await,
        ValidationError::WrongAudience { .. }
    ));

    // Several audiences: `azp` must name us.
    let mut c = id_claims(&w);
    c["aud"] = json!([w.app.client_id(), "00000000-0000-0000-0000-00000000beef"]);
    assert!(matches!(
        id_refused(&w, &c).await,
        ValidationError::WrongAppId { .. }
    ));

    let mut c = id_claims(&w);
    c.as_object_mut().unwrap().remove("oid");
    assert_eq!(
        id_refused(&w, &c).await,
        ValidationError::MissingClaim("oid")
    );
}

#[tokio::test]
async fn an_access_token_for_our_app_is_not_an_id_token() {
    let w = World::new().await;
    let api = w.entra.expose_api(&w.app, None);
    let token = w
        .credential()
        .get_token(&w.customer, &[format!("{api}/.default").as_str()])
        .await
        .unwrap();
    let err = validator(&w)
        .validate_id_token(token.secret(), &id_expect(&w))
        .await
        .unwrap_err();
    assert!(err.is_token_rejected(), "{err:?}");
}

#[tokio::test]
async fn issuer_and_tenant_forgeries_are_refused() {
    let w = World::new().await;
    // Another tenant's issuer with our tid.
    let mut c = id_claims(&w);
    c["iss"] = json!(w.entra.issuer_v2(&w.stranger));
    assert!(matches!(
        id_refused(&w, &c).await,
        ValidationError::IssuerMismatch { .. }
    ));
    // The unfilled template as the issuer.
    let mut c = id_claims(&w);
    c["iss"] = json!(format!("{}{{tenantid}}/v2.0", w.entra.uri()));
    assert!(matches!(
        id_refused(&w, &c).await,
        ValidationError::IssuerMismatch { .. }
    ));
    // tid the literal template, or not a GUID.
    for tid in ["{tenantid}", "fabrikam.example", "../common"] {
        let mut c = id_claims(&w);
        c["tid"] = json!(tid);
        assert!(
            matches!(id_refused(&w, &c).await, ValidationError::TenantNotGuid(_)),
            "{tid}"
        );
    }
    let mut c = id_claims(&w);
    c.as_object_mut().unwrap().remove("tid");
    assert_eq!(
        id_refused(&w, &c).await,
        ValidationError::MissingClaim("tid")
    );
}

#[tokio::test]
async fn lifetimes_of_id_tokens_are_checked_and_iat_is_required() {
    let w = World::new().await;
    let t = now(&w);
    let mut c = id_claims(&w);
    c["exp"] = json!(t - 301);
    assert_eq!(
        id_refused(&w, &c).await,
        ValidationError::Expired { exp: t - 301 }
    );
    let mut c = id_claims(&w);
    c["iat"] = json!(t + 3600);
    c["nbf"] = json!(t);
    assert_eq!(
        id_refused(&w, &c).await,
        ValidationError::IssuedInFuture { iat: t + 3600 }
    );
    let mut c = id_claims(&w);
    c.as_object_mut().unwrap().remove("iat");
    assert_eq!(
        id_refused(&w, &c).await,
        ValidationError::MissingClaim("iat")
    );
    // Within the skew it passes; a custom skew is honoured.
    let mut c = id_claims(&w);
    c["exp"] = json!(t - 10);
    let token = w.entra.sign_token(&rs256(), &c);
    let v = validator(&w);
    v.validate_id_token(&token, &id_expect(&w)).await.unwrap();
    let strict = id_expect(&w).clock_skew(Duration::ZERO);
    assert!(matches!(
        v.validate_id_token(&token, &strict).await.unwrap_err(),
        ValidationError::Expired { .. }
    ));
}

#[tokio::test]
async fn forged_signatures_and_algorithms_are_refused() {
    let w = World::new().await;
    let elsewhere = mock_entra::MockEntra::start().await;
    let token = elsewhere.sign_token(&rs256(), &id_claims(&w));
    let err = validator(&w)
        .validate_id_token(&token, &id_expect(&w))
        .await
        .unwrap_err();
    assert!(matches!(err, ValidationError::UnknownKey { .. }), "{err:?}");

    let genuine = w.entra.sign_token(&rs256(), &id_claims(&w));
    let (head, rest) = genuine.split_once('.').unwrap();
    let (body, _sig) = rest.split_once('.').unwrap();
    let mut tampered_claims = id_claims(&w);
    tampered_claims["oid"] = json!("00000000-0000-0000-0000-000000000bad");
    let tampered_body = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tampered_claims.to_string())
    };
    let tampered = genuine.replacen(body, &tampered_body, 1);
    let err = validator(&w)
        .validate_id_token(&tampered, &id_expect(&w))
        .await
        .unwrap_err();
    assert_eq!(err, ValidationError::BadSignature);

    let none = format!("{head}.{body}.");
    let none = none.replacen(head, "eyJhbGciOiJub25lIn0", 1);
    let err = validator(&w)
        .validate_id_token(&none, &id_expect(&w))
        .await
        .unwrap_err();
    assert_eq!(err, ValidationError::DisallowedAlgorithm("none".into()));
}

#[tokio::test]
async fn expectations_that_accept_anything_are_refused() {
    let w = World::new().await;
    let token = w.entra.sign_token(&rs256(), &id_claims(&w));
    for bad in [
        IdTokenExpectations::new(w.app.client_id(), ""),
        IdTokenExpectations::new("", NONCE),
        id_expect(&w).tenant("fabrikam.example".parse().unwrap()),
    ] {
        let err = validator(&w)
            .validate_id_token(&token, &bad)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ValidationError::InvalidExpectations(_)),
            "{err:?}"
        );
        assert!(!err.is_token_rejected());
    }
    let dbg = format!("{:?}", id_expect(&w));
    assert!(!dbg.contains(NONCE), "{dbg}");
}

/// The other way round: a user of a customer tenant signs in to the SaaS app (the app
/// that also exposes the API, the usual setup) and sends the id token they got as a
/// bearer token. It is signed by Entra, issued by an allowed tenant, for the API's client
/// id, and carries no `scp`, `upn` or `unique_name`; but it is a user's id token, not an
/// access token, and names no client (`azp`/`appid`), which every access token does.
#[tokio::test]
async fn a_users_id_token_for_our_app_is_not_an_app_only_access_token() {
    use azure_cross_tenant::{Discovery, Expectations};
    let w = World::new().await;
    let user = w.entra.add_user(&w.customer, "adele@fabrikam.example");
    w.entra.sign_in(&user);
    let redirect = "https://saas.example/callback";
    let authorize = format!(
        "{}organizations/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri={redirect}&scope=openid%20profile&state=S&nonce={NONCE}",
        w.entra.uri(),
        w.app.client_id()
    );
    let back = w.entra.follow(&authorize).await.unwrap();
    let code = back.get("code").unwrap().to_owned();
    let answer = crate::common::plain_http()
        .post(format!("{}organizations/oauth2/v2.0/token", w.entra.uri()))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", w.app.client_id()),
            ("client_secret", w.secret.as_str()),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("scope", "openid profile"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let id_token = answer["id_token"].as_str().unwrap();
    let v = validator(&w);
    // It is a genuine id token.
    v.validate_id_token(id_token, &id_expect(&w)).await.unwrap();

    let api = Expectations::any_of([w.customer.clone()])
        .discovery(Discovery::Organizations)
        .audience(w.app.client_id());
    for expect in [api.clone(), api.app_only(false)] {
        let err = v.validate(id_token, &expect).await.unwrap_err();
        assert_eq!(err, ValidationError::MissingClaim("azp"));
    }
    // A v1 id token (signed the same way) is no v1 access token either.
    let mut c = id_claims(&w);
    c["ver"] = json!("1.0");
    c["iss"] = json!(w.entra.issuer_v1(&w.customer));
    let v1 = w.entra.sign_token(&rs256(), &c);
    let expect = Expectations::new(w.customer.clone()).audience(w.app.client_id());
    let err = v.validate(&v1, &expect).await.unwrap_err();
    assert_eq!(err, ValidationError::MissingClaim("appid"));
}
