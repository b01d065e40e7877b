//! `Counted<C>`: the client-side stats counters, for any adapter.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Cache, Result, Stats, StatsCounters, TtlState};

/// Counts what calls through it do: hits and misses (`get`, each key of
/// `get_many`), sets (`set`, each item of `set_many`, a winning
/// `set_if_absent`), deletes (`delete`, `delete_many`, `delete_pattern`) and
/// errors (every failed call). `stats` returns these counters with the inner
/// adapter's store figures (`evictions`, `entries`, `bytes`).
///
/// Every adapter of this workspace wraps itself in one, so all count alike.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_port::{layer::Counted, Cache, MockCache, Stats};
///
/// let mut inner = MockCache::new();
/// inner.expect_get().returning(|_| Ok(None));
/// inner.expect_stats().returning(|| Ok(Stats::default()));
/// let cache = Counted::new(inner);
/// cache.get("k").await.unwrap();
/// assert_eq!(cache.stats().await.unwrap().misses, 1);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Counted<C> {
    inner: C,
    counters: StatsCounters,
}

impl<C> Counted<C> {
    /// Counts the calls made to `inner` through this wrapper.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            counters: StatsCounters::default(),
        }
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

#[async_trait]
impl<C: Cache> Cache for Counted<C> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let result = self.inner.get(key).await;
        if let Ok(value) = &result {
            self.counters.lookup(value.is_some());
        }
        self.counters.track(result)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let result = self.inner.set(key, value, ttl).await;
        if result.is_ok() {
            self.counters.sets(1);
        }
        self.counters.track(result)
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let result = self.inner.delete(key).await;
        if let Ok(true) = result {
            self.counters.deletes(1);
        }
        self.counters.track(result)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.counters.track(self.inner.exists(key).await)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let result = self.inner.get_many(keys).await;
        if let Ok(values) = &result {
            let found = values.iter().filter(|v| v.is_some()).count() as u64;
            self.counters.lookups(found, values.len() as u64 - found);
        }
        self.counters.track(result)
    }

    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
        let count = items.len() as u64;
        let result = self.inner.set_many(items, ttl).await;
        if result.is_ok() {
            self.counters.sets(count);
        }
        self.counters.track(result)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64> {
        let result = self.inner.delete_many(keys).await;
        if let Ok(n) = result {
            self.counters.deletes(n);
        }
        self.counters.track(result)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let result = self.inner.delete_pattern(pattern).await;
        if let Ok(n) = result {
            self.counters.deletes(n);
        }
        self.counters.track(result)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        self.counters.track(self.inner.keys(pattern).await)
    }

    async fn ttl(&self, key: &str) -> Result<TtlState> {
        self.counters.track(self.inner.ttl(key).await)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.counters.track(self.inner.expire(key, ttl).await)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let result = self.inner.set_if_absent(key, value, ttl).await;
        if let Ok(true) = result {
            self.counters.sets(1);
        }
        self.counters.track(result)
    }

    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
        self.counters
            .track(self.inner.incr(key, delta, ttl_if_created).await)
    }

    async fn clear(&self) -> Result<()> {
        self.counters.track(self.inner.clear().await)
    }

    async fn stats(&self) -> Result<Stats> {
        let store = self.counters.track(self.inner.stats().await)?;
        Ok(Stats {
            evictions: store.evictions,
            entries: store.entries,
            bytes: store.bytes,
            ..self.counters.snapshot()
        })
    }

    async fn ping(&self) -> Result<Duration> {
        self.counters.track(self.inner.ping().await)
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }
}
