//! MockEntra's discovery, OpenID metadata and JWKS as Entra serves them (discovery, metadata fields, JWKS with `x5c`):
//! instance discovery, `invalid_tenant` on metadata, keys with a real `x5c`, the fields
//! and templates of per-tenant, `common` and `organizations` documents.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use crate::wire::{json_of, setup, with_query};

#[tokio::test]
async fn instance_discovery_answers_for_the_mocks_own_host_and_refuses_others() {
    let s = setup().await;
    let host = format!("127.0.0.1:{}", s.entra.address().port());
    let authorize = format!("{}{}/oauth2/v2.0/authorize", s.entra.uri(), s.customer);
    for path in ["common".to_owned(), s.customer.to_string()] {
        let url = format!("{}{path}/discovery/instance", s.entra.uri());
        let r = crate::http()
            .get(with_query(
                url,
                &[
                    ("api-version", "1.1"),
                    ("authorization_endpoint", &authorize),
                ],
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "max-age=86400, private");
        let body = json_of(r).await;
        assert_eq!(
            body["tenant_discovery_endpoint"],
            format!(
                "{}{}/v2.0/.well-known/openid-configuration",
                s.entra.uri(),
                s.customer
            )
        );
        assert_eq!(body["api-version"], "1.1");
        assert_eq!(body["metadata"][0]["preferred_network"], host.as_str());
        assert_eq!(body["metadata"][0]["aliases"], json!([host]));
    }
    let url = format!("{}common/discovery/instance", s.entra.uri());
    let r = crate::http()
        .get(with_query(
            url,
            &[
                ("api-version", "1.1"),
                (
                    "authorization_endpoint",
                    "https://login.example.net/x/oauth2/v2.0/authorize",
                ),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = json_of(r).await;
    assert_eq!(
        (body["error"].as_str(), body["error_codes"][0].as_u64()),
        (Some("invalid_instance"), Some(50049))
    );
}

#[tokio::test]
async fn metadata_and_keys_of_an_unknown_tenant_are_invalid_tenant_90002() {
    let s = setup().await;
    for path in [
        "v2.0/.well-known/openid-configuration",
        ".well-known/openid-configuration",
        "discovery/v2.0/keys",
    ] {
        let r = reqwest::get(format!("{}nosuch.example/{path}", s.entra.uri()))
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let body = json_of(r).await;
        assert_eq!(body["error"], "invalid_tenant", "{path}");
        assert_eq!(body["error_codes"], json!([90002]));
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS90002: Tenant 'nosuch.example' not found")
        );
    }
}

#[tokio::test]
async fn jwks_keys_carry_a_real_self_signed_certificate_whose_sha1_is_kid_and_x5t() {
    let s = setup().await;
    for (path, v2) in [("discovery/v2.0/keys", true), ("discovery/keys", false)] {
        let jwks = json_of(
            reqwest::get(format!("{}{}/{path}", s.entra.uri(), s.customer))
                .await
                .unwrap(),
        )
        .await;
        let keys = jwks["keys"].as_array().unwrap();
        assert!(keys.len() >= 2, "Entra always publishes several keys");
        for key in keys {
            assert!(key.get("alg").is_none());
            assert_eq!(key.get("issuer").is_some(), v2, "issuer on v2 keys only");
            let der = STANDARD.decode(key["x5c"][0].as_str().unwrap()).unwrap();
            let sha1 =
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
            let thumbprint = URL_SAFE_NO_PAD.encode(sha1);
            assert_eq!(key["kid"], thumbprint.as_str());
            assert_eq!(key["x5t"], thumbprint.as_str());
            let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
            assert_eq!(
                cert.subject().to_string(),
                "CN=accounts.accesscontrol.windows.net"
            );
            assert_eq!(cert.subject(), cert.issuer());
            let Ok(x509_parser::public_key::PublicKey::RSA(rsa)) = cert.public_key().parsed()
            else {
                panic!("an RSA key")
            };
            let n = rsa
                .modulus
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>();
            assert_eq!(n.len(), 256, "RSA 2048");
            assert_eq!(key["n"], URL_SAFE_NO_PAD.encode(&n).as_str());
            let signed = aws_lc_rs::signature::RsaPublicKeyComponents {
                n: &n[..],
                e: rsa.exponent,
            }
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                cert.tbs_certificate.as_ref(),
                &cert.signature_value.data,
            );
            assert!(signed.is_ok(), "self-signed");
        }
    }
}

#[tokio::test]
async fn metadata_has_entras_fields_and_common_and_organizations_use_the_issuer_template() {
    let s = setup().await;
    let get = |path: String| async move { json_of(reqwest::get(path).await.unwrap()).await };
    let base = s.entra.uri();
    let v2 = get(format!(
        "{base}{}/v2.0/.well-known/openid-configuration",
        s.customer
    ))
    .await;
    let tid = s.entra.tenant_guid(&s.customer);
    assert_eq!(v2["issuer"], format!("{base}{tid}/v2.0"));
    assert_eq!(
        v2["token_endpoint"],
        format!("{base}{tid}/oauth2/v2.0/token")
    );
    assert_eq!(
        v2["end_session_endpoint"],
        format!("{base}{tid}/oauth2/v2.0/logout")
    );
    assert_eq!(
        v2["scopes_supported"],
        json!(["openid", "profile", "email", "offline_access"])
    );
    assert_eq!(
        v2["response_modes_supported"],
        json!(["query", "fragment", "form_post"])
    );
    assert_eq!(
        (
            v2["msgraph_host"].as_str(),
            v2["cloud_instance_name"].as_str(),
            v2["tenant_region_scope"].as_str()
        ),
        (
            Some("graph.microsoft.com"),
            Some("microsoftonline.com"),
            Some("WW")
        )
    );
    assert!(
        v2["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("tid"))
    );
    let v1 = get(format!(
        "{base}{}/.well-known/openid-configuration",
        s.customer
    ))
    .await;
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(v1["token_endpoint"], format!("{base}{tid}/oauth2/token"));
    assert_eq!(v1["jwks_uri"], format!("{base}common/discovery/keys"));
    for alias in ["common", "organizations"] {
        let m = get(format!(
            "{base}{alias}/v2.0/.well-known/openid-configuration"
        ))
        .await;
        assert_eq!(m["issuer"], format!("{base}{{tenantid}}/v2.0"));
        assert_eq!(
            m["token_endpoint"],
            format!("{base}{alias}/oauth2/v2.0/token")
        );
        assert!(m["tenant_region_scope"].is_null());
        let keys = get(format!("{base}{alias}/discovery/v2.0/keys")).await;
        assert_eq!(
            keys["keys"][0]["issuer"],
            format!("{base}{{tenantid}}/v2.0")
        );
    }
}
