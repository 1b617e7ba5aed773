//! Where the edge keeps its state: budgets, windowed counters, address blocks and run throttles.
//!
//! [`MemoryStore`] serves one replica. Every table is bounded and evicts the least recently used
//! entry, so a flood of new addresses or users cannot grow memory without bound; an evicted
//! budget or counter starts again from idle, an evicted block ends early (the oldest go first).

use std::{
    net::IpAddr,
    num::NonZeroUsize,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use lru::LruCache;

use super::limiter::{Rate, Take, take};

/// An address refused by an ids.yml rule until `until`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Block {
    pub ip: IpAddr,
    pub rule: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// A user whose runs are refused by an ids.yml rule until `until`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Throttle {
    pub user_id: String,
    pub rule: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The shared store (Redis) cannot be reached or answered with an error.
    #[error("the rate-limit store is unavailable: {0}")]
    Unavailable(String),
}

/// The state the edge needs, in memory or shared.
#[async_trait::async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Spends one request of `key`'s budget at `now` (µs since the epoch).
    async fn take(&self, key: &str, rate: &Rate, now: i64) -> Result<Take, StoreError>;
    /// Counts one event for `key` and returns how many fell within the last `window`.
    async fn count(&self, key: &str, window: Duration, now: i64) -> Result<u64, StoreError>;
    async fn put_block(&self, block: &Block) -> Result<(), StoreError>;
    async fn block(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<Option<Block>, StoreError>;
    /// Ends a block early; false when there was none.
    async fn remove_block(&self, ip: IpAddr) -> Result<bool, StoreError>;
    async fn blocks(&self, now: DateTime<Utc>) -> Result<Vec<Block>, StoreError>;
    async fn put_throttle(&self, throttle: &Throttle) -> Result<(), StoreError>;
    async fn throttle(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Throttle>, StoreError>;
    async fn throttles(&self, now: DateTime<Utc>) -> Result<Vec<Throttle>, StoreError>;
}

/// A windowed counter: the window cut into [`SLICES`] slices, so an event leaves the count at most
/// one slice late.
pub const SLICES: u64 = 60;

#[derive(Debug, Clone)]
struct Window {
    /// The slice index the first entry of `counts` belongs to.
    first: u64,
    counts: [u32; SLICES as usize],
}

impl Window {
    fn add(&mut self, slice: u64) -> u64 {
        if slice >= self.first + SLICES {
            let shift = slice + 1 - SLICES - self.first;
            if shift >= SLICES {
                self.counts = [0; SLICES as usize];
            } else {
                self.counts.rotate_left(shift as usize);
                for c in &mut self.counts[(SLICES - shift) as usize..] {
                    *c = 0;
                }
            }
            self.first = slice + 1 - SLICES;
        }
        let i = slice.saturating_sub(self.first).min(SLICES - 1) as usize;
        self.counts[i] = self.counts[i].saturating_add(1);
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }
}

/// The slice `now` falls in for a window.
pub fn slice_of(window: Duration, now: i64) -> u64 {
    let width = (window.as_micros() / u128::from(SLICES)).max(1);
    u64::try_from(u128::try_from(now.max(0)).unwrap_or(0) / width).unwrap_or(u64::MAX)
}

/// How many entries each table of a [`MemoryStore`] holds at most.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// The edge's state in this process.
#[derive(Debug)]
pub struct MemoryStore {
    budgets: Mutex<LruCache<String, i64>>,
    windows: Mutex<LruCache<String, Window>>,
    blocks: Mutex<LruCache<IpAddr, Block>>,
    throttles: Mutex<LruCache<String, Throttle>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryStore {
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        Self {
            budgets: Mutex::new(LruCache::new(cap)),
            windows: Mutex::new(LruCache::new(cap)),
            blocks: Mutex::new(LruCache::new(cap)),
            throttles: Mutex::new(LruCache::new(cap)),
        }
    }

    /// Entries held: budgets, counters, blocks, throttles.
    pub fn sizes(&self) -> [usize; 4] {
        [
            lock(&self.budgets).len(),
            lock(&self.windows).len(),
            lock(&self.blocks).len(),
            lock(&self.throttles).len(),
        ]
    }
}

fn live<K: std::hash::Hash + Eq + Clone, V: Clone>(
    table: &Mutex<LruCache<K, V>>,
    key: &K,
    until: impl Fn(&V) -> DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<V> {
    let mut t = lock(table);
    match t.peek(key) {
        Some(v) if until(v) > now => Some(v.clone()),
        Some(_) => {
            t.pop(key);
            None
        }
        None => None,
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn take(&self, key: &str, rate: &Rate, now: i64) -> Result<Take, StoreError> {
        let mut budgets = lock(&self.budgets);
        let tat = budgets.get(key).copied();
        let (outcome, next) = take(rate, tat, now);
        if outcome.allowed {
            budgets.put(key.to_string(), next);
        }
        Ok(outcome)
    }

    async fn count(&self, key: &str, window: Duration, now: i64) -> Result<u64, StoreError> {
        let slice = slice_of(window, now);
        let mut windows = lock(&self.windows);
        if let Some(w) = windows.get_mut(key) {
            return Ok(w.add(slice));
        }
        let mut w = Window {
            first: slice,
            counts: [0; SLICES as usize],
        };
        let n = w.add(slice);
        windows.put(key.to_string(), w);
        Ok(n)
    }

    async fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        lock(&self.blocks).put(block.ip, block.clone());
        Ok(())
    }

    async fn block(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<Option<Block>, StoreError> {
        Ok(live(&self.blocks, &ip, |b| b.until, now))
    }

    async fn remove_block(&self, ip: IpAddr) -> Result<bool, StoreError> {
        Ok(lock(&self.blocks).pop(&ip).is_some())
    }

    async fn blocks(&self, now: DateTime<Utc>) -> Result<Vec<Block>, StoreError> {
        let mut out: Vec<Block> = lock(&self.blocks)
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(_, b)| b.clone())
            .collect();
        out.sort_by_key(|b| std::cmp::Reverse(b.since));
        Ok(out)
    }

    async fn put_throttle(&self, throttle: &Throttle) -> Result<(), StoreError> {
        lock(&self.throttles).put(throttle.user_id.clone(), throttle.clone());
        Ok(())
    }

    async fn throttle(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Throttle>, StoreError> {
        Ok(live(
            &self.throttles,
            &user_id.to_string(),
            |t| t.until,
            now,
        ))
    }

    async fn throttles(&self, now: DateTime<Utc>) -> Result<Vec<Throttle>, StoreError> {
        let mut out: Vec<Throttle> = lock(&self.throttles)
            .iter()
            .filter(|(_, t)| t.until > now)
            .map(|(_, t)| t.clone())
            .collect();
        out.sort_by_key(|b| std::cmp::Reverse(b.since));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flood_of_new_keys_stays_within_the_capacity() {
        let store = MemoryStore::new(1000);
        let rate = Rate::from_limit(&crate::config::rate_limit::Limit {
            requests_per_minute: 5,
            burst: 2,
            window: None,
        });
        for i in 0..5000u32 {
            let key = format!("ip:198.51.{}.{}", i / 256, i % 256);
            store.take(&key, &rate, 0).await.unwrap();
            store
                .count(&key, Duration::from_secs(300), 0)
                .await
                .unwrap();
            let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            store
                .put_block(&Block {
                    ip,
                    rule: "r".into(),
                    since: Utc::now(),
                    until: Utc::now() + chrono::Duration::hours(1),
                })
                .await
                .unwrap();
        }
        assert_eq!(store.sizes(), [1000, 1000, 1000, 0]);
        // The newest survive; the oldest were evicted.
        assert!(
            store
                .block(IpAddr::from([10, 0, 19, 135]), Utc::now())
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .block(IpAddr::from([10, 0, 0, 0]), Utc::now())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_window_forgets_events_older_than_itself() {
        let store = MemoryStore::new(10);
        let w = Duration::from_secs(300);
        let s = 1_000_000i64;
        for i in 0..5 {
            assert_eq!(
                store.count("k", w, i * 10 * s).await.unwrap(),
                (i + 1) as u64
            );
        }
        // 40 s after the last one: all five still count.
        assert_eq!(store.count("k", w, 80 * s).await.unwrap(), 6);
        // Five minutes after the first four, they are gone; the last two remain.
        assert_eq!(store.count("k", w, 335 * s).await.unwrap(), 3);
        // Long idle: only the new one.
        assert_eq!(store.count("k", w, 10_000 * s).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_expired_block_is_gone() {
        let store = MemoryStore::new(10);
        let now = Utc::now();
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        store
            .put_block(&Block {
                ip,
                rule: "r".into(),
                since: now,
                until: now + chrono::Duration::hours(1),
            })
            .await
            .unwrap();
        assert!(
            store
                .block(ip, now + chrono::Duration::minutes(59))
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            store
                .block(ip, now + chrono::Duration::minutes(61))
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.blocks(now).await.unwrap().is_empty());
    }
}
