//! [`RedisStore`]: Redis (one server, or a Redis Cluster) as the L2 store.
//!
//! The connection is built in a background task under its own deadline
//! ([`RedisStore::connect_timeout`]), never inside a call: a call waits for it only as long
//! as its own timeout allows, and a call cancelled by that timeout leaves the connection
//! to finish for the next one. A connection that breaks is dropped and rebuilt the same
//! way; the circuit breaker's probe ([`L2Store::ping`]) pings it and rebuilds it if the
//! ping fails, so a Redis restart costs one probe interval, not a failed probe.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
use tokio::sync::watch;

use super::store::{L2Error, L2Store};

/// Compare-and-delete: frees a lease (or drops a value) only while it holds what the
/// caller saw, so a replica never frees a lease another replica holds now.
const DELETE_IF: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Default deadline for building a connection (TCP, and for a cluster the slot map and a
/// connection per primary).
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
/// # Ok(()) }
/// ```
///
/// On failover, calls fail or time out (misses: tokens come from L1 or Entra) until the
/// connection is rebuilt; values written to a lost primary are simply fetched again.
pub struct RedisStore {
    link: Arc<Link>,
}

struct Link {
    target: Target,
    connect_timeout: Duration,
    state: Mutex<State>,
}

enum Target {
    Single(redis::Client),
    Cluster {
        nodes: Vec<String>,
        client: Box<ClusterClient>,
    },
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
        let mut d = f.debug_struct("RedisStore");
        match &self.link.target {
            Target::Single(client) => {
                d.field("addr", &client.get_connection_info().addr().to_string())
            }
            Target::Cluster { nodes, .. } => d.field("cluster_nodes", &nodes.len()),
        };
        d.field("connect_timeout", &self.link.connect_timeout)
            .finish()
    }
}

fn invalid_url(e: RedisError) -> crate::Error {
    crate::Error::InvalidConfiguration(format!(
        "invalid Redis URL ({:?}): use redis://[user:password@]host:port[/db]",
        e.kind()
    ))
}

impl RedisStore {
    /// A store on one Redis server (or a primary behind a failover endpoint) at `url`
    /// (`redis://[user:password@]host:port[/db]`). Connects in the background on first
    /// use, so a Redis that is down at startup does not stop the service.
    pub fn new(url: &str) -> Result<Self, crate::Error> {
        let client = redis::Client::open(url).map_err(invalid_url)?;
        Ok(Self::with_target(Target::Single(client)))
    }

    /// A store on a Redis Cluster reached through any of `nodes` (each a `redis://` URL);
    /// the slot map is learned from them and followed as it changes. An entry, its lease
    /// and its tenant's tombstone share a hash slot, so the lease protocol needs no
    /// cross-slot command.
    pub fn cluster<I, S>(nodes: I) -> Result<Self, crate::Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nodes: Vec<String> = nodes.into_iter().map(|n| n.as_ref().to_owned()).collect();
        if nodes.is_empty() {
            return Err(crate::Error::InvalidConfiguration(
                "a Redis Cluster store needs at least one node URL".into(),
            ));
        }
        let client = Box::new(Self::cluster_client(
            nodes.clone(),
            DEFAULT_CONNECT_TIMEOUT,
        )?);
        Ok(Self::with_target(Target::Cluster { nodes, client }))
    }

    fn cluster_client(
        nodes: Vec<String>,
        timeout: Duration,
    ) -> Result<ClusterClient, crate::Error> {
        // Each node gets a third of the deadline, so a master that accepts connections but
        // answers nothing (hung, partitioned) is left out of a new cluster connection
        // instead of failing it: only its slots fail until it is back.
        let per_node = timeout / 3;
        ClusterClient::builder(nodes)
            .connection_timeout(per_node)
            .response_timeout(per_node)
            // A lost primary must not hold a call in retries: the call's own timeout and
            // the circuit breaker decide, and tokens come from L1 or Entra meanwhile.
            .retries(1)
            .min_retry_wait(10)
            .max_retry_wait(100)
            .build()
            .map_err(invalid_url)
    }

    fn with_target(target: Target) -> Self {
        Self {
            link: Arc::new(Link {
                target,
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
                state: Mutex::new(State::Down { generation: 0 }),
            }),
        }
    }

    /// Deadline for building a connection in the background (default 3 s). Calls never
    /// wait for it longer than their own timeout.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        let target = match &self.link.target {
            Target::Single(client) => Target::Single(client.clone()),
            Target::Cluster { nodes, client } => Target::Cluster {
                nodes: nodes.clone(),
                client: Self::cluster_client(nodes.clone(), timeout)
                    .map_or_else(|_| client.clone(), Box::new),
            },
        };
        let mut store = Self::with_target(target);
        if let Some(link) = Arc::get_mut(&mut store.link) {
            link.connect_timeout = timeout;
        }
        store
    }
}

impl Link {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live connection, starting a background attempt if there is none; waits for
    /// the attempt (the caller's timeout bounds the wait, not the attempt).
    async fn connection(self: &Arc<Self>) -> Result<(Conn, u64), L2Error> {
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
            let result = match tokio::time::timeout(
                link.connect_timeout,
                link.target.connect(link.connect_timeout),
            )
            .await
            {
                Ok(Ok(conn)) => Ok((conn, generation)),
                Ok(Err(e)) => Err(L2Error::with_source(
                    format!("cannot connect to {}", link.target.describe()),
                    e,
                )),
                Err(_) => Err(L2Error::new(format!(
                    "connecting to {} took longer than {:?} (RedisStore::connect_timeout)",
                    link.target.describe(),
                    link.connect_timeout
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
    async fn connect(&self, timeout: Duration) -> Result<Conn, RedisError> {
        match self {
            Self::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    // Calls are bounded by the shared cache's own, shorter timeout; this
                    // only clears requests a cancelled call left on the connection.
                    .set_response_timeout(Some(timeout));
                client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await
                    .map(Conn::Single)
            }
            Self::Cluster { client, .. } => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Single(client) => client.get_connection_info().addr().to_string(),
            Self::Cluster { nodes, .. } => {
                format!("the Redis Cluster ({} seed nodes)", nodes.len())
            }
        }
    }
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
            Target::Cluster { .. } => u32::from(hash_slot(key)),
        }
    }

    /// On a cluster, asks the master of `key`'s slot whether the key exists (a read that
    /// only that master answers; the cluster connection reconnects to it by itself). On
    /// one server, [`ping`](L2Store::ping).
    async fn ping_partition(&self, key: &str) -> Result<(), L2Error> {
        if matches!(self.link.target, Target::Single(_)) {
            return self.ping().await;
        }
        let deadline = self.link.connect_timeout;
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
        let deadline = self.link.connect_timeout;
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
