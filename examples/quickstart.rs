//! Quick start: one multitenant app, a provider home tenant and two customer tenants, all
//! in the embedded mock Entra. Gets a Key Vault token from the customer that consented
//! through the cache, validates it as the customer's API would, prints who it is for, and
//! shows what happens with the one that did not.
//!
//! Run: `cargo run --example quickstart`

use azure_cross_tenant::{
    Cached, ClientSecret, Clock, Error, Expectations, SystemClock, TokenValidator,
};
use mock_entra::MockEntra;

const VAULT: &str = "https://vault.azure.net/.default";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The world: the provider's home tenant with its app, and two customers.
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let fabrikam = entra.add_tenant("fabrikam.example");
    let northwind = entra.add_tenant("northwind.example");
    let app = entra.register_app(&home, "saas-backend");
    let secret = entra.add_secret(&app);
    let sp_in_fabrikam = entra.consent(&fabrikam, &app); // Fabrikam's admin consented
    println!("mock Entra at {}", entra.uri());
    println!("app {} (home tenant {home})", app.client_id());

    // The provider's side: one credential for every tenant, cached once for the process.
    let provider = Cached::new(
        ClientSecret::new(app.client_id(), secret)
            .authority_host(entra.uri())
            .build()?,
    );

    // A consented customer: an app-only token issued by *their* tenant...
    let token = provider.get_token(&fabrikam, &[VAULT]).await?;
    let again = provider.get_token(&fabrikam, &[VAULT]).await?;
    println!(
        "second call served from the cache: {} (token requests: {})",
        token.ptr_eq(&again),
        entra.token_requests_for(&fabrikam)
    );
    // ...checked as the customer's API would before trusting it.
    let validator = TokenValidator::new(entra.cloud())?;
    let expect = Expectations::new(fabrikam.clone())
        .audience("https://vault.azure.net")
        .object_id(&sp_in_fabrikam)
        .app_id(app.client_id());
    let claims = validator.validate(token.secret(), &expect).await?;
    println!("\ntoken from fabrikam ({fabrikam}), validated:");
    println!("  tid = {}", claims.tid.as_deref().unwrap_or("?"));
    println!(
        "  oid = {} (the app's service principal in fabrikam: {sp_in_fabrikam})",
        claims.oid.as_deref().unwrap_or("?")
    );
    println!("  aud = {}", claims.aud.join(" "));
    let lifetime = token
        .expires_on()
        .duration_since(SystemClock::default().now())
        .unwrap_or_default();
    println!("  expires in {} s", lifetime.as_secs());

    // A customer that never consented: a typed error with the URL to send their admin to.
    match provider.get_token(&northwind, &[VAULT]).await {
        Err(err @ Error::NotConsented { .. }) => {
            println!("\nnorthwind ({northwind}) has not consented:");
            println!("  {err}");
            println!("  consent URL: {}", err.consent_url().unwrap_or_default());
        }
        other => return Err(format!("expected NotConsented, got {other:?}").into()),
    }
    Ok(())
}
