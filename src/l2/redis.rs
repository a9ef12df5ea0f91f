//! [`RedisStore`]: Redis (one server, or a Redis Cluster) as the L2 store, over TCP or TLS
//! (`rediss://`, on rustls, with the system's roots or a CA of the caller's), signed in
//! with a password in the URL or with Microsoft Entra tokens ([`RedisEntraAuth`]).
//!
//! The connection is built in a background task under its own deadline
//! ([`RedisStore::connect_timeout`]), never inside a call: a call waits for it only as long
//! as its own timeout allows, and a call cancelled by that timeout leaves the connection
//! to finish for the next one. A connection that breaks is dropped and rebuilt the same
//! way; the circuit breaker's probe ([`L2Store::ping`]) pings it and rebuilds it if the
//! ping fails, so a Redis restart costs one probe interval, not a failed probe.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, TlsCertificates,
    Value,
};
use tokio::sync::watch;

use super::entra::{EntraCredentials, RedisAuthStats, RedisEntraAuth};
use super::store::{L2Error, L2Store};

/// Compare-and-delete: frees a lease (or drops a value) only while it holds what the
/// caller saw, so a replica never frees a lease another replica holds now.
const DELETE_IF: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Writes the tombstone ARGV[1] (decimal ms) for ARGV[2] ms unless the key holds a later
/// one (1 to 20 digits: what `tombstone_time` in `store.rs` accepts). Lua's numbers are
/// doubles: exact for every millisecond timestamp (below 2^53).
const PUT_TOMBSTONE: &str = "local held = redis.call('GETRANGE', KEYS[1], 0, 32) \
if string.len(held) <= 20 and string.match(held, '^%d+$') and tonumber(held) >= tonumber(ARGV[1]) then return 0 end \
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

/// Default deadline for building a connection (TCP, TLS, and for a cluster the slot map
/// and a connection per primary).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Redis as the L2 store, over one multiplexed connection (or, for a cluster, one per
/// primary), rebuilt in the background when it breaks. Feature `redis`.
///
/// ```no_run
/// # fn run() -> Result<(), azure_cross_tenant::Error> {
/// use std::time::Duration;
/// use azure_cross_tenant::RedisStore;
///
/// let single = RedisStore::new("redis://cache.internal:6379")?;
/// let cluster = RedisStore::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])?
///     .connect_timeout(Duration::from_secs(5));
/// // TLS: the system's roots, or a CA of your own (a private endpoint, a test CA).
/// let tls = RedisStore::new("rediss://cache.internal:6380")?
///     .tls_ca_pem(b"-----BEGIN CERTIFICATE-----\n...")?;
/// # Ok(()) }
/// ```
///
/// A `rediss://` store never falls back to plain text: a certificate that is not trusted
/// or does not name the host is an [`L2Error`] that says so (a miss, like every L2
/// failure). For Azure Managed Redis and Azure Cache for Redis with Microsoft Entra
/// authentication, see [`RedisStore::entra`].
///
/// On failover, calls fail or time out (misses: tokens come from L1 or Entra) until the
/// connection is rebuilt; values written to a lost primary are simply fetched again.
pub struct RedisStore {
    link: Arc<Link>,
}

/// What a store was configured with; targets are built from it.
#[derive(Clone)]
struct Settings {
    /// One URL, or a cluster's seed URLs.
    urls: Vec<String>,
    cluster: bool,
    connect_timeout: Duration,
    ca_pem: Option<Vec<u8>>,
    auth: Option<EntraCredentials>,
}

struct Link {
    settings: Settings,
    target: Target,
    state: Mutex<State>,
}

enum Target {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// What a connection attempt ended with: the connection and its generation, or why not.
type Outcome = Option<Result<(Conn, u64), L2Error>>;

enum State {
    Down { generation: u64 },
    Connecting(watch::Receiver<Outcome>),
    Up(Conn, u64),
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may carry a password: show only where the store points.
        let settings = &self.link.settings;
        let mut d = f.debug_struct("RedisStore");
        match &self.link.target {
            Target::Single(client) => {
                d.field("addr", &client.get_connection_info().addr().to_string())
            }
            Target::Cluster(_) => d.field("cluster_nodes", &settings.urls.len()),
        };
        d.field("tls", &settings.tls())
            .field(
                "ca",
                &if settings.ca_pem.is_some() {
                    "given"
                } else {
                    "system roots"
                },
            )
            .field("entra", &settings.auth)
            .field("connect_timeout", &settings.connect_timeout)
            .finish()
    }
}

fn invalid_url(e: RedisError) -> crate::Error {
    crate::Error::InvalidConfiguration(format!(
        "invalid Redis URL ({:?}): use redis://[user:password@]host:port[/db] or rediss://... \
         for TLS",
        e.kind()
    ))
}

fn invalid(why: impl Into<String>) -> crate::Error {
    crate::Error::InvalidConfiguration(why.into())
}

impl Settings {
    fn tls(&self) -> bool {
        self.urls.iter().any(|u| u.starts_with("rediss://"))
    }

    /// Checks the URLs and builds the client(s) they describe.
    fn target(&self) -> Result<Target, crate::Error> {
        let mut infos = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            let info = url.as_str().into_connection_info().map_err(invalid_url)?;
            if let ConnectionAddr::TcpTls { insecure: true, .. } = info.addr() {
                return Err(invalid(
                    "the Redis URL turns certificate checks off (#insecure): give the \
                     server's CA with RedisStore::tls_ca_pem instead",
                ));
            }
            let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
            if tls != self.tls() {
                return Err(invalid(
                    "a Redis Cluster's node URLs must all be rediss:// (TLS) or all redis://",
                ));
            }
            if self.auth.is_some() {
                if info.redis_settings().password().is_some() {
                    return Err(invalid(
                        "the Redis URL carries a password and Entra authentication is set: \
                         remove the password from the URL",
                    ));
                }
                let loopback = match info.addr() {
                    ConnectionAddr::Tcp(host, _) => host
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback()),
                    _ => true,
                };
                if !loopback {
                    return Err(invalid(
                        "Entra authentication sends access tokens: use a rediss:// (TLS) URL \
                         (Azure serves Entra-authenticated Redis over TLS only)",
                    ));
                }
            }
            infos.push(info);
        }
        if self.ca_pem.is_some() && !self.tls() {
            return Err(invalid(
                "a CA certificate is set but the Redis URL is redis:// (plain text): use \
                 rediss://",
            ));
        }
        let certs = || TlsCertificates {
            client_tls: None,
            root_cert: self.ca_pem.clone(),
        };
        if !self.cluster {
            let info = infos.remove(0);
            let client = match &self.ca_pem {
                Some(_) => redis::Client::build_with_tls(info, certs()),
                None => redis::Client::open(info),
            }
            .map_err(|e| invalid(format!("the Redis TLS settings are not usable: {e}")))?;
            return Ok(Target::Single(Box::new(client)));
        }
        // Each node gets a third of the deadline, so a master that accepts connections but
        // answers nothing (hung, partitioned) is left out of a new cluster connection
        // instead of failing it: only its slots fail until it is back.
        let per_node = self.connect_timeout / 3;
        let mut builder = ClusterClient::builder(infos)
            .connection_timeout(per_node)
            .response_timeout(per_node)
            // A lost primary must not hold a call in retries: the call's own timeout and
            // the circuit breaker decide, and tokens come from L1 or Entra meanwhile.
            .retries(1)
            .min_retry_wait(10)
            .max_retry_wait(100);
        if self.ca_pem.is_some() {
            builder = builder.certs(certs());
        }
        if let Some(auth) = &self.auth {
            builder = builder.set_credentials_provider(auth.clone());
        }
        let client = builder
            .build()
            .map_err(|e| invalid(format!("the Redis Cluster settings are not usable: {e}")))?;
        Ok(Target::Cluster(Box::new(client)))
    }
}

impl RedisStore {
    /// A store on one Redis server (or a primary behind a failover endpoint) at `url`
    /// (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS). Connects in the
    /// background on first use, so a Redis that is down at startup does not stop the
    /// service.
    pub fn new(url: &str) -> Result<Self, crate::Error> {
        Self::with_settings(Settings {
            urls: vec![url.to_owned()],
            cluster: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ca_pem: None,
            auth: None,
        })
    }

    /// A store on a Redis Cluster reached through any of `nodes` (each a `redis://` or,
    /// all of them, `rediss://` URL); the slot map is learned from them and followed as it
    /// changes. An entry, its lease and its tenant's tombstone share a hash slot, so the
    /// lease protocol needs no cross-slot command.
    pub fn cluster<I, S>(nodes: I) -> Result<Self, crate::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let urls: Vec<String> = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        if urls.is_empty() {
            return Err(invalid("a Redis Cluster store needs at least one node URL"));
        }
        Self::with_settings(Settings {
            urls,
            cluster: true,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ca_pem: None,
            auth: None,
        })
    }

    fn with_settings(settings: Settings) -> Result<Self, crate::Error> {
        let target = settings.target()?;
        Ok(Self {
            link: Arc::new(Link {
                settings,
                target,
                state: Mutex::new(State::Down { generation: 0 }),
            }),
        })
    }

    fn reconfigured(self, change: impl FnOnce(&mut Settings)) -> Result<Self, crate::Error> {
        let mut settings = self.link.settings.clone();
        change(&mut settings);
        Self::with_settings(settings)
    }

    /// Deadline for building a connection in the background (default 3 s). Calls never
    /// wait for it longer than their own timeout.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        let settings = self.link.settings.clone();
        self.reconfigured(|s| s.connect_timeout = timeout)
            .unwrap_or_else(|_| {
                // The settings were checked already; only the timeout changed.
                Self::with_settings(settings).unwrap_or_else(|_| unreachable!())
            })
    }

    /// Trusts the CA certificate(s) in `pem` (PEM text) for the server's certificate,
    /// instead of the system's roots: a private endpoint's CA, a test CA. The URL must be
    /// `rediss://`.
    pub fn tls_ca_pem(self, pem: impl AsRef<[u8]>) -> Result<Self, crate::Error> {
        let pem = pem.as_ref().to_vec();
        let has_cert = String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----");
        if !has_cert {
            return Err(invalid(
                "the Redis CA is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }
        self.reconfigured(|s| s.ca_pem = Some(pem))
    }

    /// Signs in with Microsoft Entra tokens instead of a password (Azure Managed Redis,
    /// Azure Cache for Redis): `AUTH <object id> <token>` on every new connection, and
    /// again on every live one before its token expires. The URL must be `rediss://`
    /// (plain `redis://` only on a loopback address) and carry no password.
    ///
    /// ```no_run
    /// # #[cfg(feature = "azure-core")]
    /// # fn run() -> Result<(), azure_cross_tenant::Error> {
    /// use azure_cross_tenant::{ManagedIdentity, RedisEntraAuth, RedisStore};
    ///
    /// // Azure Cache for Redis: one endpoint, TLS on 6380.
    /// let identity = ManagedIdentity::UserAssigned { client_id: "22222222-3333-4444-5555-666666666666".into() };
    /// let store = RedisStore::new("rediss://my-cache.redis.cache.windows.net:6380")?
    ///     .entra(RedisEntraAuth::managed_identity(identity)?)?;
    /// # let _ = store; Ok(()) }
    /// ```
    pub fn entra(self, auth: RedisEntraAuth) -> Result<Self, crate::Error> {
        let credentials = auth.into_credentials();
        self.reconfigured(|s| s.auth = Some(credentials))
    }

    /// Counters of the Entra authentication (tokens fetched, failed fetches, failed
    /// re-authentications), or `None` without it.
    pub fn auth_stats(&self) -> Option<RedisAuthStats> {
        self.link
            .settings
            .auth
            .as_ref()
            .map(EntraCredentials::stats)
    }
}

impl Link {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live connection, starting a background attempt if there is none; waits for
    /// the attempt (the caller's timeout bounds the wait, not the attempt).
    async fn connection(self: &Arc<Self>) -> Result<(Conn, u64), L2Error> {
        if let Some(auth) = &self.settings.auth {
            auth.tick();
            if auth.take_reconnect() {
                // A live connection did not sign in again: a new one signs in with the
                // current token.
                let mut state = self.state();
                if let State::Up(_, generation) = &*state {
                    *state = State::Down {
                        generation: *generation,
                    };
                }
            }
        }
        let mut outcome = {
            let mut state = self.state();
            match &*state {
                State::Up(conn, generation) => return Ok((conn.clone(), *generation)),
                State::Connecting(rx) => rx.clone(),
                State::Down { generation } => {
                    let (tx, rx) = watch::channel(None);
                    self.spawn_connect(tx, generation + 1)?;
                    *state = State::Connecting(rx.clone());
                    rx
                }
            }
        };
        let result = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| L2Error::new("the connection attempt was abandoned"))?;
        result.clone().unwrap_or_else(|| {
            Err(L2Error::new(
                "the connection attempt ended without a result",
            ))
        })
    }

    fn spawn_connect(
        self: &Arc<Self>,
        tx: watch::Sender<Outcome>,
        generation: u64,
    ) -> Result<(), L2Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| L2Error::with_source("no tokio runtime to connect on", e))?;
        let link = self.clone();
        runtime.spawn(async move {
            let timeout = link.settings.connect_timeout;
            let what = link.target.describe(&link.settings);
            let result =
                match tokio::time::timeout(timeout, link.target.connect(&link.settings)).await {
                    Ok(Ok(conn)) => Ok((conn, generation)),
                    Ok(Err(e)) => Err(connect_error(&what, e)),
                    Err(_) => Err(L2Error::new(format!(
                        "connecting to {what} took longer than {timeout:?} \
                     (RedisStore::connect_timeout)"
                    ))),
                };
            *link.state() = match &result {
                Ok((conn, generation)) => State::Up(conn.clone(), *generation),
                Err(_) => State::Down { generation },
            };
            let _ = tx.send(Some(result));
        });
        Ok(())
    }

    /// Drops connection `generation` if it is still the current one, so the next call
    /// builds a new one.
    fn drop_connection(&self, generation: u64) {
        let mut state = self.state();
        if matches!(&*state, State::Up(_, g) if *g == generation) {
            *state = State::Down { generation };
        }
    }

    /// Runs `cmd`; a broken connection is dropped so the next call rebuilds it.
    async fn run<T: redis::FromRedisValue>(self: &Arc<Self>, cmd: &Cmd) -> Result<T, L2Error> {
        let (mut conn, generation) = self.connection().await?;
        let result = cmd.query_async(&mut conn).await;
        self.checked(result, &conn, generation)
    }

    /// Runs `cmds` at once over one connection (a multiplexed connection pipelines them;
    /// a cluster connection sends each to its key's master), answers in order.
    async fn run_all<T: redis::FromRedisValue>(
        self: &Arc<Self>,
        cmds: &[Cmd],
    ) -> Result<Vec<T>, L2Error> {
        let (conn, generation) = self.connection().await?;
        let result = futures_util::future::try_join_all(cmds.iter().map(|cmd| {
            let mut conn = conn.clone();
            async move { cmd.query_async(&mut conn).await }
        }))
        .await;
        self.checked(result, &conn, generation)
    }

    fn checked<T>(
        &self,
        result: Result<T, RedisError>,
        conn: &Conn,
        generation: u64,
    ) -> Result<T, L2Error> {
        result.map_err(|e| {
            if lost(&e) && matches!(conn, Conn::Single(_)) {
                // A cluster connection rebuilds its per-node connections itself.
                self.drop_connection(generation);
            }
            L2Error::with_source("Redis command failed", e)
        })
    }
}

/// Whether an error means the connection itself is gone (rather than one command failing).
fn lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

impl Target {
    async fn connect(&self, settings: &Settings) -> Result<Conn, RedisError> {
        match self {
            Self::Single(client) => {
                let timeout = settings.connect_timeout;
                let mut config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    // Calls are bounded by the shared cache's own, shorter timeout; this
                    // only clears requests a cancelled call left on the connection.
                    .set_response_timeout(Some(timeout));
                if let Some(auth) = &settings.auth {
                    config = config.set_credentials_provider(auth.clone());
                }
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Single)
            }
            Self::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    fn describe(&self, settings: &Settings) -> String {
        let tls = if settings.tls() { " over TLS" } else { "" };
        match self {
            Self::Single(client) => format!("{}{tls}", client.get_connection_info().addr()),
            Self::Cluster(_) => {
                format!(
                    "the Redis Cluster ({} seed nodes){tls}",
                    settings.urls.len()
                )
            }
        }
    }
}

/// Why connecting to `what` failed, in words an operator can act on: a certificate the
/// client does not trust or that does not name the host, a server that does not speak
/// TLS, or credentials Redis refused.
fn connect_error(what: &str, e: RedisError) -> L2Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(error) = source {
        // The redis crate keeps I/O errors behind an `Arc<dyn Error>`, and an I/O error's
        // `source` skips the error it wraps: look through both.
        let shared = error
            .downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>()
            .map(|arc| &**arc as &(dyn std::error::Error + 'static));
        let tls = shared
            .unwrap_or(error)
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .or_else(|| shared.unwrap_or(error).downcast_ref::<rustls::Error>());
        if let Some(tls) = tls {
            let why = match tls {
                rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                | rustls::Error::InvalidCertificate(
                    rustls::CertificateError::NotValidForNameContext { .. },
                ) => "the server's certificate does not name this host: check the host in the \
                      URL (it must be a name or address the certificate lists)"
                    .to_owned(),
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                    "the server's certificate is not signed by a trusted CA: give its CA with \
                     RedisStore::tls_ca_pem, or check that the URL points at the right server"
                        .to_owned()
                }
                rustls::Error::InvalidCertificate(other) => {
                    format!("the server's certificate was refused ({other:?})")
                }
                rustls::Error::InvalidMessage(_) => {
                    "the server did not answer in TLS: is this its TLS port?".to_owned()
                }
                other => format!("the TLS handshake failed ({other})"),
            };
            return L2Error::with_source(format!("TLS with {what} failed: {why}"), e);
        }
        source = error.source();
    }
    let refused = e.code() == Some("WRONGPASS")
        || e.kind() == redis::ErrorKind::AuthenticationFailed
        || e.to_string().contains("WRONGPASS");
    if refused {
        return L2Error::with_source(
            format!(
                "{what} refused the credentials (WRONGPASS): with Entra authentication, check \
                 that the cache's data access policy names this identity (its object id) and \
                 that the token is for the cache's scope"
            ),
            e,
        );
    }
    L2Error::with_source(format!("cannot connect to {what}"), e)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The Redis Cluster hash slot of `key`: CRC16 (XMODEM) of its hash tag (the part between
/// the first `{` and the next `}`, if not empty) or of the whole key, modulo 16384.
fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &bytes[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(bytes) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16_384
}

#[async_trait::async_trait]
impl L2Store for RedisStore {
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, L2Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // A cluster connection splits a cross-slot MGET per node and reassembles it.
        self.link.run(redis::cmd("MGET").arg(keys)).await
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), L2Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value).arg("PX").arg(millis(ttl));
        self.link.run(&cmd).await
    }

    async fn delete(&self, key: &str) -> Result<(), L2Error> {
        self.link.run(redis::cmd("DEL").arg(key)).await
    }

    async fn delete_if(&self, key: &str, expected: &[u8]) -> Result<bool, L2Error> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(DELETE_IF).arg(1).arg(key).arg(expected);
        let deleted: i64 = self.link.run(&cmd).await?;
        Ok(deleted > 0)
    }

    /// One script: compares with the tombstone held and writes only a later one.
    async fn put_tombstone(&self, key: &str, at: u64, ttl: Duration) -> Result<(), L2Error> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(PUT_TOMBSTONE)
            .arg(1)
            .arg(key)
            .arg(at)
            .arg(millis(ttl));
        let _written: i64 = self.link.run(&cmd).await?;
        Ok(())
    }

    async fn try_lease(&self, key: &str, holder: &[u8], ttl: Duration) -> Result<bool, L2Error> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key)
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl));
        let set: Option<String> = self.link.run(&cmd).await?;
        Ok(set.is_some())
    }

    /// `GETRANGE key 0 limit-1` for each key: Redis sends at most `limit` bytes of any
    /// value. An empty answer is a missing key (the cache never writes empty values).
    async fn get_many_bounded(
        &self,
        keys: &[&str],
        limit: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, L2Error> {
        if keys.is_empty() || limit == 0 {
            return Ok(vec![None; keys.len()]);
        }
        let cmds: Vec<Cmd> = keys
            .iter()
            .map(|key| {
                let mut cmd = redis::cmd("GETRANGE");
                cmd.arg(*key).arg(0).arg(limit - 1);
                cmd
            })
            .collect();
        let values: Vec<Vec<u8>> = self.link.run_all(&cmds).await?;
        Ok(values
            .into_iter()
            .map(|v| (!v.is_empty()).then_some(v))
            .collect())
    }

    /// A Redis Cluster's part is the key's hash slot: a lost master costs only its own
    /// slots. One server is one part.
    fn partition(&self, key: &str) -> u32 {
        match &self.link.target {
            Target::Single(_) => 0,
            Target::Cluster(_) => u32::from(hash_slot(key)),
        }
    }

    /// On a cluster, asks the master of `key`'s slot whether the key exists (a read that
    /// only that master answers; the cluster connection reconnects to it by itself). On
    /// one server, [`ping`](L2Store::ping).
    async fn ping_partition(&self, key: &str) -> Result<(), L2Error> {
        if matches!(self.link.target, Target::Single(_)) {
            return self.ping().await;
        }
        let deadline = self.link.settings.connect_timeout;
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(key);
        match tokio::time::timeout(deadline, self.link.run::<i64>(&cmd)).await {
            Ok(answer) => answer.map(drop),
            Err(_) => Err(L2Error::new(format!(
                "no answer from the master of the key's slot within {deadline:?}"
            ))),
        }
    }

    /// Pings over the current connection; if that fails, drops it and pings over a new
    /// one (each step bounded by the connect timeout), so a probe after an outage
    /// succeeds as soon as Redis answers.
    async fn ping(&self) -> Result<(), L2Error> {
        let deadline = self.link.settings.connect_timeout;
        let attempt = || async {
            let (mut conn, generation) = self.link.connection().await?;
            let pong =
                tokio::time::timeout(deadline, redis::cmd("PING").query_async::<()>(&mut conn))
                    .await;
            match pong {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    self.link.drop_connection(generation);
                    Err(L2Error::with_source("PING failed", e))
                }
                Err(_) => {
                    self.link.drop_connection(generation);
                    Err(L2Error::new(format!(
                        "no answer to PING within {deadline:?}"
                    )))
                }
            }
        };
        match attempt().await {
            Ok(()) => Ok(()),
            Err(_) => attempt().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hash_slot;

    #[test]
    fn hash_slots_match_redis() {
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(hash_slot("123456789"), 0x31c3);
        assert_eq!(hash_slot("foo"), 12_182);
        assert_eq!(hash_slot("{user1000}.following"), hash_slot("user1000"));
        assert_eq!(hash_slot("foo{}{bar}"), 8_363);
        assert_eq!(hash_slot("foo{{bar}}zap"), 4_015);
        assert_eq!(hash_slot("act:x"), 8_330);
        assert_eq!(hash_slot("act:{0123abcd}:t:ff"), 2_550);
    }
}
