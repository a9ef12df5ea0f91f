//! The mock is safe to run on a developer's machine: no web page can script its control
//! API (JSON only) or read it through DNS rebinding (served host names only), a body over
//! the limit is refused from its declared length, and a shutdown lets requests in flight
//! finish. (The binary's signals and `--host` warning: binary.rs.)

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::wire::{ResponseExt, setup};
use mock_entra::MockEntra;

async fn post_control(
    entra: &MockEntra,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut request = crate::http()
        .post(entra.control_url().join(path).unwrap())
        .body(body.to_owned());
    if let Some(t) = content_type {
        request = request.header("content-type", t);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json_value().await)
}

#[tokio::test]
async fn the_control_api_refuses_what_a_web_page_can_post_to_another_origin_with_415() {
    let entra = MockEntra::start().await;
    let tenant = r#"{"name": "attacker", "domains": ["attacker.example"]}"#;
    // What a cross-origin page can send without a CORS preflight: no content type,
    // text/plain (also dressed up as JSON), a form.
    for content_type in [
        None,
        Some("text/plain"),
        Some("text/plain; application/json"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let (status, body) = post_control(&entra, "tenants", content_type, tenant).await;
        assert_eq!(status, 415, "{content_type:?}: {body}");
        assert_eq!(body["error"], "unsupported_media_type");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("Content-Type: application/json"),
            "{body}"
        );
        let (status, _) = post_control(&entra, "reset", content_type, "").await;
        assert_eq!(status, 415, "an empty body too: {content_type:?}");
    }
    assert!(entra.setup().get("tenants").is_none(), "nothing was added");
    for content_type in ["application/json", "Application/JSON; charset=utf-8"] {
        let (status, body) = post_control(&entra, "tenants", Some(content_type), tenant).await;
        assert_eq!(status, 200, "{content_type}: {body}");
        entra.reset();
    }
    let (status, _) = post_control(&entra, "reset", Some("application/json"), "").await;
    assert_eq!(status, 200, "an empty JSON body is {{}}");
    // Reading needs no content type (a cross-origin page cannot read the answer).
    let r = reqwest::get(entra.control_url().join("health").unwrap())
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn get_with_host(url: &str, host: &str) -> (u16, String) {
    let r = crate::http()
        .get(url)
        .header("host", host)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_request_naming_a_host_the_mock_does_not_serve_is_refused_with_421() {
    let entra = MockEntra::builder()
        .scenario(json!({
            "tenants": {"home": {"domains": ["provider.example"]}},
            "apps": {"saas": {"home": "home", "secrets": {"main": {}}, "certificates": {"main": {}}}},
        }))
        .start()
        .await;
    let port = entra.address().port();
    let setup_url = entra.control_url().join("setup").unwrap().to_string();
    // DNS rebinding: the attacker's name, pointed at 127.0.0.1, in Host.
    for foreign in [
        format!("rebind.attacker.example:{port}"),
        "rebind.attacker.example".to_owned(),
        format!("127.0.0.1.attacker.example:{port}"),
        format!("localhost:{}", port ^ 1),
    ] {
        let (status, body) = get_with_host(&setup_url, &foreign).await;
        assert_eq!(status, 421, "{foreign}: {body}");
        assert!(
            body.contains("misdirected_request") && body.contains("--allow-host"),
            "{body}"
        );
        assert!(
            !body.contains("mock~") && !body.contains("PRIVATE KEY"),
            "{body}"
        );
    }
    let metadata = format!(
        "{}common/v2.0/.well-known/openid-configuration",
        entra.uri()
    );
    assert_eq!(get_with_host(&metadata, "attacker.example").await.0, 421);
    for served in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LocalHost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = get_with_host(&setup_url, &served).await;
        assert_eq!(status, 200, "{served}: {body}");
    }

    // Names a proxy or another container uses are served when named.
    let entra = MockEntra::builder()
        .public_url("https://login.mock.example:8443".parse().unwrap())
        .allow_host("mock-entra")
        .start()
        .await;
    let health = format!("http://{}/_mock/health", entra.address());
    for served in [
        "login.mock.example:8443",
        "login.mock.example",
        "mock-entra:8080",
        "mock-entra",
    ] {
        assert_eq!(get_with_host(&health, served).await.0, 200, "{served}");
    }
    assert_eq!(
        get_with_host(&health, "login.mock.example:9999").await.0,
        421
    );
    assert_eq!(get_with_host(&health, "other-container").await.0, 421);
}

/// Sends `head` (a request without its body) and reads until the mock closes.
async fn raw(entra: &MockEntra, head: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(entra.address())
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // A deadline on a wait for an outside party; the mock answers at once.
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the mock answered without waiting for the body")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_from_its_content_length_before_it_is_read() {
    let s = setup().await;
    let host = format!("127.0.0.1:{}", s.entra.address().port());
    for path in [
        format!("/{}/oauth2/v2.0/token", s.customer),
        "/_mock/scenario".to_owned(),
    ] {
        // 100 MiB declared, none of it sent: the answer cannot have waited for it.
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        );
        let answer = raw(&s.entra, &head).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(
            answer.contains("The request body is over 4194304 bytes."),
            "{answer}"
        );
        // With `Expect: 100-continue` (curl's way for big bodies) too, and no 100 first.
        let expect = head.replace("\r\n\r\n", "\r\nExpect: 100-continue\r\n\r\n");
        let answer = raw(&s.entra, &expect).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    // A foreign host is refused before its body too.
    let answer = raw(
        &s.entra,
        "POST /_mock/tenants HTTP/1.1\r\nHost: attacker.example\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

#[tokio::test]
async fn a_shutdown_answers_the_request_in_flight_then_refuses_new_connections() {
    let s = setup().await;
    // A slow token answer: the request is logged, then waits (in real time) to be sent.
    s.entra.set_latency(Duration::from_secs(2));
    let form = [
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", s.app.client_id().to_owned()),
        ("client_secret", s.secret.clone()),
        ("scope", "https://vault.azure.net/.default".to_owned()),
    ];
    let url = format!("{}{}/oauth2/v2.0/token", s.entra.uri(), s.customer);
    let in_flight = tokio::spawn(async move {
        let r = crate::http().post(url).form(&form).send().await?;
        let status = r.status().as_u16();
        Ok::<_, reqwest::Error>((status, r.json_value().await))
    });
    // Wait until the mock has the request (it logs it before the scripted latency).
    tokio::time::timeout(Duration::from_secs(30), async {
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        while s.entra.token_requests() == 0 {
            poll.tick().await;
        }
    })
    .await
    .expect("the request reaches the mock");
    let drained = s.entra.shutdown(Duration::from_secs(30));
    let (status, body) = in_flight.await.unwrap().expect("answered, not cut off");
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string());
    assert_eq!(
        drained.await,
        0,
        "every connection closed before the deadline"
    );
    assert!(
        tokio::net::TcpStream::connect(s.entra.address())
            .await
            .is_err(),
        "no new connection after a shutdown"
    );
}
