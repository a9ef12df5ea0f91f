//! https for the mock: a certificate authority (generated once per process, or loaded from
//! PEM) and a server certificate for the names the mock answers on, signed by it.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::MockError;

/// A CA that signs the mock's server certificates.
pub(crate) struct Authority {
    /// The CA certificate, PEM: what clients trust.
    pub(crate) cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

static SHARED: OnceLock<Arc<Authority>> = OnceLock::new();

impl Authority {
    /// The process's CA, generated on first use (every in-process mock shares it).
    pub(crate) fn shared() -> Arc<Self> {
        SHARED
            .get_or_init(|| Arc::new(Self::generate().expect("generating the mock CA failed")))
            .clone()
    }

    fn generate() -> Result<Self, rcgen::Error> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "MockEntra test CA (not for production)",
        );
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let now = crate::clock::wall_clock();
        super::keys::set_validity(
            &mut params,
            now - Duration::from_secs(86_400),
            now + Duration::from_secs(10 * 365 * 86_400),
        );
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// A CA loaded from its certificate and private key (PEM, PKCS#8 key). rcgen reads the
    /// CA certificate with x509-parser, hence the feature.
    #[cfg(feature = "custom-ca")]
    pub(crate) fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, MockError> {
        use rustls::pki_types::pem::PemObject;
        let bad = |what: &str, e: rcgen::Error| MockError::invalid(format!("{what}: {e}"));
        let key = rcgen::KeyPair::from_pem(key_pem).map_err(|e| bad("the CA key", e))?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| bad("the CA certificate", e))?;
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| MockError::invalid("the CA certificate has no CERTIFICATE block"))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der: der,
            issuer,
        })
    }

    /// A rustls server config with a fresh certificate for `names` (DNS names or IP
    /// addresses), offering h2 and http/1.1.
    pub(crate) fn server_config(
        &self,
        names: &[String],
    ) -> Result<Arc<rustls::ServerConfig>, MockError> {
        let failed = |e: &dyn std::fmt::Display| MockError::invalid(format!("TLS setup: {e}"));
        let key = rcgen::KeyPair::generate().map_err(|e| failed(&e))?;
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "MockEntra");
        for name in names {
            let san = match name.trim_matches(['[', ']']).parse::<IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(name.clone().try_into().map_err(|e| failed(&e))?),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = crate::clock::wall_clock();
        super::keys::set_validity(
            &mut params,
            now - Duration::from_secs(86_400),
            now + Duration::from_secs(365 * 86_400),
        );
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| failed(&e))?;
        let chain = vec![cert.der().clone(), self.cert_der.clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| failed(&e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| failed(&e))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
