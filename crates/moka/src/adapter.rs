//! `MokaCache`: the port on a `moka::future::Cache`.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use cache_port::layer::Counted;
use cache_port::{
    delegate_cache, validate_keys, Cache, CacheError, Key, Pattern, Result, Stats, Ttl, TtlState,
};
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;

use crate::config::MokaConfig;
use crate::entry::{Entry, EntryExpiry, ENTRY_OVERHEAD};
use crate::incr::parse_i64;

/// The store that every namespace view of one [`MokaCache`] shares.
struct Store {
    cache: moka::future::Cache<String, Entry>,
    evictions: Arc<AtomicU64>,
    capacity_bytes: u64,
    max_value_len: usize,
}

/// The in-process adapter: a byte-bounded LRU store with per-entry TTLs.
///
/// Cloning gives another handle to the same adapter (same store, namespace
/// and counters). [`MokaCache::namespaced`] gives a view of the same store
/// under another namespace, with its own counters: one memory budget for a
/// process, several key spaces, as one Redis serves several prefixes.
///
/// Figures in [`stats`](Cache::stats): the counters (kept by the port's
/// [`Counted`] layer) are exact for this view;
/// `evictions`, `entries` and `bytes` are the whole store's (every namespace
/// sharing it). `entries` and `bytes` are moka's own estimates after its
/// pending maintenance has run: they still count entries that have expired
/// but were not yet dropped, and `bytes` is the weigher's figure (key +
/// value + a fixed per-entry overhead), not the allocator's.
#[derive(Clone)]
pub struct MokaCache {
    view: Arc<Counted<MokaView>>,
}

delegate_cache!(impl[] MokaCache => |this| this.view);

/// One namespace's view of a store: the port's logic, uncounted.
struct MokaView {
    store: Arc<Store>,
    /// The namespace followed by `:`, when there is one.
    prefix: Option<Arc<str>>,
}

impl fmt::Debug for MokaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = self.view.inner();
        f.debug_struct("MokaCache")
            .field("namespace", &self.namespace())
            .field("capacity_bytes", &view.store.capacity_bytes)
            .field("max_value_len", &view.store.max_value_len)
            .finish_non_exhaustive()
    }
}

impl MokaCache {
    /// A new store of the default capacity, without a namespace.
    pub fn new() -> Self {
        Self::from_config(MokaConfig::default()).expect("the default configuration is valid")
    }

    /// The configuration builder.
    pub fn builder() -> MokaConfig {
        MokaConfig::default()
    }

    pub(crate) fn from_config(config: MokaConfig) -> Result<Self> {
        let max_value_len = config.value_limit()?;
        let prefix = namespace_prefix(config.namespace.as_deref())?;
        let evictions = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&evictions);
        let cache = moka::future::Cache::builder()
            .max_capacity(config.capacity_bytes)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(key.len() + entry.value.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            // LRU, not moka's default TinyLFU admission: that can drop a key
            // just set into a full store, and "set then get" must hold.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(EntryExpiry)
            .eviction_listener(move |_key, _value, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Relaxed);
                }
            })
            .build();
        let store = Arc::new(Store {
            cache,
            evictions,
            capacity_bytes: config.capacity_bytes,
            max_value_len,
        });
        Ok(Self::over(store, prefix))
    }

    /// A counted view of `store`.
    fn over(store: Arc<Store>, prefix: Option<Arc<str>>) -> Self {
        Self {
            view: Arc::new(Counted::new(MokaView { store, prefix })),
        }
    }

    /// A view of the same store under `namespace` (replacing this view's
    /// namespace, not nesting in it), with counters of its own.
    pub fn namespaced(&self, namespace: &str) -> Result<Self> {
        Ok(Self::over(
            Arc::clone(&self.view.inner().store),
            namespace_prefix(Some(namespace))?,
        ))
    }

    /// This view's namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.view
            .inner()
            .prefix
            .as_deref()
            .map(|p| &p[..p.len() - 1])
    }
}

impl MokaView {
    /// The store's key for a caller's key.
    fn store_key<'k>(&self, key: Key<'k>) -> Cow<'k, str> {
        match &self.prefix {
            None => Cow::Borrowed(key.as_str()),
            Some(prefix) => Cow::Owned([prefix, key.as_str()].concat()),
        }
    }

    /// The caller's key for a store key, when it is in this namespace.
    fn caller_key<'s>(&self, store_key: &'s str) -> Option<&'s str> {
        match &self.prefix {
            None => Some(store_key),
            Some(prefix) => store_key.strip_prefix(&**prefix),
        }
    }

    fn check_value(&self, value: &Bytes) -> Result<()> {
        if value.len() > self.store.max_value_len {
            return Err(CacheError::ValueTooLarge {
                len: value.len(),
                limit: self.store.max_value_len,
            });
        }
        Ok(())
    }

    /// The live entry under `store_key`, if any.
    async fn live(&self, store_key: &str) -> Option<Entry> {
        let entry = self.store.cache.get(store_key).await?;
        entry.is_live_now().then_some(entry)
    }

    /// Removes `store_key`; says whether a live entry was there.
    async fn remove_live(&self, store_key: &str) -> bool {
        let removed = self.store.cache.remove(store_key).await;
        removed.is_some_and(|e| e.is_live_now())
    }

    /// Every live store key in this namespace whose caller key matches.
    fn matching(&self, pattern: &Pattern) -> Vec<Arc<String>> {
        let now = Instant::now();
        self.store
            .cache
            .iter()
            .filter(|(key, entry)| {
                entry.is_live(now) && self.caller_key(key).is_some_and(|k| pattern.matches(k))
            })
            .map(|(key, _)| key)
            .collect()
    }
}

impl Default for MokaCache {
    fn default() -> Self {
        Self::new()
    }
}

/// `namespace:`; an empty namespace is a configuration error (leave it out instead).
fn namespace_prefix(namespace: Option<&str>) -> Result<Option<Arc<str>>> {
    match namespace {
        None => Ok(None),
        Some("") => Err(CacheError::Config {
            message: "the namespace is empty; leave it out for no namespace".into(),
        }),
        Some(ns) => Ok(Some(Arc::from(format!("{ns}:")))),
    }
}

#[async_trait]
impl Cache for MokaView {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let key = Key::new(key)?;
        let found = self.live(&self.store_key(key)).await.map(|e| e.value);
        Ok(found)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let key = Key::new(key)?;
        let ttl = Ttl::from_option(ttl)?;
        self.check_value(&value)?;
        let entry = Entry::now(value, ttl);
        self.store
            .cache
            .insert(self.store_key(key).into_owned(), entry)
            .await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let key = Key::new(key)?;
        Ok(self.remove_live(&self.store_key(key)).await)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let key = Key::new(key)?;
        Ok(self.live(&self.store_key(key)).await.is_some())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        validate_keys(keys)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(
                self.live(&self.store_key(Key::new(key)?))
                    .await
                    .map(|e| e.value),
            );
        }
        Ok(out)
    }

    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
        // Validate everything before the first write: a bad item changes nothing.
        let ttl = Ttl::from_option(ttl)?;
        for (key, value) in &items {
            Key::new(key)?;
            self.check_value(value)?;
        }
        let now = Instant::now();
        for (key, value) in items {
            let store_key = match &self.prefix {
                None => key,
                Some(prefix) => [prefix, key.as_str()].concat(),
            };
            self.store
                .cache
                .insert(store_key, Entry::new(value, ttl, now))
                .await;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64> {
        validate_keys(keys)?;
        let mut removed = 0;
        for key in keys {
            removed += u64::from(self.remove_live(&self.store_key(Key::new(key)?)).await);
        }
        Ok(removed)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let pattern = Pattern::new(pattern)?;
        let mut removed = 0;
        for key in self.matching(&pattern) {
            removed += u64::from(self.remove_live(&key).await);
        }
        Ok(removed)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = Pattern::new(pattern)?;
        Ok(self
            .matching(&pattern)
            .iter()
            .filter_map(|k| self.caller_key(k).map(str::to_owned))
            .collect())
    }

    async fn ttl(&self, key: &str) -> Result<TtlState> {
        let key = Key::new(key)?;
        Ok(match self.store.cache.get(&*self.store_key(key)).await {
            Some(entry) => entry.ttl_state(Instant::now()),
            None => TtlState::Missing,
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = Key::new(key)?;
        let ttl = Ttl::new(ttl)?;
        let mut existed = false;
        self.store
            .cache
            .entry(self.store_key(key).into_owned())
            .and_compute_with(|current| {
                let now = Instant::now();
                let op = match current.map(|e| e.into_value()).filter(|e| e.is_live(now)) {
                    Some(live) => {
                        existed = true;
                        Op::Put(Entry::new(live.value, Some(ttl), now))
                    }
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        Ok(existed)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let key = Key::new(key)?;
        let ttl = Ttl::from_option(ttl)?;
        self.check_value(&value)?;
        let mut written = false;
        // The per-key lock of `and_compute_with` makes check-and-write atomic:
        // of concurrent callers exactly one wins.
        self.store
            .cache
            .entry(self.store_key(key).into_owned())
            .and_compute_with(|current| {
                let now = Instant::now();
                let op = if current.is_some_and(|e| e.value().is_live(now)) {
                    Op::Nop
                } else {
                    written = true;
                    Op::Put(Entry::new(value, ttl, now))
                };
                std::future::ready(op)
            })
            .await;
        Ok(written)
    }

    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
        let key = Key::new(key)?;
        let ttl = Ttl::from_option(ttl_if_created)?;
        let mut outcome = Err(CacheError::NotAnInteger);
        self.store
            .cache
            .entry(self.store_key(key).into_owned())
            .and_compute_with(|current| {
                let now = Instant::now();
                let op = match current.map(|e| e.into_value()).filter(|e| e.is_live(now)) {
                    // Created: the TTL applies.
                    None => {
                        outcome = Ok(delta);
                        Op::Put(Entry::new(Bytes::from(delta.to_string()), ttl, now))
                    }
                    // Existing: the counter keeps its own expiry, as with INCRBY.
                    Some(existing) => {
                        outcome = parse_i64(&existing.value)
                            .ok_or(CacheError::NotAnInteger)
                            .and_then(|old| old.checked_add(delta).ok_or(CacheError::Overflow));
                        match &outcome {
                            Ok(new) => Op::Put(Entry {
                                value: Bytes::from(new.to_string()),
                                expires_at: existing.expires_at,
                            }),
                            Err(_) => Op::Nop,
                        }
                    }
                };
                std::future::ready(op)
            })
            .await;
        outcome
    }

    async fn clear(&self) -> Result<()> {
        match &self.prefix {
            // Without a namespace this handle owns the whole in-process store.
            None => self.store.cache.invalidate_all(),
            Some(_) => {
                let everything = Pattern::new("*").expect("`*` is a valid pattern");
                for key in self.matching(&everything) {
                    self.store.cache.remove(&*key).await;
                }
            }
        }
        Ok(())
    }

    async fn stats(&self) -> Result<Stats> {
        // moka's counts are lazy: let pending maintenance run first.
        self.store.cache.run_pending_tasks().await;
        let mut stats = Stats::default();
        stats.evictions = self.store.evictions.load(Relaxed);
        stats.entries = Some(self.store.cache.entry_count());
        stats.bytes = Some(self.store.cache.weighted_size());
        Ok(stats)
    }

    async fn ping(&self) -> Result<Duration> {
        // In process there is no round trip; this times one store lookup.
        let start = Instant::now();
        let _ = self.store.cache.contains_key("");
        Ok(start.elapsed())
    }

    fn max_value_len(&self) -> usize {
        self.store.max_value_len
    }
}
