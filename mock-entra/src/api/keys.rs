//! Signing keys: rollover as Entra does it, emergency rotation, forged tokens for tests.

use std::time::Duration;

use crate::{MockEntra, RotationMode};

impl MockEntra {
    /// Rolls the signing key over as Entra does: a new key is published in the JWKS now
    /// and signs only after the rollover delay (24 hours by default, on the mock's clock;
    /// [`set_key_rollover_delay`](Self::set_key_rollover_delay)) or
    /// [`promote_key`](Self::promote_key). The old key stays published.
    ///
    /// ```
    /// use mock_entra::MockEntra;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let entra = MockEntra::start().await;
    /// let before = entra.current_kid();
    /// entra.rotate_keys();
    /// assert_eq!(entra.current_kid(), before, "published first, signs later");
    /// assert!(entra.promote_key());
    /// assert_ne!(entra.current_kid(), before);
    /// # }
    /// ```
    pub fn rotate_keys(&self) {
        self.rotate_keys_with(RotationMode::Rollover);
    }

    /// Rotates the signing key: a rollover, or an emergency rotation in which the new
    /// key signs at once (the previous one stays published).
    pub fn rotate_keys_with(&self, mode: RotationMode) {
        let mut dir = self.lock();
        let now = dir.now();
        match mode {
            RotationMode::Rollover => dir.keys.rotate(now),
            RotationMode::Emergency => dir.keys.rotate_now(),
        }
    }

    /// The key published by a pending rollover signs from now on; false when none is pending.
    pub fn promote_key(&self) -> bool {
        self.lock().keys.promote()
    }

    /// Time from [`rotate_keys`](Self::rotate_keys) until the new key signs. Defaults to 24 hours.
    pub fn set_key_rollover_delay(&self, delay: Duration) {
        self.lock().keys.rollover_delay = delay;
    }

    /// Makes OpenID metadata and JWKS answer 503 while `unavailable` (an outage of the
    /// key endpoints).
    pub fn set_keys_unavailable(&self, unavailable: bool) {
        self.lock().settings.keys_unavailable = unavailable;
    }

    /// Stops publishing every key but the signing one (and one a rollover waits to use):
    /// the end of a rollover.
    pub fn retire_old_keys(&self) {
        self.lock().keys.retire_old();
    }

    /// The `kid`s published in the JWKS now.
    pub fn published_kids(&self) -> Vec<String> {
        self.lock()
            .keys
            .published()
            .iter()
            .map(|k| k.kid.clone())
            .collect()
    }

    /// Whether `token` carries a valid RS256 signature by one of this mock's published keys.
    pub fn signed_by_mock(&self, token: &str) -> bool {
        let Some((message, sig)) = token.rsplit_once('.') else {
            return false;
        };
        self.lock().keys.verify(None, message, sig)
    }

    /// The `kid` of the key signing tokens now.
    pub fn current_kid(&self) -> String {
        let mut dir = self.lock();
        let now = dir.now();
        dir.keys.signing(now).kid.clone()
    }

    /// Signs arbitrary claims with the current key and an arbitrary header (for validation
    /// tests that need forged or unusual tokens). `kid` is added to the header unless set.
    pub fn sign_token(&self, header: &serde_json::Value, claims: &serde_json::Value) -> String {
        let key = {
            let mut dir = self.lock();
            let now = dir.now();
            dir.keys.signing(now)
        };
        let mut header = header.clone();
        if let Some(h) = header.as_object_mut() {
            h.entry("kid").or_insert_with(|| key.kid.clone().into());
        }
        key.sign_with_header(&header, claims)
    }
}
