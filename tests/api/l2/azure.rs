//! Redis as Azure serves it: TLS only (a CA and certificate made at test time), and
//! Microsoft Entra authentication, stood in for by an ACL user named after the identity's
//! object id whose passwords are exactly the Redis tokens MockEntra issued and the test
//! has not yet expired. Tokens rotate on the test's clock; live connections must sign in
//! again and keep working.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::servers::{Cli, Cluster, Redis, TestCa};
use super::{Backend, keys, replica_with};
use crate::common::{VAULT, World, child_part, run_child};
use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    AccessToken, ClientSecret, Error, L2Store, RedisEntraAuth, RedisStore, SharedCache,
    TenantCredentialProvider, TenantId,
};

/// The resource the mock issues Redis tokens for (the public cloud's Redis scope).
const REDIS: &str = "https://redis.azure.com";
const REDIS_SCOPE: &str = "https://redis.azure.com/.default";

/// Real time, for what servers and background tasks take (bounded by the callers).
#[allow(clippy::disallowed_methods)]
async fn pause(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// The app's credential in its home tenant, through which every Redis token passes: each
/// one MockEntra issues becomes a password of the identity's ACL user on every node
/// (unless the test makes Redis refuse them), as Azure accepts any current token.
#[derive(Debug, Clone)]
struct AclStandIn {
    inner: Arc<ClientSecret>,
    nodes: Vec<Cli>,
    issued: Arc<Mutex<Vec<String>>>,
    accept: Arc<AtomicBool>,
}

impl AclStandIn {
    fn new(w: &World, backend: &Backend, accept: bool) -> Self {
        w.entra.add_resource(&w.home, REDIS);
        w.entra.consent(&w.home, &w.app);
        Self {
            inner: Arc::new(w.credential()),
            nodes: backend.servers().iter().map(|s| s.cli_handle()).collect(),
            issued: Arc::default(),
            accept: Arc::new(AtomicBool::new(accept)),
        }
    }

    fn issued(&self) -> Vec<String> {
        self.issued.lock().unwrap().clone()
    }

    /// The identity's object id: the user name tokens sign in as.
    fn user(&self) -> String {
        let issued = self.issued();
        decode_unverified(&issued[0]).unwrap().oid.unwrap()
    }

    /// Every token but the `keep` newest expires: Redis refuses it from now on.
    fn expire_all_but(&self, keep: usize) {
        let issued = self.issued();
        let user = self.user();
        for token in &issued[..issued.len().saturating_sub(keep)] {
            for node in &self.nodes {
                node.run(&["ACL", "SETUSER", &user, &format!("<{token}")]);
            }
        }
    }

    /// A store on `backend` signing in with this credential's tokens, on the world's clock.
    fn store(&self, w: &World, backend: &Backend) -> RedisStore {
        let auth = RedisEntraAuth::new(self.clone(), w.home.clone())
            .scope(REDIS_SCOPE)
            .clock(Arc::new(w.clock.clone()));
        backend.store().entra(auth).unwrap()
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for AclStandIn {
    fn client_id(&self) -> &str {
        self.inner.client_id()
    }

    fn authority_host(&self) -> &url::Url {
        self.inner.authority_host()
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let token = self.inner.get_token(tenant, scopes).await?;
        let user = decode_unverified(token.secret()).unwrap().oid.unwrap();
        if self.accept.load(Ordering::Acquire) {
            let password = format!(">{}", token.secret());
            for node in &self.nodes {
                let done = node.run(&["ACL", "SETUSER", &user, "on", &password, "~*", "+@all"]);
                assert!(done.contains("OK"), "ACL SETUSER: {done}");
            }
        }
        self.issued.lock().unwrap().push(token.secret().to_owned());
        Ok(token)
    }
}

fn consented(w: &World, name: &str) -> TenantId {
    let t = w.entra.add_tenant(name);
    w.entra.consent(&t, &w.app);
    t
}

/// The ids of the connections signed in as `user`, on every node, sorted.
fn connections_of(backend: &Backend, user: &str) -> Vec<String> {
    let mut ids: Vec<String> = backend
        .servers()
        .iter()
        .flat_map(|s| {
            s.cli(&["CLIENT", "LIST"])
                .lines()
                .filter(|l| l.contains(&format!(" user={user} ")))
                .filter_map(|l| l.split(' ').next().map(str::to_owned))
                .map(|id| format!("{}:{id}", s.port))
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

/// `AUTH` commands every node has run, and how many of them failed.
fn auth_calls(backend: &Backend) -> (u64, u64) {
    let mut total = (0, 0);
    for server in backend.servers() {
        let stats = server.cli(&["INFO", "commandstats"]);
        let Some(line) = stats.lines().find(|l| l.starts_with("cmdstat_auth:")) else {
            continue;
        };
        let field = |name: &str| -> u64 {
            line.split([':', ','])
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        total.0 += field("calls");
        total.1 += field("failed_calls");
    }
    total
}

fn tls_single(ca: &TestCa) -> Backend {
    Backend::Single(Redis::start_tls(ca))
}

fn tls_cluster(ca: &TestCa) -> Backend {
    Backend::Cluster(Cluster::start_tls(ca))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn entra_signed_in_connections_sign_in_again_as_tokens_rotate_on_tls_redis() {
    let ca = TestCa::new();
    tokens_rotate_on_live_connections(tls_single(&ca)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn entra_signed_in_connections_sign_in_again_as_tokens_rotate_on_a_tls_cluster() {
    let ca = TestCa::new();
    tokens_rotate_on_live_connections(tls_cluster(&ca)).await;
}

/// Two replicas share tokens over TLS, signed in with Entra tokens. Three quarters into
/// the Redis token's life (on the test's clock), each store fetches a new one and every
/// live connection sends `AUTH` with it (the same connections: none is replaced); once the
/// old tokens expire, calls keep working without a single L2 error, and a replica started
/// afterwards signs in with a current token.
async fn tokens_rotate_on_live_connections(backend: Backend) {
    let w = World::new().await;
    let acl = AclStandIn::new(&w, &backend, true);
    let shared = |store: RedisStore| {
        SharedCache::new(Arc::new(store), keys("k1", 1)).timeout(Duration::from_millis(500))
    };
    let a_store = Arc::new(acl.store(&w, &backend));
    let a = replica_with(
        &w,
        SharedCache::new(a_store.clone(), keys("k1", 1)).timeout(Duration::from_millis(500)),
    );
    let b = replica_with(&w, shared(acl.store(&w, &backend)));
    let first = a.get_token(&w.customer, &[VAULT]).await.unwrap();
    let asked = w.entra.token_requests_for(&w.customer);
    let read = b.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(
        read.secret() == first.secret(),
        "B read A's token over TLS: {:?} {:?} {:?}",
        a.stats(),
        a_store.ping().await,
        a_store.auth_stats()
    );
    assert_eq!(w.entra.token_requests_for(&w.customer), asked);
    assert_eq!(acl.issued().len(), 2, "one Redis token per store");

    let user = acl.user();
    let live = connections_of(&backend, &user);
    assert!(!live.is_empty(), "connections signed in as {user}");
    let (auths, _) = auth_calls(&backend);

    // Three quarters of the Redis token's hour later, any call makes its store refresh.
    w.clock.advance(Duration::from_secs(46 * 60));
    let nudge = consented(&w, "nudge.example");
    a.get_token(&nudge, &[VAULT]).await.unwrap();
    b.get_token(&nudge, &[VAULT]).await.unwrap();
    let mut signed_in_again = false;
    for _ in 0..100 {
        let (calls, failed) = auth_calls(&backend);
        assert_eq!(failed, 0, "an AUTH failed");
        if acl.issued().len() == 4 && calls >= auths + live.len() as u64 {
            signed_in_again = true;
            break;
        }
        pause(50).await;
    }
    assert!(
        signed_in_again,
        "{} tokens issued, {:?} AUTH calls (from {auths}) for {} connections",
        acl.issued().len(),
        auth_calls(&backend),
        live.len()
    );
    assert_eq!(
        connections_of(&backend, &user),
        live,
        "live connections signed in again rather than being replaced"
    );

    // The first tokens expire: Redis refuses them from now on. Nothing fails.
    acl.expire_all_but(2);
    let errors = a.stats().l2_errors + b.stats().l2_errors;
    for i in 0..5 {
        let t = consented(&w, &format!("after{i}.example"));
        let from_a = a.get_token(&t, &[VAULT]).await.unwrap();
        let from_b = b.get_token(&t, &[VAULT]).await.unwrap();
        assert_eq!(
            from_b.secret(),
            from_a.secret(),
            "shared after the rotation"
        );
        assert_eq!(w.entra.token_requests_for(&t), 1);
    }
    assert_eq!(
        a.stats().l2_errors + b.stats().l2_errors,
        errors,
        "L2 errors after the rotation: {:?} {:?}",
        a.stats(),
        b.stats()
    );

    // A replica started now signs in with a token of its own.
    let c = replica_with(&w, shared(acl.store(&w, &backend)));
    let t = consented(&w, "late.example");
    let from_a = a.get_token(&t, &[VAULT]).await.unwrap();
    assert_eq!(
        c.get_token(&t, &[VAULT]).await.unwrap().secret(),
        from_a.secret()
    );
    assert_eq!(acl.issued().len(), 5);
    let (_, failed) = auth_calls(&backend);
    assert_eq!(failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn a_token_redis_refuses_opens_the_breaker_and_is_logged_once_per_interval() {
    if child_part().is_some() {
        return child_a_refused_token().await;
    }
    // The log is process-wide: a child process runs this alone.
    run_child(
        module_path!(),
        "a_token_redis_refuses_opens_the_breaker_and_is_logged_once_per_interval",
        "refused token",
        &[],
    )
    .await;
}

/// What the child's tracing writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The child process's part: it installs the global subscriber.
async fn child_a_refused_token() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    )
    .unwrap();
    let ca = TestCa::new();
    let backend = tls_single(&ca);
    let w = World::new().await;
    // Tokens are issued, but Redis knows none of them: every AUTH is a WRONGPASS.
    let acl = AclStandIn::new(&w, &backend, false);
    let store = Arc::new(acl.store(&w, &backend));
    let a = replica_with(
        &w,
        SharedCache::new(store.clone(), keys("k1", 1))
            .timeout(Duration::from_millis(500))
            .circuit_breaker(3, Duration::from_secs(2)),
    );
    let mut tenants = Vec::new();
    for i in 0..20 {
        tenants.push(consented(&w, &format!("refused{i}.example")));
    }
    for t in &tenants[..10] {
        let token = a.get_token(t, &[VAULT]).await.unwrap();
        let tid = decode_unverified(token.secret()).unwrap().tid;
        assert_eq!(
            tid.as_deref(),
            Some(t.as_str()),
            "tokens still come from Entra"
        );
    }
    let errors = a.stats().l2_errors;
    assert!(errors >= 3, "{:?}", a.stats());
    for t in &tenants[10..] {
        a.get_token(t, &[VAULT]).await.unwrap();
    }
    assert_eq!(
        a.stats().l2_errors,
        errors,
        "the breaker is open: calls skip L2 until a probe gets through"
    );
    let refused = store.ping().await.unwrap_err().to_string();
    assert!(refused.contains("WRONGPASS"), "{refused}");
    assert!(!acl.issued().iter().any(|t| refused.contains(t.as_str())));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = logs
        .lines()
        .filter(|l| l.contains("shared token cache call failed"))
        .count();
    assert_eq!(warnings, 1, "one line per probe interval: {logs}");
    assert!(logs.contains("WRONGPASS"), "the line says why: {logs}");
    for token in acl.issued() {
        assert!(!logs.contains(&token), "a token in the log");
    }
}

/// A certificate the store does not trust, or that does not name the host in the URL, is
/// an error that says which (and a miss for the cache), never a plain-text fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: apt-get install redis-server, then --include-ignored"]
async fn an_untrusted_or_misnamed_certificate_is_an_error_that_says_so() {
    let ca = TestCa::new();
    let redis = Redis::start_tls(&ca);
    let port = redis.port;
    let untrusted = RedisStore::new(&redis.url()).unwrap();
    let e = untrusted.ping().await.unwrap_err();
    let error = e.to_string();
    assert!(
        error.contains("not signed by a trusted CA"),
        "{error} {e:?}"
    );

    let misnamed = RedisStore::new(&format!("rediss://localhost:{port}/"))
        .unwrap()
        .tls_ca_pem(&ca.pem)
        .unwrap();
    let error = misnamed.ping().await.unwrap_err().to_string();
    assert!(error.contains("does not name this host"), "{error}");

    let plain = Redis::start();
    let not_tls = RedisStore::new(&format!("rediss://127.0.0.1:{}/", plain.port))
        .unwrap()
        .tls_ca_pem(&ca.pem)
        .unwrap();
    let error = not_tls.ping().await.unwrap_err().to_string();
    assert!(error.contains("TLS"), "{error}");

    // Tokens keep coming (from Entra) through a store that cannot connect.
    let w = World::new().await;
    let a = replica_with(
        &w,
        SharedCache::new(Arc::new(untrusted), keys("k1", 1)).timeout(Duration::from_millis(500)),
    );
    a.get_token(&w.customer, &[VAULT]).await.unwrap();

    // Settings that would turn TLS off, or send a token in plain text, are refused.
    let plain_with_ca = RedisStore::new("redis://127.0.0.1:1/")
        .unwrap()
        .tls_ca_pem(&ca.pem);
    assert!(plain_with_ca.is_err());
    assert!(RedisStore::new("rediss://127.0.0.1:1/#insecure").is_err());
    let auth = RedisEntraAuth::new(w.credential(), w.home.clone());
    assert!(
        RedisStore::new("redis://cache.example:6379/")
            .unwrap()
            .entra(auth.clone())
            .is_err()
    );
    assert!(
        RedisStore::new("rediss://user:password@cache.example:6380/")
            .unwrap()
            .entra(auth)
            .is_err()
    );
}
