//! The validated-token cache answers exactly what a full validation would: the lifetime
//! and each caller's expectations are checked on every hit, and a refetch of the keys
//! drops what was verified with the old ones.

use std::time::Duration;

use azure_cross_tenant::testing::RotationMode;
use azure_cross_tenant::{Discovery, Expectations, TokenVersion, ValidationError};
use serde_json::json;

use super::{claims, expect, rs256, validator};
use crate::common::World;

#[tokio::test]
async fn a_cached_validation_still_expires_on_the_injected_clock() {
    let w = World::new().await;
    let v = validator(&w);
    let token = w.token(&w.customer).await;
    let claims = v.validate(token.secret(), &expect(&w)).await.unwrap();
    let exp = claims.exp.unwrap();
    assert_eq!(
        v.validate(token.secret(), &expect(&w)).await.unwrap(),
        claims
    );

    // Past `exp` but within the skew: what a full validation says.
    w.clock
        .set(std::time::UNIX_EPOCH + Duration::from_secs(exp + 10));
    v.validate(token.secret(), &expect(&w)).await.unwrap();
    let strict = expect(&w).clock_skew(Duration::ZERO);
    assert_eq!(
        v.validate(token.secret(), &strict).await.unwrap_err(),
        ValidationError::Expired { exp }
    );
    w.clock.advance(Duration::from_secs(300));
    assert_eq!(
        v.validate(token.secret(), &expect(&w)).await.unwrap_err(),
        ValidationError::Expired { exp }
    );
}

#[tokio::test]
async fn a_cached_validation_answers_each_caller_by_its_own_expectations() {
    let w = World::new().await;
    let v = validator(&w);
    let token = w.token(&w.customer).await;
    v.validate(token.secret(), &expect(&w)).await.unwrap();

    type Check = fn(&ValidationError) -> bool;
    let cases: Vec<(Expectations, Check)> = vec![
        (
            Expectations::new(w.customer.clone()).audience("https://storage.azure.com"),
            |e| matches!(e, ValidationError::WrongAudience { .. }),
        ),
        (
            Expectations::new(w.stranger.clone()).audience("https://vault.azure.net"),
            |e| matches!(e, ValidationError::WrongTenant { .. }),
        ),
        (
            expect(&w).object_id("00000000-0000-0000-0000-000000000000"),
            |e| matches!(e, ValidationError::WrongObjectId { .. }),
        ),
        (
            expect(&w).app_id("00000000-0000-0000-0000-000000000000"),
            |e| matches!(e, ValidationError::WrongAppId { .. }),
        ),
        (expect(&w).role("Secrets.Write"), |e| {
            matches!(e, ValidationError::MissingRole(_))
        }),
        (expect(&w).versions(&[TokenVersion::V2]), |e| {
            matches!(e, ValidationError::VersionNotAccepted(_))
        }),
        (
            Expectations::any_tenant(|_| false).audience("https://vault.azure.net"),
            |e| matches!(e, ValidationError::WrongTenant { .. }),
        ),
    ];
    for (e, check) in cases {
        let err = v.validate(token.secret(), &e).await.unwrap_err();
        assert!(check(&err), "{err:?}");
    }
    v.validate(token.secret(), &expect(&w)).await.unwrap();
}

#[tokio::test]
async fn refetched_keys_drop_cached_validations_made_with_the_old_ones() {
    let w = World::new().await;
    let v = validator(&w);
    let old = w.token(&w.customer).await;
    v.validate(old.secret(), &expect(&w)).await.unwrap();

    // The key that signed `old` is withdrawn (an emergency roll), and the validator
    // learns of it through a refetch caused by a token signed with the new key.
    w.entra.rotate_keys_with(RotationMode::Emergency);
    w.entra.retire_old_keys();
    w.clock.advance(Duration::from_secs(301));
    let new = w.token(&w.customer).await;
    v.validate(new.secret(), &expect(&w)).await.unwrap();

    let err = v.validate(old.secret(), &expect(&w)).await.unwrap_err();
    assert!(matches!(err, ValidationError::UnknownKey { .. }), "{err:?}");
}

#[tokio::test]
async fn a_validation_cached_in_one_key_mode_is_not_reused_in_another() {
    let w = World::new().await;
    let v = validator(&w);
    let token = w.token(&w.customer).await;
    v.validate(token.secret(), &expect(&w)).await.unwrap();
    assert_eq!(w.entra.metadata_requests(), 1);
    let shared = expect(&w).discovery(Discovery::Organizations);
    v.validate(token.secret(), &shared).await.unwrap();
    assert_eq!(
        w.entra.metadata_requests(),
        2,
        "checked against the organizations keys"
    );
}

#[tokio::test]
async fn refused_tokens_are_refused_every_time() {
    let w = World::new().await;
    let v = validator(&w);
    let mut c = claims(&w);
    c["aud"] = json!("https://storage.azure.com");
    let token = w.entra.sign_token(&rs256(), &c);
    for _ in 0..3 {
        let err = v.validate(&token, &expect(&w)).await.unwrap_err();
        assert!(
            matches!(err, ValidationError::WrongAudience { .. }),
            "{err:?}"
        );
    }
}
