//! Bad input gets a clear, typed error before any request is sent.

use crate::common::{VAULT, World};
use azure_cross_tenant::{ClientSecret, Cloud, Error, TenantCredentialProvider, TenantId};

#[tokio::test]
async fn malformed_tenants_are_refused_by_the_parser() {
    for bad in [
        "",
        "common",
        "Organizations",
        "consumers",
        "contoso.com/oauth2",
        "contoso.com?x=1",
        "contoso.com#x",
        "..",
        "contoso com",
        "%2e%2e",
        "localhost",
        "a\u{0}b.com",
        &"a".repeat(300),
    ] {
        let err = bad.parse::<TenantId>().unwrap_err();
        assert!(
            matches!(err, Error::InvalidTenant { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(err.to_string().len() < 400, "bounded message for {bad:?}");
    }
}

#[tokio::test]
async fn malformed_scopes_never_reach_entra() {
    let w = World::new().await;
    let cred = w.credential();
    for bad in [
        vec![],
        vec![""],
        vec!["https://graph.microsoft.com/User.Read"],
        vec![VAULT, "https://storage.azure.com/.default"],
        vec!["https://vault.azure.net/.default https://storage.azure.com/.default"],
        vec!["/.default"],
    ] {
        let err = cred.get_token(&w.customer, &bad).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidScope { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
    assert_eq!(w.entra.token_requests(), 0);
}

#[test]
fn bad_configuration_fails_at_build_with_the_fix_in_the_message() {
    let guid = "11111111-2222-3333-4444-555555555555";
    let cases: Vec<(Result<ClientSecret, Error>, &str)> = vec![
        (
            ClientSecret::new("my-app", "s").build(),
            "Application (client) ID",
        ),
        (ClientSecret::new(guid, "").build(), "empty"),
        (
            ClientSecret::new(guid, "line\nbreak").build(),
            "control characters",
        ),
        (
            ClientSecret::new(guid, "s")
                .authority_host("http://login.example.com/".parse().unwrap())
                .build(),
            "plain http",
        ),
        (
            ClientSecret::new(guid, "s")
                .authority_host("https://user:pw@login.example.com/".parse().unwrap())
                .build(),
            "credentials",
        ),
        (
            ClientSecret::new(guid, "s")
                .timeout(std::time::Duration::ZERO)
                .build(),
            "timeout",
        ),
    ];
    for (result, fix) in cases {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::InvalidConfiguration(_)), "{err:?}");
        assert!(err.to_string().contains(fix), "expected {fix:?} in {err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }
}

#[test]
fn sovereign_clouds_point_at_their_own_authority() {
    let guid = "11111111-2222-3333-4444-555555555555";
    for (cloud, host) in [
        (Cloud::Public, "https://login.microsoftonline.com/"),
        (Cloud::UsGovernment, "https://login.microsoftonline.us/"),
        (Cloud::China, "https://login.partner.microsoftonline.cn/"),
    ] {
        let cred = ClientSecret::new(guid, "s").cloud(cloud).build().unwrap();
        assert_eq!(cred.authority_host().as_str(), host);
    }
}
