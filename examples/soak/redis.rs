//! The soak's own Redis: one server, or a three-master Redis Cluster, on free loopback
//! ports, which it can restart mid-run.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use azure_cross_tenant::{Sleeper, TokioSleeper};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

async fn pause(ms: u64) {
    TokioSleeper::default()
        .sleep(Duration::from_millis(ms))
        .await;
}

/// One `redis-server`.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    args: Vec<String>,
}

impl Server {
    fn new(port: u16, extra: &[String]) -> Self {
        let mut args: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--save", "", "--appendonly", "no"].map(String::from));
        args.extend(extra.iter().cloned());
        Self {
            child: None,
            port,
            args,
        }
    }

    pub async fn start(&mut self) {
        let child = Command::new("redis-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        for _ in 0..500 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            pause(10).await;
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Redis the replicas share.
pub struct Redis {
    pub servers: Vec<Server>,
    pub cluster: bool,
    dir: PathBuf,
}

impl Redis {
    pub async fn single() -> Self {
        let mut server = Server::new(free_port(), &[]);
        server.start().await;
        Self {
            servers: vec![server],
            cluster: false,
            dir: PathBuf::new(),
        }
    }

    /// Three masters, no replicas; a stopped master's slots are down, the rest serve.
    pub async fn cluster() -> Self {
        let dir = std::env::temp_dir().join(format!("act-soak-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let mut servers = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let extra: Vec<String> = [
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
            let mut server = Server::new(port, &extra);
            server.start().await;
            servers.push(server);
        }
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(servers.iter().map(|s| format!("127.0.0.1:{}", s.port)))
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        let redis = Self {
            servers,
            cluster: true,
            dir,
        };
        redis.wait_until_ready().await;
        redis
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    async fn wait_until_ready(&self) {
        if !self.cluster {
            return;
        }
        for _ in 0..300 {
            let ok = self.servers.iter().all(|s| {
                Command::new("redis-cli")
                    .args(["-p", &s.port.to_string(), "cluster", "info"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
                    .unwrap_or(false)
            });
            if ok {
                return;
            }
            pause(50).await;
        }
        panic!("the Redis Cluster did not become ready");
    }

    /// Stops one server (the first; in a cluster, one master) for `down`, then starts it
    /// again on the same port (empty: nothing is persisted).
    pub async fn restart_one(&mut self, down: Duration) {
        self.servers[0].stop();
        TokioSleeper::default().sleep(down).await;
        self.servers[0].start().await;
        self.wait_until_ready().await;
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        for s in &mut self.servers {
            s.stop();
        }
        if self.cluster {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
