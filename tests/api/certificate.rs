//! `ClientCertificate` against the mock over real HTTP. Certificates and keys are
//! generated at test time (RSA by aws-lc-rs, X.509 by rcgen); none are checked in.

use std::sync::Arc;

use crate::common::{VAULT, World};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    AssertionAlgorithm, Cached, ClientCertificate, Error, TenantCredentialProvider,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

pub struct TestCert {
    pub key_pem: String,
    pkcs1_pem: String,
    pub pkcs8_der: Vec<u8>,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

pub fn make_cert(valid: Option<(i32, i32)>) -> TestCert {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let pkcs8: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
    let pkcs8_der = pkcs8.as_ref().to_vec();
    let pkcs1 = pkcs1_from_pkcs8(&pkcs8_der);
    let key_pem = pem("PRIVATE KEY", &pkcs8_der);
    let signing = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["saas-backend.example".to_owned()]).unwrap();
    if let Some((from, to)) = valid {
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(to, 1, 1);
    }
    let cert = params.self_signed(&signing).unwrap();
    TestCert {
        pkcs1_pem: pem("RSA PRIVATE KEY", &pkcs1),
        key_pem,
        pkcs8_der,
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
    }
}

fn credential(
    w: &World,
    cert: &TestCert,
) -> azure_cross_tenant::CredentialBuilder<ClientCertificate> {
    ClientCertificate::from_pem(w.app.client_id(), &cert.cert_pem, &cert.key_pem)
        .authority_host(w.entra.uri())
        .clock(Arc::new(w.clock.clone()))
        .sleeper(Arc::new(w.clock.clone()))
}

#[tokio::test]
async fn both_header_forms_and_both_key_encodings_get_tokens() {
    let w = World::new().await;
    let cert = make_cert(None);
    w.entra.add_certificate(&w.app, cert.cert_pem.as_bytes());
    for alg in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let cred = credential(&w, &cert).algorithm(alg).build().unwrap();
        let token = cred.get_token(&w.customer, &[VAULT]).await.unwrap();
        let claims = decode_unverified(token.secret()).unwrap();
        assert_eq!(claims.tid.as_deref(), Some(w.customer.as_str()));
        assert_eq!(claims.oid.as_deref(), Some(w.sp_object_id.as_str()));
    }
    let pkcs1 = ClientCertificate::from_pem(w.app.client_id(), &cert.cert_pem, &cert.pkcs1_pem)
        .authority_host(w.entra.uri())
        .build()
        .unwrap();
    pkcs1.get_token(&w.customer, &[VAULT]).await.unwrap();
    // Key and certificate in one file work too.
    let both = format!("{}{}", cert.cert_pem, cert.key_pem);
    ClientCertificate::from_pem(w.app.client_id(), &both, &both)
        .build()
        .unwrap();
}

#[cfg(feature = "pkcs12")]
#[tokio::test]
async fn pkcs12_files_work_and_a_wrong_password_is_a_clear_error() {
    let w = World::new().await;
    let cert = make_cert(None);
    w.entra.add_certificate(&w.app, &cert.cert_der);
    let mut store = p12_keystore::KeyStore::new();
    let chain = p12_keystore::PrivateKeyChain::new(
        p12_keystore::LocalKeyId(vec![1u8; 20]),
        p12_keystore::PrivateKey::from_der(&cert.pkcs8_der).unwrap(),
        [p12_keystore::Certificate::from_der(&cert.cert_der).unwrap()],
    );
    store.add_entry("saas", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    let pfx = store.writer("correct horse").write().unwrap();

    let cred = ClientCertificate::from_pkcs12(w.app.client_id(), &pfx, "correct horse")
        .authority_host(w.entra.uri())
        .send_x5c(true)
        .build()
        .unwrap();
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();

    let err = ClientCertificate::from_pkcs12(w.app.client_id(), &pfx, "wrong")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("password"), "{err}");
    let err = ClientCertificate::from_pkcs12(w.app.client_id(), b"not a pfx", "x")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidConfiguration(_)), "{err:?}");
}

#[tokio::test]
async fn the_assertion_is_built_as_entra_specifies() {
    let w = World::new().await;
    let cert = make_cert(None);
    let seen = capture_assertion(
        &cert,
        w.app.client_id(),
        w.customer.as_str(),
        AssertionAlgorithm::Ps256,
    )
    .await;
    let parts: Vec<&str> = seen.assertion.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    assert_eq!(header["alg"], "PS256");
    assert!(header["x5t#S256"].is_string() && header.get("x5t").is_none());
    assert_eq!(header["x5c"][0], STANDARD.encode(&cert.cert_der));
    assert_eq!(claims["iss"], w.app.client_id());
    assert_eq!(claims["sub"], w.app.client_id());
    assert_eq!(
        claims["aud"], seen.endpoint,
        "aud is the exact endpoint posted to"
    );
    let (nbf, exp) = (
        claims["nbf"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(exp > nbf && exp - nbf <= 600);
    assert_eq!(claims["jti"].as_str().unwrap().len(), 36);

    let legacy = capture_assertion(
        &cert,
        w.app.client_id(),
        w.customer.as_str(),
        AssertionAlgorithm::Rs256,
    )
    .await;
    let first = legacy.assertion.split('.').next().unwrap().to_owned();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(first).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert!(header["x5t"].is_string());
}

struct Captured {
    assertion: String,
    endpoint: String,
}

/// Sends one token request with `cert` to a throwaway server and returns the
/// `client_assertion` it carried and the endpoint it was posted to.
async fn capture_assertion(
    cert: &TestCert,
    client_id: &str,
    tenant: &str,
    alg: AssertionAlgorithm,
) -> Captured {
    let (uri, received) = capture_one_request().await;
    let cred = ClientCertificate::from_pem(client_id, &cert.cert_pem, &cert.key_pem)
        .authority_host(format!("{uri}/").parse().unwrap())
        .algorithm(alg)
        .send_x5c(true)
        .build()
        .unwrap();
    let _ = cred.get_token(&tenant.parse().unwrap(), &[VAULT]).await;
    let (path, body) = received.await.unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    Captured {
        assertion: form
            .into_iter()
            .find(|(k, _)| k == "client_assertion")
            .unwrap()
            .1,
        endpoint: format!("{uri}{path}"),
    }
}

/// A loopback HTTP server for one request: it answers `400 {}` and hands back the
/// request's path and body. Returns its base URL (no trailing slash).
async fn capture_one_request() -> (String, tokio::task::JoinHandle<(String, Vec<u8>)>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let received = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut data = Vec::new();
        let (head_len, body_len) = loop {
            let mut chunk = [0; 4096];
            let n = stream.read(&mut chunk).await.unwrap();
            assert!(n > 0, "the connection closed before a whole request");
            data.extend_from_slice(&chunk[..n]);
            let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let body_len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if data.len() >= end + 4 + body_len {
                break (end + 4, body_len);
            }
        };
        let head = String::from_utf8_lossy(&data[..head_len]).into_owned();
        let path = head.split(' ').nth(1).unwrap().to_owned();
        let answer = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        stream.write_all(answer.as_bytes()).await.unwrap();
        (path, data[head_len..head_len + body_len].to_vec())
    });
    (uri, received)
}

#[tokio::test]
async fn wrong_key_replayed_assertion_other_tenant_and_expiry_are_rejected() {
    let w = World::new().await;
    let registered = make_cert(None);
    let stranger_cert = make_cert(None);
    w.entra.add_certificate(&w.app, &registered.cert_der);

    // A certificate never uploaded: AADSTS700027.
    let err = credential(&w, &stranger_cert)
        .build()
        .unwrap()
        .get_token(&w.customer, &[VAULT])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidClientAssertion(_)), "{err:?}");
    assert!(err.to_string().contains("upload the certificate"), "{err}");

    // An assertion replayed, or one made for tenant A sent to tenant B.
    let assertion = capture_assertion(
        &registered,
        w.app.client_id(),
        w.customer.as_str(),
        AssertionAlgorithm::Ps256,
    )
    .await
    .assertion;
    let post = |tenant: String, assertion: String| {
        let http = crate::common::plain_http();
        let url = format!("{}{tenant}/oauth2/v2.0/token", w.entra.uri());
        let client_id = w.app.client_id().to_owned();
        async move {
            let r = http
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("scope", VAULT),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            (status, body)
        }
    };
    // The captured assertion's aud is the throwaway server: refused everywhere.
    let (status, body) = post(w.customer.to_string(), assertion).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(700027)),
        "{body}"
    );

    // A genuine one for tenant A works once, then is a replay; and never works in B.
    let for_a = sign_for(
        &registered,
        w.app.client_id(),
        &format!("{}{}/oauth2/v2.0/token", w.entra.uri(), w.customer),
        0,
    );
    let (status, _) = post(w.customer.to_string(), for_a.clone()).await;
    assert_eq!(status, 200);
    let (status, body) = post(w.customer.to_string(), for_a.clone()).await;
    assert_eq!(status, 401, "replay: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("replay")
    );
    w.entra.consent(&w.stranger, &w.app);
    let for_a2 = sign_for(
        &registered,
        w.app.client_id(),
        &format!("{}{}/oauth2/v2.0/token", w.entra.uri(), w.customer),
        0,
    );
    let (status, body) = post(w.stranger.to_string(), for_a2).await;
    assert_eq!(status, 401, "wrong aud: {body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("audience")
    );

    // An expired assertion: AADSTS700024, an invalid_client like every other (401).
    let old = sign_for(
        &registered,
        w.app.client_id(),
        &format!("{}{}/oauth2/v2.0/token", w.entra.uri(), w.customer),
        -3600,
    );
    let (status, body) = post(w.customer.to_string(), old).await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (401, Some(700024)),
        "{body}"
    );
}

/// A PS256 assertion for `aud`, its times shifted by `offset` seconds from now.
fn sign_for(cert: &TestCert, client_id: &str, aud: &str, offset: i64) -> String {
    use aws_lc_rs::digest;
    let key = KeyPair::from_pkcs8(&cert.pkcs8_der).unwrap();
    let now = (std::time::UNIX_EPOCH.elapsed().unwrap().as_secs() as i64 + offset) as u64;
    let header = serde_json::json!({"alg": "PS256", "typ": "JWT",
        "x5t#S256": URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, &cert.cert_der))});
    let claims = serde_json::json!({"aud": aud, "iss": client_id, "sub": client_id,
        "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + 600});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn bad_certificates_and_keys_are_refused_at_build() {
    let guid = "11111111-2222-3333-4444-555555555555";
    let a = make_cert(None);
    let b = make_cert(None);
    let expired = make_cert(Some((2020, 2021)));
    let future = make_cert(Some((2090, 2091)));
    for (cert, key, want) in [
        (a.cert_pem.as_str(), "", "no private key"),
        ("", a.key_pem.as_str(), "no certificate"),
        (a.cert_pem.as_str(), b.key_pem.as_str(), "does not match"),
        (
            expired.cert_pem.as_str(),
            expired.key_pem.as_str(),
            "expired",
        ),
        (
            future.cert_pem.as_str(),
            future.key_pem.as_str(),
            "not valid yet",
        ),
    ] {
        let err = ClientCertificate::from_pem(guid, cert, key)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains(want), "expected {want:?}: {err}");
        assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    }
    let cred = ClientCertificate::from_pem(guid, &a.cert_pem, &a.key_pem)
        .build()
        .unwrap();
    let debug = format!("{cred:?}");
    assert!(
        debug.contains("<redacted>") && !debug.contains(&a.key_pem[30..60]),
        "{debug}"
    );
}

#[tokio::test]
async fn works_through_the_cache_unchanged() {
    let w = World::new().await;
    let cert = make_cert(None);
    w.entra.add_certificate(&w.app, &cert.cert_der);
    let cached = Cached::new(credential(&w, &cert).build().unwrap());
    let a = cached.get_token(&w.customer, &[VAULT]).await.unwrap();
    let b = cached.get_token(&w.customer, &[VAULT]).await.unwrap();
    assert!(a.ptr_eq(&b));
    assert_eq!(w.entra.token_requests(), 1);
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (its OCTET STRING).
fn pkcs1_from_pkcs8(pkcs8: &[u8]) -> Vec<u8> {
    // PrivateKeyInfo ::= SEQUENCE { version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING }
    fn header(b: &[u8]) -> (usize, usize) {
        // (header length, content length) of the DER element at the start of `b`
        if b[1] & 0x80 == 0 {
            (2, b[1] as usize)
        } else {
            let n = (b[1] & 0x7f) as usize;
            let len = b[2..2 + n]
                .iter()
                .fold(0usize, |acc, x| (acc << 8) | *x as usize);
            (2 + n, len)
        }
    }
    let (h, _) = header(pkcs8);
    let mut rest = &pkcs8[h..];
    for _ in 0..2 {
        let (h, len) = header(rest);
        rest = &rest[h + len..];
    }
    let (h, len) = header(rest);
    rest[h..h + len].to_vec()
}
