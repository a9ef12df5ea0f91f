//! Shared by the benchmarks: a provider that mints JWT-sized tokens in-process, to fill
//! caches with many entries without as many HTTP round trips.
#![allow(dead_code, unreachable_pub)] // each bench uses part of it

use std::time::Duration;

use azure_cross_tenant::{
    AccessToken, Clock, Error, Scopes, SystemClock, TenantCredentialProvider, TenantId,
};

/// About the length of an Entra app token.
pub const TOKEN_LEN: usize = 1500;

/// Mints a `TOKEN_LEN`-byte token valid for an hour for any tenant and scope.
#[derive(Debug)]
pub struct Minted;

#[async_trait::async_trait]
impl TenantCredentialProvider for Minted {
    fn client_id(&self) -> &str {
        "00000000-0000-0000-0000-0000000000b1"
    }
    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        let scopes = Scopes::parse(scopes)?;
        let text = format!("eyJ{}", "x".repeat(TOKEN_LEN - 3));
        let expires = SystemClock::default().now() + Duration::from_secs(3600);
        Ok(AccessToken::new(text, expires, tenant.clone(), scopes))
    }
}
