//! Invalidation: complete when it returns. The entry leaves the index and the store, its
//! remembered refusal goes, and flights in progress for the key are revoked (their token
//! goes to the callers already waiting, never into the cache), so after an offboarding's
//! `invalidate_tenant` nothing of that tenant is served from memory, and after an
//! onboarding's nothing remembers its old refusal.
//!
//! Each reaches every form of the tenant: its GUID and every domain known to be its
//! (a domain this cache has not seen is resolved first, as a miss would).

use std::hash::BuildHasher as _;
use std::sync::atomic::Ordering;

use moka::ops::compute::Op;

use super::Cached;
use super::key::Key;
use crate::provider::TenantCredentialProvider;
use crate::scope::normalized;
use crate::tenant::TenantId;
use crate::token::AccessToken;

impl<P: TenantCredentialProvider + 'static> Cached<P> {
    /// Drops the cached token (or remembered refusal) for (`tenant`, `scopes`), whichever
    /// form of the tenant is given, and revokes any request in flight for it: the next
    /// call asks the provider. Invalid scopes are ignored. With a shared cache, its L2
    /// value is deleted before this returns.
    ///
    /// After a resource answered 401, prefer
    /// [`invalidate_if_current`](Self::invalidate_if_current): it does not throw away a
    /// token another caller already fetched again.
    pub async fn invalidate(&self, tenant: &TenantId, scopes: &[&str]) {
        let Ok(scope) = normalized(scopes) else {
            return;
        };
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        for tenant in self.forms(tenant).await {
            let key = Key {
                tenant,
                scopes: self.inner.scopes.get(scope),
            };
            let hash = self.inner.hasher.hash_one(&key);
            // L2 first: a flight that starts after this cannot read the old token back.
            self.shared_forget(&key).await;
            // Revoke first, then remove under the key's lock: a flight either checked
            // before the revocation (and its entry is removed here) or sees it and
            // inserts nothing.
            self.inner.flights.revoke(&key, hash);
            self.remove(&key);
            self.forget_refusal(&key);
        }
    }

    /// Every form `tenant` is known by here: its GUID first (resolved as a miss would,
    /// asking again about a domain the provider could not resolve lately), the form
    /// given, and every domain known to be the GUID's.
    async fn forms(&self, tenant: &TenantId) -> Vec<TenantId> {
        let canonical = self.canonical(tenant, true).await;
        let mut forms = vec![canonical.clone()];
        for form in std::iter::once(tenant.clone()).chain(self.inner.aliases.domains_of(&canonical))
        {
            if !forms.contains(&form) {
                forms.push(form);
            }
        }
        forms
    }

    /// Drops the cached token for (`tenant`, `scopes`) only if it is still `token`: what a
    /// caller does when a resource refused `token` (401). However many callers report the
    /// same token, it is dropped once and fetched again once; a newer token is kept. With
    /// a shared cache, the L2 value goes too, only while it is still `token`.
    ///
    /// ```
    /// # use azure_cross_tenant::{AccessToken, Cached, TenantCredentialProvider, TenantId};
    /// # async fn call(
    /// #     cached: &Cached<impl TenantCredentialProvider + 'static>,
    /// #     tenant: &TenantId,
    /// #     send: impl Fn(&AccessToken) -> u16,
    /// # ) -> Result<u16, azure_cross_tenant::Error> {
    /// let scopes = ["https://vault.azure.net/.default"];
    /// let token = cached.get_token(tenant, &scopes).await?;
    /// let mut status = send(&token);
    /// if status == 401 {
    ///     cached.invalidate_if_current(tenant, &scopes, &token).await;
    ///     status = send(&cached.get_token(tenant, &scopes).await?);
    /// }
    /// # Ok(status) }
    /// ```
    pub async fn invalidate_if_current(
        &self,
        tenant: &TenantId,
        scopes: &[&str],
        token: &AccessToken,
    ) {
        let Ok(scope) = normalized(scopes) else {
            return;
        };
        // The token's own entry is under the tenant's GUID once known: no resolution
        // needed, the key it was filed under is known here or by the token.
        let mut tenants = vec![self.canonical(tenant, false).await];
        if !tenants.contains(token.tenant()) {
            tenants.push(token.tenant().clone());
        }
        for tenant in tenants {
            let key = Key {
                tenant,
                scopes: self.inner.scopes.get(scope),
            };
            // L2 drops it only while it holds that token, whatever this replica's memory
            // holds.
            self.shared_forget_if(&key, token).await;
            let index = &self.inner.index;
            self.inner
                .tokens
                .entry(key.clone())
                .and_compute_with(|current| {
                    let guard = index.guard();
                    let holds = index.get(&key, &guard).is_some_and(|i| {
                        i.slot.token.ptr_eq(token) || i.slot.token.secret() == token.secret()
                    });
                    if !holds {
                        return Op::Nop;
                    }
                    index.remove(&key, &guard);
                    match current {
                        Some(_) => Op::Remove,
                        None => Op::Nop,
                    }
                });
        }
    }

    /// Drops every cached token and remembered refusal of `tenant` (by its GUID and
    /// every domain known to be its, whichever form is given) and revokes its requests in
    /// flight: offboarding, consent revoked, or onboarding just finished (a refusal
    /// remembered from before is not served again).
    ///
    /// With a shared cache, the tenant's tombstone is written to L2 first: from then on no
    /// replica's L2 read returns a token of this tenant fetched before now, including
    /// keys this replica never held and a token still being fetched. Other replicas'
    /// memory is out of reach: they keep serving a token they hold until they refresh it
    /// or it expires (call this on every replica when that matters).
    pub async fn invalidate_tenant(&self, tenant: &TenantId) {
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        let forms = self.forms(tenant).await;
        // The tenant's tombstones first (one per form it may be stored under): every
        // replica's L2 reads miss what was fetched before now, including keys this
        // replica never held.
        for form in &forms {
            self.shared_forget_tenant(form).await;
        }
        let of_tenant = |k: &Key| forms.contains(&k.tenant);
        let mut keys = self.inner.flights.revoke_where(of_tenant);
        {
            let guard = self.inner.index.guard();
            keys.extend(
                self.inner
                    .index
                    .entries(&guard)
                    .filter(|i| of_tenant(&i.key))
                    .map(|i| i.key.clone()),
            );
        }
        for key in &keys {
            self.remove(key);
        }
        let refused: Vec<Key> = self
            .inner
            .refusals
            .iter()
            .filter(|(k, _)| of_tenant(k))
            .map(|(k, _)| (*k).clone())
            .collect();
        for key in keys.iter().chain(&refused) {
            self.forget_refusal(key);
        }
    }

    /// Drops every cached token and remembered refusal and revokes every request in
    /// flight. With a shared cache, the global tombstone is written to L2 first (see
    /// [`invalidate_tenant`](Self::invalidate_tenant) for what it reaches).
    pub async fn invalidate_all(&self) {
        self.inner.invalidations.fetch_add(1, Ordering::AcqRel);
        self.shared_forget_all().await;
        let mut keys = self.inner.flights.revoke_where(|_| true);
        {
            let guard = self.inner.index.guard();
            keys.extend(self.inner.index.entries(&guard).map(|i| i.key.clone()));
        }
        // One by one under each key's lock, so a refresh or flight finishing meanwhile
        // cannot slip its entry back in between a bulk clear and the store's own.
        for key in &keys {
            self.remove(key);
        }
        self.inner.tokens.invalidate_all();
        let refused: Vec<Key> = self
            .inner
            .refusals
            .iter()
            .map(|(k, _)| (*k).clone())
            .collect();
        for key in keys.iter().chain(&refused) {
            self.forget_refusal(key);
        }
    }

    /// Removes `key` from the index and the store, serialized with every other write to it.
    pub(super) fn remove(&self, key: &Key) {
        let index = &self.inner.index;
        self.inner
            .tokens
            .entry(key.clone())
            .and_compute_with(|current| {
                index.remove(key, &index.guard());
                match current {
                    Some(_) => Op::Remove,
                    None => Op::Nop,
                }
            });
    }

    /// Forgets the refusal remembered for `key`, serialized with a flight remembering it.
    fn forget_refusal(&self, key: &Key) {
        self.inner
            .refusals
            .entry(key.clone())
            .and_compute_with(|current| match current {
                Some(_) => Op::Remove,
                None => Op::Nop,
            });
    }
}
