//! Reads an access token on stdin, prints its claims (without trusting them), and, given
//! expectations, validates it against the issuing tenant's published keys.
//!
//! ```text
//! inspect_token [--tenant GUID --audience AUD [--object-id OID] [--app-id CLIENT_ID]
//!               [--role ROLE]... [--authority URL]]
//! ```
//!
//! Without arguments it runs a demo against the embedded mock Entra.

use std::io::Read;

use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    ClientSecret, Cloud, Expectations, TenantCredentialProvider, TenantId, TokenValidator,
};
use mock_entra::MockEntra;

struct Args {
    tenant: Option<TenantId>,
    audiences: Vec<String>,
    object_id: Option<String>,
    app_id: Option<String>,
    roles: Vec<String>,
    authority: Option<String>,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        tenant: None,
        audiences: Vec::new(),
        object_id: None,
        app_id: None,
        roles: Vec::new(),
        authority: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--tenant" => a.tenant = Some(value()?.parse().map_err(|e| format!("{e}"))?),
            "--audience" => a.audiences.push(value()?),
            "--object-id" => a.object_id = Some(value()?),
            "--app-id" => a.app_id = Some(value()?),
            "--role" => a.roles.push(value()?),
            "--authority" => a.authority = Some(value()?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse(std::env::args().skip(1))?;
    let Some(tenant) = args.tenant.clone() else {
        return demo().await;
    };
    let mut token = String::new();
    std::io::stdin().read_to_string(&mut token)?;
    let token = token.trim();
    print_claims(token);

    let cloud = match &args.authority {
        Some(url) => Cloud::custom(url, "api://AzureADTokenExchange")?,
        None => Cloud::Public,
    };
    let mut expect = Expectations::new(tenant);
    for a in args.audiences {
        expect = expect.audience(a);
    }
    if let Some(oid) = args.object_id {
        expect = expect.object_id(oid);
    }
    if let Some(app) = args.app_id {
        expect = expect.app_id(app);
    }
    for r in args.roles {
        expect = expect.role(r);
    }
    match TokenValidator::new(cloud)?.validate(token, &expect).await {
        Ok(_) => println!("valid: signature, issuer, lifetime and expectations check out"),
        Err(e) => println!("INVALID: {e}"),
    }
    Ok(())
}

fn print_claims(token: &str) {
    match decode_unverified(token) {
        Ok(c) => {
            println!("claims (unverified):");
            println!("  tid   = {}", c.tid.as_deref().unwrap_or("-"));
            println!("  oid   = {}", c.oid.as_deref().unwrap_or("-"));
            println!("  aud   = {}", c.aud.join(" "));
            println!("  iss   = {}", c.iss.as_deref().unwrap_or("-"));
            println!("  app   = {}", c.app_id().unwrap_or("-"));
            println!("  roles = {}", c.roles.join(" "));
            println!("  ver   = {}", c.ver.as_deref().unwrap_or("-"));
            println!("  idtyp = {}", c.idtyp.as_deref().unwrap_or("-"));
            println!("  exp   = {}", c.exp.map_or("-".into(), |e| e.to_string()));
        }
        Err(e) => println!("not a JWT: {e}"),
    }
}

async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    println!("(no --tenant given: demo against the embedded mock Entra)\n");
    let entra = MockEntra::start().await;
    let home = entra.add_tenant("provider.example");
    let customer = entra.add_tenant("fabrikam.example");
    let app = entra.register_app(&home, "saas-backend");
    let secret = entra.add_secret(&app);
    let sp = entra.consent(&customer, &app);
    let credential = ClientSecret::new(app.client_id(), secret)
        .authority_host(entra.uri())
        .build()?;
    let token = credential
        .get_token(&customer, &["https://vault.azure.net/.default"])
        .await?;
    print_claims(token.secret());
    let validator = TokenValidator::new(entra.cloud())?;
    let good = Expectations::new(customer.clone())
        .audience("https://vault.azure.net")
        .object_id(&sp)
        .app_id(app.client_id());
    validator.validate(token.secret(), &good).await?;
    println!("\nvalid for tenant {customer}, service principal {sp}");
    let wrong = Expectations::new(customer).audience("https://storage.azure.com");
    if let Err(e) = validator.validate(token.secret(), &wrong).await {
        println!("and refused where storage is expected: {e}");
    }
    Ok(())
}
