//! What a certificate tells an assertion's signer and verifier, read with one X.509 parser
//! (`x509-cert`) for the credential and the mock alike.

use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use x509_cert::Certificate;
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::spki::ObjectIdentifier;

use crate::error::Error;

/// `rsaEncryption` (RFC 8017): the only key type Entra client assertions use here.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A certificate's RSA public key, thumbprints and validity.
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

/// Reads an X.509 DER certificate with an RSA key.
pub(crate) fn cert_facts(der: &[u8]) -> Result<CertFacts, Error> {
    let cert = Certificate::from_der(der)
        .map_err(|_| bad("the first certificate is not valid X.509 DER"))?;
    let tbs = cert.tbs_certificate();
    let spki = tbs.subject_public_key_info();
    let not_rsa =
        || bad("the certificate's key is not RSA; Entra client assertions here use RSA keys");
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(not_rsa());
    }
    let key = spki.subject_public_key.as_bytes().ok_or_else(not_rsa)?;
    let (n, e) = rsa_public_key(key).ok_or_else(not_rsa)?;
    let time = |d: Duration| SystemTime::UNIX_EPOCH + d;
    Ok(CertFacts {
        n,
        e,
        x5t_s256: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, der)),
        x5t: URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
        not_before: time(tbs.validity().not_before.to_unix_duration()),
        not_after: time(tbs.validity().not_after.to_unix_duration()),
    })
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017).
fn rsa_public_key(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut reader = SliceReader::new(der).ok()?;
    let (n, e) = reader
        .sequence(|r| Ok::<_, x509_cert::der::Error>((UintRef::decode(r)?, UintRef::decode(r)?)))
        .ok()?;
    reader.finish().ok()?;
    Some((strip_zeros(n.as_bytes()), strip_zeros(e.as_bytes())))
}

pub(super) fn strip_zeros(b: &[u8]) -> Vec<u8> {
    b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..].to_vec()
}

pub(super) fn bad(why: &str) -> Error {
    Error::InvalidConfiguration(format!("client certificate: {why}"))
}
