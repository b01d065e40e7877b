//! The tagged view as a cache port of its own, so that anything written
//! over the port (a `cache_loading::Loader`, `CacheExt`) reads through the
//! tags and writes with the tags a [`TagRule`] gives each entry, from its
//! key and from the value written.
//!
//! Reads, `exists`, `ttl`, `expire`, `set_if_absent`, `delete_if_equals`
//! and `incr` treat an invalidated entry as missing (removing it first).
//! Two answers differ from a plain cache's, to spare a read: `delete` and
//! `delete_many` count an invalidated entry not yet removed as deleted, and
//! `stats` are the cache underneath's, so a tagged read counts its version
//! read too. `keys`, `keys_stream` and `delete_pattern` see the tags'
//! version keys (`__tag:…`) as any key.
//!
//! Why a rule on the view and not a parameter of the call: a loader writes
//! where its load lands, in a background refresh too, and the rule runs in
//! the write itself, wherever that is (a task-local set around the call
//! would be lost in a spawned refresh, and the entry written untagged would
//! outlive its invalidation).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_port::{Cache, Decision, ErrorKind, KeyPages, Limit, Result, Stats, TtlState};
use serde::de::DeserializeOwned;

use crate::envelope;
use crate::TaggedCache;

/// Tags for an entry about to be written, from its key and the bytes
/// written (a loader's envelope, MessagePack, or raw bytes).
pub type TagRule = Arc<dyn Fn(&str, &Bytes) -> Vec<String> + Send + Sync>;

/// A [`TagRule`] from a typed value: `rule(key, &value)` for entries that
/// decode as `T` (a loader's or `CacheExt::set_typed`'s), no tags for any
/// other entry.
///
/// ```
/// use cache_tags::by_value;
///
/// // Every listing page is tagged with the products it shows.
/// let rule = by_value(|_key: &str, ids: &Vec<u64>| {
///     ids.iter().map(|id| format!("product:{id}")).collect()
/// });
/// let stored = cache_port::typed::encode(&vec![7u64, 9]).unwrap();
/// assert_eq!(rule("listing:1", &stored), ["product:7", "product:9"]);
/// assert!(rule("other", &bytes::Bytes::from_static(b"raw")).is_empty());
/// ```
pub fn by_value<T, F>(rule: F) -> TagRule
where
    T: DeserializeOwned,
    F: Fn(&str, &T) -> Vec<String> + Send + Sync + 'static,
{
    Arc::new(
        move |key, stored| match cache_port::typed::decode::<T>(stored) {
            Ok(value) => rule(key, &value),
            Err(_) => Vec::new(),
        },
    )
}

impl TaggedCache {
    /// The view, writing each entry that reaches it through the [`Cache`]
    /// port with the tags `rule` gives it.
    pub fn tag_with(mut self, rule: TagRule) -> Self {
        self.rule = Some(rule);
        self
    }

    fn tags_for(&self, key: &str, value: &Bytes) -> Vec<String> {
        self.rule
            .as_ref()
            .map(|rule| rule(key, value))
            .unwrap_or_default()
    }

    /// Whether `key` holds an entry the view would read as missing (an
    /// invalidated one): then it is removed, and the caller may go on as
    /// on a missing key.
    async fn cleared_if_stale(&self, key: &str) -> Result<bool> {
        let Some(raw) = self.cache().get(key).await? else {
            return Ok(false);
        };
        if envelope::open(&raw)?.is_none() {
            return Ok(false);
        }
        let keys = [key.to_owned()];
        if self.resolve(&keys, vec![Some(raw)]).await?[0].is_none() {
            return Ok(true); // resolve removed it
        }
        Ok(false)
    }
}

#[async_trait]
impl Cache for TaggedCache {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        TaggedCache::get(self, key).await
    }

    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        TaggedCache::get_now(self, key)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let tags = self.tags_for(key, &value);
        TaggedCache::set(self, key, value, ttl, &tags).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        // Forwarded: an invalidated entry not yet removed counts as deleted
        // (telling would cost a read, counted in `stats`).
        self.cache().delete(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(TaggedCache::get(self, key).await?.is_some())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        TaggedCache::get_many(self, keys).await
    }

    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
        let tagged: Vec<_> = items
            .into_iter()
            .map(|(key, value)| {
                let tags = self.tags_for(&key, &value);
                (key, value, tags)
            })
            .collect();
        self.set_many_tagged(tagged, ttl).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64> {
        self.cache().delete_many(keys).await
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        self.cache().delete_pattern(pattern).await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        self.cache().keys(pattern).await
    }

    async fn ttl(&self, key: &str) -> Result<TtlState> {
        if self.cleared_if_stale(key).await? {
            return Ok(TtlState::Missing);
        }
        self.cache().ttl(key).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        // An invalidated entry is removed first: then it is a missing key
        // (false, or a bad TTL's error, as on any missing key).
        self.cleared_if_stale(key).await?;
        self.cache().expire(key, ttl).await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let tags = crate::tag::validate(&self.tags_for(key, &value))?;
        let stored = self.sealed(&tags, value).await?;
        if self.cache().set_if_absent(key, stored.clone(), ttl).await? {
            return Ok(true);
        }
        // An invalidated entry is absent: removed, then one more try.
        if self.cleared_if_stale(key).await? {
            return self.cache().set_if_absent(key, stored, ttl).await;
        }
        Ok(false)
    }

    async fn delete_if_equals(&self, key: &str, value: Bytes) -> Result<bool> {
        let Some(raw) = self.cache().get(key).await? else {
            // Still the port's checks (the key) on a missing key.
            return self.cache().delete_if_equals(key, value).await;
        };
        let keys = [key.to_owned()];
        match &self.resolve(&keys, vec![Some(raw.clone())]).await?[0] {
            Some(current) if *current == value => self.cache().delete_if_equals(key, raw).await,
            _ => Ok(false),
        }
    }

    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Bytes>> {
        TaggedCache::get_and_touch(self, key, ttl).await
    }

    async fn throttle(&self, key: &str, limit: Limit, cost: u32) -> Result<Decision> {
        match self.cache().throttle(key, limit, cost).await {
            // An invalidated tagged entry is absent: the subject starts again.
            Err(e) if e.kind() == ErrorKind::NotAnInteger && self.cleared_if_stale(key).await? => {
                self.cache().throttle(key, limit, cost).await
            }
            other => other,
        }
    }

    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
        match self.cache().incr(key, delta, ttl_if_created).await {
            // An invalidated entry is absent: the counter starts again.
            Err(e) if e.kind() == ErrorKind::NotAnInteger && self.cleared_if_stale(key).await? => {
                self.cache().incr(key, delta, ttl_if_created).await
            }
            other => other,
        }
    }

    async fn clear(&self) -> Result<()> {
        self.cache().clear().await
    }

    async fn stats(&self) -> Result<Stats> {
        self.cache().stats().await
    }

    async fn ping(&self) -> Result<Duration> {
        self.cache().ping().await
    }

    async fn close(&self) -> Result<()> {
        self.cache().close().await
    }

    fn max_value_len(&self) -> usize {
        self.cache().max_value_len()
    }

    fn keys_stream(&self, pattern: &str) -> KeyPages {
        self.cache().keys_stream(pattern)
    }
}
