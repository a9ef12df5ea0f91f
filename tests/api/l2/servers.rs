//! Real Redis servers for the shared-cache tests: one node, or a three-master Redis
//! Cluster, each on free loopback ports, stopped (and their files removed) on drop; and a
//! TCP relay that makes connection setup slow.
//!
//! The tests that use them are `#[ignore = "needs redis-server: ..."]` (see `main.rs`): run
//! with `--include-ignored`, a missing `redis-server` or `redis-cli` fails them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Real time is what an external process takes: these waits are for `redis-server`,
/// never for the code under test.
#[allow(clippy::disallowed_methods)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

const INSTALL: &str =
    "install redis-server (apt-get install redis-server), or leave out --include-ignored";

/// One `redis-server` process.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

impl Redis {
    /// A fresh server on a free port.
    pub fn start() -> Self {
        Self::start_with(free_port(), Vec::new())
    }

    fn start_with(port: u16, extra: Vec<String>) -> Self {
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra);
        let mut server = Self {
            child: None,
            port,
            args,
        };
        server.restart();
        server
    }

    /// Starts the server again on the same port with the same arguments (a cluster node
    /// rejoins from its nodes file).
    pub fn restart(&mut self) {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = match Command::new(&bin)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("{bin} cannot start ({e}): {INSTALL}"),
        };
        self.child = Some(child);
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            pause(Duration::from_millis(10));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Redis Cluster of three masters (no replicas) on loopback. Slots of a stopped master
/// stay down (full coverage is not required), so the other masters keep serving.
pub struct Cluster {
    pub nodes: Vec<Redis>,
    dir: PathBuf,
}

impl Cluster {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "act-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &dir.join(format!("nodes-{port}.conf")).to_string_lossy(),
                "--cluster-node-timeout",
                "1000",
                "--cluster-require-full-coverage",
                "no",
                "--dir",
                &dir.to_string_lossy(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            nodes.push(Redis::start_with(port, extra));
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for n in &nodes {
            create.arg(format!("127.0.0.1:{}", n.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "redis-cli --cluster create failed: {}",
                String::from_utf8_lossy(&o.stdout)
            ),
            Err(e) => panic!("redis-cli cannot run ({e}): {INSTALL}"),
        }
        let cluster = Self { nodes, dir };
        cluster.wait_until_ok();
        cluster
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Redis::url).collect()
    }

    /// Waits (bounded) until every running node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        for _ in 0..300 {
            let ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                return;
            }
            pause(Duration::from_millis(50));
        }
        panic!("the Redis Cluster did not become ready");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback TCP relay in front of a Redis port: it can hold every new connection for
/// a while before relaying its first byte (slow connection setup), and it can be cut
/// (every connection dropped, new ones refused) and restored on the same port.
pub struct Relay {
    pub port: u16,
    upstream: u16,
    delay: Duration,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    pub async fn start(upstream: u16, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Self {
            port,
            upstream,
            delay,
            tasks: Arc::default(),
        };
        relay.serve(listener);
        relay
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (upstream, delay, tasks) = (self.upstream, self.delay, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    // The network under test is slow: real time is the point here.
                    #[allow(clippy::disallowed_methods)]
                    tokio::time::sleep(delay).await;
                    let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
                tasks.lock().unwrap().push(relay);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Drops every connection and stops accepting.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Accepts again on the same port.
    pub async fn restore(&self) {
        let mut listener = None;
        for _ in 0..100 {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                // Until the aborted accept loop has let go of the port.
                #[allow(clippy::disallowed_methods)]
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
        self.serve(listener.expect("the relay's port is free again"));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
    }
}
