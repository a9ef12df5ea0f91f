//! Names of L2 entries: keyed hashes (HMAC-SHA256 under a key derived from the sealing
//! keys), so someone who can list the store's keys learns nothing about which tenants
//! are customers, and Redis Cluster hash tags, so an entry, its lease and its tenant's
//! tombstone live in one slot.
//!
//! Layout under namespace `ns` (each `<...>` is lowercase hex):
//!
//! - `ns:{<tenant tag>}:t:<entry>`: the sealed token of one (tenant, scope), or the
//!   tenant's sealed refusal for the scope (not consented, not found, app disabled),
//!   remembered for a short window: one key, so a lookup reads no more keys for it and
//!   whichever answer was stored last stands
//! - `ns:{<tenant tag>}:l:<entry>`: its lease while one replica asks Entra
//! - `ns:{<tenant tag>}:x`: the tenant's tombstone (when it was last invalidated)
//! - `ns:{<tenant tag>}:x:<entry>`: the entry's tombstone (when it was last invalidated
//!   on its own)
//! - `ns:x`: the global tombstone (when everything was last invalidated)
//!
//! The tenant tag hashes (authority, client id, tenant); the entry hash adds the scope.

use aws_lc_rs::hmac;

use crate::scope::Scopes;
use crate::seal::SealingKeys;
use crate::tenant::TenantId;

/// Hex digits of the tenant tag and of the entry hash: 128 bits each. A collision could
/// only share a slot or a tombstone (extra misses), never a value: values are bound to
/// their full key by the seal.
const TAG_BYTES: usize = 16;

/// One (tenant, scope) entry's names in L2, under the current sealing key and under each
/// retired one still configured, plus the associated data binding sealed values to the
/// full key.
#[derive(Debug)]
pub(crate) struct L2Key {
    /// Names under the current key first.
    pub(crate) names: Vec<EntryNames>,
    pub(crate) aad: String,
}

/// The names of one entry under one naming key.
#[derive(Debug)]
pub(crate) struct EntryNames {
    pub(crate) value: String,
    pub(crate) lease: String,
    pub(crate) tenant_tombstone: String,
    pub(crate) tombstone: String,
}

impl L2Key {
    /// The names under the current key: where values are written and leases taken.
    pub(crate) fn current(&self) -> &EntryNames {
        &self.names[0]
    }
}

/// Hashes the parts of a name with `key`, each part length-prefixed so that no two
/// different part lists hash alike.
fn tag(key: &hmac::Key, parts: &[&str]) -> [u8; TAG_BYTES] {
    let mut ctx = hmac::Context::with_key(key);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; TAG_BYTES];
    out.copy_from_slice(&ctx.sign().as_ref()[..TAG_BYTES]);
    out
}

pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
}

/// `ns:{<tag>}:` for one tenant under one naming key.
fn tenant_prefix(namespace: &str, key: &hmac::Key, tenant_parts: &[&str]) -> String {
    let mut prefix = String::with_capacity(namespace.len() + 4 + 2 * TAG_BYTES);
    prefix.push_str(namespace);
    prefix.push_str(":{");
    push_hex(&mut prefix, &tag(key, tenant_parts));
    prefix.push_str("}:");
    prefix
}

/// The names of everything the cache stores for one app (authority and client id).
pub(crate) fn entry(
    keys: &SealingKeys,
    namespace: &str,
    app: (&str, &str),
    tenant: &TenantId,
    scopes: &Scopes,
) -> L2Key {
    let (authority, client_id) = app;
    let tenant_parts = [authority, client_id, tenant.as_str()];
    let entry_parts = [authority, client_id, tenant.as_str(), scopes.as_str()];
    let names = keys
        .name_keys()
        .map(|key| {
            let prefix = tenant_prefix(namespace, key, &tenant_parts);
            let mut hash = String::with_capacity(2 * TAG_BYTES);
            push_hex(&mut hash, &tag(key, &entry_parts));
            EntryNames {
                value: format!("{prefix}t:{hash}"),
                lease: format!("{prefix}l:{hash}"),
                tenant_tombstone: format!("{prefix}x"),
                tombstone: format!("{prefix}x:{hash}"),
            }
        })
        .collect();
    L2Key {
        names,
        aad: format!("{authority}\n{client_id}\n{tenant}\n{scopes}"),
    }
}

/// The tenant tombstone's name under every configured naming key (current first).
pub(crate) fn tenant_tombstones(
    keys: &SealingKeys,
    namespace: &str,
    app: (&str, &str),
    tenant: &TenantId,
) -> Vec<String> {
    let (authority, client_id) = app;
    keys.name_keys()
        .map(|key| {
            let mut name = tenant_prefix(namespace, key, &[authority, client_id, tenant.as_str()]);
            name.push('x');
            name
        })
        .collect()
}

/// The global tombstone's name.
pub(crate) fn global_tombstone(namespace: &str) -> String {
    format!("{namespace}:x")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(byte: u8) -> SealingKeys {
        SealingKeys::new("k", [byte; 32]).unwrap()
    }

    fn scopes() -> Scopes {
        Scopes::parse(&["https://vault.azure.net/.default"]).unwrap()
    }

    #[test]
    fn names_hide_the_tenant_and_change_with_the_key() {
        let tenant: TenantId = "fabrikam.example".parse().unwrap();
        let app = ("https://login.example/", "client");
        let a = entry(&keys(1), "act", app, &tenant, &scopes());
        let b = entry(&keys(2), "act", app, &tenant, &scopes());
        let a = a.current();
        assert!(!a.value.contains("fabrikam"), "{}", a.value);
        assert_ne!(
            a.value,
            b.current().value,
            "unkeyed: anyone could test a tenant"
        );
        // One slot for the entry, its lease and its tenant's tombstone.
        let slot = |name: &str| name[name.find('{').unwrap()..=name.find('}').unwrap()].to_owned();
        assert_eq!(slot(&a.value), slot(&a.lease));
        assert_eq!(slot(&a.value), slot(&a.tenant_tombstone));
        assert_eq!(slot(&a.value), slot(&a.tombstone));
        assert_eq!(
            tenant_tombstones(&keys(1), "act", app, &tenant),
            vec![a.tenant_tombstone.clone()]
        );
        assert_eq!(a.value.len(), "act:{".len() + 32 + "}:t:".len() + 32);
    }

    #[test]
    fn parts_cannot_be_shifted_into_each_other() {
        let k = keys(1);
        let key = k.name_keys().next().unwrap();
        assert_ne!(tag(key, &["ab", "c"]), tag(key, &["a", "bc"]));
    }

    #[test]
    fn a_rotation_keeps_the_retired_keys_names_to_read() {
        let tenant: TenantId = "fabrikam.example".parse().unwrap();
        let app = ("https://login.example/", "client");
        let rotated = SealingKeys::new("new", [2; 32])
            .unwrap()
            .with_previous("old", [1; 32])
            .unwrap();
        let names = entry(&rotated, "act", app, &tenant, &scopes()).names;
        let old = entry(&keys(1), "act", app, &tenant, &scopes());
        assert_eq!(names.len(), 2);
        assert_eq!(names[1].value, old.current().value);
    }
}
