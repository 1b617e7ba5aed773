//! A map bounded by entry count and by the bytes its values account for, evicting the least
//! recently used entry first. Holds the prepared modules of a `Sandbox` (the compiled code stays
//! in the on-disk cache, so an evicted module is loaded again without recompiling).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

struct Slot<V> {
    value: V,
    bytes: u64,
    /// When it was last inserted or read (a key of `Lru::order`).
    used: u64,
}

pub(crate) struct Lru<K, V> {
    max_entries: usize,
    max_bytes: u64,
    bytes: u64,
    clock: u64,
    slots: HashMap<K, Slot<V>>,
    /// Keys by last use, oldest first.
    order: BTreeMap<u64, K>,
}

impl<K: Clone + Eq + Hash, V> Lru<K, V> {
    pub(crate) fn new(max_entries: usize, max_bytes: u64) -> Self {
        Self {
            max_entries,
            max_bytes,
            bytes: 0,
            clock: 0,
            slots: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The value of `key`, now the most recently used.
    pub(crate) fn get<Q>(&mut self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let now = self.tick();
        let slot = self.slots.get_mut(key)?;
        let before = std::mem::replace(&mut slot.used, now);
        if let Some(key) = self.order.remove(&before) {
            self.order.insert(now, key);
        }
        Some(&slot.value)
    }

    fn remove(&mut self, key: &K) {
        if let Some(slot) = self.slots.remove(key) {
            self.order.remove(&slot.used);
            self.bytes -= slot.bytes;
        }
    }

    /// Keeps `value` as the most recently used, evicting the least recently used entries until
    /// both bounds hold. A value larger than the byte bound on its own is not kept (returns
    /// false): it would evict everything else and then itself.
    pub(crate) fn insert(&mut self, key: K, value: V, bytes: u64) -> bool {
        self.remove(&key);
        if self.max_entries == 0 || bytes > self.max_bytes {
            return false;
        }
        while self.slots.len() >= self.max_entries || self.bytes + bytes > self.max_bytes {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&oldest) {
                self.bytes -= slot.bytes;
            }
        }
        let used = self.tick();
        self.order.insert(used, key.clone());
        self.slots.insert(key, Slot { value, bytes, used });
        self.bytes += bytes;
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lru: &Lru<&'static str, u32>) -> Vec<&'static str> {
        lru.order.values().copied().collect()
    }

    #[test]
    fn inserting_past_the_count_bound_evicts_the_least_recently_used() {
        let mut lru = Lru::new(2, 1000);
        lru.insert("a", 1, 10);
        lru.insert("b", 2, 10);
        lru.insert("c", 3, 10);
        assert_eq!(keys(&lru), ["b", "c"]);
        assert!(lru.get(&"a").is_none());
        assert_eq!((lru.len(), lru.bytes()), (2, 20));
    }

    #[test]
    fn inserting_past_the_byte_bound_evicts_the_least_recently_used_until_it_fits() {
        let mut lru = Lru::new(10, 100);
        lru.insert("a", 1, 40);
        lru.insert("b", 2, 40);
        lru.insert("c", 3, 20);
        assert_eq!(
            (lru.len(), lru.bytes()),
            (3, 100),
            "exactly at the bound is kept"
        );
        lru.insert("d", 4, 1);
        assert_eq!(keys(&lru), ["b", "c", "d"]);
        lru.insert("e", 5, 70);
        assert_eq!(keys(&lru), ["c", "d", "e"]);
        assert_eq!(lru.bytes(), 91);
        lru.insert("f", 6, 90);
        assert_eq!(keys(&lru), ["f"], "as many as needed are evicted");
        assert_eq!(lru.bytes(), 90);
    }

    #[test]
    fn a_get_refreshes_recency() {
        let mut lru = Lru::new(2, 1000);
        lru.insert("a", 1, 10);
        lru.insert("b", 2, 10);
        assert_eq!(lru.get(&"a"), Some(&1));
        lru.insert("c", 3, 10);
        assert_eq!(keys(&lru), ["a", "c"], "b was the least recently used");
    }

    #[test]
    fn a_value_larger_than_the_byte_bound_is_not_kept_and_evicts_nothing() {
        let mut lru = Lru::new(10, 100);
        lru.insert("a", 1, 50);
        assert!(!lru.insert("huge", 2, 101));
        assert_eq!(keys(&lru), ["a"]);
        assert_eq!(lru.bytes(), 50);
    }

    #[test]
    fn inserting_a_key_again_replaces_it_and_its_bytes() {
        let mut lru = Lru::new(2, 100);
        lru.insert("a", 1, 60);
        lru.insert("b", 2, 10);
        lru.insert("a", 3, 20);
        assert_eq!(keys(&lru), ["b", "a"]);
        assert_eq!((lru.len(), lru.bytes()), (2, 30));
        assert_eq!(lru.get(&"a"), Some(&3));
    }
}
