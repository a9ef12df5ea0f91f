//! What an L2 value holds once opened, and tombstone values.
//!
//! A value is the token with its lifetime (when it was issued and expires, so a reader
//! computes the same expiry margin as the replica that fetched it) and its *stamp*: when
//! the token request that produced it started. A tombstone is the time of an
//! invalidation; a value stamped at or before its tenant's or the global tombstone was
//! fetched before that invalidation and is a miss.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::scope::Scopes;
use crate::seal::SealingKeys;
use crate::tenant::TenantId;
use crate::token::AccessToken;

/// The longest value the cache accepts back (a sealed token is a few kB; Entra access
/// tokens stay well under this). A longer one is a miss, and reads never fetch more than
/// one byte past it ([`L2Store::get_many_bounded`](super::L2Store::get_many_bounded)).
pub(crate) const MAX_VALUE: usize = 64 * 1024;

/// The longest tombstone accepted: milliseconds since the epoch as decimal text (20
/// digits at most). A longer one reads as a tombstone that does not parse.
pub(crate) const MAX_TOMBSTONE: usize = 32;

#[derive(Serialize, Deserialize)]
struct Payload {
    /// The token.
    t: String,
    /// Expiry, ms since the epoch.
    e: u64,
    /// Refresh hint, ms since the epoch.
    r: Option<u64>,
    /// Issued, ms since the epoch (the start of the token's lifetime).
    i: u64,
    /// When the token request that produced it started, ms since the epoch.
    s: u64,
}

pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_millis(ms))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// A token read back from L2, with its stamp.
pub(crate) struct Stored {
    pub(crate) token: AccessToken,
    pub(crate) stamp: u64,
}

/// `token`, sealed and bound to `aad`, or `None` if sealing failed (then nothing is
/// stored: a miss later, never an error now).
pub(crate) fn seal(
    keys: &SealingKeys,
    aad: &str,
    token: &AccessToken,
    stamp: SystemTime,
) -> Option<Vec<u8>> {
    let payload = Payload {
        t: token.secret().to_owned(),
        e: millis(token.expires_on()),
        r: token.refresh_on().map(millis),
        i: millis(token.issued_on().unwrap_or(stamp)),
        s: millis(stamp),
    };
    let plain = serde_json::to_vec(&payload).ok()?;
    keys.seal(&plain, aad.as_bytes()).ok()
}

/// The token sealed in `value` for (`tenant`, `scopes`), or `None` if it does not open
/// (tampered, moved from another key, malformed, or sealed under a key no longer
/// configured).
pub(crate) fn open(
    keys: &SealingKeys,
    aad: &str,
    value: &[u8],
    tenant: &TenantId,
    scopes: &Scopes,
) -> Option<Stored> {
    let plain = keys.open(value, aad.as_bytes())?;
    let p: Payload = serde_json::from_slice(&plain).ok()?;
    let (issued, expires) = (from_millis(p.i), from_millis(p.e));
    if issued > expires {
        return None;
    }
    let mut token =
        AccessToken::new(p.t, expires, tenant.clone(), scopes.clone()).with_issued_on(issued);
    if let Some(r) = p.r {
        token = token.with_refresh_on(from_millis(r));
    }
    Some(Stored { token, stamp: p.s })
}

/// The time in a tombstone value. One that does not parse counts as the latest possible
/// time: everything under it is a miss (the safe reading of a value nobody should have
/// written), until it expires or an invalidation overwrites it.
pub(crate) fn read_tombstone(value: &[u8]) -> u64 {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u64::MAX)
}

/// A value read back from Redis, from untrusted bytes (the first byte picks how): opened
/// as it is; or sealed first, so the payload's own parsing is reached past the AEAD; or a
/// token built from the bytes, sealed and opened back, which must give the same token.
/// Tombstone values are read too.
#[cfg(fuzzing)]
pub(crate) fn fuzz_value(data: &[u8]) {
    let _ = read_tombstone(data);
    let (Ok(keys), Ok(tenant), Ok(scopes)) = (
        SealingKeys::new("fuzz", [7; 32]),
        "contoso.example".parse::<TenantId>(),
        Scopes::parse(&["https://vault.azure.net/.default"]),
    ) else {
        return;
    };
    let aad = "fuzz-entry";
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let _ = open(&keys, aad, rest, &tenant, &scopes);
        }
        1 => {
            if let Ok(sealed) = keys.seal(rest, aad.as_bytes()) {
                let _ = open(&keys, aad, &sealed, &tenant, &scopes);
            }
        }
        _ => {
            let (times, text) = rest.split_at(rest.len().min(24));
            let mut t = [0u8; 24];
            t[..times.len()].copy_from_slice(times);
            let at = |i: usize| {
                let ms = u64::from_le_bytes(t[i..i + 8].try_into().unwrap_or_default());
                from_millis(ms % (1 << 50))
            };
            let (issued, expires, stamp) = (at(0), at(8), at(16));
            let secret = String::from_utf8_lossy(text).into_owned();
            let token = AccessToken::new(secret, expires, tenant.clone(), scopes.clone())
                .with_issued_on(issued);
            let Some(sealed) = seal(&keys, aad, &token, stamp) else {
                return;
            };
            let opened = open(&keys, aad, &sealed, &tenant, &scopes);
            if issued <= expires {
                let opened = opened.expect("a sealed value opens under its own key and entry");
                assert_eq!(opened.token.secret(), token.secret());
                assert_eq!(millis(opened.token.expires_on()), millis(expires));
                assert_eq!(opened.stamp, millis(stamp));
                assert!(open(&keys, "another-entry", &sealed, &tenant, &scopes).is_none());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_round_trips_with_its_lifetime_and_stamp() {
        let keys = SealingKeys::new("k", [3; 32]).unwrap();
        let tenant: TenantId = "fabrikam.example".parse().unwrap();
        let scopes = Scopes::parse(&["https://vault.azure.net/.default"]).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let token = AccessToken::new(
            "tok",
            t0 + Duration::from_secs(3600),
            tenant.clone(),
            scopes.clone(),
        )
        .with_issued_on(t0)
        .with_refresh_on(t0 + Duration::from_secs(1800));
        let sealed = seal(&keys, "aad", &token, t0 - Duration::from_millis(5)).unwrap();
        let back = open(&keys, "aad", &sealed, &tenant, &scopes).unwrap();
        assert_eq!(back.token.secret(), "tok");
        assert_eq!(back.token.issued_on(), Some(t0));
        assert_eq!(back.token.expires_on(), token.expires_on());
        assert_eq!(back.token.refresh_on(), token.refresh_on());
        assert_eq!(back.stamp, millis(t0) - 5);
        assert!(open(&keys, "other", &sealed, &tenant, &scopes).is_none());
    }

    #[test]
    fn tombstones_that_do_not_parse_hide_everything() {
        assert_eq!(read_tombstone(b"1700000000123"), 1_700_000_000_123);
        assert_eq!(read_tombstone(b"-1"), u64::MAX);
        assert_eq!(read_tombstone(&[0xff, 0x00]), u64::MAX);
    }
}
