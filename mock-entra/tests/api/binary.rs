//! The `mock-entra` binary as other languages meet it: flags, one ready line, https with a
//! CA file, signals, loud failures, and memory that stays flat under load.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::wire::ResponseExt;

const BIN: &str = env!("CARGO_BIN_EXE_mock-entra");

struct Running {
    child: Child,
    ready: Value,
    stdout: BufReader<std::process::ChildStdout>,
    /// stderr, line by line (read on a thread so the pipe never fills).
    stderr: mpsc::Receiver<String>,
}

impl Running {
    /// The first stderr line containing `needle` (waiting 30 s at most for each line).
    fn stderr_line(&self, needle: &str) -> String {
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line with {needle:?}: {e}"),
            }
        }
    }

    /// Every stderr line from here until the process closes it.
    fn rest_of_stderr(&self) -> Vec<String> {
        self.stderr.iter().collect()
    }

    fn authority(&self) -> String {
        self.ready["authority_host"].as_str().unwrap().to_owned()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and reads its ready line (30 s at most).
fn start(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mock-entra starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (err_tx, err_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if err_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = tx.send(line);
        stdout
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a ready line within 30 s");
    let ready = serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    Running {
        child,
        ready,
        stdout: reader.join().unwrap(),
        stderr: err_rx,
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit (30 s at most).
fn exit_code(running: &mut Running) -> Option<i32> {
    for _ in 0..300 {
        if let Some(status) = running.child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    panic!("mock-entra did not stop");
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("mock-entra-test-{}-{name}", std::process::id()))
}

#[tokio::test]
async fn the_binary_prints_one_ready_line_serves_https_and_stops_with_exit_0_on_sigterm() {
    let ca_file = temp_path("ca.pem");
    let mut mock = start(&["--tls", "--ca-file", ca_file.to_str().unwrap()]);
    let ready = mock.ready.clone();
    assert_eq!(ready["ready"], true);
    let authority = ready["authority_host"].as_str().unwrap();
    assert!(authority.starts_with("https://127.0.0.1:"), "{authority}");
    assert_eq!(ready["control"], format!("{authority}_mock/"));
    assert_eq!(ready["ca_file"], ca_file.to_str().unwrap());
    assert!(
        ready["tenants"]["customer"]["id"].is_string(),
        "the demo scenario: {ready}"
    );
    assert!(ready["apps"]["saas"]["certificates"]["main"]["x5t_s256"].is_string());
    let ca = std::fs::read(&ca_file).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_id",
            ready["apps"]["saas"]["client_id"].as_str().unwrap(),
        ),
        (
            "client_secret",
            ready["apps"]["saas"]["secrets"]["main"].as_str().unwrap(),
        ),
        ("scope", "https://vault.azure.net/.default"),
    ];
    let r = client
        .post(format!("{authority}fabrikam.example/oauth2/v2.0/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    signal(&mock.child, "TERM");
    assert_eq!(exit_code(&mut mock), Some(0));
    let mut rest = String::new();
    mock.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "stdout carries the ready line and nothing else");
    let _ = std::fs::remove_file(ca_file);
}

#[test]
fn sigint_stops_it_with_exit_0_too() {
    let mut mock = start(&["--empty"]);
    assert!(
        mock.ready.get("tenants").is_none(),
        "--empty sets nothing up"
    );
    signal(&mock.child, "INT");
    assert_eq!(exit_code(&mut mock), Some(0));
}

#[test]
fn help_lists_every_flag_with_its_default() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--host",
        "--port",
        "--config",
        "--tls",
        "--ca-file",
        "--ca-cert",
        "--ca-key",
        "--public-url",
        "--allow-host",
        "--loose",
        "--drain-timeout",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(flag))
            .unwrap_or_else(|| panic!("{flag} in {help}"));
        assert!(
            line.trim_end().ends_with(']') && line.contains("[default: "),
            "{line}"
        );
    }
    assert!(help.contains("[default: 127.0.0.1]") && help.contains("0 lets the OS choose"));
}

#[test]
fn bad_flags_and_bad_scenarios_fail_loudly() {
    let out = Command::new(BIN)
        .args(["--port", "eighty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--port \"eighty\""));
    let out = Command::new(BIN).arg("--frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument \"--frobnicate\""));
    let config = temp_path("bad.json");
    std::fs::write(
        &config,
        r#"{"tenants": {"a": {"domains": ["a.example"]}}, "appz": {}}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("appz"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "no ready line when it cannot start");
    let _ = std::fs::remove_file(config);
}

#[tokio::test]
async fn a_public_url_is_what_metadata_and_issuers_advertise() {
    let mock = start(&["--public-url", "https://login.mock.example:8443"]);
    assert_eq!(
        mock.ready["authority_host"],
        "https://login.mock.example:8443/"
    );
    assert_eq!(
        mock.ready["control"],
        "https://login.mock.example:8443/_mock/"
    );
    // Reached on the address it listens on, it advertises the public origin.
    let listening = mock.ready["listening_on"].as_str().unwrap();
    let tid = mock.ready["tenants"]["customer"]["id"].as_str().unwrap();
    let url = format!("http://{listening}/{tid}/v2.0/.well-known/openid-configuration");
    let metadata = reqwest::get(url).await.unwrap().json_value().await;
    assert_eq!(
        metadata["issuer"],
        format!("https://login.mock.example:8443/{tid}/v2.0")
    );
    assert_eq!(
        metadata["token_endpoint"],
        format!("https://login.mock.example:8443/{tid}/oauth2/v2.0/token")
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Sends `n` token requests over `workers` connections: 1 in 10 succeeds, the rest carry a
/// wrong secret (the path wiremock kept ~10 KB of, secrets included).
async fn load(authority: &str, ready: &Value, n: usize, workers: usize) {
    let client_id = ready["apps"]["saas"]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let secret = ready["apps"]["saas"]["secrets"]["main"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{authority}fabrikam.example/oauth2/v2.0/token");
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (client_id, secret, url) = (client_id.clone(), secret.clone(), url.clone());
        tasks.spawn(async move {
            let client = crate::http();
            for i in (w..n).step_by(workers) {
                let secret = if i % 10 == 0 {
                    secret.clone()
                } else {
                    format!("wrong-{i}")
                };
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", &client_id),
                    ("client_secret", &secret),
                    ("scope", "https://vault.azure.net/.default"),
                ];
                let r = client.post(&url).form(&form).send().await.unwrap();
                assert_eq!(r.status().as_u16(), if i % 10 == 0 { 200 } else { 401 });
                let _ = r.bytes().await;
            }
        });
    }
    tasks.join_all().await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_over_50000_requests_and_no_secret_is_kept() {
    let mock = start(&["--request-log-limit", "1000"]);
    let authority = mock.ready["authority_host"].as_str().unwrap().to_owned();
    // Warm up past the log's limit, so it is full before the measurement.
    load(&authority, &mock.ready, 5_000, 16).await;
    let before = rss_kib(mock.child.id());
    load(&authority, &mock.ready, 50_000, 16).await;
    let after = rss_kib(mock.child.id());
    eprintln!("mock-entra RSS: {before} KiB after 5,000 requests, {after} KiB after 55,000");
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB over 50,000 requests"
    );
    let log: Value = reqwest::get(format!("{authority}_mock/requests"))
        .await
        .unwrap()
        .json_value()
        .await;
    assert_eq!(log["requests"].as_array().unwrap().len(), 1000);
    assert_eq!(log["counts"]["token_requests"], 55_000);
    let secret = mock.ready["apps"]["saas"]["secrets"]["main"]
        .as_str()
        .unwrap();
    assert!(!log.to_string().contains(secret) && !log.to_string().contains("wrong-"));
}

#[tokio::test]
async fn a_ca_given_with_ca_cert_and_ca_key_signs_the_server_certificate() {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "our test CA");
    let ca = params.self_signed(&key).unwrap();
    let (cert_file, key_file) = (temp_path("own-ca.pem"), temp_path("own-ca.key"));
    std::fs::write(&cert_file, ca.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let mock = start(&[
        "--ca-cert",
        cert_file.to_str().unwrap(),
        "--ca-key",
        key_file.to_str().unwrap(),
        "--empty",
    ]);
    let authority = mock.ready["authority_host"].as_str().unwrap().to_owned();
    assert!(authority.starts_with("https://"), "--ca-cert implies --tls");
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    let health = client
        .get(format!("{authority}_mock/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let out = Command::new(BIN)
        .args(["--ca-cert", cert_file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--ca-cert without --ca-key");
    let _ = (
        std::fs::remove_file(cert_file),
        std::fs::remove_file(key_file),
    );
}

/// Posts JSON to the control API of a running binary.
async fn control(mock: &Running, path: &str, body: Value) -> Value {
    let r = crate::http()
        .post(format!("{}_mock/{path}", mock.authority()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json_value().await
}

/// Starts a token request the mock answers after `latency` (real time), and returns once
/// the mock has it (it logs a request before its scripted latency).
async fn request_in_flight(
    mock: &Running,
    latency: Duration,
) -> tokio::task::JoinHandle<Result<u16, reqwest::Error>> {
    control(
        mock,
        "settings",
        serde_json::json!({"latency_ms": latency.as_millis() as u64}),
    )
    .await;
    let form = [
        ("grant_type", "client_credentials".to_owned()),
        (
            "client_id",
            mock.ready["apps"]["saas"]["client_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        (
            "client_secret",
            mock.ready["apps"]["saas"]["secrets"]["main"]
                .as_str()
                .unwrap()
                .to_owned(),
        ),
        ("scope", "https://vault.azure.net/.default".to_owned()),
    ];
    let url = format!("{}fabrikam.example/oauth2/v2.0/token", mock.authority());
    let request = tokio::spawn(async move {
        let r = crate::http().post(url).form(&form).send().await?;
        let status = r.status().as_u16();
        r.bytes().await?;
        Ok(status)
    });
    let requests = format!("{}_mock/requests?endpoint=token", mock.authority());
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    for _ in 0..1500 {
        poll.tick().await;
        let log = reqwest::get(&requests).await.unwrap().json_value().await;
        if log["count"].as_u64() >= Some(1) {
            return request;
        }
    }
    panic!("the token request never reached the mock");
}

#[tokio::test]
async fn on_sigterm_the_request_in_flight_is_answered_then_it_exits_0() {
    let mut mock = start(&["--drain-timeout", "30"]);
    let in_flight = request_in_flight(&mock, Duration::from_secs(2)).await;
    signal(&mock.child, "TERM");
    let stopping = mock.stderr_line("stopping");
    assert!(
        stopping.contains("SIGTERM") && stopping.contains("30 s at most"),
        "{stopping}"
    );
    assert_eq!(
        in_flight.await.unwrap().expect("answered, not cut off"),
        200
    );
    assert_eq!(exit_code(&mut mock), Some(0));
    let rest = mock.rest_of_stderr();
    assert!(rest.iter().any(|l| l.contains("stopped")), "{rest:?}");
    assert!(!rest.iter().any(|l| l.contains("still open")), "{rest:?}");
}

#[tokio::test]
async fn a_request_still_running_at_the_drain_deadline_does_not_keep_it_from_exiting_0() {
    let mut mock = start(&["--drain-timeout", "1"]);
    let in_flight = request_in_flight(&mock, Duration::from_secs(600)).await;
    signal(&mock.child, "TERM");
    assert_eq!(exit_code(&mut mock), Some(0));
    let open = mock.stderr_line("still open");
    assert!(
        open.contains("1 connection(s) still open after 1 s"),
        "{open}"
    );
    assert!(in_flight.await.unwrap().is_err(), "cut off at the deadline");
}

#[tokio::test]
async fn listening_on_every_interface_says_so_and_warns_that_anyone_can_get_tokens() {
    let mock = start(&["--host", "0.0.0.0"]);
    let listening = mock.ready["listening_on"].as_str().unwrap().to_owned();
    let port = listening
        .strip_prefix("0.0.0.0:")
        .expect("the truth: 0.0.0.0");
    assert_eq!(
        mock.authority(),
        format!("http://127.0.0.1:{port}/"),
        "advertised: loopback"
    );
    let line = mock.stderr_line("listening on");
    assert!(
        line.contains(&format!(
            "listening on 0.0.0.0:{port} (every IPv4 interface"
        )),
        "{line}"
    );
    let warning = mock.stderr_line("WARNING");
    for words in [
        "not on loopback",
        "anyone who can reach this port",
        "secret",
        "--host 127.0.0.1",
    ] {
        assert!(warning.contains(words), "{words}: {warning}");
    }
    let health = reqwest::get(format!("{}_mock/health", mock.authority()))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let mut quiet = start(&["--empty"]);
    let line = quiet.stderr_line("listening on");
    assert!(line.contains("(loopback: this machine only)"), "{line}");
    signal(&quiet.child, "TERM");
    assert_eq!(exit_code(&mut quiet), Some(0));
    let rest = quiet.rest_of_stderr();
    assert!(!rest.iter().any(|l| l.contains("WARNING")), "{rest:?}");
}
