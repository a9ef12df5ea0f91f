//! What a service answers for each refusal: 401 `invalid_token`, 403
//! `insufficient_scope`, 503 when keys cannot be fetched, 500 for its own bad
//! expectations; descriptions never repeat the token.

use azure_cross_tenant::{Expectations, ValidationError, ValidationErrorClass};
use serde_json::json;

use super::{claims, expect, now, refused, rs256, validator};
use crate::common::World;

#[tokio::test]
async fn a_bad_token_is_a_401_invalid_token_whose_description_repeats_nothing_of_it() {
    let w = World::new().await;
    let mut c = claims(&w);
    c["exp"] = json!(now(&w) - 3600);
    c["oid"] = json!("\"><script>alert(1)</script>");
    let token = w.entra.sign_token(&rs256(), &c);
    let err = refused(&w, &token).await;
    assert!(matches!(err, ValidationError::Expired { .. }), "{err:?}");
    assert!(err.is_token_rejected());
    assert_eq!(err.class(), ValidationErrorClass::InvalidToken);
    assert_eq!(err.http_status(), 401);
    let bearer = err.bearer_error().unwrap();
    assert_eq!(
        bearer.to_string(),
        r#"error="invalid_token", error_description="the token has expired""#
    );

    // Whatever the check, the description holds nothing the token said.
    for forged in [
        w.entra
            .sign_token(&json!({"alg": "HS256", "kid": "<kid-text>"}), &c),
        w.entra.sign_token(&rs256(), &json!({"tid": "<tid-text>"})),
        format!("{}.x.y", "A".repeat(40)),
    ] {
        let err = refused(&w, &forged).await;
        let bearer = err.bearer_error().expect("a rejected token");
        assert_eq!(bearer.error, "invalid_token");
        for said in ["<kid-text>", "<tid-text>", "AAAA", "script"] {
            assert!(!bearer.description.contains(said), "{bearer}");
        }
        assert!(
            bearer
                .description
                .chars()
                .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
            "{bearer}"
        );
    }
}

#[tokio::test]
async fn a_valid_token_lacking_a_role_is_a_403_insufficient_scope() {
    let w = World::new().await;
    let token = w.token(&w.customer).await;
    let err = validator(&w)
        .validate(token.secret(), &expect(&w).role("Commands.Send"))
        .await
        .unwrap_err();
    assert_eq!(err, ValidationError::MissingRole("Commands.Send".into()));
    assert!(err.is_token_rejected());
    assert!(err.is_insufficient_scope());
    assert_eq!(err.http_status(), 403);
    assert_eq!(
        err.bearer_error().unwrap().to_string(),
        r#"error="insufficient_scope", error_description="the token lacks the required role Commands.Send""#
    );
    // A token failing another check as well is a 401, not a 403: roles are checked last.
    let err = validator(&w)
        .validate(
            token.secret(),
            &expect(&w)
                .role("Commands.Send")
                .object_id("00000000-0000-0000-0000-000000000000"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 401, "{err:?}");
}

#[tokio::test]
async fn keys_that_cannot_be_fetched_are_a_503_without_blaming_the_token() {
    let w = World::new().await;
    w.entra.set_keys_unavailable(true);
    let token = w.entra.sign_token(&rs256(), &claims(&w));
    let err = refused(&w, &token).await;
    assert!(
        matches!(err, ValidationError::KeysUnavailable { .. }),
        "{err:?}"
    );
    assert!(!err.is_token_rejected());
    assert_eq!(err.class(), ValidationErrorClass::Unavailable);
    assert_eq!(err.http_status(), 503);
    assert_eq!(err.bearer_error(), None);
}

#[tokio::test]
async fn bad_expectations_are_a_500_reported_before_the_token_is_read() {
    let w = World::new().await;
    let no_audience = Expectations::new(w.customer.clone());
    let err = validator(&w)
        .validate("not even a token", &no_audience)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidationError::InvalidExpectations(_)),
        "{err:?}"
    );
    assert_eq!(err.class(), ValidationErrorClass::Misconfigured);
    assert_eq!(err.http_status(), 500);
    assert_eq!(err.bearer_error(), None);
}

#[tokio::test]
async fn missing_exp_iss_or_tid_and_a_future_iat_are_kinds_of_their_own() {
    let w = World::new().await;
    for claim in ["exp", "iss", "tid"] {
        let mut c = claims(&w);
        c.as_object_mut().unwrap().remove(claim);
        let token = w.entra.sign_token(&rs256(), &c);
        assert_eq!(
            refused(&w, &token).await,
            ValidationError::MissingClaim(claim)
        );
    }
    let t = now(&w);
    let mut c = claims(&w);
    c["iat"] = json!(t + 3600);
    let token = w.entra.sign_token(&rs256(), &c);
    assert_eq!(
        refused(&w, &token).await,
        ValidationError::IssuedInFuture { iat: t + 3600 }
    );
}
