//! What an L2 value holds once opened, and tombstone values.
//!
//! A value is the token with its lifetime (when it was issued and expires, so a reader
//! computes the same expiry margin as the replica that fetched it) and its *stamp*: when
//! the token request that produced it started. A refusal is a tenant's permanent answer
//! (which one, Entra's words and ids), when it was learned and until when it holds, with
//! the same stamp. A tombstone is the time of an invalidation; a value or refusal stamped
//! at or before its own, its tenant's or the global tombstone was fetched before that
//! invalidation and is a miss.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{EntraError, Error};
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

/// A refusal as stored.
#[derive(Serialize, Deserialize)]
struct RefusalPayload {
    /// Which refusal (see [`Kind`]).
    k: Kind,
    /// Entra's answer: HTTP status, `error`, `error_codes`, the description's first line,
    /// trace id, correlation id, timestamp.
    st: u16,
    er: String,
    c: Vec<u32>,
    d: String,
    tr: Option<String>,
    co: Option<String>,
    ts: Option<String>,
    /// The admin consent URL, for a tenant that has not consented.
    cu: Option<String>,
    /// Learned, ms since the epoch.
    l: u64,
    /// Remembered until, ms since the epoch.
    u: u64,
    /// When the token request that was refused started, ms since the epoch.
    s: u64,
}

/// The refusals worth remembering (see [`Error::is_tenant_refusal`]).
#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    NotConsented,
    TenantNotFound,
    AppDisabled,
    ResourceNotFound,
}

/// A refusal read back from L2.
pub(crate) struct StoredRefusal {
    /// The error, as Entra gave it (not yet marked as remembered).
    pub(crate) error: Error,
    pub(crate) learned: SystemTime,
    pub(crate) until: SystemTime,
    pub(crate) stamp: u64,
}

/// Refusals are bound to their entry like tokens, under associated data of their own, so
/// a token value cannot be read as a refusal or the other way round.
fn refusal_aad(aad: &str) -> Vec<u8> {
    let mut bound = b"refusal\n".to_vec();
    bound.extend_from_slice(aad.as_bytes());
    bound
}

/// `error` (a tenant refusal) sealed and bound to `aad`, learned at `learned` and
/// remembered until `until`; `None` if it is not a refusal or sealing failed.
pub(crate) fn seal_refusal(
    keys: &SealingKeys,
    aad: &str,
    error: &Error,
    (learned, until): (SystemTime, SystemTime),
    stamp: SystemTime,
) -> Option<Vec<u8>> {
    let kind = match error {
        Error::NotConsented { .. } => Kind::NotConsented,
        Error::TenantNotFound(_) => Kind::TenantNotFound,
        Error::AppDisabled(_) => Kind::AppDisabled,
        Error::ResourceNotFound(_) => Kind::ResourceNotFound,
        _ => return None,
    };
    let e = error.entra()?;
    let payload = RefusalPayload {
        k: kind,
        st: e.status,
        er: e.error.clone(),
        c: e.codes.clone(),
        d: e.description.clone(),
        tr: e.trace_id.clone(),
        co: e.correlation_id.clone(),
        ts: e.timestamp.clone(),
        cu: error.consent_url().map(str::to_owned),
        l: millis(learned),
        u: millis(until),
        s: millis(stamp),
    };
    let plain = serde_json::to_vec(&payload).ok()?;
    keys.seal(&plain, &refusal_aad(aad)).ok()
}

fn cut(s: String, max: usize) -> String {
    if s.chars().count() <= max {
        s
    } else {
        s.chars().take(max).collect()
    }
}

/// Whether `value` is a refusal sealed for the entry bound to `aad` (it opens as one).
pub(crate) fn is_refusal(keys: &SealingKeys, aad: &str, value: &[u8]) -> bool {
    keys.open(value, &refusal_aad(aad)).is_some()
}

/// The refusal sealed in `value` for `tenant` and the app (`client_id`), or `None` if it
/// does not open (tampered, moved, malformed, unknown key).
pub(crate) fn open_refusal(
    keys: &SealingKeys,
    aad: &str,
    value: &[u8],
    (tenant, client_id): (&TenantId, &str),
) -> Option<StoredRefusal> {
    let plain = keys.open(value, &refusal_aad(aad))?;
    let p: RefusalPayload = serde_json::from_slice(&plain).ok()?;
    let mut entra = EntraError::bare(tenant.clone(), client_id, p.st);
    entra.error = cut(p.er, 64);
    entra.codes = p.c.into_iter().take(8).collect();
    entra.description = cut(p.d, 512);
    entra.trace_id = p.tr.map(|t| cut(t, 128));
    entra.correlation_id = p.co.map(|c| cut(c, 128));
    entra.timestamp = p.ts.map(|t| cut(t, 128));
    let entra = Box::new(entra);
    let error = match p.k {
        Kind::NotConsented => Error::NotConsented {
            entra,
            consent_url: cut(p.cu?, 2048),
        },
        Kind::TenantNotFound => Error::TenantNotFound(entra),
        Kind::AppDisabled => Error::AppDisabled(entra),
        Kind::ResourceNotFound => Error::ResourceNotFound(entra),
    };
    Some(StoredRefusal {
        error,
        learned: from_millis(p.l),
        until: from_millis(p.u),
        stamp: p.s,
    })
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
            let _ = open_refusal(&keys, aad, rest, (&tenant, "client"));
        }
        1 => {
            if let Ok(sealed) = keys.seal(rest, aad.as_bytes()) {
                let _ = open(&keys, aad, &sealed, &tenant, &scopes);
            }
            if let Ok(sealed) = keys.seal(rest, &refusal_aad(aad)) {
                let _ = open_refusal(&keys, aad, &sealed, (&tenant, "client"));
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
    fn a_refusal_round_trips_as_the_same_error_and_is_bound_to_its_entry() {
        let keys = SealingKeys::new("k", [3; 32]).unwrap();
        let tenant: TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47".parse().unwrap();
        let scopes = Scopes::parse(&["https://vault.azure.net/.default"]).unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut entra = EntraError::bare(tenant.clone(), "client", 400);
        entra.error = "unauthorized_client".into();
        entra.codes = vec![700016];
        entra.trace_id = Some("trace".into());
        let error = Error::NotConsented {
            entra: Box::new(entra),
            consent_url: "https://login.example/t/adminconsent?client_id=client".into(),
        };
        let until = t0 + Duration::from_secs(60);
        let sealed = seal_refusal(&keys, "aad", &error, (t0, until), t0).unwrap();
        let back = open_refusal(&keys, "aad", &sealed, (&tenant, "client")).unwrap();
        assert_eq!(back.error.to_string(), error.to_string());
        assert_eq!(back.error.consent_url(), error.consent_url());
        assert_eq!(
            (back.learned, back.until, back.stamp),
            (t0, until, millis(t0))
        );
        // Neither another entry's refusal nor a token value.
        assert!(open_refusal(&keys, "other", &sealed, (&tenant, "client")).is_none());
        assert!(open(&keys, "aad", &sealed, &tenant, &scopes).is_none());
        let token = AccessToken::new("tok", until, tenant.clone(), scopes);
        let value = seal(&keys, "aad", &token, t0).unwrap();
        assert!(open_refusal(&keys, "aad", &value, (&tenant, "client")).is_none());
        // Only refusals are sealed as such.
        let throttled = Error::Throttled {
            retry_after: None,
            entra: Box::new(EntraError::bare(tenant, "client", 429)),
        };
        assert!(seal_refusal(&keys, "aad", &throttled, (t0, until), t0).is_none());
    }

    #[test]
    fn tombstones_that_do_not_parse_hide_everything() {
        assert_eq!(read_tombstone(b"1700000000123"), 1_700_000_000_123);
        assert_eq!(read_tombstone(b"-1"), u64::MAX);
        assert_eq!(read_tombstone(&[0xff, 0x00]), u64::MAX);
    }
}
