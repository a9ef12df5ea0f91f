//! [`Index`]: the read index every hit goes through, one cache line per entry.
//!
//! `papaya` keeps each entry in a node of its own, `(key, value)`. Here the key and the
//! [`Slot`] a hit reads share one 64-byte, 64-aligned node (the value is `()`), so a hit
//! touches the table's metadata and pointer arrays, that one line, and the token, and
//! nothing it reads shares a line with memory another core writes (a neighbour's token
//! count, say): with 30,000 random keys each line is a trip to memory.

use std::hash::{Hash, Hasher};

use moka::Equivalent;

use super::entry::Slot;
use super::key::{Key, KeyHasher, KeyRef};

/// One entry of the index: its key and what a hit reads. Equal and hashed as its key.
#[repr(C, align(64))]
pub(super) struct Indexed {
    pub(super) key: Key,
    pub(super) slot: Slot,
}

impl Hash for Indexed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialEq for Indexed {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Indexed {}

impl Equivalent<Indexed> for KeyRef<'_> {
    fn equivalent(&self, indexed: &Indexed) -> bool {
        Equivalent::<Key>::equivalent(self, &indexed.key)
    }
}

impl Equivalent<Indexed> for Key {
    fn equivalent(&self, indexed: &Indexed) -> bool {
        *self == indexed.key
    }
}

/// Live entries by key, each with what a hit reads.
pub(super) struct Index(papaya::HashMap<Indexed, (), KeyHasher>);

/// What probes the index: a borrowed key on a hit, an owned one elsewhere.
pub(super) trait Probe: Equivalent<Indexed> + Hash {}
impl Probe for KeyRef<'_> {}
impl Probe for Key {}

impl Index {
    pub(super) fn new() -> Self {
        Self(
            papaya::HashMap::builder()
                .hasher(KeyHasher::default())
                .build(),
        )
    }

    pub(super) fn guard(&self) -> papaya::LocalGuard<'_> {
        self.0.guard()
    }

    /// The entry under `key`, for as long as `guard` lives.
    pub(super) fn get<'g>(
        &self,
        key: &impl Probe,
        guard: &'g papaya::LocalGuard<'_>,
    ) -> Option<&'g Indexed> {
        self.0
            .get_key_value(key, guard)
            .map(|(indexed, ())| indexed)
    }

    /// Puts `slot` under `key`, replacing what was there.
    pub(super) fn insert(&self, key: Key, slot: Slot, guard: &papaya::LocalGuard<'_>) {
        self.0.insert(Indexed { key, slot }, (), guard);
    }

    pub(super) fn remove(&self, key: &Key, guard: &papaya::LocalGuard<'_>) {
        self.0.remove(key, guard);
    }

    /// Removes `key` only if `drop` says so about what it holds.
    pub(super) fn remove_if(&self, key: &Key, drop: impl FnMut(&Slot) -> bool) {
        let mut drop = drop;
        let _ = self
            .0
            .pin()
            .remove_if(key, |indexed, ()| drop(&indexed.slot));
    }

    pub(super) fn entries<'g>(
        &self,
        guard: &'g papaya::LocalGuard<'_>,
    ) -> impl Iterator<Item = &'g Indexed> {
        self.0.iter(guard).map(|(indexed, ())| indexed)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_node_is_one_cache_line() {
        assert_eq!(size_of::<Indexed>(), 64);
        assert_eq!(align_of::<Indexed>(), 64);
    }
}
