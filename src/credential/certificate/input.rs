//! Reading a certificate chain and its private key from PEM (with `rustls-pki-types`' PEM
//! reader) or, with feature `pkcs12`, from a PKCS#12 archive.

use aws_lc_rs::rsa::KeyPair;
use rustls_pki_types::pem::{PemObject, SectionKind};

use super::x509::bad;
use crate::error::Error;

/// Largest PEM or PKCS#12 input accepted.
pub(super) const MAX_INPUT: usize = 1024 * 1024;

/// The DER of every `CERTIFICATE` block of `pem`, in order.
pub(crate) fn certificates_from_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, Error> {
    let mut chain = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        match section {
            Ok((SectionKind::Certificate, der)) => chain.push(der),
            Ok(_) => {}
            Err(_) => {
                return Err(bad(
                    "the certificate PEM is malformed (a block is cut off or not base64)",
                ));
            }
        }
    }
    Ok(chain)
}

/// The RSA private key of `pem`: PKCS#8 `PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`.
pub(super) fn key_from_pem(pem: &[u8]) -> Result<KeyPair, Error> {
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
        let (kind, der) = section
            .map_err(|_| bad("the key PEM is malformed (a block is cut off or not base64)"))?;
        return match kind {
            SectionKind::PrivateKey => KeyPair::from_pkcs8(&der).map_err(|_| {
                bad("the PKCS#8 private key is not an RSA key this crate can use (RSA 2048 to 8192 bits)")
            }),
            SectionKind::RsaPrivateKey => KeyPair::from_der(&der)
                .map_err(|_| bad("the PKCS#1 RSA private key could not be read")),
            SectionKind::EcPrivateKey => {
                Err(bad("the private key is not RSA (only RSA keys are supported)"))
            }
            _ => continue,
        };
    }
    // The PEM reader skips blocks it does not know; say why the usual ones do not work.
    let text = String::from_utf8_lossy(pem);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        Err(bad(
            "the private key is encrypted; decrypt it first or use a PKCS#12 file with its password",
        ))
    } else if text.contains("PRIVATE KEY-----") {
        Err(bad(
            "the private key is not RSA (only RSA keys are supported)",
        ))
    } else {
        Err(bad("the key PEM holds no private key"))
    }
}

/// The private key and certificate chain (leaf first) of a PKCS#12 archive.
#[cfg(feature = "pkcs12")]
pub(super) fn from_pkcs12(der: &[u8], password: &str) -> Result<(KeyPair, Vec<Vec<u8>>), Error> {
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
    Ok((key, certs))
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
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----",
        ] {
            let _ = certificates_from_pem(input.as_bytes());
            assert!(key_from_pem(input.as_bytes()).is_err());
        }
        assert!(key_from_pem(b"no key here").is_err());
        let err = key_from_pem(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
        )
        .unwrap_err();
        assert!(err.to_string().contains("encrypted"), "{err}");
        let err =
            key_from_pem(b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----")
                .unwrap_err();
        assert!(err.to_string().contains("not RSA"), "{err}");
    }
}
