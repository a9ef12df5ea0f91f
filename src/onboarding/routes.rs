//! [`OnboardingRoutes`]: the whole onboarding flow as an `axum::Router`. The browser
//! carries one opaque cookie; the pending flow lives in the [`OnboardingStore`].

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::routing::get;
use cookie::{Cookie, SameSite};
use http::header::{CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};

use super::outcome::{OnboardingOutcome, OutcomeReason};
use super::store::OnboardingStore;
use crate::consent::{
    AdminProof, Callback, Onboarding, OnboardingError, PendingConsent, PendingSignIn, SignInTenant,
    SignedInAdmin, hex_digest, random_value,
};
use crate::error::Error;
use crate::registry::{Relink, TenantRegistry};
use crate::tenant::TenantId;

/// Largest `form_post` body read (an authorization code is 1-2 KB).
const MAX_FORM: usize = 16 * 1024;
/// The cookie's default name.
const DEFAULT_COOKIE: &str = "act_onboarding";

type AccountFn = dyn Fn(&Parts) -> Option<String> + Send + Sync;
type NameFn = dyn Fn(&SignedInAdmin) -> String + Send + Sync;

/// The onboarding flow as routes a web app mounts: start, the sign-in callback (query
/// and `form_post`), the consent step, and the consent callback that links the tenant to
/// the signed-in account and sends the browser to your page with the outcome.
///
/// ```no_run
/// use std::sync::Arc;
/// use axum::Router;
/// use azure_cross_tenant::{Cached, ClientSecret, InMemoryRegistry, Onboarding, OnboardingRoutes, TenantRegistry};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let provider = Cached::new(ClientSecret::new("11111111-2222-3333-4444-555555555555", "secret").build()?);
/// let onboarding = Onboarding::builder(
///     provider,
///     "https://vault.azure.net/.default",
///     "https://saas.example/onboarding/signed-in", // both registered on the app
/// )
/// .consent_redirect_uri("https://saas.example/onboarding/consented")
/// .build()?;
/// // A fleet shares one database: SqlRegistry (features sqlite, postgres), as the README shows.
/// let registry: Arc<dyn TenantRegistry> = Arc::new(InMemoryRegistry::new());
/// let onboarding_routes = OnboardingRoutes::builder(onboarding, registry)
///     // Who is signed in to *your* app (here a header your login layer sets).
///     .account(|parts| parts.headers.get("x-account")?.to_str().ok().map(str::to_owned))
///     .done_page("/tenants")
///     .build()?;
/// let app: Router = Router::new().nest("/onboarding", onboarding_routes);
/// // A "Connect your Azure tenant" button: <form method="post" action="/onboarding/start">
/// # let _ = app; Ok(()) }
/// ```
///
/// | Route | Does |
/// |---|---|
/// | `GET` or `POST start` | asks your account closure who is signed in, sets the cookie, sends the admin to sign in |
/// | `POST signed-in` | the `form_post` answer: kept server-side under its state, then a redirect to `GET signed-in` (a cross-site POST carries no `SameSite=Lax` cookie; the redirect does) |
/// | `GET signed-in` | the sign-in answer (in the query, or the one kept above): code redeemed, `id_token` validated, admin proof checked |
/// | `GET consent` | sends the admin to admin consent in the tenant they proved |
/// | `GET consented` | the consent answer: checked, confirmed by a token, tenant linked to the account ([`TenantRegistry::link`], never taking a tenant from another account), then your page |
///
/// - **Paths.** The routes are relative: mount them anywhere with `Router::nest`. The
///   onboarding's redirect URIs must end in `/signed-in` and `/consented` under that
///   prefix (checked at [`build`](OnboardingRoutesBuilder::build)).
/// - **The cookie** holds 256 random bits, nothing else: `HttpOnly; Secure;
///   SameSite=Lax; Path=/`, for the onboarding's `max_age`. The state, nonce, PKCE
///   verifier and admin proof stay in the [`OnboardingStore`], under the SHA-256 of the
///   cookie. `Secure` cookies over plain `http://` are kept by browsers only for
///   `localhost` and loopback addresses (Chromium and Firefox treat them as secure
///   contexts), which is also the only plain http the onboarding accepts as a redirect URI.
/// - **The store** is the onboarding's ([`OnboardingBuilder::store`](crate::OnboardingBuilder::store)),
///   or, when that was left at its in-process default, the registry's
///   ([`TenantRegistry::onboarding_store`]): a [`SqlRegistry`](crate::SqlRegistry) shares
///   pending flows and spent states with every replica on its database.
/// - **Outcome.** Every ending, success or failure, is a redirect to your
///   [`done_page`](OnboardingRoutesBuilder::done_page) with an [`OnboardingOutcome`] in
///   its query: a typed [`OutcomeReason`] with a sentence for the person. Each failure is
///   logged (target `azure_cross_tenant::onboarding`) with the reason, the tenant and
///   Entra's trace id when known; never a code, token, nonce, verifier or cookie.
/// - **CSRF.** The OAuth `state`, bound to the cookie and single-use across the store, is
///   what stops a forged or replayed callback; the account is read from your app's own
///   session at `start` and again at each callback, so a flow cannot finish for another
///   account.
#[non_exhaustive]
pub struct OnboardingRoutes;

impl fmt::Debug for OnboardingRoutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OnboardingRoutes")
    }
}

impl OnboardingRoutes {
    /// Starts building the routes of `onboarding`, linking tenants in `registry`.
    pub fn builder(
        onboarding: Onboarding,
        registry: Arc<dyn TenantRegistry>,
    ) -> OnboardingRoutesBuilder {
        OnboardingRoutesBuilder {
            onboarding,
            registry,
            account: None,
            done_page: None,
            display_name: None,
            cookie_name: DEFAULT_COOKIE.into(),
        }
    }
}

/// Builds the routes; see [`OnboardingRoutes`].
#[must_use = "a builder does nothing until `build()`"]
pub struct OnboardingRoutesBuilder {
    onboarding: Onboarding,
    registry: Arc<dyn TenantRegistry>,
    account: Option<Arc<AccountFn>>,
    done_page: Option<String>,
    display_name: Option<Arc<NameFn>>,
    cookie_name: String,
}

impl fmt::Debug for OnboardingRoutesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnboardingRoutesBuilder")
            .field("onboarding", &self.onboarding)
            .field("registry", &self.registry)
            .field("done_page", &self.done_page)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

impl OnboardingRoutesBuilder {
    /// Who is signed in to your app, from the request (a header or extension your own
    /// login layer set; request headers themselves are whatever the browser sends, so read
    /// what your authentication established, not a raw header from outside). `None`: nobody, and
    /// the flow ends with [`OutcomeReason::NotSignedIn`]. Required.
    pub fn account(
        mut self,
        account: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.account = Some(Arc::new(account));
        self
    }

    /// Your page the browser goes to at the end, with the [`OnboardingOutcome`] added to
    /// its query (a path such as `/tenants`, or an absolute URL). Required.
    pub fn done_page(mut self, page: impl Into<String>) -> Self {
        self.done_page = Some(page.into());
        self
    }

    /// The display name stored for a newly linked tenant (default: the domain of the
    /// admin's sign-in name, else the tenant id).
    pub fn display_name(
        mut self,
        name: impl Fn(&SignedInAdmin) -> String + Send + Sync + 'static,
    ) -> Self {
        self.display_name = Some(Arc::new(name));
        self
    }

    /// The cookie's name (default `act_onboarding`).
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Checks the settings and builds the router.
    ///
    /// # Errors
    /// [`Error::InvalidConfiguration`] when the account closure or the done page is
    /// missing, the cookie name is not a cookie name, or the onboarding's redirect URIs do
    /// not end in `/signed-in` and `/consented`.
    pub fn build(self) -> Result<Router, Error> {
        let bad = |what: &str| {
            Err(Error::InvalidConfiguration(format!(
                "onboarding routes: {what}"
            )))
        };
        let Some(account) = self.account else {
            return bad("say who is signed in to your app with .account(..)");
        };
        let Some(done_page) = self.done_page else {
            return bad("say where the browser goes at the end with .done_page(..)");
        };
        if self.cookie_name.is_empty()
            || !self
                .cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad("the cookie name must be letters, digits, '_' or '-'");
        }
        let paths_fit = {
            let (signed_in, consented) = self.onboarding.redirect_paths();
            signed_in.ends_with("/signed-in") && consented.ends_with("/consented")
        };
        if !paths_fit {
            return bad(
                "the onboarding's redirect URIs must end in /signed-in and /consented (the routes' paths under their prefix)",
            );
        }
        let mut onboarding = self.onboarding;
        if onboarding.store_is_default()
            && let Some(shared) = self.registry.onboarding_store()
        {
            onboarding.set_store(shared);
        }
        let shared = Arc::new(Shared {
            onboarding,
            registry: self.registry,
            account,
            done_page,
            display_name: self.display_name,
            cookie_name: self.cookie_name,
        });
        Ok(Router::new()
            .route("/start", get(start).post(start))
            .route("/signed-in", get(signed_in).post(signed_in_form))
            .route("/consent", get(consent_step))
            .route("/consented", get(consented))
            .with_state(shared))
    }
}

struct Shared {
    onboarding: Onboarding,
    registry: Arc<dyn TenantRegistry>,
    account: Arc<AccountFn>,
    done_page: String,
    display_name: Option<Arc<NameFn>>,
    cookie_name: String,
}

/// What the store keeps under the cookie's hash between the redirects.
#[derive(Serialize, Deserialize)]
struct Flow {
    account: String,
    step: Step,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Step {
    SigningIn {
        pending: PendingSignIn,
    },
    Consenting {
        pending: PendingConsent,
        url: String,
        display_name: String,
    },
}

/// How a request of the flow ends: the browser goes to `location`, with or without the
/// cookie.
struct Ending {
    location: String,
    cookie: CookieChange,
}

enum CookieChange {
    Keep,
    Set(String),
    Clear,
}

impl Shared {
    fn now(&self) -> u64 {
        crate::clock::unix_secs(self.onboarding.clock().now())
    }

    fn expires(&self) -> u64 {
        self.now()
            .saturating_add(self.onboarding.max_age().as_secs())
    }

    fn store(&self) -> &Arc<dyn OnboardingStore> {
        self.onboarding.store()
    }

    fn session(&self, parts: &Parts) -> Option<String> {
        let mut found = None;
        for header in parts.headers.get_all(COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for cookie in Cookie::split_parse(text).flatten() {
                if cookie.name() == self.cookie_name {
                    if found.is_some() {
                        return None; // two of ours: neither wins
                    }
                    found = Some(cookie.value().to_owned());
                }
            }
        }
        found.filter(|v| v.len() == 43)
    }

    fn cookie(&self, value: &str, max_age: u64) -> String {
        Cookie::build((self.cookie_name.as_str(), value))
            .http_only(true)
            .secure(true)
            .same_site(SameSite::Lax)
            .path("/")
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age).unwrap_or(i64::MAX),
            ))
            .build()
            .to_string()
    }

    fn done(&self, outcome: &OnboardingOutcome) -> Ending {
        Ending {
            location: outcome.on(&self.done_page),
            cookie: CookieChange::Clear,
        }
    }

    /// A failure: logged with the reason, tenant and trace id, then the app's page.
    fn failed(
        &self,
        reason: OutcomeReason,
        tenant: Option<&TenantId>,
        trace_id: Option<&str>,
        error: &dyn fmt::Display,
    ) -> Ending {
        tracing::warn!(
            target: "azure_cross_tenant::onboarding",
            reason = reason.code(),
            tenant = tenant.map(TenantId::as_str).unwrap_or("-"),
            trace_id = trace_id.unwrap_or("-"),
            error = %error,
            "onboarding ended without linking a tenant"
        );
        self.done(&OnboardingOutcome::Failed {
            reason,
            tenant: tenant.cloned(),
        })
    }

    fn refused(&self, e: &OnboardingError) -> Ending {
        self.failed(OutcomeReason::of(e), e.tenant(), e.trace_id(), e)
    }

    fn unavailable(&self, e: &Error) -> Ending {
        let reason = if e.is_retryable() {
            OutcomeReason::Unavailable
        } else {
            OutcomeReason::Internal
        };
        self.failed(reason, None, None, e)
    }

    async fn load(&self, key: &str) -> Result<Option<Flow>, Ending> {
        match self.store().get(key, self.now()).await {
            Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
                Ok(flow) => Ok(Some(flow)),
                Err(_) => Err(self.failed(
                    OutcomeReason::SessionNotFound,
                    None,
                    None,
                    &"a stored onboarding flow could not be read (written by another version?)",
                )),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    async fn save(&self, key: &str, flow: &Flow) -> Result<(), Ending> {
        let bytes = serde_json::to_vec(flow).map_err(|_| {
            self.failed(
                OutcomeReason::Internal,
                None,
                None,
                &"a flow did not encode",
            )
        })?;
        self.store()
            .put(key, &bytes, self.expires())
            .await
            .map_err(|e| self.unavailable(&e))
    }

    /// Removes a finished flow; a failure only leaves it to expire.
    async fn forget(&self, keys: &[&str]) {
        for key in keys {
            if let Err(e) = self.store().delete(key).await {
                tracing::warn!(target: "azure_cross_tenant::onboarding", error = %e, "could not remove a finished onboarding flow; it expires on its own");
            }
        }
    }

    /// The flow of this browser and its store key, checked against the app's account.
    async fn current(&self, parts: &Parts) -> Result<(String, Flow), Ending> {
        let not_found = || {
            self.failed(
                OutcomeReason::SessionNotFound,
                None,
                None,
                &"no onboarding cookie, or no flow under it",
            )
        };
        let session = self.session(parts).ok_or_else(not_found)?;
        let key = flow_key(&session);
        let flow = self.load(&key).await?.ok_or_else(not_found)?;
        match (self.account)(parts) {
            Some(account) if account == flow.account => Ok((key, flow)),
            _ => {
                self.forget(&[&key]).await;
                Err(self.failed(
                    OutcomeReason::AccountChanged,
                    None,
                    None,
                    &"the app's signed-in account is not the one that started the flow",
                ))
            }
        }
    }
}

fn flow_key(session: &str) -> String {
    format!("flow:{}", hex_digest(session.as_bytes()))
}

fn state_key(state: &str) -> String {
    format!("signin:{}", hex_digest(state.as_bytes()))
}

fn answer_key(state: &str) -> String {
    format!("answer:{}", hex_digest(state.as_bytes()))
}

/// The redirect for an ending, with no-store caching and no referrer (callback URLs may
/// carry a code).
fn respond(shared: &Shared, ending: Ending) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&ending.location) {
        headers.insert(LOCATION, location);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    let cookie = match ending.cookie {
        CookieChange::Keep => None,
        CookieChange::Set(value) => {
            Some(shared.cookie(&value, shared.onboarding.max_age().as_secs()))
        }
        CookieChange::Clear => Some(shared.cookie("", 0)),
    };
    if let Some(Ok(value)) = cookie.map(|c| HeaderValue::from_str(&c)) {
        headers.insert(SET_COOKIE, value);
    }
    response
}

fn either(result: Result<Ending, Ending>) -> Ending {
    match result {
        Ok(e) | Err(e) => e,
    }
}

async fn start(State(shared): State<Arc<Shared>>, parts: Parts) -> Response<Body> {
    let ending = either(begin(&shared, &parts).await);
    respond(&shared, ending)
}

async fn begin(shared: &Shared, parts: &Parts) -> Result<Ending, Ending> {
    let Some(account) = (shared.account)(parts) else {
        return Err(shared.failed(
            OutcomeReason::NotSignedIn,
            None,
            None,
            &"nobody is signed in to the app",
        ));
    };
    let (url, pending) = shared
        .onboarding
        .sign_in(SignInTenant::Organizations)
        .map_err(|e| shared.refused(&e))?;
    let session = random_value().map_err(|e| shared.refused(&e))?;
    let index = state_key(pending.state());
    let flow = Flow {
        account,
        step: Step::SigningIn { pending },
    };
    shared.save(&flow_key(&session), &flow).await?;
    shared
        .store()
        .put(&index, b"", shared.expires())
        .await
        .map_err(|e| shared.unavailable(&e))?;
    Ok(Ending {
        location: url.into(),
        cookie: CookieChange::Set(session),
    })
}

/// `form_post`: the browser POSTs the answer cross-site, without our `SameSite=Lax`
/// cookie. Keep the answer under its state (only a state this store issued), and send
/// the browser on to `GET signed-in`, a top-level navigation that carries the cookie.
async fn signed_in_form(State(shared): State<Arc<Shared>>, request: Request) -> Response<Body> {
    let ending = either(keep_form_answer(&shared, request).await);
    respond(&shared, ending)
}

async fn keep_form_answer(shared: &Shared, request: Request) -> Result<Ending, Ending> {
    let malformed = |why: &'static str| {
        shared.failed(
            OutcomeReason::Malformed,
            None,
            None,
            &OnboardingError::Malformed(why),
        )
    };
    let body = axum::body::to_bytes(request.into_body(), MAX_FORM)
        .await
        .map_err(|_| malformed("the form_post body is larger than 16 KiB"))?;
    let text =
        std::str::from_utf8(&body).map_err(|_| malformed("the form_post body is not UTF-8"))?;
    let callback = Callback::parse(text).map_err(|e| shared.refused(&e))?;
    let state = callback
        .get("state")
        .ok_or_else(|| malformed("the form_post answer has no state"))?;
    // Only answers to a sign-in this store started are kept: anyone can POST here.
    match shared.store().get(&state_key(state), shared.now()).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Err(shared.failed(
                OutcomeReason::StateMismatch,
                None,
                None,
                &OnboardingError::StateMismatch,
            ));
        }
        Err(e) => return Err(shared.unavailable(&e)),
    }
    shared
        .store()
        .put(&answer_key(state), text.as_bytes(), shared.expires())
        .await
        .map_err(|e| shared.unavailable(&e))?;
    Ok(Ending {
        location: "signed-in".into(),
        cookie: CookieChange::Keep,
    })
}

async fn signed_in(State(shared): State<Arc<Shared>>, parts: Parts) -> Response<Body> {
    let ending = either(finish_sign_in(&shared, &parts).await);
    respond(&shared, ending)
}

async fn finish_sign_in(shared: &Shared, parts: &Parts) -> Result<Ending, Ending> {
    let (key, flow) = shared.current(parts).await?;
    let Step::SigningIn { pending } = flow.step else {
        return Err(shared.failed(
            OutcomeReason::StateMismatch,
            None,
            None,
            &"a sign-in answer arrived for a flow past its sign-in",
        ));
    };
    let index = state_key(pending.state());
    let answer = match parts.uri.query().filter(|q| !q.is_empty()) {
        Some(query) => query.to_owned(),
        None => {
            let kept = shared
                .store()
                .take(&answer_key(pending.state()), shared.now())
                .await
                .map_err(|e| shared.unavailable(&e))?;
            match kept.map(String::from_utf8) {
                Some(Ok(answer)) => answer,
                _ => {
                    return Err(shared.failed(
                        OutcomeReason::StateMismatch,
                        None,
                        None,
                        &"no sign-in answer for this session's state",
                    ));
                }
            }
        }
    };
    let admin = match shared.onboarding.finish_sign_in(pending, &answer).await {
        Ok(admin) => admin,
        // Not provably this session's answer: the real one may still come.
        Err(e @ (OnboardingError::StateMismatch | OnboardingError::Malformed(_))) => {
            return Err(Ending {
                cookie: CookieChange::Keep,
                ..shared.refused(&e)
            });
        }
        Err(e) => {
            shared.forget(&[&key, &index]).await;
            return Err(shared.refused(&e));
        }
    };
    let display_name = match &shared.display_name {
        Some(name) => name(&admin),
        None => default_name(&admin),
    };
    let (url, pending) = match shared.onboarding.consent(&admin).await {
        Ok(next) => next,
        Err(e) => {
            shared.forget(&[&key, &index]).await;
            return Err(shared.refused(&e));
        }
    };
    let flow = Flow {
        account: flow.account,
        step: Step::Consenting {
            pending,
            url: url.into(),
            display_name,
        },
    };
    shared.save(&key, &flow).await?;
    shared.forget(&[&index]).await;
    Ok(Ending {
        location: "consent".into(),
        cookie: CookieChange::Keep,
    })
}

/// The admin's sign-in domain (`admin@contoso.com`: `contoso.com`), else the tenant id.
fn default_name(admin: &SignedInAdmin) -> String {
    admin
        .username()
        .and_then(|u| u.rsplit_once('@'))
        .map(|(_, domain)| domain.to_owned())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| admin.tenant().to_string())
}

async fn consent_step(State(shared): State<Arc<Shared>>, parts: Parts) -> Response<Body> {
    let ending = either(
        async {
            let (_, flow) = shared.current(&parts).await?;
            match flow.step {
                Step::Consenting { url, .. } => Ok(Ending {
                    location: url,
                    cookie: CookieChange::Keep,
                }),
                Step::SigningIn { .. } => Err(shared.failed(
                    OutcomeReason::SessionNotFound,
                    None,
                    None,
                    &"the consent step was asked before the sign-in finished",
                )),
            }
        }
        .await,
    );
    respond(&shared, ending)
}

async fn consented(State(shared): State<Arc<Shared>>, parts: Parts) -> Response<Body> {
    let ending = either(finish(&shared, &parts).await);
    respond(&shared, ending)
}

async fn finish(shared: &Shared, parts: &Parts) -> Result<Ending, Ending> {
    let (key, flow) = shared.current(parts).await?;
    let Step::Consenting {
        pending,
        display_name,
        ..
    } = flow.step
    else {
        return Err(shared.failed(
            OutcomeReason::StateMismatch,
            None,
            None,
            &"a consent answer arrived before the sign-in finished",
        ));
    };
    let tenant = pending.tenant().clone();
    let query = parts.uri.query().unwrap_or_default();
    let onboarded = match shared.onboarding.finish_consent(pending, query).await {
        Ok(onboarded) => onboarded,
        Err(e @ (OnboardingError::StateMismatch | OnboardingError::Malformed(_))) => {
            return Err(Ending {
                cookie: CookieChange::Keep,
                ..shared.failed(OutcomeReason::of(&e), Some(&tenant), None, &e)
            });
        }
        Err(e) => {
            shared.forget(&[&key]).await;
            let tenant = e.tenant().cloned().unwrap_or(tenant);
            return Err(shared.failed(OutcomeReason::of(&e), Some(&tenant), e.trace_id(), &e));
        }
    };
    shared.forget(&[&key]).await;
    let record = onboarded.record(display_name);
    match shared
        .registry
        .link(&flow.account, record, Relink::Refuse)
        .await
    {
        Ok(stored) => {
            tracing::info!(
                target: "azure_cross_tenant::onboarding",
                tenant = %stored.tenant,
                account = %flow.account,
                proof = ?onboarded.proof,
                "tenant linked"
            );
            let outcome = match (&onboarded.proof, stored.state) {
                (AdminProof::FreshConsent, crate::registry::OnboardingState::Pending) => {
                    OnboardingOutcome::PendingApproval {
                        tenant: stored.tenant,
                    }
                }
                _ => OnboardingOutcome::Linked {
                    tenant: stored.tenant,
                },
            };
            Ok(shared.done(&outcome))
        }
        Err(e) => Err(shared.failed(OutcomeReason::of_link(&e), Some(&tenant), None, &e)),
    }
}
