//! Onboarding accepts a consent only with proof that an admin acted: the signed-in
//! `id_token`'s directory roles (`wids`), or required app roles (which no user's own
//! consent grants) that the app lacked when the flow began. A member of a tenant that
//! consented long ago, or whose own sign-in created the app's service principal, cannot
//! forge the unsigned consent callback; a check Entra cannot answer fails closed. Also: repeated callback
//! parameters, relinking a linked tenant, and domain-named tenants in the registry.

use std::sync::Arc;

use crate::common::{VAULT, World};
use crate::onboarding::{
    CONSENTED, SIGNED_IN, callback, consent, newcomer, onboarding, set_up_app, sign_in,
};
use azure_cross_tenant::Clock as _;
use azure_cross_tenant::{
    AdminProof, Cached, ClientSecret, DEFAULT_ADMIN_ROLES, Error, InMemoryRegistry, LinkError,
    Onboarding, OnboardingError, OnboardingState, PendingConsent, Relink, TenantRecord,
    TenantRegistry,
};
use mock_entra::MockFault;

const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";
const APPLICATION_ADMINISTRATOR: &str = "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3";
/// An application permission of the resource: only an admin's consent grants it.
const SECRETS_READ: &str = "Secrets.Read";

/// What a user who skips the consent page sends: "granted", their own tenant, and the
/// state from the consent URL they were given.
fn forged_callback(consent_url: &url::Url, tenant: &azure_cross_tenant::TenantId) -> String {
    let state = consent_url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1;
    format!("admin_consent=True&tenant={tenant}&state={state}")
}

/// An onboarding that requires the app role [`SECRETS_READ`] on Key Vault, which the
/// app asks for (its API permissions), so admin consent grants it.
fn onboarding_requiring_a_role(w: &World) -> Onboarding {
    set_up_app(w);
    w.entra
        .require_role(&w.app, "https://vault.azure.net", SECRETS_READ);
    Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
        .consent_redirect_uri(CONSENTED)
        .require_role(SECRETS_READ)
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .build()
        .unwrap()
}

/// The attack: a member of a tenant that consented long ago (for another account, or
/// another reason) signs in, skips the consent page and forges the unsigned callback
/// `admin_consent=True&tenant=<their proven tid>&state=<their state>`. The old consent
/// would make the confirmation token succeed, so nothing but proof of an admin stops it.
#[tokio::test]
async fn a_non_admin_of_an_already_consented_tenant_cannot_forge_the_consent_callback() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let y = w.customer.clone(); // consented long ago
    assert!(w.entra.service_principal_id(&y, &w.app).is_some());
    let member = w.entra.add_user(&y, "member@fabrikam.example");

    let signed_in = sign_in(&w, &onboarding, &member).await;
    assert_eq!(signed_in.tenant(), &y);
    assert!(signed_in.directory_roles().is_empty());
    assert_eq!(onboarding.admin_role_of(&signed_in), None);
    let before = w.entra.token_requests_for(&y);
    let err = onboarding.consent(&signed_in).await.unwrap_err();
    match &err {
        OnboardingError::AdminNotProven {
            tenant,
            object_id,
            roles,
        } => {
            assert_eq!(tenant, &y);
            assert_eq!(object_id, &member.object_id);
            assert!(roles.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    let text = err.to_string();
    for advice in [
        "Global",
        "Application Administrator",
        "Token configuration",
        "wids",
    ] {
        assert!(text.contains(advice), "{advice} missing from: {text}");
    }
    assert_eq!(
        w.entra.token_requests_for(&y) - before,
        0,
        "no app role is required, so nothing but a directory role could prove an admin"
    );

    // A tenant that never consented: a member's own sign-in can create the app's service
    // principal, so its absence (or a replica lagging behind) proves nothing either.
    let (z, _) = newcomer(&w, "never-consented.example");
    let newcomer_member = w.entra.add_user(&z, "member@never-consented.example");
    let signed_in = sign_in(&w, &onboarding, &newcomer_member).await;
    let err = onboarding.consent(&signed_in).await.unwrap_err();
    assert!(
        matches!(&err, OnboardingError::AdminNotProven { tenant, .. } if *tenant == z),
        "{err:?}"
    );
    assert_eq!(w.entra.token_requests_for(&z), 0);

    // With an app role required that the app holds already (granted long ago), the
    // member is refused after one check.
    let requiring = onboarding_requiring_a_role(&w);
    w.entra
        .grant_role(&y, &w.app, "https://vault.azure.net", SECRETS_READ);
    let signed_in = sign_in(&w, &requiring, &member).await;
    let before = w.entra.token_requests_for(&y);
    let err = requiring.consent(&signed_in).await.unwrap_err();
    assert!(
        matches!(&err, OnboardingError::AdminNotProven { .. }),
        "{err:?}"
    );
    assert_eq!(
        w.entra.token_requests_for(&y) - before,
        1,
        "one check that found the roles granted already"
    );

    // The same forgery against a pending consent stored without any proof (as an earlier
    // version of the crate stored them): refused at the callback, nothing confirmed.
    let now = w
        .clock
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // (`unconsented_at_start` is a name an unreleased build used for a proof that
    // proved nothing: it is ignored.)
    let stored = serde_json::json!({
        "state": "s-3f9a", "tenant": y.as_str(), "admin_object_id": member.object_id,
        "issued_at": now, "unconsented_at_start": true,
    });
    let pending: PendingConsent = serde_json::from_value(stored).unwrap();
    assert!(pending.roles_missing_at_start().is_empty());
    let forged = format!("admin_consent=True&tenant={y}&state=s-3f9a");
    let before = w.entra.token_requests_for(&y);
    let err = onboarding
        .finish_consent(pending, &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::AdminNotProven { tenant, .. } if *tenant == y),
        "{err:?}"
    );
    assert_eq!(w.entra.token_requests_for(&y), before, "nothing confirmed");

    // Roles recorded as missing prove nothing to an onboarding that requires none (it
    // trusts directory roles only).
    let stored = serde_json::json!({
        "state": "s-77c1", "tenant": y.as_str(), "admin_object_id": member.object_id,
        "issued_at": now, "roles_missing_at_start": [SECRETS_READ],
    });
    let pending: PendingConsent = serde_json::from_value(stored).unwrap();
    let forged = format!("admin_consent=True&tenant={y}&state=s-77c1");
    let err = onboarding
        .finish_consent(pending, &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::AdminNotProven { .. }),
        "{err:?}"
    );
}

/// A member's own sign-in can create the app's service principal (user consent to
/// `openid profile`), so whether it exists proves nothing. What only an admin can grant
/// is the app roles the app asks for: a member starts onboarding while the app lacks
/// them, the consent page refuses the member, an admin grants it, and the member's
/// callback is accepted with the roles as proof. A member who forges the callback while
/// nobody grants them gets nothing.
#[tokio::test]
async fn a_non_admin_is_onboarded_only_once_an_admin_grants_the_app_roles_it_lacked() {
    let w = World::new().await;
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let member = w.entra.add_user(&x, "member@newcomer.example");
    // The member's sign-in consented for themselves: the app's service principal exists
    // in X, without any app role (the app asks for none yet).
    w.entra.consent(&x, &w.app);
    let onboarding = onboarding_requiring_a_role(&w);

    let signed_in = sign_in(&w, &onboarding, &member).await;
    assert_eq!(onboarding.admin_role_of(&signed_in), None);
    let (url, pending) = onboarding.consent(&signed_in).await.unwrap();
    assert_eq!(pending.roles_missing_at_start(), [SECRETS_READ]);

    // Forged at once: the confirmation never finds the role.
    let forged = forged_callback(&url, &x);
    let err = onboarding
        .finish_consent(pending, &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::MissingRoles { missing, .. } if missing == &[SECRETS_READ]),
        "{err:?}"
    );

    // The real flow: Entra's consent page refuses the member; an admin grants it.
    let (url, pending) = onboarding.consent(&signed_in).await.unwrap();
    let back = w.entra.follow(url.as_str()).await.unwrap();
    assert_eq!(back.get("error"), Some("access_denied"));
    w.entra.sign_in(&x_admin);
    let back = w.entra.follow(url.as_str()).await.unwrap();
    assert_eq!(back.target.as_str(), CONSENTED);
    let onboarded = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    assert_eq!(onboarded.tenant, x);
    assert_eq!(onboarded.proof, AdminProof::FreshConsent);
    assert_eq!(onboarded.admin_object_id, member.object_id);
    assert_eq!(onboarded.roles, vec![SECRETS_READ.to_owned()]);
    // *An* admin granted the roles; the member is not proven theirs: the record waits
    // for the provider's approval.
    assert_eq!(onboarded.record("Newcomer").state, OnboardingState::Pending);

    // A member of a tenant where the app holds nothing at all (no service principal):
    // the same rule, and a forged callback gets nothing.
    let (z, _) = newcomer(&w, "late.example");
    let forger = w.entra.add_user(&z, "member@late.example");
    let signed_in = sign_in(&w, &onboarding, &forger).await;
    let (url, pending) = onboarding.consent(&signed_in).await.unwrap();
    assert_eq!(pending.roles_missing_at_start(), [SECRETS_READ]);
    let forged = forged_callback(&url, &z);
    let err = onboarding
        .finish_consent(pending, &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OnboardingError::NotConfirmed { source, .. } if matches!(**source, Error::NotConsented { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_admin_whose_id_token_carries_an_admin_role_onboards_an_already_consented_tenant() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let y = w.customer.clone(); // consented long ago
    let apps_admin =
        w.entra
            .add_user_with_roles(&y, "apps@fabrikam.example", &[APPLICATION_ADMINISTRATOR]);

    let signed_in = sign_in(&w, &onboarding, &apps_admin).await;
    assert_eq!(signed_in.directory_roles(), [APPLICATION_ADMINISTRATOR]);
    assert_eq!(
        onboarding.admin_role_of(&signed_in),
        Some(APPLICATION_ADMINISTRATOR)
    );
    let before = w.entra.token_requests_for(&y);
    let (pending, back) = consent(&w, &onboarding, &signed_in).await;
    assert_eq!(
        w.entra.token_requests_for(&y),
        before,
        "the role is the proof: no check before consent"
    );
    let onboarded = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    assert_eq!(onboarded.tenant, y);
    assert_eq!(
        onboarded.proof,
        AdminProof::DirectoryRole(APPLICATION_ADMINISTRATOR.into())
    );
    assert_eq!(DEFAULT_ADMIN_ROLES[0], GLOBAL_ADMINISTRATOR);

    // A provider that trusts Global Administrators only refuses the same user.
    let strict = Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
        .consent_redirect_uri(CONSENTED)
        .admin_roles([GLOBAL_ADMINISTRATOR.to_uppercase()])
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let signed_in = sign_in(&w, &strict, &apps_admin).await;
    assert!(
        matches!(
            strict.consent(&signed_in).await,
            Err(OnboardingError::AdminNotProven { .. })
        ),
        "an Application Administrator is not a Global Administrator"
    );
    let global = w.entra.add_admin(&y, "global@fabrikam.example");
    let signed_in = sign_in(&w, &strict, &global).await;
    assert_eq!(strict.admin_role_of(&signed_in), Some(GLOBAL_ADMINISTRATOR));

    // Without `wids` in the app's token configuration even a Global Administrator of a
    // consented tenant proves nothing, and the error says what to configure.
    w.entra.emit_wids(&w.app, false);
    let signed_in = sign_in(&w, &onboarding, &global).await;
    assert!(signed_in.directory_roles().is_empty());
    let err = onboarding.consent(&signed_in).await.unwrap_err();
    assert!(
        matches!(&err, OnboardingError::AdminNotProven { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("Directory roles"), "{err}");

    // A role id that is not a GUID is a configuration error.
    let built = Onboarding::builder(Cached::new(w.credential()), VAULT, SIGNED_IN)
        .admin_roles(["Global Administrator"])
        .build();
    assert!(matches!(built, Err(Error::InvalidConfiguration(_))));
}

/// Whether the tenant consented already cannot be told: the onboarding refuses (it
/// never guesses "not consented", which would let a forged callback through), with an
/// error the caller can retry.
#[tokio::test]
async fn the_check_before_consent_fails_closed_and_retryably_when_entra_cannot_answer() {
    let w = World::new().await;
    let onboarding = onboarding_requiring_a_role(&w);
    let (x, _) = newcomer(&w, "newcomer.example");
    let member = w.entra.add_user(&x, "member@newcomer.example");
    let signed_in = sign_in(&w, &onboarding, &member).await;

    // Entra is having a bad moment.
    w.entra
        .inject_fault(&x, MockFault::ServerError { status: 503 }, 1);
    let err = onboarding.consent(&signed_in).await.unwrap_err();
    assert!(
        matches!(&err, OnboardingError::ConsentCheckFailed { tenant, .. } if *tenant == x),
        "{err:?}"
    );
    assert!(err.is_retryable(), "{err}");

    // The network is down: nothing listens where the credential sends its request.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let credential = ClientSecret::new(w.app.client_id(), &w.secret)
        .authority_host(dead.parse().unwrap())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let offline = Onboarding::builder(Cached::new(credential), VAULT, SIGNED_IN)
        .require_role(SECRETS_READ)
        .clock(Arc::new(w.clock.clone()))
        .build()
        .unwrap();
    let err = offline.consent(&signed_in).await.unwrap_err();
    match &err {
        OnboardingError::ConsentCheckFailed { tenant, source } => {
            assert_eq!(tenant, &x);
            assert!(matches!(**source, Error::Transport { .. }), "{source:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());

    // Once Entra answers, the same user goes on.
    let (_, pending) = onboarding.consent(&signed_in).await.unwrap();
    assert_eq!(pending.roles_missing_at_start(), [SECRETS_READ]);
}

#[tokio::test]
async fn a_consent_callback_repeating_a_parameter_is_refused_whichever_copy_comes_first() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let saved = serde_json::to_string(&pending).unwrap();
    let genuine = callback(&back);
    let before = w.entra.token_requests_for(&x);
    for doubled in [
        format!("{genuine}&tenant={}", w.customer),
        format!("tenant={}&{genuine}", w.customer),
        format!("{genuine}&tenant={x}"),
        format!("{genuine}&state=another"),
        format!("state=another&{genuine}"),
        format!("{genuine}&admin_consent=True"),
    ] {
        let pending: PendingConsent = serde_json::from_str(&saved).unwrap();
        let err = onboarding
            .finish_consent(pending, &doubled)
            .await
            .unwrap_err();
        assert!(
            matches!(err, OnboardingError::Malformed(_)),
            "{doubled}: {err:?}"
        );
    }
    assert_eq!(w.entra.token_requests_for(&x), before, "nothing confirmed");
    // Refused before the state check, so nothing was spent: the genuine callback works.
    let pending: PendingConsent = serde_json::from_str(&saved).unwrap();
    onboarding.finish_consent(pending, &genuine).await.unwrap();
}

#[tokio::test]
async fn onboarding_a_linked_tenant_again_keeps_its_scopes_and_state_and_domains_are_never_linked()
{
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let registry = InMemoryRegistry::new();

    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let onboarded = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    registry
        .link("acct-x", onboarded.record("Newcomer"), Relink::Refuse)
        .await
        .unwrap();
    // The operator narrows the scopes and suspends the tenant.
    let mut narrowed = registry.get(&x).await.unwrap().unwrap();
    narrowed.allowed_scopes = vec![VAULT.to_owned()];
    narrowed.state = OnboardingState::Revoked;
    registry.upsert(narrowed).await.unwrap();

    // The customer's admin runs onboarding again.
    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let again = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    let stored = registry
        .link("acct-x", again.record("Newcomer Inc"), Relink::Refuse)
        .await
        .unwrap();
    assert_eq!(stored.allowed_scopes, vec![VAULT.to_owned()]);
    assert_eq!(stored.state, OnboardingState::Revoked);
    assert_eq!(stored.display_name, "Newcomer Inc");
    assert_eq!(registry.get(&x).await.unwrap().unwrap(), stored);

    // A tenant named by a domain is never linked: the proven `tid` is a GUID.
    let by_domain = TenantRecord::new(
        "newcomer.example".parse().unwrap(),
        "Newcomer",
        OnboardingState::Active,
    );
    let err = registry
        .link("acct-z", by_domain, Relink::Refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, LinkError::TenantNotGuid { .. }), "{err:?}");
    assert_eq!(registry.list().await.unwrap().len(), 1);
}

/// Anyone can send the admin's browser to the callback with `error=access_denied` (a
/// cross-site request): without this session's `state` it is not this session's answer,
/// and the real callback that follows still completes the onboarding.
#[tokio::test]
async fn a_forged_error_callback_without_the_state_does_not_end_the_real_flow() {
    let w = World::new().await;
    let onboarding = onboarding(&w);
    let (x, x_admin) = newcomer(&w, "newcomer.example");
    let admin = sign_in(&w, &onboarding, &x_admin).await;
    let (pending, back) = consent(&w, &onboarding, &admin).await;
    let saved = serde_json::to_string(&pending).unwrap();
    let err = onboarding
        .finish_consent(pending, "error=access_denied&error_description=forged")
        .await
        .unwrap_err();
    assert!(matches!(err, OnboardingError::StateMismatch), "{err:?}");
    let pending: PendingConsent = serde_json::from_str(&saved).unwrap();
    let onboarded = onboarding
        .finish_consent(pending, &callback(&back))
        .await
        .unwrap();
    assert_eq!(onboarded.tenant, x);
}
