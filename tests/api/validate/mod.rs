//! `TokenValidator` against the mock's metadata and JWKS over real HTTP, and an attack
//! suite (RFC 8725 and Entra specifics): each forged token is refused with the error
//! naming the failed check.

use std::sync::Arc;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::{
    Clock, Error, Expectations, TenantCredentialProvider, TenantId, TokenValidator, TokenVersion,
    ValidatedTokenExt, ValidationError,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mock_entra::MockEntra;
use proptest::prelude::*;
use serde_json::{Value, json};

mod cache;
mod errors;
mod fetch;
mod id_token;
mod multi_tenant;
mod site;

fn validator(w: &World) -> TokenValidator {
    TokenValidator::builder(w.entra.cloud())
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap()
}

fn expect(w: &World) -> Expectations {
    Expectations::new(w.customer.clone())
        .audience("https://vault.azure.net")
        .object_id(&w.sp_object_id)
        .app_id(w.app.client_id())
}

fn now(w: &World) -> u64 {
    w.clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The claims of a genuine v1 vault token for the world's customer.
fn claims(w: &World) -> Value {
    let t = now(w);
    json!({
        "aud": "https://vault.azure.net",
        "iss": w.entra.issuer_v1(&w.customer),
        "iat": t, "nbf": t, "exp": t + 3600,
        "appid": w.app.client_id(),
        "idtyp": "app",
        "oid": w.sp_object_id,
        "sub": w.sp_object_id,
        "tid": w.customer.as_str(),
        "ver": "1.0",
    })
}

fn rs256() -> Value {
    json!({"typ": "JWT", "alg": "RS256"})
}

async fn refused(w: &World, token: &str) -> ValidationError {
    validator(w)
        .validate(token, &expect(w))
        .await
        .expect_err("the token must be refused")
}

#[tokio::test]
async fn a_genuine_token_from_the_mock_validates_and_returns_its_claims() {
    let w = World::new().await;
    w.entra.grant_role(
        &w.customer,
        &w.app,
        "https://vault.azure.net",
        "Secrets.Read",
    );
    let token = w.token(&w.customer).await;
    let claims = validator(&w)
        .validate(token.secret(), &expect(&w).role("Secrets.Read"))
        .await
        .unwrap();
    assert_eq!(claims.tid.as_deref(), Some(w.customer.as_str()));
    assert_eq!(claims.oid.as_deref(), Some(w.sp_object_id.as_str()));
    assert_eq!(claims.roles, vec!["Secrets.Read"]);
}

#[tokio::test]
async fn get_validated_token_returns_the_token_with_its_checked_claims() {
    let w = World::new().await;
    let v = validator(&w);
    let (token, claims) = w
        .credential()
        .get_validated_token(&w.customer, &[VAULT], &v, &expect(&w))
        .await
        .unwrap();
    assert!(!token.secret().is_empty());
    assert_eq!(claims.app_id(), Some(w.app.client_id()));

    let wrong = expect(&w).object_id("00000000-0000-0000-0000-000000000000");
    let err = w
        .credential()
        .get_validated_token(&w.customer, &[VAULT], &v, &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Validation { .. }), "{err:?}");
}

#[tokio::test]
async fn v2_tokens_for_an_api_validate_and_version_policy_is_enforced() {
    let w = World::new().await;
    let api = w.entra.register_app(&w.customer, "customer-api");
    let uri = w.entra.expose_api(&api, None);
    let token = w
        .credential()
        .get_token(&w.customer, &[format!("{uri}/.default").as_str()])
        .await
        .unwrap();
    let e = Expectations::new(w.customer.clone())
        .audience(api.client_id())
        .audience(&uri)
        .app_id(w.app.client_id());
    validator(&w).validate(token.secret(), &e).await.unwrap();

    let v1_only = e.clone().versions(&[TokenVersion::V1]);
    let err = validator(&w)
        .validate(token.secret(), &v1_only)
        .await
        .unwrap_err();
    assert_eq!(err, ValidationError::VersionNotAccepted("2.0".into()));

    let vault = w.token(&w.customer).await;
    let v2_only = expect(&w).versions(&[TokenVersion::V2]);
    let err = validator(&w)
        .validate(vault.secret(), &v2_only)
        .await
        .unwrap_err();
    assert_eq!(err, ValidationError::VersionNotAccepted("1.0".into()));
}

#[tokio::test]
async fn alg_none_and_case_variants_and_hs256_are_refused() {
    let w = World::new().await;
    let body = URL_SAFE_NO_PAD.encode(claims(&w).to_string());
    for alg in ["none", "None", "rs256", "Rs256", "HS256", "PS256", "ES256"] {
        let header = URL_SAFE_NO_PAD
            .encode(json!({"alg": alg, "typ": "JWT", "kid": w.entra.current_kid()}).to_string());
        let token = format!("{header}.{body}.c2ln");
        assert_eq!(
            refused(&w, &token).await,
            ValidationError::DisallowedAlgorithm(alg.into()),
            "{alg}"
        );
    }
    // RS256 -> HS256 confusion: HMAC keyed with the public JWKS bytes.
    let jwks = reqwest::get(format!("{}{}/discovery/keys", w.entra.uri(), w.customer))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let header = URL_SAFE_NO_PAD
        .encode(json!({"alg": "HS256", "typ": "JWT", "kid": w.entra.current_kid()}).to_string());
    let input = format!("{header}.{body}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &jwks);
    let sig = URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()));
    let err = refused(&w, &format!("{input}.{sig}")).await;
    assert_eq!(err, ValidationError::DisallowedAlgorithm("HS256".into()));
}

#[tokio::test]
async fn an_unknown_kid_causes_one_refetch_then_none_for_five_minutes() {
    let w = World::new().await;
    let v = validator(&w);
    let genuine = w.token(&w.customer).await;
    v.validate(genuine.secret(), &expect(&w)).await.unwrap();
    let fetched = w.entra.jwks_requests();
    assert_eq!(fetched, 1);

    let forged = w
        .entra
        .sign_token(&json!({"alg": "RS256", "kid": "not-a-key"}), &claims(&w));
    let err = v.validate(&forged, &expect(&w)).await.unwrap_err();
    assert_eq!(
        err,
        ValidationError::UnknownKey {
            kid: "not-a-key".into()
        }
    );
    // Within 5 minutes of the last fetch: no new fetch for another unknown kid.
    let forged2 = w
        .entra
        .sign_token(&json!({"alg": "RS256", "kid": "other"}), &claims(&w));
    v.validate(&forged2, &expect(&w)).await.unwrap_err();
    assert_eq!(
        w.entra.jwks_requests(),
        fetched,
        "no refetch within 5 minutes"
    );

    w.clock.advance(Duration::from_secs(301));
    v.validate(&forged2, &expect(&w).clock_skew(Duration::from_secs(3600)))
        .await
        .unwrap_err();
    assert_eq!(
        w.entra.jwks_requests(),
        fetched + 1,
        "one refetch after the interval"
    );
}

#[tokio::test]
async fn key_rotation_is_followed_without_a_restart() {
    let w = World::new().await;
    let v = validator(&w);
    let before = w.token(&w.customer).await;
    v.validate(before.secret(), &expect(&w)).await.unwrap();

    // An emergency rotation: the new key signs at once, unknown to the validator's keys.
    w.entra
        .rotate_keys_with(mock_entra::RotationMode::Emergency);
    w.clock.advance(Duration::from_secs(301));
    let after = w.token(&w.customer).await;
    v.validate(after.secret(), &expect(&w)).await.unwrap();
    // The old key is still published during the rollover, so older tokens still pass.
    v.validate(before.secret(), &expect(&w)).await.unwrap();
}

#[tokio::test]
async fn header_key_sources_are_ignored_and_crit_is_refused() {
    let w = World::new().await;
    let attacker = MockEntra::start().await;
    // A token signed by the attacker, pointing at the attacker's keys every way it can,
    // with our kid: keys come only from the tenant's JWKS, so the signature fails.
    let header = json!({
        "alg": "RS256", "kid": w.entra.current_kid(),
        "jku": format!("{}common/discovery/keys", attacker.uri()),
        "x5u": "https://attacker.example/cert.pem",
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
        "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    });
    let forged = attacker.sign_token(&header, &claims(&w));
    assert_eq!(refused(&w, &forged).await, ValidationError::BadSignature);
    assert_eq!(attacker.jwks_requests(), 0, "jku was never followed");

    // With our own key, the same extra headers change nothing.
    let genuine = w.entra.sign_token(&header, &claims(&w));
    validator(&w).validate(&genuine, &expect(&w)).await.unwrap();

    let crit = w
        .entra
        .sign_token(&json!({"alg": "RS256", "crit": ["exp"]}), &claims(&w));
    assert!(matches!(
        refused(&w, &crit).await,
        ValidationError::CriticalHeader(_)
    ));
}

#[tokio::test]
async fn a_key_from_another_jwks_is_not_trusted() {
    let w = World::new().await;
    let elsewhere = MockEntra::start().await;
    let forged = elsewhere.sign_token(&rs256(), &claims(&w));
    let err = refused(&w, &forged).await;
    assert!(matches!(err, ValidationError::UnknownKey { .. }), "{err:?}");
}

#[tokio::test]
async fn lifetimes_are_checked_on_the_injected_clock_with_skew() {
    let w = World::new().await;
    let t = now(&w);
    let mut expired = claims(&w);
    expired["exp"] = json!(t - 301);
    let token = w.entra.sign_token(&rs256(), &expired);
    assert_eq!(
        refused(&w, &token).await,
        ValidationError::Expired { exp: t - 301 }
    );

    let mut within_skew = claims(&w);
    within_skew["exp"] = json!(t - 10);
    let token = w.entra.sign_token(&rs256(), &within_skew);
    validator(&w).validate(&token, &expect(&w)).await.unwrap();

    let mut future = claims(&w);
    future["nbf"] = json!(t + 3600);
    let token = w.entra.sign_token(&rs256(), &future);
    assert_eq!(
        refused(&w, &token).await,
        ValidationError::NotYetValid { nbf: t + 3600 }
    );
}

#[tokio::test]
async fn issuer_and_tenant_tricks_are_refused() {
    let w = World::new().await;
    let both = Expectations::any_of([w.customer.clone(), w.stranger.clone()])
        .audience("https://vault.azure.net");

    // Another tenant's issuer, validly signed.
    let mut other_iss = claims(&w);
    other_iss["iss"] = json!(w.entra.issuer_v1(&w.stranger));
    let token = w.entra.sign_token(&rs256(), &other_iss);
    assert!(matches!(
        refused(&w, &token).await,
        ValidationError::IssuerMismatch { .. }
    ));

    // tid of one allowed tenant, iss of another allowed tenant.
    let mut mixed = claims(&w);
    mixed["tid"] = json!(w.stranger.as_str());
    let token = w.entra.sign_token(&rs256(), &mixed);
    let err = validator(&w).validate(&token, &both).await.unwrap_err();
    assert!(
        matches!(err, ValidationError::IssuerMismatch { .. }),
        "{err:?}"
    );

    // tid not a GUID.
    let mut not_guid = claims(&w);
    not_guid["tid"] = json!("fabrikam.example");
    let token = w.entra.sign_token(&rs256(), &not_guid);
    assert!(matches!(
        refused(&w, &token).await,
        ValidationError::TenantNotGuid(_)
    ));

    // A genuine token of tenant A presented where tenant B is expected: refused before
    // any key is fetched.
    w.entra.consent(&w.stranger, &w.app);
    let from_stranger = w.token(&w.stranger).await;
    let fetches = (w.entra.metadata_requests(), w.entra.jwks_requests());
    let err = refused(&w, from_stranger.secret()).await;
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
async fn audience_object_id_app_and_roles_must_match() {
    let w = World::new().await;
    let token = w.token(&w.customer).await;
    let v = validator(&w);
    let base = || Expectations::new(w.customer.clone());
    type Check = fn(&ValidationError) -> bool;
    let cases: Vec<(Expectations, Check)> = vec![
        (base().audience("https://storage.azure.com"), |e| {
            matches!(e, ValidationError::WrongAudience { .. })
        }),
        (
            base()
                .audience("https://vault.azure.net")
                .object_id("00000000-0000-0000-0000-000000000000"),
            |e| matches!(e, ValidationError::WrongObjectId { .. }),
        ),
        (
            base()
                .audience("https://vault.azure.net")
                .app_id("00000000-0000-0000-0000-000000000000"),
            |e| matches!(e, ValidationError::WrongAppId { .. }),
        ),
        (
            base()
                .audience("https://vault.azure.net")
                .role("Secrets.Write"),
            |e| matches!(e, ValidationError::MissingRole(_)),
        ),
        (base(), |e| {
            matches!(e, ValidationError::InvalidExpectations(_))
        }),
    ];
    for (e, check) in cases {
        let err = v.validate(token.secret(), &e).await.unwrap_err();
        assert!(check(&err), "{err:?}");
        assert!(!err.to_string().contains(token.secret()));
    }
    let mut delegated = claims(&w);
    delegated["idtyp"] = json!("user");
    let t = w.entra.sign_token(&rs256(), &delegated);
    assert_eq!(
        refused(&w, &t).await,
        ValidationError::NotAppOnly {
            claim: "idtyp",
            found: "user".into()
        }
    );
}

#[tokio::test]
async fn malformed_truncated_and_oversized_tokens_are_malformed() {
    let w = World::new().await;
    let genuine = w.token(&w.customer).await;
    let s = genuine.secret();
    for bad in [
        String::new(),
        s[..s.len() / 2].to_owned(),
        format!("{s}.extra"),
        "a".repeat(70_000),
        format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            URL_SAFE_NO_PAD.encode([0xc3, 0x28])
        ),
    ] {
        let err = refused(&w, &bad).await;
        assert!(
            matches!(
                err,
                ValidationError::Malformed(_) | ValidationError::BadSignature
            ),
            "{err:?}"
        );
    }
    // A truncated signature fails verification, never panics.
    let cut = &s[..s.len() - 10];
    assert_eq!(refused(&w, cut).await, ValidationError::BadSignature);
}

#[test]
fn expected_tenants_must_be_guids() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let w = World::new().await;
        let token = w.token(&w.customer).await;
        let by_domain: TenantId = "fabrikam.example".parse().unwrap();
        let err = validator(&w)
            .validate(
                token.secret(),
                &Expectations::new(by_domain).audience("https://vault.azure.net"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, ValidationError::InvalidExpectations(_)),
            "{err:?}"
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary text, including dots and base64-looking parts, never panics validation.
    #[test]
    fn arbitrary_tokens_never_panic(token in "[A-Za-z0-9_.\\-]{0,200}|.{0,200}") {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let v = TokenValidator::new(azure_cross_tenant::Cloud::custom("http://127.0.0.1:9/", "api://x").unwrap()).unwrap();
        let e = Expectations::new("00000000-0000-0000-0000-000000000001".parse().unwrap()).audience("a");
        let result = rt.block_on(v.validate(&token, &e));
        prop_assert!(result.is_err());
    }
}

#[tokio::test]
async fn a_failed_key_refetch_keeps_the_old_keys_and_an_unknown_kid_meanwhile_is_keys_unavailable()
{
    let w = World::new().await;
    let v = validator(&w);
    let genuine = w.token(&w.customer).await;
    v.validate(genuine.secret(), &expect(&w)).await.unwrap();

    w.entra.set_keys_unavailable(true);
    w.clock.advance(Duration::from_secs(301));
    let unknown = w
        .entra
        .sign_token(&json!({"alg": "RS256", "kid": "rotated-in"}), &claims(&w));
    // Whether that key exists cannot be known while the keys are down: the token is not
    // blamed (503, not 401).
    let err = v.validate(&unknown, &expect(&w)).await.unwrap_err();
    assert!(
        matches!(err, ValidationError::KeysUnavailable { .. }),
        "{err:?}"
    );
    assert!(!err.is_token_rejected());
    // The keys fetched before the outage still validate tokens signed with them.
    let again = w.entra.sign_token(&rs256(), &claims(&w));
    v.validate(&again, &expect(&w)).await.unwrap();

    // A validator that never got keys says so.
    let fresh = validator(&w);
    let err = fresh.validate(&again, &expect(&w)).await.unwrap_err();
    assert!(
        matches!(err, ValidationError::KeysUnavailable { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn delegated_user_tokens_are_refused_by_the_default_app_only_check() {
    let w = World::new().await;
    let user_claims = [
        ("scp", json!("user_impersonation")),
        ("upn", json!("megan@fabrikam.example")),
        ("unique_name", json!("megan@fabrikam.example")),
    ];
    for (claim, value) in user_claims {
        // A user's token carries no `idtyp` unless the app asked for it.
        let mut c = claims(&w);
        c.as_object_mut().unwrap().remove("idtyp");
        c[claim] = value;
        let token = w.entra.sign_token(&rs256(), &c);
        let err = refused(&w, &token).await;
        assert!(
            matches!(err, ValidationError::NotAppOnly { claim: c, .. } if c == claim),
            "{claim}: {err:?}"
        );
        assert_eq!(err.http_status(), 401);
        // Services that accept delegated tokens say so.
        validator(&w)
            .validate(&token, &expect(&w).app_only(false))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_jose_header_that_is_a_json_array_is_refused_even_when_validly_signed() {
    let w = World::new().await;
    let header = json!(["RS256", w.entra.current_kid(), null]);
    let token = w.entra.sign_token(&header, &claims(&w));
    assert_eq!(
        refused(&w, &token).await,
        ValidationError::Malformed("the header is not a JSON object")
    );
    assert!(azure_cross_tenant::insecure::decode_unverified(&token).is_err());

    // Padding or the standard alphabet: not base64url, in every reader.
    let mut c = claims(&w);
    c["x"] = json!("?????????"); // `???` is `Pz8_` in base64url, `Pz8/` in standard base64
    let genuine = w.entra.sign_token(&rs256(), &c);
    let (head, rest) = genuine.split_once('.').unwrap();
    let (payload, sig) = rest.split_once('.').unwrap();
    assert!(payload.contains('_'));
    let standard = format!("{head}.{}.{sig}", payload.replace('_', "/"));
    let padded = format!("{head}{}.{payload}.{sig}", "=".repeat(4 - head.len() % 4));
    for bad in [standard, padded] {
        assert_eq!(
            refused(&w, &bad).await,
            ValidationError::Malformed("a part is not unpadded base64url"),
            "{bad}"
        );
        assert!(azure_cross_tenant::insecure::decode_unverified(&bad).is_err());
    }
    validator(&w).validate(&genuine, &expect(&w)).await.unwrap();
}
