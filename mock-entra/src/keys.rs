//! The mock's signing keys, shaped like Entra's: RSA 2048, each with a self-signed
//! certificate (`CN=accounts.accesscontrol.windows.net`, five years) published in `x5c`,
//! and `kid` = `x5t` = the base64url SHA-1 of that certificate.
//!
//! RSA key generation costs about a tenth of a second, and tests start hundreds of mocks,
//! so keys come from a process-wide pool: a mock takes keys no live mock holds and gives
//! them back when it is dropped. Two live mocks never share a key.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value, json};

use crate::jose;

/// One RSA key with its certificate and `kid`. It signs with the aws-lc-rs key pair,
/// parsed once (jsonwebtoken's `EncodingKey` holds DER and parses and checks the key on
/// every signature: a third of the mock's CPU in a busy test); jsonwebtoken verifies.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pair: KeyPair,
    verifying: DecodingKey,
    n: String,
    e: String,
    /// Standard base64 of the certificate DER, as `x5c` carries it.
    x5c: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Keys no live mock holds.
static POOL: Mutex<Vec<Arc<SigningKey>>> = Mutex::new(Vec::new());

/// A key from the pool, or a new one when the pool is empty.
pub(crate) fn take() -> Arc<SigningKey> {
    let pooled = POOL.lock().unwrap_or_else(|p| p.into_inner()).pop();
    pooled.unwrap_or_else(|| Arc::new(SigningKey::generate()))
}

/// Gives keys back to the pool (a mock is gone).
pub(crate) fn give_back(keys: impl IntoIterator<Item = Arc<SigningKey>>) {
    POOL.lock().unwrap_or_else(|p| p.into_inner()).extend(keys);
}

impl SigningKey {
    fn generate() -> Self {
        // Key generation only fails if the system RNG does; a test cannot go on without it.
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation failed");
        let public = pair.public_key();
        let n_raw = public.modulus().big_endian_without_leading_zero().to_vec();
        let e_raw = public.exponent().big_endian_without_leading_zero().to_vec();
        let der = self_signed_certificate(&pair);
        let kid = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &der));
        Self {
            kid,
            n: URL_SAFE_NO_PAD.encode(&n_raw),
            e: URL_SAFE_NO_PAD.encode(&e_raw),
            pair,
            verifying: DecodingKey::from_rsa_raw_components(&n_raw, &e_raw),
            x5c: STANDARD.encode(&der),
        }
    }

    /// A compact RS256 JWS of `claims`: header `kid`, plus `x5t` (same value) for v1 tokens.
    pub(crate) fn sign(&self, claims: &Value, with_x5t: bool) -> String {
        let mut header = json!({"typ": "JWT", "alg": "RS256"});
        if with_x5t {
            header["x5t"] = json!(self.kid);
        }
        header["kid"] = json!(self.kid);
        self.sign_with_header(&header, claims)
    }

    /// A compact JWS with any header (attack tests forge headers), signed RS256.
    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// A compact JWS of these exact header and claims bytes, signed RS256.
    pub(crate) fn sign_raw(&self, header: &[u8], claims: &[u8]) -> String {
        jose::sign_raw_with(header, claims, |message| {
            let mut signature = vec![0; self.pair.public_modulus_len()];
            // Fails only if aws-lc-rs cannot sign with a key it generated: a test cannot
            // go on without it.
            self.pair
                .sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .expect("aws-lc-rs signs with the mock's RSA key");
            signature
        })
    }

    /// Whether `signature` (base64url) is this key's RS256 signature of `message`.
    pub(crate) fn verify(&self, message: &str, signature: &str) -> bool {
        jose::verify(message, signature, &self.verifying, Algorithm::RS256)
    }

    /// The key as Entra publishes it: `kty`, `use`, `kid`, `x5t`, `n`, `e`, `x5c`, the
    /// `issuer` when given (v2 key sets), and no `alg`.
    pub(crate) fn jwk(&self, issuer: Option<&str>) -> Value {
        let mut key = Map::new();
        key.insert("kty".into(), json!("RSA"));
        key.insert("use".into(), json!("sig"));
        key.insert("kid".into(), json!(self.kid));
        key.insert("x5t".into(), json!(self.kid));
        key.insert("n".into(), json!(self.n));
        key.insert("e".into(), json!(self.e));
        key.insert("x5c".into(), json!([self.x5c]));
        if let Some(issuer) = issuer {
            key.insert("issuer".into(), json!(issuer));
        }
        Value::Object(key)
    }
}

/// A self-signed certificate for `pair`, like the ones Entra puts in `x5c`.
fn self_signed_certificate(pair: &KeyPair) -> Vec<u8> {
    let pkcs8 = pair
        .as_der()
        .expect("a generated RSA key serializes as PKCS#8");
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("rcgen reads an RSA PKCS#8 key");
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "accounts.accesscontrol.windows.net",
    );
    let now = crate::clock::wall_clock();
    set_validity(
        &mut params,
        now - Duration::from_secs(86_400),
        now + Duration::from_secs(5 * 365 * 86_400),
    );
    params
        .self_signed(&key)
        .expect("rcgen signs a certificate with an RSA key")
        .der()
        .to_vec()
}

/// A certificate valid from the day of `from` to the day of `to` (midnight UTC).
pub(crate) fn set_validity(
    params: &mut rcgen::CertificateParams,
    from: SystemTime,
    to: SystemTime,
) {
    let day = |t: SystemTime| {
        let (y, m, d) = super::clock::civil_date(t);
        rcgen::date_time_ymd(y, m, d)
    };
    params.not_before = day(from);
    params.not_after = day(to);
}

/// A new RSA 2048 client certificate for an app (self-signed, `CN={name}`, two years):
/// `(certificate PEM, PKCS#8 private key PEM)`.
pub(crate) fn client_certificate(name: &str) -> (String, String) {
    let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA key generation failed");
    let (cert, key) = self_signed(&pair, name);
    (cert.pem(), key.serialize_pem())
}

/// A self-signed certificate for `pair` (`CN={name}`, valid from a day ago for two
/// years), made by rcgen, with the key as rcgen holds it.
pub(crate) fn self_signed(pair: &KeyPair, name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let pkcs8 = pair
        .as_der()
        .expect("a generated RSA key serializes as PKCS#8");
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref()),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("rcgen reads an RSA PKCS#8 key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let now = crate::clock::wall_clock();
    set_validity(
        &mut params,
        now - Duration::from_secs(86_400),
        now + Duration::from_secs(2 * 365 * 86_400),
    );
    let cert = params
        .self_signed(&key)
        .expect("rcgen signs a certificate with an RSA key");
    (cert, key)
}

/// What the mock keeps of a client certificate an app registers: its thumbprints and RSA
/// public key. Read with x509-cert and checked by jsonwebtoken, not by the library's code.
#[derive(Debug)]
pub(crate) struct RegisteredCert {
    /// base64url SHA-1 of the DER.
    pub(crate) x5t: String,
    /// base64url SHA-256 of the DER.
    pub(crate) x5t_s256: String,
    /// The PKCS#1 `RSAPublicKey` of the certificate's key.
    pub(crate) public_key: Vec<u8>,
}

/// `rsaEncryption` (RFC 8017).
const RSA_ENCRYPTION: x509_cert::spki::ObjectIdentifier =
    x509_cert::spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Reads the first certificate of `input` (its first PEM `CERTIFICATE` block, or DER).
pub(crate) fn registered_certificate(input: &[u8]) -> Result<RegisteredCert, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use x509_cert::der::Decode;
    let der = if input.trim_ascii_start().starts_with(b"-----BEGIN") {
        CertificateDer::from_pem_slice(input)
            .map_err(|_| "not a certificate: no readable CERTIFICATE block in the PEM")?
            .to_vec()
    } else {
        input.to_vec()
    };
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|_| "not a certificate: not valid X.509 DER")?;
    let spki = cert.tbs_certificate().subject_public_key_info();
    let public_key = spki
        .subject_public_key
        .as_bytes()
        .filter(|_| spki.algorithm.oid == RSA_ENCRYPTION)
        .ok_or("not an RSA X.509 certificate: Entra client assertions here use RSA keys")?;
    let thumbprint = |alg| URL_SAFE_NO_PAD.encode(digest::digest(alg, &der));
    Ok(RegisteredCert {
        x5t: thumbprint(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        x5t_s256: thumbprint(&digest::SHA256),
        public_key: public_key.to_vec(),
    })
}
