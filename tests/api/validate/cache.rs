//! The validated-token cache answers exactly what a full validation would: the lifetime
//! and each caller's expectations are checked on every hit, and a refetch of the keys
//! drops what was verified with the old ones.

use std::time::Duration;

use azure_cross_tenant::{Discovery, Expectations, TokenVersion, ValidationError};
use mock_entra::RotationMode;
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

/// Entra withdraws a compromised key at once, only by no longer publishing it. Nothing
/// else need ever make the validator look again (no token signed with the new key has to
/// come by), so keys past their maximum age are fetched again: whoever holds the old key
/// stops getting tokens through, whether a hit in the validated-token cache or not.
#[tokio::test]
async fn a_key_entra_withdrew_stops_validating_once_the_keys_are_old_without_any_new_kid() {
    let w = World::new().await;
    let v = validator(&w);
    // What the holder of today's key can sign at will: a token valid for two days.
    let mut c = claims(&w);
    c["exp"] = json!(super::now(&w) + 2 * 86_400);
    let forged = w.entra.sign_token(&rs256(), &c);
    v.validate(&forged, &expect(&w)).await.unwrap();

    w.entra.rotate_keys_with(RotationMode::Emergency);
    w.entra.retire_old_keys();
    w.clock.advance(Duration::from_secs(12 * 3600 + 1));
    // The first validation past the maximum age starts a refetch in the background and is
    // answered with the old keys; once the refetch lands, the withdrawn key is gone.
    let mut refused = None;
    for _ in 0..200 {
        match v.validate(&forged, &expect(&w)).await {
            Ok(_) => {
                // Waiting for the background refetch over loopback: real time, bounded.
                #[allow(clippy::disallowed_methods)]
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(
        matches!(refused, Some(ValidationError::UnknownKey { .. })),
        "{refused:?}"
    );
    assert_eq!(w.entra.metadata_requests(), 2);
}

/// The refetch of old keys never costs availability: while it fails, the old keys still
/// validate, and it is retried only after the back-off.
#[tokio::test]
async fn old_keys_keep_validating_while_their_refetch_fails() {
    let w = World::new().await;
    let v = validator(&w);
    let mut c = claims(&w);
    c["exp"] = json!(super::now(&w) + 2 * 86_400);
    let token = w.entra.sign_token(&rs256(), &c);
    v.validate(&token, &expect(&w)).await.unwrap();

    w.entra.set_keys_unavailable(true);
    w.clock.advance(Duration::from_secs(12 * 3600 + 1));
    for _ in 0..20 {
        v.validate(&token, &expect(&w)).await.unwrap();
        #[allow(clippy::disallowed_methods)]
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        w.entra.metadata_requests(),
        2,
        "one refetch, then the back-off"
    );
}
