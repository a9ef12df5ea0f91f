//! The published signing keys and which one signs, with Entra's rollover: a new key is
//! published first and signs only later (after a delay on the mock's clock, or when
//! promoted), while the old one stays published. An emergency rotation signs at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::keys::{self, SigningKey};

/// Time from a rollover to signing with the new key, unless set.
const DEFAULT_ROLLOVER_DELAY: Duration = Duration::from_secs(24 * 3600);

/// At most this many keys are published; the oldest non-signing ones go first.
const MAX_PUBLISHED: usize = 4;

#[derive(Debug)]
pub(crate) struct KeySet {
    /// Published in the JWKS, oldest first.
    published: Vec<Arc<SigningKey>>,
    signing: Arc<SigningKey>,
    /// A published key that starts signing at this time.
    pending: Option<(Arc<SigningKey>, SystemTime)>,
    /// Time from `rotate` to signing with the new key.
    pub(crate) rollover_delay: Duration,
    /// The keys at start, for `reset`.
    initial: (Vec<Arc<SigningKey>>, Arc<SigningKey>),
    /// Every key this mock took from the pool (given back on drop).
    owned: Vec<Arc<SigningKey>>,
}

impl KeySet {
    /// A signing key and a second published key (Entra always publishes several).
    pub(crate) fn new() -> Self {
        let signing = keys::take();
        let spare = keys::take();
        let published = vec![signing.clone(), spare.clone()];
        Self {
            initial: (published.clone(), signing.clone()),
            owned: vec![signing.clone(), spare],
            published,
            signing,
            pending: None,
            rollover_delay: DEFAULT_ROLLOVER_DELAY,
        }
    }

    /// The key that signs at `now` (promoting a pending key whose time has come).
    pub(crate) fn signing(&mut self, now: SystemTime) -> Arc<SigningKey> {
        if let Some((_, at)) = &self.pending
            && *at <= now
        {
            self.promote();
        }
        self.signing.clone()
    }

    pub(crate) fn published(&self) -> &[Arc<SigningKey>] {
        &self.published
    }

    /// The key a rollover is waiting to sign with, and when.
    pub(crate) fn pending(&self) -> Option<(&Arc<SigningKey>, SystemTime)> {
        self.pending.as_ref().map(|(k, at)| (k, *at))
    }

    fn fresh(&mut self) -> Arc<SigningKey> {
        let key = keys::take();
        self.owned.push(key.clone());
        self.published.push(key.clone());
        key
    }

    /// Rollover: publishes a new key now; it signs from `now + rollover_delay` (or
    /// `promote`). A rollover already pending is promoted first.
    pub(crate) fn rotate(&mut self, now: SystemTime) {
        if self.pending.is_some() {
            self.promote();
        }
        let key = self.fresh();
        self.pending = Some((key, now + self.rollover_delay));
        self.trim();
    }

    /// Emergency rotation: a new key is published and signs at once; the previous one
    /// stays published.
    pub(crate) fn rotate_now(&mut self) {
        self.pending = None;
        self.signing = self.fresh();
        self.trim();
    }

    /// The pending key (if any) signs from now on. Returns whether there was one.
    pub(crate) fn promote(&mut self) -> bool {
        match self.pending.take() {
            Some((key, _)) => {
                self.signing = key;
                true
            }
            None => false,
        }
    }

    /// Publishes only the signing key (and a pending one): the end of a rollover.
    pub(crate) fn retire_old(&mut self) {
        let pending = self.pending.as_ref().map(|(k, _)| k.kid.clone());
        let signing = self.signing.kid.clone();
        self.published
            .retain(|k| k.kid == signing || Some(&k.kid) == pending.as_ref());
    }

    fn trim(&mut self) {
        while self.published.len() > MAX_PUBLISHED {
            let keep = |k: &Arc<SigningKey>| {
                k.kid == self.signing.kid
                    || self.pending.as_ref().is_some_and(|(p, _)| p.kid == k.kid)
            };
            match self.published.iter().position(|k| !keep(k)) {
                Some(i) => {
                    self.published.remove(i);
                }
                None => break,
            }
        }
    }

    /// Back to the keys and rollover delay at start.
    pub(crate) fn reset(&mut self) {
        self.published = self.initial.0.clone();
        self.signing = self.initial.1.clone();
        self.pending = None;
        self.rollover_delay = DEFAULT_ROLLOVER_DELAY;
    }

    /// Whether any published key verifies `signature` (base64url) over `message` (RS256),
    /// or only the one named `kid` when given.
    pub(crate) fn verify(&self, kid: Option<&str>, message: &str, signature: &str) -> bool {
        self.published
            .iter()
            .filter(|k| kid.is_none_or(|kid| k.kid == kid))
            .any(|k| k.verify(message, signature))
    }
}

impl Drop for KeySet {
    fn drop(&mut self) {
        keys::give_back(self.owned.drain(..));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollover_publishes_first_signs_after_the_delay_and_reset_restores_the_start() {
        let mut keys = KeySet::new();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let first = keys.signing(t0).kid.clone();
        keys.rollover_delay = Duration::from_secs(60);
        keys.rotate(t0);
        let (pending, at) = keys.pending().map(|(k, at)| (k.kid.clone(), at)).unwrap();
        assert!(keys.published().iter().any(|k| k.kid == pending));
        assert_eq!(keys.signing(t0 + Duration::from_secs(59)).kid, first);
        assert_eq!(keys.signing(at).kid, pending);
        assert!(
            keys.published().iter().any(|k| k.kid == first),
            "the old key stays published"
        );
        for _ in 0..6 {
            keys.rotate_now();
        }
        assert!(keys.published().len() <= MAX_PUBLISHED);
        keys.reset();
        assert_eq!(
            (keys.signing(at).kid.clone(), keys.rollover_delay),
            (first, DEFAULT_ROLLOVER_DELAY)
        );
    }
}
