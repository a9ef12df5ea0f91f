//! Reads an access token on stdin, prints its claims (without trusting them), and, given
//! expectations, validates it against the issuing tenant's published keys.
//!
//! ```text
//! inspect_token [--tenant GUID --audience AUD [--object-id OID] [--app-id CLIENT_ID]
//!               [--role ROLE]... [--authority URL]]
//! ```
//!
//! Without arguments it runs a demo against the embedded mock Entra.
//!
//! Exit status: 0 when the token is valid (or the demo ran), 1 when it is not, 2 when it
//! could not be checked (bad arguments, keys unreachable).

use std::io::Read;
use std::process::ExitCode;

use azure_cross_tenant::insecure::decode_unverified;
use azure_cross_tenant::{
    ClientSecret, Cloud, Expectations, TenantCredentialProvider, TenantId, TokenValidator,
    ValidationErrorClass,
};
use mock_entra::MockEntra;

const USAGE: &str = "usage: inspect_token [--tenant GUID --audience AUD [--object-id OID] \
[--app-id CLIENT_ID] [--role ROLE]... [--authority URL]] < token";

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

/// What the check concluded, and the exit status that says so.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid,
    /// The token could not be checked (the keys are unreachable, the expectations
    /// unusable): neither valid nor proven invalid.
    Unchecked,
}

impl Verdict {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Valid => ExitCode::SUCCESS,
            Self::Invalid => ExitCode::from(1),
            Self::Unchecked => ExitCode::from(2),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("inspect_token: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let outcome = match &args.tenant {
        None => demo().await.map(|()| Verdict::Valid),
        Some(_) => {
            let mut token = String::new();
            match std::io::stdin().read_to_string(&mut token) {
                Ok(_) => inspect(token.trim(), args).await,
                Err(e) => Err(e.into()),
            }
        }
    };
    match outcome {
        Ok(verdict) => verdict.exit_code(),
        Err(e) => {
            eprintln!("inspect_token: {e}");
            Verdict::Unchecked.exit_code()
        }
    }
}

/// Prints `token`'s claims, then validates it against `args`' expectations.
async fn inspect(token: &str, args: Args) -> Result<Verdict, Box<dyn std::error::Error>> {
    print_claims(token);
    let tenant = args.tenant.ok_or("--tenant is required")?;
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
    Ok(
        match TokenValidator::new(cloud)?.validate(token, &expect).await {
            Ok(_) => {
                println!("valid: signature, issuer, lifetime and expectations check out");
                Verdict::Valid
            }
            Err(e) => match e.class() {
                ValidationErrorClass::Unavailable | ValidationErrorClass::Misconfigured => {
                    println!("NOT CHECKED: {e}");
                    Verdict::Unchecked
                }
                _ => {
                    println!("INVALID: {e}");
                    Verdict::Invalid
                }
            },
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        parse(list.iter().map(|s| s.to_string())).unwrap()
    }

    /// What `cargo run --example inspect_token` does without arguments.
    #[tokio::test]
    async fn the_demo_runs_against_the_embedded_mock() {
        demo().await.unwrap();
    }

    /// The exit status tells a valid token from an invalid one (a script can branch on
    /// it), and both from one that could not be checked.
    #[tokio::test]
    async fn the_verdict_and_exit_status_follow_the_validation() {
        let entra = MockEntra::start().await;
        let home = entra.add_tenant("provider.example");
        let customer = entra.add_tenant("fabrikam.example");
        let app = entra.register_app(&home, "saas-backend");
        let secret = entra.add_secret(&app);
        entra.consent(&customer, &app);
        let token = ClientSecret::new(app.client_id(), secret)
            .authority_host(entra.uri())
            .build()
            .unwrap()
            .get_token(&customer, &["https://vault.azure.net/.default"])
            .await
            .unwrap();
        let authority = entra.uri().to_string();
        let with = |audience: &str| {
            args(&[
                "--tenant",
                customer.as_str(),
                "--audience",
                audience,
                "--authority",
                &authority,
            ])
        };
        let valid = inspect(token.secret(), with("https://vault.azure.net"));
        assert_eq!(valid.await.unwrap(), Verdict::Valid);
        let wrong_audience = inspect(token.secret(), with("https://storage.azure.com"));
        assert_eq!(wrong_audience.await.unwrap(), Verdict::Invalid);
        let not_a_token = inspect("not-a-token", with("https://vault.azure.net"));
        assert_eq!(not_a_token.await.unwrap(), Verdict::Invalid);
        assert_ne!(Verdict::Invalid.exit_code(), ExitCode::SUCCESS);

        entra.set_keys_unavailable(true);
        let other = entra.add_tenant("contoso.example");
        let unreachable = args(&[
            "--tenant",
            other.as_str(),
            "--audience",
            "https://vault.azure.net",
            "--authority",
            &authority,
        ]);
        let forged = entra.sign_token(
            &serde_json::json!({"typ": "JWT", "alg": "RS256"}),
            &serde_json::json!({"tid": other.as_str(), "ver": "1.0"}),
        );
        assert_eq!(
            inspect(&forged, unreachable).await.unwrap(),
            Verdict::Unchecked
        );
    }
}
