//! A customer's admin connects their tenant on the provider's page, in Chromium: the
//! provider's "Connect" button, the mock Entra's sign-in and consent pages, back to the
//! provider's page; and the refusals a person can meet on the way.

use std::sync::Arc;

use azure_cross_tenant::{OnboardingOutcome, OnboardingState, OutcomeReason};

use crate::Ctx;
use crate::driver::Browser;

/// The provider's page, then "Connect your Azure tenant": the mock's sign-in page.
async fn connect(ctx: &Ctx) {
    let b = &ctx.browser;
    b.client.goto(ctx.app.as_str()).await.unwrap();
    assert_eq!(b.text("#connect").await, "Connect your Azure tenant");
    assert!(b.has("#empty").await, "no tenant is connected yet");
    b.click("#connect").await;
    b.wait_page("sign-in").await;
    assert!(b.has("#test-only").await, "the mock says it is for tests");
}

/// Past the sign-in: Entra's `form_post` page (the onboarding's default response mode),
/// which Entra submits by script and the mock leaves to a press of Continue. Its POST
/// goes to the app from another origin.
async fn after_sign_in(b: &Browser) {
    b.wait_page("form-post").await;
    b.click("#continue").await;
}

/// The provider's page shows how the onboarding ended: `(data-outcome, data-reason, text)`.
async fn outcome(b: &Browser) -> (String, String, String) {
    let element = b.wait("#outcome").await;
    (
        element
            .attr("data-outcome")
            .await
            .unwrap()
            .unwrap_or_default(),
        element
            .attr("data-reason")
            .await
            .unwrap()
            .unwrap_or_default(),
        element.text().await.unwrap(),
    )
}

pub(crate) async fn an_admin_connects_their_tenant_and_reads_its_secret(ctx: Arc<Ctx>) {
    let b = &ctx.browser;
    let (admin, tenant) = (&ctx.world.admin, &ctx.world.customer);
    connect(&ctx).await;
    // The page lists the tenant's users; a person can as well type their name (any
    // password: the mock checks none).
    assert!(
        b.has(&format!(r#"#users button.user[data-upn="{}"]"#, admin.upn))
            .await
    );
    b.type_into("#username", &admin.upn).await;
    b.type_into("#password", "any password").await;
    b.click("#sign-in").await;
    after_sign_in(b).await;

    // Consent is asked in the tenant the admin proved by signing in.
    b.wait_page("consent").await;
    assert_eq!(
        b.attr("#tenant", "data-tenant-id").await.as_deref(),
        Some(tenant.as_str())
    );
    assert!(b.text("#signed-in-as").await.contains(&admin.upn));
    b.click("#accept").await;

    let (kind, reason, text) = outcome(b).await;
    assert_eq!((kind.as_str(), reason.as_str()), ("ok", ""));
    assert_eq!(
        text,
        OnboardingOutcome::Linked {
            tenant: tenant.clone()
        }
        .message()
    );
    let row = format!("#tenant-{tenant}");
    assert_eq!(b.text(&format!("{row} .name")).await, "contoso.example");
    assert_eq!(b.text(&format!("{row} .state")).await, "active");
    assert_eq!(b.text(&format!("{row} .health")).await, "healthy");
    let record = ctx.registry.get(tenant).await.unwrap().expect("linked");
    assert_eq!(record.state, OnboardingState::Active);
    assert_eq!(record.linked_by.as_deref(), Some(admin.object_id.as_str()));

    // The per-tenant action: an app-only token in that tenant reads its vault.
    b.click(&format!("#read-secret-{tenant}")).await;
    let result = b.text("#secret-result").await;
    assert!(
        result.starts_with("db-password read from the tenant's vault"),
        "{result}"
    );
}

pub(crate) async fn a_user_who_is_not_an_admin_is_told_why(ctx: Arc<Ctx>) {
    let b = &ctx.browser;
    let member = &ctx.world.member;
    connect(&ctx).await;
    // Picked from the list this time.
    b.click(&format!(r#"#users button.user[data-upn="{}"]"#, member.upn))
        .await;
    after_sign_in(b).await;

    let (kind, reason, text) = outcome(b).await;
    assert_eq!(
        (kind.as_str(), reason.as_str()),
        ("failed", OutcomeReason::NotAdmin.code())
    );
    assert_eq!(text, OutcomeReason::NotAdmin.message());
    assert!(text.contains("not an administrator"), "{text}");
    assert!(b.has("#empty").await, "nothing connected");
    assert!(
        ctx.registry
            .get(&ctx.world.customer)
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn cancel_on_the_consent_page_connects_nothing(ctx: Arc<Ctx>) {
    let b = &ctx.browser;
    let admin = &ctx.world.admin;
    connect(&ctx).await;
    b.click(&format!(r#"#users button.user[data-upn="{}"]"#, admin.upn))
        .await;
    after_sign_in(b).await;
    b.wait_page("consent").await;
    b.click("#cancel").await;

    let (kind, reason, text) = outcome(b).await;
    assert_eq!(
        (kind.as_str(), reason.as_str()),
        ("failed", OutcomeReason::ConsentDeclined.code())
    );
    assert_eq!(text, OutcomeReason::ConsentDeclined.message());
    assert!(b.has("#empty").await, "nothing connected");
    assert!(!b.has(r#"tr[id^="tenant-"]"#).await);
    assert!(
        ctx.registry
            .get(&ctx.world.customer)
            .await
            .unwrap()
            .is_none()
    );
}
