//! A scripted browser for the onboarding routes (it keeps the app's one cookie and
//! follows nothing by itself), the provider's app on loopback, and a TCP relay that can
//! cut a database's connections.

use std::sync::{Arc, Mutex};

use azure_cross_tenant::{
    Cached, Onboarding, OnboardingOutcome, OnboardingRoutes, SqlRegistry, TenantRegistry,
};
use mock_entra::MockRedirect;
use url::Url;

use crate::world::{VAULT, World};

/// One replica of the provider's web app: the onboarding routes under `/onboarding`.
pub struct App {
    pub base: Url,
    pub registry: Arc<dyn TenantRegistry>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl App {
    /// A replica on `url`'s database; the account is the `x-account` header (the test's
    /// stand-in for the app's own login).
    pub async fn start(w: &World, url: &str) -> App {
        Self::start_at(w, url, None).await
    }

    /// Another replica of `first`'s app: its own address, but `first`'s redirect URIs, as
    /// replicas behind one public host have (a sign-in code is redeemed with the
    /// redirect URI its authorization request named, whichever replica redeems it).
    pub async fn replica_of(w: &World, url: &str, first: &App) -> App {
        Self::start_at(w, url, Some(&first.base)).await
    }

    async fn start_at(w: &World, url: &str, public: Option<&Url>) -> App {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base: Url = format!("http://{}/", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let public = public.unwrap_or(&base);
        let signed_in = public.join("onboarding/signed-in").unwrap();
        let consented = public.join("onboarding/consented").unwrap();
        w.entra.add_redirect_uri(&w.app, signed_in.as_str());
        w.entra.add_redirect_uri(&w.app, consented.as_str());
        let onboarding =
            Onboarding::builder(Cached::new(w.credential()), VAULT, signed_in.as_str())
                .consent_redirect_uri(consented.as_str())
                .clock(Arc::new(w.clock.clone()))
                .sleeper(Arc::new(w.clock.clone()))
                .build()
                .unwrap();
        let registry: Arc<dyn TenantRegistry> = Arc::new(SqlRegistry::connect(url).await.unwrap());
        let routes = OnboardingRoutes::builder(onboarding, registry.clone())
            .account(|parts| {
                parts
                    .headers
                    .get("x-account")?
                    .to_str()
                    .ok()
                    .map(str::to_owned)
            })
            .done_page("/tenants")
            .build()
            .unwrap();
        let app = axum::Router::new().nest("/onboarding", routes);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        App {
            base,
            registry,
            server,
        }
    }
}

/// One answer of the app: status, where it sends the browser (resolved), cookies set.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<Url>,
    pub set_cookie: Vec<String>,
}

impl Answer {
    /// The outcome the app's page gets, when this is the redirect to it.
    pub fn outcome(&self) -> OnboardingOutcome {
        let location = self.location.as_ref().expect("a redirect");
        assert_eq!(location.path(), "/tenants", "{location}");
        OnboardingOutcome::from_query(location.query().unwrap_or_default()).expect("an outcome")
    }
}

/// The admin's browser: the app's cookie jar (one cookie), the app's login (`x-account`).
#[derive(Clone)]
pub struct Browser {
    http: reqwest::Client,
    pub account: String,
    pub cookie: Arc<Mutex<Option<String>>>,
}

impl Browser {
    pub fn new(account: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            account: account.into(),
            cookie: Arc::default(),
        }
    }

    fn keep(&self, response: &reqwest::Response) -> Answer {
        let set_cookie: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for c in &set_cookie {
            let pair = c.split(';').next().unwrap_or_default();
            let mut jar = self.cookie.lock().unwrap();
            *jar = if pair.ends_with('=') {
                None
            } else {
                Some(pair.to_owned())
            };
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(|l| response.url().join(l).unwrap());
        Answer {
            status: response.status().as_u16(),
            location,
            set_cookie,
        }
    }

    /// A top-level GET of the app: the cookie goes along (SameSite=Lax allows it).
    pub async fn get(&self, url: &Url) -> Answer {
        let mut request = self
            .http
            .get(url.clone())
            .header("x-account", &self.account);
        if let Some(cookie) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        self.keep(&response)
    }

    /// The `form_post` page's cross-site POST: a `SameSite=Lax` cookie does not go along.
    pub async fn post_form(&self, back: &MockRedirect) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&back.params)
            .finish();
        let response = self
            .http
            .post(back.target.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        self.keep(&response)
    }
}

/// Where a redirect from the mock lands, as a URL with its parameters in the query.
pub fn with_query(back: &MockRedirect) -> Url {
    let mut url = back.target.clone();
    url.query_pairs_mut().extend_pairs(&back.params);
    url
}

/// A loopback TCP relay to a port, which can be cut (connections dropped, new ones refused).
pub struct Relay {
    pub port: u16,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    pub async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let inner = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                inner.lock().unwrap().push(relay);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { port, tasks }
    }

    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
