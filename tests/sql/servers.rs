//! A real PostgreSQL server for the SQL tests: Debian's binaries (`/usr/lib/postgresql/N/bin`,
//! or `PG_BIN`), a fresh data directory, a free loopback port, started once per test
//! process. `initdb` refuses to run as root, so as root it runs as the `postgres` user
//! (`runuser`), in a directory that user owns. A small shell stands between this process
//! and the server, reading its stdin: when this process exits (however), the pipe closes
//! and the shell stops the server and removes its directory.
//!
//! The PostgreSQL rows run only when asked for (`--include-ignored`); then a missing
//! PostgreSQL fails them, naming what to install.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub struct Postgres {
    pub port: u16,
    _shell: Mutex<Child>,
    next_db: Mutex<u32>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The directory holding `initdb` and `postgres`, if installed.
pub fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        return (dir.join("initdb").exists() && dir.join("postgres").exists()).then_some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args...`, as the `postgres` user when this process is root.
fn as_server_user(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

/// The server of this test process, started on first use.
pub fn postgres() -> &'static Postgres {
    static SERVER: OnceLock<Postgres> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> Postgres {
    let bin = binaries().expect(
        "no PostgreSQL server: apt-get install postgresql (or PG_BIN=<dir of initdb and postgres>)",
    );
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("act-pg-{}-{port}", std::process::id()));
    let data = dir.join("data");
    let mkdir = as_server_user("mkdir")
        .arg("-p")
        .arg(&dir)
        .status()
        .expect("mkdir runs");
    assert!(mkdir.success(), "cannot create {}", dir.display());
    let init = as_server_user(&bin.join("initdb").to_string_lossy())
        .args([
            "-D",
            &data.to_string_lossy(),
            "-U",
            "postgres",
            "--auth=trust",
        ])
        .args(["--no-sync", "-E", "UTF8", "--locale=C"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("initdb runs");
    assert!(
        init.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    // The shell stops the server (fast shutdown) and removes its files once our end of
    // its stdin closes: when this process exits.
    let script = format!(
        "'{postgres}' -D '{data}' -p {port} -k '{dir}' -c listen_addresses=127.0.0.1 \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
         >'{dir}/log' 2>&1 & pid=$!; cat >/dev/null; kill -INT $pid; wait $pid; rm -rf '{dir}'",
        postgres = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
    );
    // Never waited for: it lives until this process exits (then it stops the server).
    #[allow(clippy::zombie_processes)]
    let mut shell = as_server_user("sh")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh runs");
    let _ = shell.stdin.as_mut().map(|s| s.flush());
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            // Accepting TCP is not yet accepting logins: ask pg_isready.
            let ready = Command::new(bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ready {
                return Postgres {
                    port,
                    _shell: Mutex::new(shell),
                    next_db: Mutex::new(0),
                };
            }
        }
        // Real time: this waits for an external process to start.
        #[allow(clippy::disallowed_methods)]
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    panic!("postgres did not start on port {port}: {log}");
}

impl Postgres {
    /// A fresh, empty database of this server: its URL.
    pub async fn database(&self) -> String {
        let name = {
            let mut n = self.next_db.lock().unwrap();
            *n += 1;
            format!("t{}", *n)
        };
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        // The name is ours (t1, t2, ...), never outside input.
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}
