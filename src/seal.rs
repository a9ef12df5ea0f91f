//! Encryption at rest for the shared (L2) cache: AES-256-GCM with rotating key ids, the
//! cache key as associated data, so a value copied under another key fails to open; and
//! the secret that names L2 keys, so key names say nothing about tenants.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{hkdf, hmac};

use crate::error::Error;

const FORMAT_VERSION: u8 = 1;

/// The keys sealing L2 values: one current key that seals, and older ones that still
/// open values written before a rotation. Keys are 32 random bytes you keep in a secret
/// store; `Debug` never shows them.
///
/// ```
/// use azure_cross_tenant::SealingKeys;
///
/// let keys = SealingKeys::new("2026-11", [7u8; 32])?.with_previous("2026-10", [9u8; 32])?;
/// assert_eq!(keys.current_id(), "2026-11");
/// # Ok::<(), azure_cross_tenant::Error>(())
/// ```
pub struct SealingKeys {
    current: SealKey,
    previous: Vec<SealKey>,
}

/// One configured key: the AEAD key that seals and opens, and the HMAC key derived from
/// it that names L2 entries (a separate key, so names never reuse the sealing key).
struct SealKey {
    id: String,
    aead: LessSafeKey,
    names: hmac::Key,
}

impl fmt::Debug for SealingKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealingKeys")
            .field("current", &self.current.id)
            .field(
                "previous",
                &self.previous.iter().map(|k| &k.id).collect::<Vec<_>>(),
            )
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// Domain separation for the naming key: HKDF-SHA256 of the sealing key under this salt
/// and info, so the bytes that encrypt never also key the hash of names.
const NAMES_SALT: &[u8] = b"azure-cross-tenant/l2";
const NAMES_INFO: &[u8] = b"key names v1";

fn key(id: &str, bytes: [u8; 32]) -> Result<SealKey, Error> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidConfiguration(
            "a sealing key id must be 1 to 64 printable ASCII characters".into(),
        ));
    }
    let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
        .map_err(|_| Error::Internal("AES-256-GCM key setup failed"))?;
    let names = hkdf::Salt::new(hkdf::HKDF_SHA256, NAMES_SALT)
        .extract(&bytes)
        .expand(&[NAMES_INFO], hmac::HMAC_SHA256)
        .map_err(|_| Error::Internal("HKDF key derivation failed"))?
        .into();
    Ok(SealKey {
        id: id.to_owned(),
        aead: LessSafeKey::new(unbound),
        names,
    })
}

impl SealingKeys {
    /// Seals with `key` (32 bytes) under `id`.
    pub fn new(id: &str, key_bytes: [u8; 32]) -> Result<Self, Error> {
        Ok(Self {
            current: key(id, key_bytes)?,
            previous: Vec::new(),
        })
    }

    /// Also opens values sealed under `id` (a retired key, kept during rotation).
    pub fn with_previous(mut self, id: &str, key_bytes: [u8; 32]) -> Result<Self, Error> {
        self.previous.push(key(id, key_bytes)?);
        Ok(self)
    }

    /// The id values are sealed under.
    pub fn current_id(&self) -> &str {
        &self.current.id
    }

    /// The keys naming L2 entries: the current key's first, then the retired ones', so
    /// values written before a rotation can still be found during it.
    pub(crate) fn name_keys(&self) -> impl Iterator<Item = &hmac::Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|k| &k.names)
    }

    /// `version | id length | id | nonce | ciphertext and tag`, bound to `aad`.
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, Error> {
        let SealKey { id, aead: key, .. } = &self.current;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| Error::Internal("the system RNG failed"))?;
        let mut body = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| Error::Internal("AES-256-GCM sealing failed"))?;
        let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + body.len());
        out.push(FORMAT_VERSION);
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// The plaintext, or `None` if the value is malformed, sealed under an unknown key id,
    /// tampered with, or bound to another key.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let (&version, rest) = sealed.split_first()?;
        if version != FORMAT_VERSION {
            return None;
        }
        let (&id_len, rest) = rest.split_first()?;
        let id = rest.get(..id_len as usize)?;
        let rest = rest.get(id_len as usize..)?;
        let nonce = rest.get(..NONCE_LEN)?;
        let mut body = rest.get(NONCE_LEN..)?.to_vec();
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id.as_bytes() == id)
            .map(|k| &k.aead)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let plain = key.open_in_place(nonce, Aad::from(aad), &mut body).ok()?;
        Some(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_under_their_key_and_associated_data() {
        let keys = SealingKeys::new("k2", [2; 32])
            .unwrap()
            .with_previous("k1", [1; 32])
            .unwrap();
        let sealed = keys.seal(b"token", b"tenant-a").unwrap();
        assert_eq!(
            keys.open(&sealed, b"tenant-a").as_deref(),
            Some(&b"token"[..])
        );
        assert_eq!(
            keys.open(&sealed, b"tenant-b"),
            None,
            "moved under another key"
        );
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert_eq!(keys.open(&tampered, b"tenant-a"), None);
        for cut in 0..sealed.len() {
            assert_eq!(keys.open(&sealed[..cut], b"tenant-a"), None);
        }
        // Rotation: a value sealed under the retired key still opens while it is configured.
        let old = SealingKeys::new("k1", [1; 32])
            .unwrap()
            .seal(b"old", b"a")
            .unwrap();
        assert_eq!(keys.open(&old, b"a").as_deref(), Some(&b"old"[..]));
        let without = SealingKeys::new("k2", [2; 32]).unwrap();
        assert_eq!(without.open(&old, b"a"), None);
    }

    #[test]
    fn bad_key_ids_are_refused_and_keys_never_print() {
        assert!(SealingKeys::new("", [0; 32]).is_err());
        assert!(SealingKeys::new("a b", [0; 32]).is_err());
        let keys = SealingKeys::new("id", [0xab; 32]).unwrap();
        assert!(!format!("{keys:?}").contains("171"));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever Redis hands back, opening it returns nothing or the sealed text.
        #[test]
        fn arbitrary_values_never_open_or_panic(value in proptest::collection::vec(any::<u8>(), 0..200)) {
            let keys = SealingKeys::new("k", [5; 32]).unwrap();
            prop_assert_eq!(keys.open(&value, b"aad"), None);
        }
    }
}
