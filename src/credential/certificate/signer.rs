//! [`Signer`]: a certificate and its key, signing client assertions.

use std::time::{Duration, SystemTime};

use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use url::Url;

use super::x509::{CertFacts, bad, cert_facts, strip_zeros};
use crate::error::Error;
use crate::jwt::RsaAlg;

/// An assertion is valid this long; Entra accepts at most 10 minutes.
pub(super) const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

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
pub(super) struct Signer {
    key: KeyPair,
    /// DER of every certificate, leaf first.
    chain: Vec<Vec<u8>>,
    facts: CertFacts,
}

impl Signer {
    pub(super) fn from_parts(key: KeyPair, chain: Vec<Vec<u8>>) -> Result<Self, Error> {
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
        Ok(Self { key, chain, facts })
    }

    pub(super) fn x5t_s256(&self) -> &str {
        &self.facts.x5t_s256
    }

    pub(super) fn not_after(&self) -> SystemTime {
        self.facts.not_after
    }

    pub(super) fn not_before(&self) -> SystemTime {
        self.facts.not_before
    }

    pub(super) fn check_validity(&self, now: SystemTime) -> Result<(), Error> {
        if now < self.facts.not_before {
            return Err(bad(
                "the certificate is not valid yet (check its notBefore and the clock)",
            ));
        }
        if now >= self.facts.not_after {
            return Err(bad(
                "the certificate has expired; upload a new one to the app registration and deploy it",
            ));
        }
        Ok(())
    }

    /// A client assertion for `endpoint` (its `aud`: so it is valid for one tenant only).
    pub(super) fn assertion(
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
                json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.facts.x5t_s256})
            }
            AssertionAlgorithm::Rs256 => {
                json!({"alg": "RS256", "typ": "JWT", "x5t": self.facts.x5t})
            }
        };
        if send_x5c {
            let chain: Vec<String> = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
            header["x5c"] = json!(chain);
        }
        let iat = crate::clock::unix_secs(now);
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
