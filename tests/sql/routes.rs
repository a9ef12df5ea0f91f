//! The onboarding routes end to end: a scripted browser, the provider's app on loopback
//! (one or two replicas on one database), MockEntra over real HTTP.

use azure_cross_tenant::{OnboardingOutcome, OnboardingState, OutcomeReason, TenantId};
use mock_entra::{MockRedirect, MockUser};

use crate::Backend;
use crate::browser::{Answer, App, Browser, with_query};
use crate::world::World;

/// Start to sign-in answer: the answer the mock's `form_post` page would POST.
async fn sign_in(w: &World, app: &App, browser: &Browser, user: &MockUser) -> MockRedirect {
    w.entra.sign_in(user);
    let start = browser
        .get(&app.base.join("onboarding/start").unwrap())
        .await;
    assert_eq!(start.status, 303);
    let cookie = start.set_cookie.join("\n");
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let authorize = start.location.expect("sent to sign in");
    assert!(
        authorize.as_str().starts_with(w.entra.uri().as_str()),
        "{authorize}"
    );
    w.entra.follow(authorize.as_str()).await.unwrap()
}

/// The `form_post` answer delivered, then the browser follows the app's redirects up to
/// the consent page; returns the app's answer that sends it to Entra's consent (or the
/// app's page, if the flow ended there).
async fn answer_sign_in(browser: &Browser, back: &MockRedirect) -> Answer {
    let posted = browser.post_form(back).await;
    assert_eq!(posted.status, 303);
    assert!(
        posted.set_cookie.is_empty(),
        "the POST carried no cookie to change"
    );
    let mut next = browser.get(&posted.location.unwrap()).await;
    while let Some(location) = next.location.clone() {
        if location.path() != "/onboarding/consent" {
            break;
        }
        next = browser.get(&location).await;
    }
    next
}

/// The whole flow for `user`; `edit` may change the consent answer before it arrives.
async fn connect(
    w: &World,
    app: &App,
    browser: &Browser,
    user: &MockUser,
    edit: impl FnOnce(&mut MockRedirect),
) -> OnboardingOutcome {
    let back = sign_in(w, app, browser, user).await;
    let to_consent = answer_sign_in(browser, &back).await;
    let consent = to_consent.location.clone().unwrap();
    if consent.path() == "/tenants" {
        return to_consent.outcome();
    }
    let mut back = w.entra.follow(consent.as_str()).await.unwrap();
    edit(&mut back);
    let done = browser.get(&with_query(&back)).await;
    assert!(
        done.set_cookie.iter().any(|c| c.contains("Max-Age=0")),
        "the cookie is cleared at the end: {:?}",
        done.set_cookie
    );
    done.outcome()
}

pub async fn an_admin_connects_their_tenant_through_the_routes(backend: Backend) {
    let w = World::new().await;
    let app = App::start(&w, &backend.fresh_url().await).await;
    let (x, admin) = w.newcomer("newcomer.example");
    let outcome = connect(&w, &app, &Browser::new("acct-42"), &admin, |_| {}).await;
    assert_eq!(outcome, OnboardingOutcome::Linked { tenant: x.clone() });
    let record = app.registry.get(&x).await.unwrap().expect("linked");
    assert_eq!(record.account.as_deref(), Some("acct-42"));
    assert_eq!(record.state, OnboardingState::Active);
    assert_eq!(record.display_name, "newcomer.example");
    assert_eq!(record.linked_by.as_deref(), Some(admin.object_id.as_str()));
    assert!(record.linked_at.is_some() && record.proof.is_some());
    assert_eq!(
        record.service_principal_object_id,
        w.entra.service_principal_id(&x, &w.app)
    );
}

fn failed(outcome: &OnboardingOutcome) -> OutcomeReason {
    outcome
        .reason()
        .unwrap_or_else(|| panic!("not a failure: {outcome:?}"))
}

pub async fn a_user_who_is_not_an_admin_is_refused(backend: Backend) {
    let w = World::new().await;
    let app = App::start(&w, &backend.fresh_url().await).await;
    let x = w.entra.add_tenant("members.example");
    let member = w.entra.add_user(&x, "member@members.example");
    let outcome = connect(&w, &app, &Browser::new("acct-1"), &member, |_| {}).await;
    assert_eq!(failed(&outcome), OutcomeReason::NotAdmin);
    assert_eq!(outcome.tenant(), Some(&x));
    assert!(app.registry.get(&x).await.unwrap().is_none());
}

pub async fn a_sign_in_answer_replayed_to_another_replica_is_refused(backend: Backend) {
    let w = World::new().await;
    let url = backend.fresh_url().await;
    let one = App::start(&w, &url).await;
    let two = App::replica_of(&w, &url, &one).await;
    let (x, admin) = w.newcomer("newcomer.example");
    let browser = Browser::new("acct-1");
    let back = sign_in(&w, &one, &browser, &admin).await;
    // The answer, in the query (as a browser's history would replay it), to both replicas
    // at once, with the same cookie: the store is shared, so both find the flow.
    let mut answer = with_query(&back);
    let replay = {
        let mut u = two.base.join("onboarding/signed-in").unwrap();
        u.set_query(answer.query());
        u
    };
    answer.set_path("/onboarding/signed-in");
    let other = browser.clone();
    let (a, b) = tokio::join!(browser.get(&answer), other.get(&replay));
    let goes_on = |a: &Answer| {
        a.location
            .as_ref()
            .is_some_and(|l| l.path() == "/onboarding/consent")
    };
    assert_eq!(
        [&a, &b].iter().filter(|x| goes_on(x)).count(),
        1,
        "exactly one replica accepts it: {a:?} {b:?}"
    );
    let refused = if goes_on(&a) { b } else { a };
    assert!(
        matches!(
            failed(&refused.outcome()),
            OutcomeReason::Replayed | OutcomeReason::SessionNotFound
        ),
        "{refused:?}"
    );
    assert!(one.registry.get(&x).await.unwrap().is_none());
}

pub async fn a_tenant_linked_to_another_account_is_refused(backend: Backend) {
    let w = World::new().await;
    let app = App::start(&w, &backend.fresh_url().await).await;
    let (x, admin) = w.newcomer("newcomer.example");
    let first = connect(&w, &app, &Browser::new("acct-1"), &admin, |_| {}).await;
    assert_eq!(first, OnboardingOutcome::Linked { tenant: x.clone() });
    let second = connect(&w, &app, &Browser::new("acct-2"), &admin, |_| {}).await;
    assert_eq!(failed(&second), OutcomeReason::LinkedElsewhere);
    assert_eq!(
        app.registry
            .get(&x)
            .await
            .unwrap()
            .unwrap()
            .account
            .as_deref(),
        Some("acct-1")
    );
}

pub async fn a_declined_consent_links_nothing(backend: Backend) {
    let w = World::new().await;
    let app = App::start(&w, &backend.fresh_url().await).await;
    let (x, admin) = w.newcomer("newcomer.example");
    w.entra.decline_next_admin_consent();
    let outcome = connect(&w, &app, &Browser::new("acct-1"), &admin, |_| {}).await;
    assert_eq!(failed(&outcome), OutcomeReason::ConsentDeclined);
    assert!(app.registry.get(&x).await.unwrap().is_none());
    assert_eq!(w.entra.token_requests_for(&x), 0);
}

pub async fn an_edited_consent_answer_naming_another_tenant_is_refused(backend: Backend) {
    let w = World::new().await;
    let app = App::start(&w, &backend.fresh_url().await).await;
    let (x, admin) = w.newcomer("newcomer.example");
    let y: TenantId = w.customer.clone(); // consented long ago
    let outcome = connect(&w, &app, &Browser::new("acct-1"), &admin, |back| {
        for (k, v) in &mut back.params {
            if k == "tenant" {
                *v = y.to_string();
            }
        }
    })
    .await;
    assert_eq!(failed(&outcome), OutcomeReason::TenantMismatch);
    assert_eq!(outcome.tenant(), Some(&x));
    assert!(app.registry.get(&x).await.unwrap().is_none());
    assert!(app.registry.get(&y).await.unwrap().is_none());
    assert_eq!(w.entra.token_requests_for(&y), 0, "Y was never asked");
}
