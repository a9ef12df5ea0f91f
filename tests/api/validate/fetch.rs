//! Where keys may come from and how often they are fetched: only from the authority's
//! own origin, never through a redirect (whatever client the caller passes), and one
//! shared fetch per tenant during an outage, remembered for a back-off.

use std::sync::Arc;
use std::time::Duration;

use azure_cross_tenant::{Cloud, HttpClient, TokenValidator, ValidationError};
use serde_json::json;

use super::site::{Reply, Site, Tls};
use super::{claims, expect, rs256, validator};
use crate::common::World;

/// The customer's v1 JWKS as the mock publishes it.
async fn mock_jwks(w: &World) -> String {
    reqwest::get(format!("{}{}/discovery/keys", w.entra.uri(), w.customer))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metadata(w: &World, jwks_uri: &str) -> Reply {
    Reply::Json(
        json!({
            "issuer": w.entra.issuer_v1(&w.customer),
            "jwks_uri": jwks_uri,
        })
        .to_string(),
    )
}

fn metadata_path(w: &World) -> String {
    format!("/{}/.well-known/openid-configuration", w.customer)
}

fn validator_at(w: &World, site: &Site, http: Option<HttpClient>) -> TokenValidator {
    let mut builder = TokenValidator::builder(Cloud::custom(site.base(), "api://x").unwrap())
        .clock(Arc::new(w.clock.clone()));
    if let Some(http) = http {
        builder = builder.http_client(http);
    }
    builder.build().unwrap()
}

fn assert_unavailable(err: &ValidationError, because: &str) {
    match err {
        ValidationError::KeysUnavailable { reason, .. } => {
            assert!(reason.contains(because), "{reason}")
        }
        other => panic!("expected KeysUnavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn keys_from_another_port_of_the_authority_host_are_refused() {
    let w = World::new().await;
    let authority = Site::http().await;
    let other_port = Site::http().await;
    other_port.route("/keys", Reply::Json(mock_jwks(&w).await));
    authority.route(
        &metadata_path(&w),
        metadata(&w, &format!("{}keys", other_port.base())),
    );
    let token = w.entra.sign_token(&rs256(), &claims(&w));

    let err = validator_at(&w, &authority, None)
        .validate(&token, &expect(&w))
        .await
        .unwrap_err();
    assert_unavailable(&err, "another origin");
    assert!(other_port.asked().is_empty(), "{:?}", other_port.asked());
}

#[tokio::test]
async fn keys_over_plain_http_on_the_https_authority_host_are_refused() {
    let w = World::new().await;
    let tls = Tls::for_loopback();
    let authority = Site::https(&tls).await;
    let plain = Site::http().await;
    let jwks = mock_jwks(&w).await;
    plain.route("/keys", Reply::Json(jwks.clone()));
    authority.route(
        &metadata_path(&w),
        metadata(&w, &format!("{}keys", plain.base())),
    );
    let token = w.entra.sign_token(&rs256(), &claims(&w));

    let err = validator_at(&w, &authority, Some(tls.client()))
        .validate(&token, &expect(&w))
        .await
        .unwrap_err();
    assert_unavailable(&err, "another origin");
    assert!(plain.asked().is_empty(), "{:?}", plain.asked());

    // The same keys on the authority's own origin are taken (the https setup works).
    authority.route("/keys", Reply::Json(jwks));
    authority.route(
        &metadata_path(&w),
        metadata(&w, &format!("{}keys", authority.base())),
    );
    validator_at(&w, &authority, Some(tls.client()))
        .validate(&token, &expect(&w))
        .await
        .unwrap();
}

/// A caller's client settings that ask to follow redirects (reqwest's default).
fn following() -> HttpClient {
    HttpClient::from_builder(
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::limited(10)),
    )
    .unwrap()
}

#[tokio::test]
async fn a_callers_redirect_following_client_never_reaches_the_redirect_target() {
    let w = World::new().await;
    let target = Site::http().await;
    target.route("/keys", Reply::Json(mock_jwks(&w).await));
    target.route(
        &metadata_path(&w),
        metadata(&w, &format!("{}keys", target.base())),
    );
    let token = w.entra.sign_token(&rs256(), &claims(&w));

    // The JWKS URL redirects to another server.
    let authority = Site::http().await;
    authority.route(
        &metadata_path(&w),
        metadata(&w, &format!("{}keys", authority.base())),
    );
    authority.route("/keys", Reply::Redirect(format!("{}keys", target.base())));
    let err = validator_at(&w, &authority, Some(following()))
        .validate(&token, &expect(&w))
        .await
        .unwrap_err();
    assert_unavailable(&err, "redirect");
    assert!(
        target.asked().is_empty(),
        "the redirect's target was asked: {:?}",
        target.asked()
    );

    // The metadata URL redirects to another server, whose metadata names its own keys.
    let authority = Site::http().await;
    authority.route(
        &metadata_path(&w),
        Reply::Redirect(format!(
            "{}{}",
            target.base().trim_end_matches('/'),
            metadata_path(&w)
        )),
    );
    let err = validator_at(&w, &authority, Some(following()))
        .validate(&token, &expect(&w))
        .await
        .unwrap_err();
    assert_unavailable(&err, "redirect");
    assert!(
        target.asked().is_empty(),
        "the redirect's target was asked: {:?}",
        target.asked()
    );
}

#[tokio::test]
async fn concurrent_validations_during_a_key_outage_share_one_fetch_and_none_follow_within_the_backoff()
 {
    let w = World::new().await;
    w.entra.set_keys_unavailable(true);
    let v = validator(&w);
    // Anyone can send these: unsigned tokens naming the onboarded tenant.
    let unsigned = |i: u32| {
        let header = json!({"alg": "RS256", "kid": format!("kid-{i}")});
        let forged = w.entra.sign_token(&header, &claims(&w));
        format!("{}.", forged.rsplit_once('.').unwrap().0)
    };
    let storm = |from: u32| {
        let mut set = tokio::task::JoinSet::new();
        for i in from..from + 8 {
            let (v, e, t) = (v.clone(), expect(&w), unsigned(i));
            set.spawn(async move { v.validate(&t, &e).await });
        }
        set
    };
    for result in storm(0).join_all().await {
        assert_unavailable(&result.unwrap_err(), "503");
    }
    assert_eq!(w.entra.metadata_requests(), 1, "8 callers, one fetch");

    w.clock.advance(Duration::from_secs(5));
    for result in storm(8).join_all().await {
        assert_unavailable(&result.unwrap_err(), "not retried");
    }
    assert_eq!(w.entra.metadata_requests(), 1, "none within the back-off");

    // After the back-off, one new attempt; once the keys are back, tokens validate.
    w.clock.advance(Duration::from_secs(6));
    w.entra.set_keys_unavailable(false);
    let genuine = w.token(&w.customer).await;
    v.validate(genuine.secret(), &expect(&w)).await.unwrap();
    assert_eq!(w.entra.metadata_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn waiters_on_a_silent_key_server_wait_for_one_fetch_timeout_not_one_each() {
    let w = World::new().await;
    let authority = Site::http().await;
    authority.route(&metadata_path(&w), Reply::Silence);
    let v = TokenValidator::builder(Cloud::custom(authority.base(), "api://x").unwrap())
        .clock(Arc::new(w.clock.clone()))
        .fetch_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let token = w.entra.sign_token(&rs256(), &claims(&w));
    #[allow(clippy::disallowed_methods)] // paused tokio time: it moves only to fire timers
    let started = tokio::time::Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (v, e, t) = (v.clone(), expect(&w), token.clone());
        set.spawn(async move { v.validate(&t, &e).await });
    }
    for result in set.join_all().await {
        assert_unavailable(&result.unwrap_err(), "no answer within");
    }
    // Time is paused and jumps to each timer: the total is what the waits added up to.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(authority.asked().len(), 1, "{:?}", authority.asked());
}

/// Callers that give up (clients that disconnect, a request timeout in the service) must
/// not take the key fetch down with them: were the fetch run by its first caller, each
/// cancelled caller would leave it unfinished, with no failure recorded, and the next
/// caller would start another request, however often an attacker repeats it.
#[tokio::test]
async fn callers_that_give_up_do_not_restart_the_key_fetch() {
    let w = World::new().await;
    let authority = Site::http().await;
    authority.route(&metadata_path(&w), Reply::Silence);
    let v = TokenValidator::builder(Cloud::custom(authority.base(), "api://x").unwrap())
        .clock(Arc::new(w.clock.clone()))
        .fetch_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Anyone can send this: an unsigned token naming the onboarded tenant.
    let token = w.entra.sign_token(&rs256(), &claims(&w));
    let unsigned = format!("{}.", token.rsplit_once('.').unwrap().0);
    for _ in 0..5 {
        let seen = authority.asked().len();
        let caller = {
            let (v, e, t) = (v.clone(), expect(&w), unsigned.clone());
            tokio::spawn(async move { v.validate(&t, &e).await })
        };
        // Until the site sees a new request, or 200 ms: real time, bounded.
        for _ in 0..40 {
            if authority.asked().len() > seen {
                break;
            }
            #[allow(clippy::disallowed_methods)]
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        caller.abort();
        let _ = caller.await;
    }
    assert_eq!(authority.asked().len(), 1, "{:?}", authority.asked());
}
