//! The edge's state in Redis, so several replicas enforce one budget and see the same blocks
//! (rate_limit.yml `redis_url`, an addition to the spec).
//!
//! Every key starts with `wasm-as-os:` and expires by itself: a budget when it is full again, a
//! counter slice when it leaves its window, a block or throttle when it ends. Budgets and counters
//! change in one Lua script each, so concurrent replicas cannot both spend the last request.
//! Standalone Redis (the scripts touch keys they compute, which Redis Cluster does not allow).

use std::{net::IpAddr, time::Duration};

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script, aio::ConnectionManager};

use super::{
    limiter::{Rate, Take, take},
    store::{Block, SLICES, Store, StoreError, Throttle, slice_of},
};

const PREFIX: &str = "wasm-as-os:";

/// Spends one request if it fits: returns the TAT before (or -1 when idle) and 1 if spent.
const TAKE: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]))
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3])
local base = tat
if base == nil or base < now then base = now end
local nxt = base + interval
if nxt - now > capacity then return {tat or -1, 0} end
redis.call('SET', KEYS[1], nxt, 'PX', math.floor((nxt - now) / 1000) + 1000)
return {tat or -1, 1}
";

/// Counts one event in the current slice and returns the sum over the window's slices.
const COUNT: &str = r"
local slice = tonumber(ARGV[1])
local slices = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local k = KEYS[1] .. ':' .. slice
redis.call('INCR', k)
redis.call('PEXPIRE', k, ttl)
local total = 0
for i = slice - slices + 1, slice do
  local v = redis.call('GET', KEYS[1] .. ':' .. i)
  if v then total = total + tonumber(v) end
end
return total
";

/// The most blocks or throttles listed at once.
const LIST_LIMIT: usize = 1000;

#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    take: Script,
    count: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisStore")
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn ms(d: chrono::Duration) -> u64 {
    u64::try_from(d.num_milliseconds()).unwrap_or(0).max(1)
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host:port/db`); fails when Redis cannot be
    /// reached. The error never contains the URL (it may hold a password).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let conn = ConnectionManager::new(client).await.map_err(unavailable)?;
        Ok(Self {
            conn,
            take: Script::new(TAKE),
            count: Script::new(COUNT),
        })
    }

    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        pattern: &str,
    ) -> Result<Vec<T>, StoreError> {
        let mut conn = self.conn.clone();
        let mut keys: Vec<String> = Vec::new();
        {
            let mut iter = conn
                .scan_match::<_, String>(format!("{PREFIX}{pattern}"))
                .await
                .map_err(unavailable)?;
            while let Some(key) = iter.next_item().await {
                keys.push(key);
                if keys.len() >= LIST_LIMIT {
                    break;
                }
            }
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = conn.mget(&keys).await.map_err(unavailable)?;
        Ok(values
            .into_iter()
            .flatten()
            .filter_map(|v| serde_json::from_str(&v).ok())
            .collect())
    }

    async fn put<T: serde::Serialize>(
        &self,
        key: String,
        value: &T,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let json =
            serde_json::to_string(value).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut conn = self.conn.clone();
        conn.pset_ex::<_, _, ()>(key, json, ms(until - now))
            .await
            .map_err(unavailable)
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        key: String,
    ) -> Result<Option<T>, StoreError> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn.get(key).await.map_err(unavailable)?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn take(&self, key: &str, rate: &Rate, now: i64) -> Result<Take, StoreError> {
        let mut conn = self.conn.clone();
        let (before, _spent): (i64, i64) = self
            .take
            .key(format!("{PREFIX}budget:{key}"))
            .arg(now)
            .arg(rate.interval_us)
            .arg(rate.interval_us.saturating_mul(i64::from(rate.burst)))
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let (outcome, _) = take(rate, (before >= 0).then_some(before), now);
        Ok(outcome)
    }

    async fn count(&self, key: &str, window: Duration, now: i64) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let ttl = u64::try_from(window.as_millis()).unwrap_or(u64::MAX / 2)
            + u64::try_from(window.as_millis() / u128::from(SLICES)).unwrap_or(0)
            + 1000;
        self.count
            .key(format!("{PREFIX}count:{key}"))
            .arg(slice_of(window, now))
            .arg(SLICES)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn put_block(&self, block: &Block) -> Result<(), StoreError> {
        self.put(
            format!("{PREFIX}block:{}", block.ip),
            block,
            block.until,
            block.since,
        )
        .await
    }

    async fn block(&self, ip: IpAddr, now: DateTime<Utc>) -> Result<Option<Block>, StoreError> {
        let block: Option<Block> = self.get(format!("{PREFIX}block:{ip}")).await?;
        Ok(block.filter(|b| b.until > now))
    }

    async fn remove_block(&self, ip: IpAddr) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let removed: u64 = conn
            .del(format!("{PREFIX}block:{ip}"))
            .await
            .map_err(unavailable)?;
        Ok(removed > 0)
    }

    async fn blocks(&self, now: DateTime<Utc>) -> Result<Vec<Block>, StoreError> {
        let mut out: Vec<Block> = self.list("block:*").await?;
        out.retain(|b| b.until > now);
        out.sort_by_key(|b| std::cmp::Reverse(b.since));
        Ok(out)
    }

    async fn put_throttle(&self, throttle: &Throttle) -> Result<(), StoreError> {
        self.put(
            format!("{PREFIX}throttle:{}", throttle.user_id),
            throttle,
            throttle.until,
            throttle.since,
        )
        .await
    }

    async fn throttle(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Throttle>, StoreError> {
        let t: Option<Throttle> = self.get(format!("{PREFIX}throttle:{user_id}")).await?;
        Ok(t.filter(|t| t.until > now))
    }

    async fn throttles(&self, now: DateTime<Utc>) -> Result<Vec<Throttle>, StoreError> {
        let mut out: Vec<Throttle> = self.list("throttle:*").await?;
        out.retain(|t| t.until > now);
        out.sort_by_key(|t| std::cmp::Reverse(t.since));
        Ok(out)
    }
}
