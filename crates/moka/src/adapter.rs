//! `MokaStore`: the store of the port on a `moka::future::Cache`.

use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use cache_port::throttle::Write;
use cache_port::{CacheError, Decision, KeyPages, Limit, Pattern, Result, Stats, Ttl, TtlState};
use cache_store::{Reply, Request, Store, StoreKey, View};
use moka::notification::RemovalCause;
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
/// several prefixes. It runs on `moka::sync::Cache`: every moka call is a
/// plain function call, so a whole request through the port is one small
/// future (`moka::future::Cache`'s own futures are 0.8–1.4 KB each, and a
/// store answering every operation would carry the largest of them in every
/// call's boxed future).
///
/// Every write to a key (`set`, `delete`, `expire`, `set_if_absent`,
/// `incr`, and each key a pattern delete or `clear` removes) holds that
/// key's stripe lock, so concurrent calls on one key behave as some serial
/// order of them, as on Redis; reads take no lock. No lock is held across
/// an `.await` (there is none).
///
/// Figures in `stats`: `evictions`, `entries` and `bytes` are the whole
/// store's (every namespace sharing it); `evictions` is `None` when the
/// store was built with `MokaConfig::count_evictions(false)`. `entries` and `bytes` are moka's own
/// estimates after its pending maintenance has run: they still count
/// entries that have expired but were not yet dropped, and `bytes` is the
/// weigher's figure (key + value + a fixed per-entry overhead), not the
/// allocator's.
#[derive(Clone)]
pub struct MokaStore {
    shared: Arc<Shared>,
}

/// How many stripes the per-key write locks are spread over: enough that
/// two unrelated keys rarely share one on a machine's worth of cores.
const STRIPES: usize = 256;

struct Shared {
    cache: moka::sync::Cache<String, Entry>,
    /// Write locks, one per stripe of keys.
    stripes: Box<[Mutex<()>]>,
    /// Picks a key's stripe. Fx, not SipHash: a collision only makes two
    /// keys share a lock, and Fx is a few instructions per byte.
    hasher: rustc_hash::FxBuildHasher,
    /// Size evictions so far; `None` when not counted (no listener).
    evictions: Option<Arc<AtomicU64>>,
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
        let evictions = config.count_evictions.then(|| Arc::new(AtomicU64::new(0)));
        let builder = moka::sync::Cache::builder()
            .max_capacity(config.capacity_bytes)
            .weigher(|key: &String, entry: &Entry| {
                u32::try_from(weight(key, &entry.value)).unwrap_or(u32::MAX)
            })
            // LRU, not moka's default TinyLFU admission: that can drop a key
            // just set into a full store, and "set then get" must hold.
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(EntryExpiry);
        // moka tells of a size eviction only through a listener, and with
        // one installed it locks each key on every write: only when asked.
        let cache = match &evictions {
            Some(evictions) => {
                let counted = Arc::clone(evictions);
                builder
                    .eviction_listener(move |_key, _value, cause| {
                        if cause == RemovalCause::Size {
                            counted.fetch_add(1, Relaxed);
                        }
                    })
                    .build()
            }
            None => builder.build(),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                cache,
                stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
                hasher: rustc_hash::FxBuildHasher,
                evictions,
                capacity_bytes: config.capacity_bytes,
                max_value_len,
            }),
        })
    }

    fn cache(&self) -> &moka::sync::Cache<String, Entry> {
        &self.shared.cache
    }

    /// The write lock of `key`'s stripe. A panic while it was held left no
    /// half-written entry (moka's calls are atomic), so a poisoned lock is
    /// taken over.
    fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let stripe = self.shared.hasher.hash_one(key) as usize % STRIPES;
        self.shared.stripes[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
                which: CacheError::ENTRY_LIMIT,
            });
        }
        Ok(())
    }

    /// The live entry under `key`, if any.
    fn live(&self, key: &str) -> Option<Entry> {
        let entry = self.cache().get(key)?;
        entry.is_live_now().then_some(entry)
    }

    fn get_value(&self, key: &str) -> Option<Bytes> {
        self.live(key).map(|e| e.value)
    }

    fn set(&self, key: StoreKey<'_>, value: Bytes, ttl: Option<Ttl>) -> Result<()> {
        self.check_fits(&key, &value)?;
        self.write(key, value, ttl);
        Ok(())
    }

    /// Stores an entry that was checked to fit.
    fn write(&self, key: StoreKey<'_>, value: Bytes, ttl: Option<Ttl>) {
        let entry = Entry::now(value, ttl);
        // Under the key's lock, like every other write, so that a `set`
        // racing an `incr` is ordered before or after it, never inside it.
        let _write = self.lock(&key);
        self.cache().insert(key.into_owned(), entry);
    }

    /// Removes `key` under its lock; says whether a live entry was there.
    fn remove(&self, key: &str) -> bool {
        let _write = self.lock(key);
        self.cache().remove(key).is_some_and(|e| e.is_live_now())
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

    fn delete_matching(&self, scope: &str, pattern: &Pattern) -> u64 {
        self.matching(scope, pattern)
            .iter()
            .map(|key| u64::from(self.remove(key)))
            .sum()
    }

    fn expire(&self, key: StoreKey<'_>, ttl: Ttl) -> bool {
        let _write = self.lock(&key);
        let now = Instant::now();
        match self.cache().get(&*key).filter(|e| e.is_live(now)) {
            Some(live) => {
                self.cache()
                    .insert(key.into_owned(), Entry::new(live.value, Some(ttl), now));
                true
            }
            None => false,
        }
    }

    /// The live value, given `ttl` from now under the key's lock (so no
    /// write slips between the read and the new expiry).
    fn get_and_touch(&self, key: StoreKey<'_>, ttl: Ttl) -> Option<Bytes> {
        let _write = self.lock(&key);
        let now = Instant::now();
        let live = self.cache().get(&*key).filter(|e| e.is_live(now))?;
        let value = live.value.clone();
        self.cache()
            .insert(key.into_owned(), Entry::new(live.value, Some(ttl), now));
        Some(value)
    }

    fn set_if_absent(&self, key: StoreKey<'_>, value: Bytes, ttl: Option<Ttl>) -> Result<bool> {
        self.check_fits(&key, &value)?;
        // Check and write under the key's lock: of concurrent callers
        // exactly one wins.
        let _write = self.lock(&key);
        let now = Instant::now();
        if self.cache().get(&*key).is_some_and(|e| e.is_live(now)) {
            return Ok(false);
        }
        self.cache()
            .insert(key.into_owned(), Entry::new(value, ttl, now));
        Ok(true)
    }

    fn delete_if_equals(&self, key: &str, value: &[u8]) -> bool {
        // Compare and remove under the key's lock, so no write slips between.
        let _write = self.lock(key);
        let now = Instant::now();
        let holds = self
            .cache()
            .get(key)
            .is_some_and(|e| e.is_live(now) && e.value == value);
        holds && self.cache().remove(key).is_some()
    }

    fn incr(&self, key: StoreKey<'_>, delta: i64, ttl: Option<Ttl>) -> Result<i64> {
        let _write = self.lock(&key);
        let now = Instant::now();
        let (new, entry) = match self.cache().get(&*key).filter(|e| e.is_live(now)) {
            // Created: the TTL applies.
            None => (delta, Entry::new(Bytes::from(delta.to_string()), ttl, now)),
            // Existing: the counter keeps its own expiry, as with INCRBY.
            Some(existing) => {
                let old = parse_i64(&existing.value).ok_or(CacheError::NotAnInteger)?;
                let new = old.checked_add(delta).ok_or(CacheError::Overflow)?;
                let entry = Entry {
                    value: Bytes::from(new.to_string()),
                    expires_at: existing.expires_at,
                };
                (new, entry)
            }
        };
        self.cache().insert(key.into_owned(), entry);
        Ok(new)
    }

    /// One GCRA check under the key's lock, with [`clock_micros`] (the
    /// store is one process's; see `cache_port::throttle`).
    fn throttle(&self, key: StoreKey<'_>, limit: Limit, cost: u32) -> Result<Decision> {
        let _write = self.lock(&key);
        let now = Instant::now();
        let stored = self.cache().get(&*key).filter(|e| e.is_live(now));
        let stored = stored.as_ref().map(|e| &e.value[..]);
        let (decision, write) = limit.check(stored, clock_micros(), cost)?;
        if let Write::Store { value, ttl } = write {
            let value = Bytes::from(value);
            let entry = Entry::new(value, Some(Ttl::new(ttl)?), now);
            self.cache().insert(key.into_owned(), entry);
        }
        Ok(decision)
    }

    fn ttl(&self, key: &str) -> TtlState {
        match self.cache().get(key) {
            Some(entry) => entry.ttl_state(Instant::now()),
            None => TtlState::Missing,
        }
    }

    fn stats(&self) -> Stats {
        // moka's counts are lazy: let pending maintenance run first.
        self.cache().run_pending_tasks();
        let mut stats = Stats::default();
        stats.evictions = self.shared.evictions.as_ref().map(|n| n.load(Relaxed));
        stats.entries = Some(self.cache().entry_count());
        stats.bytes = Some(self.cache().weighted_size());
        stats
    }

    /// Answers one request: every moka call here is synchronous.
    fn answer(&self, request: Request<'_>) -> Result<Reply> {
        Ok(match request {
            Request::Get { key } => Reply::Value(self.get_value(&key)),
            Request::Set { key, value, ttl } => {
                self.set(key, value, ttl)?;
                Reply::Done
            }
            Request::Delete { key } => Reply::Flag(self.remove(&key)),
            Request::Exists { key } => Reply::Flag(self.live(&key).is_some()),
            Request::GetAndTouch { key, ttl } => Reply::Value(self.get_and_touch(key, ttl)),
            Request::ExistsMany { keys } => {
                Reply::Flags(keys.iter().map(|key| self.live(key).is_some()).collect())
            }
            Request::GetMany { keys } => {
                Reply::Values(keys.iter().map(|key| self.get_value(key)).collect())
            }
            Request::SetMany { items, ttl } => {
                // Every item must fit before the first is written.
                for (key, value) in &items {
                    self.check_fits(key, value)?;
                }
                for (key, value) in items {
                    self.write(key, value, ttl);
                }
                Reply::Done
            }
            Request::DeleteMany { keys } => {
                Reply::Count(keys.iter().map(|key| u64::from(self.remove(key))).sum())
            }
            Request::DeletePattern { scope, pattern } => {
                Reply::Count(self.delete_matching(&scope, pattern))
            }
            Request::Keys {
                scope,
                pattern,
                limit,
            } => {
                let now = Instant::now();
                let mut keys = Vec::new();
                for (key, entry) in self.cache().iter() {
                    match key.strip_prefix(&*scope) {
                        Some(rest) if entry.is_live(now) && pattern.matches(rest) => {
                            if keys.len() == limit {
                                return Err(CacheError::TooManyKeys { limit });
                            }
                            keys.push(rest.to_owned());
                        }
                        _ => {}
                    }
                }
                Reply::Keys(keys)
            }
            Request::Ttl { key } => Reply::Ttl(self.ttl(&key)),
            Request::Expire { key, ttl } => Reply::Flag(self.expire(key, ttl)),
            Request::SetIfAbsent { key, value, ttl } => {
                Reply::Flag(self.set_if_absent(key, value, ttl)?)
            }
            Request::DeleteIfEquals { key, value } => {
                Reply::Flag(self.delete_if_equals(&key, &value))
            }
            Request::Incr {
                key,
                delta,
                ttl_if_created,
            } => Reply::Int(self.incr(key, delta, ttl_if_created)?),
            Request::Throttle { key, limit, cost } => {
                Reply::Decision(self.throttle(key, limit, cost)?)
            }
            Request::Clear { scope } => {
                // Entry by entry, even for the whole store: moka's
                // `invalidate_all` hides entries lazily, and until its
                // maintenance runs a `remove` still hands an invalidated
                // entry back, so a cleared key would count as deleted.
                if scope.is_empty() {
                    for (key, _) in self.cache().iter() {
                        self.remove(&key);
                    }
                } else {
                    self.delete_matching(&scope, &Pattern::new("*")?);
                }
                Reply::Done
            }
            Request::Stats { .. } => Reply::Stats(Box::new(self.stats())),
            // Nothing to close in process: no connection, no task.
            Request::Close => Reply::Done,
            Request::Ping => {
                // In process there is no round trip; this times one lookup.
                let start = Instant::now();
                let _ = self.cache().contains_key("");
                Reply::Pong(start.elapsed())
            }
        })
    }
}

impl MokaStore {
    /// The live value under `key` (the whole key: no namespace is applied
    /// here) and the instant it expires (`None`: no TTL), for a tier above
    /// that keeps the value no longer than this store would (the tiered
    /// cache's `watch_now`).
    pub fn get_with_expiry(&self, key: &str) -> Option<(Bytes, Option<Instant>)> {
        let entry = self.live(key)?;
        Some((entry.value, entry.expires_at))
    }
}

impl Store for MokaStore {
    #[inline]
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        // Nothing in process waits: the request is answered when it is made,
        // and the future only carries the reply (a future that held the
        // request would be copied into every call's boxed future).
        std::future::ready(self.answer(request))
    }

    #[inline]
    fn get<'k>(&self, key: StoreKey<'k>) -> impl Future<Output = Result<Option<Bytes>>> + Send {
        std::future::ready(Ok(self.get_value(&key)))
    }

    /// Always: an in-process read never waits.
    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        Some(Ok(self.get_value(key)))
    }

    fn max_value_len(&self) -> usize {
        self.shared.max_value_len
    }

    /// Matches are found at once and held as pointers to the store's own
    /// keys (8 bytes each, not copies); each page copies out 1,000 of them.
    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        const PAGE: usize = 1000;
        let mut matches = self.matching(&scope, &pattern).into_iter();
        let chunks = std::iter::from_fn(move || {
            let chunk: Vec<Arc<String>> = matches.by_ref().take(PAGE).collect();
            (!chunk.is_empty()).then_some(chunk)
        });
        Box::pin(futures::stream::iter(chunks.map(move |chunk| {
            Ok(chunk.iter().map(|k| k[scope.len()..].to_owned()).collect())
        })))
    }
}

/// Microseconds since the Unix epoch as the monotonic clock counts them
/// from this process's first call: the in-process store's rate limit
/// clock. The wall clock (`SystemTime`) is stepped and slewed by NTP and a
/// virtual machine's corrections: read directly, it let a limiter allow
/// 0.35 % more than its quota over 10 s on this machine
/// (`crates/recipes/tests/rate_accuracy.rs`).
fn clock_micros() -> u64 {
    static ANCHOR: std::sync::OnceLock<(Instant, u64)> = std::sync::OnceLock::new();
    let (at, unix) = *ANCHOR.get_or_init(|| {
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        (Instant::now(), unix)
    });
    unix.saturating_add(at.elapsed().as_micros() as u64)
}
