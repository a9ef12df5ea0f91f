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

/// A free port whose cluster bus port (+10000) is free and valid too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port <= 55_535 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

const INSTALL: &str =
    "install redis-server (apt-get install redis-server), or leave out --include-ignored";

/// How to reach one server with `redis-cli` (plain, or TLS with the test CA).
#[derive(Debug, Clone)]
pub struct Cli {
    port: u16,
    tls: Vec<String>,
}

impl Cli {
    /// `redis-cli` with `args` (an operator's commands: ACL, CLIENT, INFO...), its
    /// standard output as text.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.tls)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A CA made for one test, with a certificate for 127.0.0.1 signed by it, as the files
/// `redis-server` reads (removed on drop).
pub struct TestCa {
    pub pem: String,
    dir: PathBuf,
}

impl TestCa {
    pub fn new() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose, SanType,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "act test Redis CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut server = CertificateParams::default();
        server
            .distinguished_name
            .push(DnType::CommonName, "act test Redis");
        server.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        // Cluster nodes also use it as a client certificate on the cluster bus.
        server.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = server.signed_by(&key, &issuer).unwrap();
        let dir =
            std::env::temp_dir().join(format!("act-tls-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        Self {
            pem: ca_cert.pem(),
            dir,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// `redis-server` arguments serving TLS only, on `port`.
    fn server_args(&self, port: u16) -> Vec<String> {
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &self.file("server.pem"),
            "--tls-key-file",
            &self.file("server.key"),
            "--tls-ca-cert-file",
            &self.file("ca.pem"),
            "--tls-auth-clients",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    fn cli_args(&self) -> Vec<String> {
        vec!["--tls".into(), "--cacert".into(), self.file("ca.pem")]
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One `redis-server` process.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
    cli: Cli,
    /// The CA of its certificate, when it serves TLS.
    pub ca_pem: Option<String>,
}

impl Redis {
    /// A fresh server on a free port.
    pub fn start() -> Self {
        Self::start_with(free_port(), Vec::new())
    }

    /// A fresh server serving TLS only (certificate from `ca`, for 127.0.0.1).
    pub fn start_tls(ca: &TestCa) -> Self {
        let port = free_port();
        Self::start_inner(port, ca.server_args(port), Some(ca))
    }

    fn start_with(port: u16, extra: Vec<String>) -> Self {
        let mut args = vec!["--port".to_owned(), port.to_string()];
        args.extend(extra);
        Self::start_inner(port, args, None)
    }

    fn start_inner(port: u16, first: Vec<String>, ca: Option<&TestCa>) -> Self {
        let mut args: Vec<String> = first;
        args.extend(
            ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
                .iter()
                .map(|s| s.to_string()),
        );
        let mut server = Self {
            child: None,
            port,
            args,
            cli: Cli {
                port,
                tls: ca.map(TestCa::cli_args).unwrap_or_default(),
            },
            ca_pem: ca.map(|ca| ca.pem.clone()),
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
        let scheme = if self.ca_pem.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// `redis-cli` against this server (an operator's commands: ACL, CLIENT, INFO...), its
    /// output as text.
    pub fn cli(&self, args: &[&str]) -> String {
        self.cli.run(args)
    }

    pub fn cli_handle(&self) -> Cli {
        self.cli.clone()
    }

    /// Bytes this server has sent to clients so far (`INFO stats`).
    pub fn bytes_sent(&self) -> u64 {
        self.cli(&["INFO", "stats"])
            .lines()
            .find_map(|l| l.strip_prefix("total_net_output_bytes:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("INFO stats has total_net_output_bytes")
    }

    /// Keys matching `pattern` on this server alone, sorted.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .cli(&["KEYS", pattern])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        keys.sort();
        keys
    }

    /// Freezes the server (SIGSTOP): connections open, nothing answered, as a hung or
    /// partitioned host; [`Redis::thaw`] resumes it with its data.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server runs").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
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
        Self::start_inner(None)
    }

    /// A cluster whose nodes serve TLS only, cluster bus included.
    pub fn start_tls(ca: &TestCa) -> Self {
        Self::start_inner(Some(ca))
    }

    fn start_inner(ca: Option<&TestCa>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "act-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port();
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &dir.join(format!("nodes-{port}.conf")).to_string_lossy(),
                "--cluster-node-timeout",
                "1000",
                "--cluster-require-full-coverage",
                "no",
                // A stopped master can come back with its data (after an explicit SAVE).
                "--dbfilename",
                &format!("dump-{port}.rdb"),
                "--dir",
                &dir.to_string_lossy(),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            let node = match ca {
                Some(ca) => {
                    let mut args = ca.server_args(port);
                    args.extend(["--tls-cluster".into(), "yes".into()]);
                    args.extend(extra);
                    Redis::start_inner(port, args, Some(ca))
                }
                None => Redis::start_with(port, extra),
            };
            nodes.push(node);
        }
        let mut create = Command::new("redis-cli");
        create.args(ca.map(TestCa::cli_args).unwrap_or_default());
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

    /// The index of the master serving `key`'s slot.
    pub fn owner_of(&self, key: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| {
                // Other masters answer with a MOVED error (on stderr).
                matches!(n.cli(&["EXISTS", key]).trim(), "0" | "1")
            })
            .expect("some master serves every slot")
    }

    /// Waits (bounded) until every running node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        for _ in 0..300 {
            let ok = self
                .nodes
                .iter()
                .filter(|n| n.child.is_some())
                .all(|n| n.cli(&["cluster", "info"]).contains("cluster_state:ok"));
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
