//! `MokaStore`: the store of the port on a `moka::future::Cache`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cache_port::{
    CacheError, Pattern, Reply, Request, Result, Stats, Store, StoreKey, Ttl, TtlState, View,
};
use moka::notification::RemovalCause;
use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;

use crate::config::MokaConfig;
use crate::entry::{Entry, EntryExpiry, ENTRY_OVERHEAD};
use crate::incr::parse_i64;

/// The in-process cache: the port over a [`MokaStore`], counted, optionally
/// namespaced. Build one with [`MokaConfig`]; [`View::namespaced`] gives
/// views of the same store under child namespaces.
pub type MokaCache = View<MokaStore>;

/// A byte-bounded LRU store with per-entry TTLs, shared by every view built
/// over it (cloning shares it too).
///
/// One memory budget for a process, several key spaces, as one Redis serves
/// several prefixes. Every write to a key (`set`, `delete`, `expire`,
/// `set_if_absent`, `incr`, and each key a pattern delete or `clear`
/// removes) runs under moka's per-key lock (`and_compute_with`), so
/// concurrent calls on one key behave as some serial order of them.
///
/// Figures in `stats`: `evictions`, `entries` and `bytes` are the whole
/// store's (every namespace sharing it). `entries` and `bytes` are moka's own
/// estimates after its pending maintenance has run: they still count
/// entries that have expired but were not yet dropped, and `bytes` is the
/// weigher's figure (key + value + a fixed per-entry overhead), not the
/// allocator's.
#[derive(Clone)]
pub struct MokaStore {
    shared: Arc<Shared>,
}

struct Shared {
    cache: moka::future::Cache<String, Entry>,
    evictions: Arc<AtomicU64>,
    capacity_bytes: u64,
    max_value_len: usize,
}

impl fmt::Debug for MokaStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MokaStore")
            .field("capacity_bytes", &self.shared.capacity_bytes)
            .field("max_value_len", &self.shared.max_value_len)
            .finish_non_exhaustive()
    }
}

impl Default for MokaStore {
    /// A store of the default capacity.
    fn default() -> Self {
        MokaConfig::default()
            .build_store()
            .expect("the default configuration is valid")
    }
}

/// What an entry weighs against the capacity: key + value + overhead.
fn weight(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len() + ENTRY_OVERHEAD) as u64
}

impl MokaStore {
    pub(crate) fn from_config(config: &MokaConfig) -> Result<Self> {
        let max_value_len = config.value_limit()?;
        let evictions = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&evictions);
        let cache = moka::future::Cache::builder()
            .max_capacity(config.capacity_bytes)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(weight(key, &entry.value)).unwrap_or(u32::MAX)
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
        Ok(Self {
            shared: Arc::new(Shared {
                cache,
                evictions,
                capacity_bytes: config.capacity_bytes,
                max_value_len,
            }),
        })
    }

    fn cache(&self) -> &moka::future::Cache<String, Entry> {
        &self.shared.cache
    }

    /// An entry that could never fit the store is an error, not a silent
    /// drop: the front checked the value against `max_value_len`, but a
    /// namespace prefix makes the stored key, and so the entry, longer.
    fn check_fits(&self, key: &str, value: &Bytes) -> Result<()> {
        let capacity = self.shared.capacity_bytes.min(u64::from(u32::MAX));
        if weight(key, value) > capacity {
            let limit = capacity.saturating_sub(weight(key, b"")) as usize;
            return Err(CacheError::ValueTooLarge {
                len: value.len(),
                limit,
            });
        }
        Ok(())
    }

    /// The live entry under `key`, if any.
    async fn live(&self, key: &str) -> Option<Entry> {
        let entry = self.cache().get(key).await?;
        entry.is_live_now().then_some(entry)
    }

    async fn get_value(&self, key: &str) -> Option<Bytes> {
        self.live(key).await.map(|e| e.value)
    }

    async fn set(&self, key: StoreKey<'_>, value: Bytes, ttl: Option<Ttl>) -> Result<()> {
        self.check_fits(&key, &value)?;
        let entry = Entry::now(value, ttl);
        // Under the key's lock, like every other write, so that a `set`
        // racing an `incr` is ordered before or after it, never inside it.
        self.cache()
            .entry(key.into_owned())
            .and_compute_with(|_| std::future::ready(Op::Put(entry)))
            .await;
        Ok(())
    }

    /// Removes `key` under its lock; says whether a live entry was there.
    async fn remove(&self, key: String) -> bool {
        let mut existed = false;
        self.cache()
            .entry(key)
            .and_compute_with(|current| {
                let op = match current {
                    Some(entry) => {
                        existed = entry.value().is_live_now();
                        Op::Remove
                    }
                    None => Op::Nop,
                };
                std::future::ready(op)
            })
            .await;
        existed
    }

    /// Every live key under `scope` whose rest matches `pattern`.
    fn matching(&self, scope: &str, pattern: &Pattern) -> Vec<Arc<String>> {
        let now = Instant::now();
        self.cache()
            .iter()
            .filter(|(key, entry)| {
                entry.is_live(now)
                    && key
                        .strip_prefix(scope)
                        .is_some_and(|rest| pattern.matches(rest))
            })
            .map(|(key, _)| key)
            .collect()
    }

    async fn delete_matching(&self, scope: &str, pattern: &Pattern) -> u64 {
        let mut removed = 0;
        for key in self.matching(scope, pattern) {
            removed += u64::from(self.remove(String::clone(&key)).await);
        }
        removed
    }

    async fn expire(&self, key: String, ttl: Ttl) -> bool {
        let mut existed = false;
        self.cache()
            .entry(key)
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
        existed
    }

    async fn set_if_absent(&self, key: String, value: Bytes, ttl: Option<Ttl>) -> Result<bool> {
        self.check_fits(&key, &value)?;
        let mut written = false;
        // The per-key lock of `and_compute_with` makes check-and-write atomic:
        // of concurrent callers exactly one wins.
        self.cache()
            .entry(key)
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

    async fn incr(&self, key: String, delta: i64, ttl: Option<Ttl>) -> Result<i64> {
        let mut outcome = Err(CacheError::NotAnInteger);
        self.cache()
            .entry(key)
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

    async fn ttl(&self, key: &str) -> TtlState {
        match self.cache().get(key).await {
            Some(entry) => entry.ttl_state(Instant::now()),
            None => TtlState::Missing,
        }
    }

    async fn stats(&self) -> Stats {
        // moka's counts are lazy: let pending maintenance run first.
        self.cache().run_pending_tasks().await;
        let mut stats = Stats::default();
        stats.evictions = self.shared.evictions.load(Relaxed);
        stats.entries = Some(self.cache().entry_count());
        stats.bytes = Some(self.cache().weighted_size());
        stats
    }
}

impl Store for MokaStore {
    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        Ok(match request {
            Request::Get { key } => Reply::Value(self.get_value(&key).await),
            Request::Set { key, value, ttl } => {
                self.set(key, value, ttl).await?;
                Reply::Done
            }
            Request::Delete { key } => Reply::Flag(self.remove(key.into_owned()).await),
            Request::Exists { key } => Reply::Flag(self.live(&key).await.is_some()),
            Request::GetMany { keys } => {
                let mut values = Vec::with_capacity(keys.len());
                for key in keys {
                    values.push(self.get_value(&key).await);
                }
                Reply::Values(values)
            }
            Request::SetMany { items, ttl } => {
                // Every item must fit before the first is written.
                for (key, value) in &items {
                    self.check_fits(key, value)?;
                }
                for (key, value) in items {
                    self.set(key, value, ttl).await?;
                }
                Reply::Done
            }
            Request::DeleteMany { keys } => {
                let mut removed = 0;
                for key in keys {
                    removed += u64::from(self.remove(key.into_owned()).await);
                }
                Reply::Count(removed)
            }
            Request::DeletePattern { scope, pattern } => {
                Reply::Count(self.delete_matching(&scope, pattern).await)
            }
            Request::Keys { scope, pattern } => Reply::Keys(
                self.matching(&scope, pattern)
                    .iter()
                    .map(|k| k[scope.len()..].to_owned())
                    .collect(),
            ),
            Request::Ttl { key } => Reply::Ttl(self.ttl(&key).await),
            Request::Expire { key, ttl } => Reply::Flag(self.expire(key.into_owned(), ttl).await),
            Request::SetIfAbsent { key, value, ttl } => {
                Reply::Flag(self.set_if_absent(key.into_owned(), value, ttl).await?)
            }
            Request::Incr {
                key,
                delta,
                ttl_if_created,
            } => Reply::Int(self.incr(key.into_owned(), delta, ttl_if_created).await?),
            Request::Clear { scope } => {
                // Entry by entry, even for the whole store: moka's
                // `invalidate_all` hides entries lazily, and until its
                // maintenance runs a `remove` still hands an invalidated
                // entry back, so a cleared key would count as deleted.
                let everything = Pattern::new("*")?;
                if scope.is_empty() {
                    for (key, _) in self.cache().iter() {
                        self.remove(String::clone(&key)).await;
                    }
                } else {
                    self.delete_matching(&scope, &everything).await;
                }
                Reply::Done
            }
            Request::Stats { .. } => Reply::Stats(self.stats().await),
            Request::Ping => {
                // In process there is no round trip; this times one lookup.
                let start = Instant::now();
                let _ = self.cache().contains_key("");
                Reply::Pong(start.elapsed())
            }
        })
    }

    fn max_value_len(&self) -> usize {
        self.shared.max_value_len
    }
}
