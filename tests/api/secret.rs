//! `ClientSecret` against the mock Entra over real HTTP: what a caller gets back.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{VAULT, World};
use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{Clock, Error, TenantCredentialProvider, TenantId};

#[tokio::test]
async fn a_consented_tenant_issues_a_token_naming_that_tenant_and_the_apps_principal_there() {
    let w = World::new().await;
    let token = w.token(&w.customer).await;

    assert_eq!(token.tenant(), &w.customer);
    assert_eq!(token.scopes().as_str(), VAULT);
    assert_eq!(
        token.expires_on(),
        w.clock.now() + Duration::from_secs(3599)
    );
    assert_eq!(token.refresh_on(), None);

    let claims = decode_unverified(token.secret()).unwrap();
    assert_eq!(claims.tid.as_deref(), Some(w.customer.as_str()));
    assert_eq!(claims.oid.as_deref(), Some(w.sp_object_id.as_str()));
    assert_eq!(claims.aud, vec!["https://vault.azure.net"]);
    assert_eq!(claims.app_id(), Some(w.app.client_id()));
    assert_eq!(claims.ver.as_deref(), Some("1.0"));
    assert_eq!(claims.idtyp.as_deref(), Some("app"));
    assert_eq!(claims.iss, Some(w.entra.issuer_v1(&w.customer)));
    assert!(claims.roles.is_empty(), "no role was granted");
}

#[tokio::test]
async fn each_tenant_has_its_own_service_principal_object_id() {
    let w = World::new().await;
    let other_sp = w.entra.consent(&w.stranger, &w.app);
    let cred = w.credential();
    let a = decode_unverified(
        cred.get_token(&w.customer, &[VAULT])
            .await
            .unwrap()
            .secret(),
    )
    .unwrap();
    let b = decode_unverified(
        cred.get_token(&w.stranger, &[VAULT])
            .await
            .unwrap()
            .secret(),
    )
    .unwrap();
    assert_eq!(a.oid.as_deref(), Some(w.sp_object_id.as_str()));
    assert_eq!(b.oid.as_deref(), Some(other_sp.as_str()));
    assert_ne!(a.oid, b.oid);
    assert_ne!(a.tid, b.tid);
}

#[tokio::test]
async fn a_tenant_given_by_domain_gets_a_token_carrying_its_guid() {
    let w = World::new().await;
    let by_domain: TenantId = "Fabrikam.Example".parse().unwrap();
    let token = w
        .credential()
        .get_token(&by_domain, &[VAULT])
        .await
        .unwrap();
    assert_eq!(token.tenant().as_str(), "fabrikam.example");
    let claims = decode_unverified(token.secret()).unwrap();
    assert_eq!(claims.tid.as_deref(), Some(w.customer.as_str()));
    assert_eq!(w.entra.token_requests_for(&w.customer), 1);
}

#[tokio::test]
async fn granted_roles_appear_in_the_token_for_that_resource_only() {
    let w = World::new().await;
    w.entra.grant_role(
        &w.customer,
        &w.app,
        "https://vault.azure.net",
        "Secrets.Read",
    );
    let cred = w.credential();
    let vault = cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    let storage = cred
        .get_token(&w.customer, &["https://storage.azure.com/.default"])
        .await
        .unwrap();
    assert_eq!(
        decode_unverified(vault.secret()).unwrap().roles,
        vec!["Secrets.Read"]
    );
    assert!(
        decode_unverified(storage.secret())
            .unwrap()
            .roles
            .is_empty()
    );
}

#[tokio::test]
async fn an_api_exposed_by_an_app_gets_v2_tokens_with_its_client_id_as_audience() {
    let w = World::new().await;
    let api = w.entra.register_app(&w.customer, "customer-api");
    let uri = w.entra.expose_api(&api, None);
    let token = w
        .credential()
        .get_token(&w.customer, &[format!("{uri}/.default").as_str()])
        .await
        .unwrap();
    let claims = decode_unverified(token.secret()).unwrap();
    assert_eq!(claims.aud, vec![api.client_id().to_owned()]);
    assert_eq!(claims.azp.as_deref(), Some(w.app.client_id()));
    assert_eq!(claims.ver.as_deref(), Some("2.0"));
    assert_eq!(claims.iss, Some(w.entra.issuer_v2(&w.customer)));
}

#[tokio::test]
async fn lifetimes_as_strings_and_refresh_hints_are_understood() {
    let w = World::new().await;
    w.entra.set_expires_in_as_string(true);
    w.entra.set_token_lifetime(Duration::from_secs(7200));
    w.entra.set_refresh_in(Some(Duration::from_secs(3600)));
    let now = w.clock.now();
    let token = w.token(&w.customer).await;
    assert_eq!(token.expires_on(), now + Duration::from_secs(7200));
    assert_eq!(token.refresh_on(), Some(now + Duration::from_secs(3600)));
}

#[tokio::test]
async fn every_request_carries_its_own_client_request_id_and_the_form_entra_expects() {
    let w = World::new().await;
    let cred = w.credential();
    for _ in 0..3 {
        cred.get_token(&w.customer, &[VAULT, VAULT]).await.unwrap();
    }
    let log = w.entra.requests();
    assert_eq!(log.len(), 3);
    let ids: HashSet<_> = log
        .iter()
        .map(|r| r.client_request_id.clone().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "ids must differ per request");
    for r in &log {
        assert_eq!(r.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(r.scope.as_deref(), Some(VAULT), "duplicates are sent once");
        assert_eq!(r.client_id.as_deref(), Some(w.app.client_id()));
    }
}

#[tokio::test]
async fn revoking_consent_turns_tokens_into_not_consented() {
    let w = World::new().await;
    let cred = w.credential();
    cred.get_token(&w.customer, &[VAULT]).await.unwrap();
    w.entra.revoke_consent(&w.customer, &w.app);
    let err = cred.get_token(&w.customer, &[VAULT]).await.unwrap_err();
    assert!(matches!(err, Error::NotConsented { .. }), "{err:?}");
}

#[tokio::test]
async fn the_provider_reports_its_client_id_and_authority() {
    let w = World::new().await;
    let cred = w.credential();
    assert_eq!(cred.client_id(), w.app.client_id());
    assert_eq!(cred.authority_host(), &w.entra.uri());
}
