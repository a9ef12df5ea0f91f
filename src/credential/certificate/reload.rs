//! A certificate's files, looked at again for a new certificate: at a bounded interval,
//! and at once after Entra refused the one in use.
//!
//! A look reads the files whole (they are small) and compares their digest with the last
//! look's, so a rewritten file is noticed whatever its timestamps say (a Kubernetes
//! secret volume swaps a symlink, a copy may keep the old mtime). A change that does not
//! parse is remembered and not parsed again until the files change once more; a
//! certificate not valid yet is kept aside and put in use once it is.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use tokio::io::AsyncReadExt as _;

use super::input::{MAX_INPUT, certificates_from_pem, key_from_pem};
use super::signer::Signer;
use super::x509::bad;
use crate::clock::Deadline;
use crate::error::Error;
#[cfg(feature = "pkcs12")]
use crate::token::Secret;

/// How long reading the files may take (a file on a network mount that hangs must not
/// hold a token request).
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a certificate is read from.
pub(super) enum FileSource {
    /// A PEM certificate chain and a PEM private key (possibly one file).
    Pem { cert: PathBuf, key: PathBuf },
    /// A PKCS#12 archive and its password.
    #[cfg(feature = "pkcs12")]
    Pkcs12 { path: PathBuf, password: Secret },
}

impl fmt::Display for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pem { cert, key } if cert == key => write!(f, "{}", cert.display()),
            Self::Pem { cert, key } => write!(f, "{} and {}", cert.display(), key.display()),
            #[cfg(feature = "pkcs12")]
            Self::Pkcs12 { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The paths only: a PKCS#12 password never shows.
        write!(f, "{self}")
    }
}

/// The bytes of every file of a source, in order.
pub(super) struct Content(Vec<Vec<u8>>);

impl Content {
    fn digest(&self) -> [u8; 32] {
        let mut context = digest::Context::new(&digest::SHA256);
        for part in &self.0 {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut out = [0; 32];
        out.copy_from_slice(context.finish().as_ref());
        out
    }
}

impl FileSource {
    fn paths(&self) -> Vec<&Path> {
        match self {
            Self::Pem { cert, key } => vec![cert, key],
            #[cfg(feature = "pkcs12")]
            Self::Pkcs12 { path, .. } => vec![path],
        }
    }

    /// Reads the files now, blocking (when the credential is built).
    pub(super) fn read_now(&self) -> Result<Content, Error> {
        let mut parts = Vec::new();
        for path in self.paths() {
            let unreadable =
                |e: std::io::Error| bad(&format!("{} cannot be read: {e}", path.display()));
            let file = std::fs::File::open(path).map_err(unreadable)?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(
                &mut std::io::Read::take(file, MAX_INPUT as u64 + 1),
                &mut bytes,
            )
            .map_err(unreadable)?;
            parts.push(capped(path, bytes)?);
        }
        Ok(Content(parts))
    }

    /// Reads the files without blocking a runtime thread, within [`READ_TIMEOUT`].
    async fn read(&self) -> Result<Content, Error> {
        let read = async {
            let mut parts = Vec::new();
            for path in self.paths() {
                let unreadable =
                    |e: std::io::Error| bad(&format!("{} cannot be read: {e}", path.display()));
                let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
                let mut bytes = Vec::new();
                // At most one byte past the cap, whatever the metadata says (a pipe says 0).
                file.take(MAX_INPUT as u64 + 1)
                    .read_to_end(&mut bytes)
                    .await
                    .map_err(unreadable)?;
                parts.push(capped(path, bytes)?);
            }
            Ok(Content(parts))
        };
        Deadline::after(READ_TIMEOUT)
            .run(read)
            .await
            .unwrap_or_else(|| {
                Err(bad(&format!(
                    "reading {self} took more than {} s",
                    READ_TIMEOUT.as_secs()
                )))
            })
    }

    /// The certificate and key the content holds.
    pub(super) fn parse(&self, content: &Content) -> Result<Signer, Error> {
        match (self, content.0.as_slice()) {
            (Self::Pem { .. }, [cert, key]) => certificates_from_pem(cert)
                .and_then(|chain| Signer::from_parts(key_from_pem(key)?, chain)),
            #[cfg(feature = "pkcs12")]
            (Self::Pkcs12 { password, .. }, [der]) => {
                super::input::from_pkcs12(der, password.expose())
                    .and_then(|(key, chain)| Signer::from_parts(key, chain))
            }
            _ => Err(Error::Internal("certificate files read in another shape")),
        }
    }
}

fn capped(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, Error> {
    if bytes.len() > MAX_INPUT {
        Err(bad(&format!("{} is larger than 1 MiB", path.display())))
    } else {
        Ok(bytes)
    }
}

/// What a look at the files did.
pub(super) enum Looked {
    /// A new certificate, valid now, was put in use.
    Replaced,
    /// The files changed (or could not be read) and cannot be used: why.
    Unusable(String),
    /// Nothing new (or the look was not due).
    Nothing,
}

/// What a comparison of the files with the last look found.
enum Found {
    /// A new certificate, valid now: put it in use.
    New(Signer),
    /// The files changed (or could not be read) and cannot be used: why.
    Unusable(String),
    /// Nothing new (or the look was not due).
    Nothing,
}

/// The files of a certificate credential and what the last look saw.
pub(super) struct Files {
    source: FileSource,
    interval: Duration,
    /// When the next periodic look is due.
    next: Mutex<SystemTime>,
    /// One look at a time; never held while signing.
    state: tokio::sync::Mutex<Seen>,
}

struct Seen {
    /// Digest of the content last looked at.
    digest: [u8; 32],
    /// SHA-256 thumbprint of the certificate in use (a rewrite of the same one is no news).
    in_use: String,
    /// A certificate from the files that is not valid yet.
    waiting: Option<Signer>,
}

impl Files {
    /// Watches `source`, whose content gave `signer`; first periodic look after `interval`.
    pub(super) fn new(
        source: FileSource,
        signer: &Signer,
        interval: Duration,
        now: SystemTime,
    ) -> Self {
        // The digest of what was read at build: read again only to compare, so a failure
        // here just means the first look reloads what is already in use (no news).
        let digest = source.read_now().map(|c| c.digest()).unwrap_or_default();
        Self {
            source,
            interval,
            next: Mutex::new(now + interval),
            state: tokio::sync::Mutex::new(Seen {
                digest,
                in_use: signer.x5t_s256().to_owned(),
                waiting: None,
            }),
        }
    }

    pub(super) fn source(&self) -> &FileSource {
        &self.source
    }

    /// Looks at the files if a periodic look is due and none is running (never waits),
    /// or at once when `urgent` (after a refusal: waits for a look in progress).
    ///
    /// A new certificate is handed to `put_in_use` before the look ends, so a caller
    /// waiting for this look finds it in use when its own look starts.
    pub(super) async fn look(
        &self,
        now: SystemTime,
        urgent: bool,
        put_in_use: impl FnOnce(Signer),
    ) -> Looked {
        let mut seen = if urgent {
            self.state.lock().await
        } else {
            {
                let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
                if now < *next {
                    return Looked::Nothing;
                }
                *next = now + self.interval;
            }
            match self.state.try_lock() {
                Ok(seen) => seen,
                Err(_) => return Looked::Nothing,
            }
        };
        if urgent {
            *self.next.lock().unwrap_or_else(|p| p.into_inner()) = now + self.interval;
        }
        match self.compare(&mut seen, now).await {
            Found::New(signer) => {
                seen.in_use = signer.x5t_s256().to_owned();
                put_in_use(signer);
                Looked::Replaced
            }
            Found::Unusable(why) => Looked::Unusable(why),
            Found::Nothing => Looked::Nothing,
        }
    }

    async fn compare(&self, seen: &mut Seen, now: SystemTime) -> Found {
        let content = match self.source.read().await {
            Ok(content) => content,
            Err(e) => return Found::Unusable(e.to_string()),
        };
        let digest = content.digest();
        if digest == seen.digest {
            // Unchanged; a certificate waiting for its notBefore may be valid by now.
            return match seen.waiting.take() {
                Some(signer) if signer.check_validity(now).is_ok() => Found::New(signer),
                waiting => {
                    seen.waiting = waiting;
                    Found::Nothing
                }
            };
        }
        seen.digest = digest;
        seen.waiting = None;
        let signer = match self.source.parse(&content) {
            Ok(signer) => signer,
            Err(e) => return Found::Unusable(e.to_string()),
        };
        if signer.x5t_s256() == seen.in_use {
            return Found::Nothing;
        }
        match signer.check_validity(now) {
            Ok(()) => Found::New(signer),
            Err(e) if now < signer.not_before() => {
                seen.waiting = Some(signer);
                Found::Unusable(format!("{e}; it will be used once it is valid"))
            }
            Err(e) => Found::Unusable(e.to_string()),
        }
    }
}
