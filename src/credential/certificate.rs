//! [`ClientCertificate`]: the app proves itself with a certificate, by signing a short-lived
//! client assertion per request (ENTRA.md section 1, "Certificate assertion").

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use url::Url;

use crate::authority::{AuthSource, ClientAuth, TokenClient};
use crate::clock::SharedClock;
use crate::credential::{CommonOptions, common_builder_methods};
use crate::error::Error;
use crate::jwt::RsaAlg;
use crate::provider::TenantCredentialProvider;
use crate::tenant::TenantId;
use crate::token::{AccessToken, Secret};

/// An assertion is valid this long; Entra accepts at most 10 minutes.
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);
/// A certificate expiring sooner than this gets a warning when the credential is built.
const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);
/// Largest PEM or PKCS#12 input accepted.
const MAX_INPUT: usize = 1024 * 1024;

/// How the client assertion is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AssertionAlgorithm {
    /// RSASSA-PSS with SHA-256 and the `x5t#S256` thumbprint: the current form (default).
    #[default]
    Ps256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and the SHA-1 `x5t` thumbprint: the legacy form,
    /// for authorities that need it.
    Rs256,
}

/// The parsed certificate and its key, ready to sign assertions.
struct Signer {
    key: KeyPair,
    /// DER of every certificate, leaf first.
    chain: Vec<Vec<u8>>,
    x5t_s256: String,
    x5t: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Signer {
    fn from_parts(key: KeyPair, chain: Vec<Vec<u8>>) -> Result<Self, Error> {
        let leaf = chain.first().ok_or_else(|| {
            bad("no certificate found; pass the certificate (leaf first) with the key")
        })?;
        let facts = cert_facts(leaf)?;
        let ours = key.public_key();
        if facts.n != strip_zeros(ours.modulus().big_endian_without_leading_zero())
            || facts.e != strip_zeros(ours.exponent().big_endian_without_leading_zero())
        {
            return Err(bad("the private key does not match the certificate"));
        }
        let CertFacts {
            x5t_s256,
            x5t,
            not_before,
            not_after,
            ..
        } = facts;
        Ok(Self {
            key,
            chain,
            x5t_s256,
            x5t,
            not_before,
            not_after,
        })
    }

    fn check_validity(&self, now: SystemTime) -> Result<(), Error> {
        if now < self.not_before {
            return Err(bad(
                "the certificate is not valid yet (check its notBefore and the clock)",
            ));
        }
        if now >= self.not_after {
            return Err(bad(
                "the certificate has expired; upload a new one to the app registration and deploy it",
            ));
        }
        Ok(())
    }

    /// A client assertion for `endpoint` (its `aud`: so it is valid for one tenant only).
    fn assertion(
        &self,
        client_id: &str,
        endpoint: &Url,
        now: SystemTime,
        alg: AssertionAlgorithm,
        send_x5c: bool,
    ) -> Result<String, Error> {
        self.check_validity(now)?;
        let mut header = match alg {
            AssertionAlgorithm::Ps256 => {
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.x5t_s256})
            }
            AssertionAlgorithm::Rs256 => json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t}),
        };
        if send_x5c {
            header["x5c"] = json!(
                self.chain
                    .iter()
                    .map(|c| STANDARD.encode(c))
                    .collect::<Vec<_>>()
            );
        }
        let iat = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = json!({
            "aud": endpoint.as_str(),
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": iat,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME.as_secs(),
        });
        let alg = match alg {
            AssertionAlgorithm::Ps256 => RsaAlg::Ps256,
            AssertionAlgorithm::Rs256 => RsaAlg::Rs256,
        };
        crate::jwt::sign(&header, &claims, &self.key, alg)
            .map_err(|_| Error::Internal("RSA signing failed"))
    }
}

/// What a certificate tells an assertion's signer and verifier: its RSA public key,
/// thumbprints and validity. Shared by the credential and the mock's verification.
pub(crate) struct CertFacts {
    /// Modulus, big-endian without leading zeros.
    pub(crate) n: Vec<u8>,
    /// Public exponent, big-endian without leading zeros.
    pub(crate) e: Vec<u8>,
    /// base64url SHA-256 of the DER (`x5t#S256`).
    pub(crate) x5t_s256: String,
    /// base64url SHA-1 of the DER (`x5t`).
    pub(crate) x5t: String,
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..].to_vec()
}

/// Reads an X.509 DER certificate with an RSA key.
pub(crate) fn cert_facts(der: &[u8]) -> Result<CertFacts, Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|_| bad("the first certificate is not valid X.509 DER"))?;
    let rsa = match cert.public_key().parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => rsa,
        _ => {
            return Err(bad(
                "the certificate's key is not RSA; Entra client assertions here use RSA keys",
            ));
        }
    };
    let to_time =
        |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
    let validity = cert.validity();
    Ok(CertFacts {
        n: strip_zeros(rsa.modulus),
        e: strip_zeros(rsa.exponent),
        x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der)),
        x5t: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
        not_before: to_time(validity.not_before.timestamp()),
        not_after: to_time(validity.not_after.timestamp()),
    })
}

fn bad(why: &str) -> Error {
    Error::InvalidConfiguration(format!("client certificate: {why}"))
}

/// The PEM blocks of `input` with their labels.
pub(crate) fn pem_blocks(input: &str) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut blocks = Vec::new();
    let mut rest = input;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let label_end = after
            .find("-----")
            .ok_or_else(|| bad("a PEM header is cut off"))?;
        let label = after[..label_end].to_owned();
        let body_start = &after[label_end + 5..];
        let end_marker = format!("-----END {label}-----");
        let end = body_start
            .find(&end_marker)
            .ok_or_else(|| bad("a PEM block has no END line"))?;
        let b64: String = body_start[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|_| bad("a PEM block is not valid base64"))?;
        blocks.push((label, der));
        rest = &body_start[end + end_marker.len()..];
    }
    Ok(blocks)
}

fn key_from_pem(pem: &str) -> Result<KeyPair, Error> {
    let blocks = pem_blocks(pem)?;
    let (label, der) = blocks
        .iter()
        .find(|(l, _)| l.contains("PRIVATE KEY"))
        .ok_or_else(|| bad("the key PEM holds no private key"))?;
    match label.as_str() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(der)
            .map_err(|_| bad("the PKCS#8 private key is not an RSA key this crate can use (RSA 2048 to 8192 bits)")),
        "RSA PRIVATE KEY" => KeyPair::from_der(der)
            .map_err(|_| bad("the PKCS#1 RSA private key could not be read")),
        "ENCRYPTED PRIVATE KEY" => Err(bad(
            "the private key is encrypted; decrypt it first or use a PKCS#12 file with its password",
        )),
        _ => Err(bad("the private key is not RSA (only RSA keys are supported)")),
    }
}

/// A multitenant app authenticating with a certificate.
///
/// Each request carries a fresh client assertion whose `aud` is that tenant's token
/// endpoint, so an assertion captured in one tenant is worthless in another. No OpenSSL:
/// PEM (PKCS#8 or PKCS#1 keys) and PKCS#12 are read in Rust, signing uses aws-lc-rs. The
/// private key never appears in `Debug`, errors or logs.
///
/// ```no_run
/// use azure_cross_tenant::{ClientCertificate, TenantCredentialProvider, TenantId};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pfx = std::fs::read("saas-app.pfx")?;
/// let credential = ClientCertificate::from_pkcs12("11111111-2222-3333-4444-555555555555", &pfx, "pfx password")
///     .send_x5c(true) // subject-name/issuer authentication
///     .build()?;
/// let tenant: TenantId = "contoso.onmicrosoft.com".parse()?;
/// let token = credential.get_token(&tenant, &["https://vault.azure.net/.default"]).await?;
/// # Ok(()) }
/// ```
pub struct ClientCertificate {
    client: TokenClient,
    auth: CertificateAuth,
}

struct CertificateAuth {
    signer: Arc<Signer>,
    client_id: Arc<str>,
    clock: SharedClock,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
}

#[async_trait::async_trait]
impl AuthSource for CertificateAuth {
    async fn auth(&self, endpoint: &Url, _fresh: bool) -> Result<ClientAuth, Error> {
        let assertion = self.signer.assertion(
            &self.client_id,
            endpoint,
            self.clock.now(),
            self.algorithm,
            self.send_x5c,
        )?;
        Ok(ClientAuth::Assertion(Secret::new(assertion)))
    }
}

impl ClientCertificate {
    /// The token client and client authentication, for grants other than client
    /// credentials (onboarding redeems the admin's sign-in code with them).
    pub(crate) fn token_client(&self) -> (&TokenClient, &dyn AuthSource) {
        (&self.client, &self.auth)
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("client_id", &self.client.client_id)
            .field(
                "authority_host",
                &self.client.cloud.authority_host().as_str(),
            )
            .field("x5t#S256", &self.auth.signer.x5t_s256)
            .field("not_after", &self.auth.signer.not_after)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ClientCertificate {
    /// From a PEM certificate chain (leaf first) and a PEM private key (PKCS#8
    /// `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`; both may be in one file). Errors show
    /// at `build`.
    pub fn from_pem(
        client_id: impl Into<String>,
        cert_chain_pem: impl AsRef<[u8]>,
        private_key_pem: impl AsRef<[u8]>,
    ) -> ClientCertificateBuilder {
        let parsed = (|| {
            let (certs, key) = (cert_chain_pem.as_ref(), private_key_pem.as_ref());
            if certs.len() > MAX_INPUT || key.len() > MAX_INPUT {
                return Err(bad("input larger than 1 MiB"));
            }
            let certs =
                std::str::from_utf8(certs).map_err(|_| bad("the certificate PEM is not text"))?;
            let key = std::str::from_utf8(key).map_err(|_| bad("the key PEM is not text"))?;
            let chain: Vec<Vec<u8>> = pem_blocks(certs)?
                .into_iter()
                .filter(|(l, _)| l == "CERTIFICATE")
                .map(|(_, der)| der)
                .collect();
            Signer::from_parts(key_from_pem(key)?, chain)
        })();
        ClientCertificateBuilder::new(client_id.into(), parsed)
    }

    /// From a PKCS#12 (`.pfx`) file, as Key Vault and the portal export it. Errors (wrong
    /// password, no key) show at `build`.
    pub fn from_pkcs12(
        client_id: impl Into<String>,
        der: &[u8],
        password: &str,
    ) -> ClientCertificateBuilder {
        let parsed = (|| {
            if der.len() > MAX_INPUT {
                return Err(bad("input larger than 1 MiB"));
            }
            let store = p12_keystore::KeyStore::from_pkcs12(
                der,
                password,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|e| {
                let msg = e.to_string().to_ascii_lowercase();
                if msg.contains("mac") || msg.contains("password") || msg.contains("decrypt") {
                    bad("the PKCS#12 password is wrong (or the file is corrupt)")
                } else {
                    bad("the file is not a PKCS#12 archive this crate can read")
                }
            })?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| bad("the PKCS#12 archive holds no private key"))?;
            let key = KeyPair::from_pkcs8(chain.key().as_der())
                .map_err(|_| bad("the PKCS#12 private key is not an RSA key this crate can use"))?;
            let certs = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
            Signer::from_parts(key, certs)
        })();
        ClientCertificateBuilder::new(client_id.into(), parsed)
    }

    /// A signed client assertion for `tenant`'s token endpoint, as the next request would
    /// send (for other grants that take one, or to inspect it). `Debug` redacts it.
    pub fn client_assertion(&self, tenant: &TenantId) -> Result<crate::Assertion, Error> {
        let endpoint = self.client.cloud.token_endpoint(tenant);
        let now = self.client.clock.now();
        let text = self.auth.signer.assertion(
            &self.auth.client_id,
            &endpoint,
            now,
            self.auth.algorithm,
            self.auth.send_x5c,
        )?;
        Ok(crate::Assertion::new(text, Some(now + ASSERTION_LIFETIME)))
    }

    /// The certificate's SHA-256 thumbprint (base64url), as `x5t#S256` carries it.
    pub fn thumbprint_sha256(&self) -> &str {
        &self.auth.signer.x5t_s256
    }

    /// When the certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.auth.signer.not_after
    }
}

/// Builds a [`ClientCertificate`].
#[must_use = "a builder does nothing until `build()` (or `start()`)"]
pub struct ClientCertificateBuilder {
    client_id: String,
    parsed: Result<Signer, Error>,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
    common: CommonOptions,
}

impl fmt::Debug for ClientCertificateBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificateBuilder")
            .field("client_id", &self.client_id)
            .field("algorithm", &self.algorithm)
            .field("send_x5c", &self.send_x5c)
            .field("private_key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ClientCertificateBuilder {
    fn new(client_id: String, parsed: Result<Signer, Error>) -> Self {
        Self {
            client_id,
            parsed,
            algorithm: AssertionAlgorithm::default(),
            send_x5c: false,
            common: CommonOptions::default(),
        }
    }

    common_builder_methods!();

    /// Sends the certificate chain (`x5c`) for subject-name/issuer authentication
    /// (default false).
    pub fn send_x5c(mut self, send: bool) -> Self {
        self.send_x5c = send;
        self
    }

    /// The assertion's signature algorithm (default PS256 with `x5t#S256`).
    pub fn algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// Checks everything (key matches certificate, certificate currently valid) and
    /// builds the credential. Nothing is sent yet.
    pub fn build(self) -> Result<ClientCertificate, Error> {
        let signer = self.parsed?;
        let client = self.common.build(&self.client_id)?;
        let now = client.clock.now();
        signer.check_validity(now)?;
        if signer.not_after.duration_since(now).unwrap_or_default() < EXPIRY_WARNING {
            tracing::warn!(
                client_id = %client.client_id,
                thumbprint = %signer.x5t_s256,
                "the client certificate expires within 30 days; upload its successor to the app registration"
            );
        }
        let client_id = client.client_id.clone();
        let clock = client.clock.clone();
        Ok(ClientCertificate {
            client,
            auth: CertificateAuth {
                signer: Arc::new(signer),
                client_id,
                clock,
                algorithm: self.algorithm,
                send_x5c: self.send_x5c,
            },
        })
    }
}

#[async_trait::async_trait]
impl TenantCredentialProvider for ClientCertificate {
    fn client_id(&self) -> &str {
        &self.client.client_id
    }

    async fn get_token(&self, tenant: &TenantId, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.client.request(tenant, scopes, &self.auth).await
    }

    fn authority_host(&self) -> &Url {
        self.client.cloud.authority_host()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_parsing_refuses_garbage_without_panicking() {
        for input in [
            "",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN X-----\n!!\n-----END X-----",
            "-----BEGIN A",
        ] {
            let _ = pem_blocks(input);
        }
        assert!(key_from_pem("no key here").is_err());
        let err = key_from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
        )
        .unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
        let err =
            key_from_pem("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----")
                .unwrap_err();
        assert!(err.to_string().contains("not RSA"), "{err}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Arbitrary text as certificate and key: an error, never a panic.
        #[test]
        fn arbitrary_pem_never_panics(cert in ".{0,200}", key in ".{0,200}") {
            let body = format!("-----BEGIN CERTIFICATE-----\n{cert}\n-----END CERTIFICATE-----");
            let result = ClientCertificate::from_pem("11111111-2222-3333-4444-555555555555", &body, &key).build();
            prop_assert!(result.is_err());
        }
    }
}
