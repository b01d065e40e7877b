//! Resilient loading: cache-aside that survives stampedes, outages and slow
//! loaders, over any cache.
//!
//! [`CacheExt::get_or_load`](crate::CacheExt::get_or_load) lets every caller
//! that misses call the loader: 500 callers of one cold key make 500 calls
//! to the database. A [`Loader`] makes them one: per key, within a process,
//! the first caller that misses loads, and the others wait for its result
//! (or its error). Flights of different keys never wait for each other.
//! [`LoadOptions`] add, per call or as the loader's defaults: TTL jitter,
//! negative caching, fail-safe (serve stale when loading fails), soft and
//! hard loader timeouts, eager refresh, and a stampede lock across
//! processes. docs/LOADING.md explains each with a runnable example.
//!
//! Background work (a load that outlives its soft timeout, an eager
//! refresh, releasing an abandoned lock) is spawned on the current tokio
//! runtime; outside one, it is not done (the load is awaited or dropped).

pub(crate) mod envelope;
mod lock;
mod memory;
mod observe;
mod options;

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use self::envelope::Opened;
use self::lock::Taken;
use self::memory::Memory;
use crate::typed::{decode, encode};
use crate::{Cache, CacheError};

pub use self::lock::LOCK_SUFFIX;
pub use self::options::{FailSafe, LoadOptions, StampedeLock};

/// How many keys a loader remembers for fail-safe by default.
pub const DEFAULT_MEMORY: usize = 10_000;

/// What a [`Loader`] call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The cache failed in a way that is not a miss (a fail-open layer turns
    /// outages into misses), the options were refused (`Config`), or the
    /// loaded value could not be encoded; shared by every caller of the
    /// flight.
    #[error(transparent)]
    Cache(Arc<CacheError>),
    /// The loader failed. Every caller that waited for this flight gets the
    /// same error, shared.
    #[error("the loader failed: {0}")]
    Load(Arc<E>),
    /// The loader did not answer within the hard timeout, and there was no
    /// stale value to serve instead.
    #[error("the loader did not answer within {after:?}")]
    Timeout {
        /// The hard timeout.
        after: Duration,
    },
}

/// Where a value given by [`Loader::get_or_load_entry`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The cache, fresh.
    Cache,
    /// The loader, for this call (or for the flight this call joined).
    Loader,
    /// A value past its expiry (or remembered by the loader), served by
    /// fail-safe instead of a fresh one, for the reason given.
    Stale(StaleReason),
}

/// Why fail-safe served a stale value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleReason {
    /// The loader failed.
    LoaderFailed,
    /// The loader did not answer within the hard timeout.
    HardTimeout,
    /// The loader did not answer within the soft timeout; it goes on in the
    /// background and will update the cache.
    SoftTimeout,
    /// The loader failed a moment ago and rests (the fail-safe throttle).
    LoaderResting,
    /// The cache could not be read or written; the value is the last one
    /// this loader saw.
    CacheUnavailable,
}

/// A value and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded<T> {
    /// The value.
    pub value: T,
    /// Where it comes from.
    pub origin: Origin,
}

impl<T> Loaded<T> {
    /// Whether fail-safe served it in place of a fresh value.
    pub fn is_stale(&self) -> bool {
        matches!(self.origin, Origin::Stale(_))
    }
}

/// What a flight answers: the value's encoded bytes, or why there are none.
/// `Ok(None)`: a batch flight's loader did not return this key.
type Outcome<E> = Result<Option<Bytes>, Failure<E>>;

/// A flight's failure, cloneable so that every waiter gets it.
enum Failure<E> {
    Cache(Arc<CacheError>),
    Load(Arc<E>),
    Timeout(Duration),
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        match self {
            Failure::Cache(e) => Failure::Cache(Arc::clone(e)),
            Failure::Load(e) => Failure::Load(Arc::clone(e)),
            Failure::Timeout(after) => Failure::Timeout(*after),
        }
    }
}

impl<E> Failure<E> {
    fn into_error(self) -> LoadError<E> {
        match self {
            Failure::Cache(e) => LoadError::Cache(e),
            Failure::Load(e) => LoadError::Load(e),
            Failure::Timeout(after) => LoadError::Timeout { after },
        }
    }

    fn stale_reason(&self) -> StaleReason {
        match self {
            Failure::Cache(_) => StaleReason::CacheUnavailable,
            Failure::Load(_) => StaleReason::LoaderFailed,
            Failure::Timeout(_) => StaleReason::HardTimeout,
        }
    }
}

type Flight<E> = Shared<BoxFuture<'static, Outcome<E>>>;

/// Single-flight cache-aside over any cache.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use cache_port::layer::CacheStore;
/// use cache_port::loading::Loader;
/// use cache_port::{CacheBuilder, MockCache};
///
/// let mut store = MockCache::new(); // any adapter in production
/// store.expect_max_value_len().return_const(1024usize);
/// store.expect_get().returning(|_| Ok(None)); // always a miss
/// store.expect_set().returning(|_, _, _| Ok(()));
/// let loader = Loader::new(CacheBuilder::new(CacheStore::new(store)).build());
///
/// let calls = Arc::new(AtomicUsize::new(0));
/// let callers = (0..100).map(|_| {
///     let (loader, calls) = (loader.clone(), Arc::clone(&calls));
///     async move {
///         loader
///             .get_or_load("product:7", None, move || async move {
///                 calls.fetch_add(1, Ordering::SeqCst);
///                 tokio::time::sleep(std::time::Duration::from_millis(20)).await;
///                 Ok::<_, std::io::Error>("lamp".to_owned())
///             })
///             .await
///     }
/// });
/// let answers = futures::future::join_all(callers).await;
/// assert!(answers.iter().all(|a| a.as_deref().ok() == Some("lamp")));
/// assert_eq!(calls.load(Ordering::SeqCst), 1); // one loader call, 100 answers
/// # });
/// ```
pub struct Loader<E = Box<dyn std::error::Error + Send + Sync>> {
    inner: Arc<Inner<E>>,
}

struct Inner<E> {
    cache: Arc<dyn Cache>,
    defaults: LoadOptions,
    /// In-flight loads by key. The lock is held only to find, add or remove
    /// a flight, never while loading.
    flights: Mutex<HashMap<String, Flight<E>>>,
    /// Last known values, for fail-safe while the cache cannot be read.
    memory: Memory,
}

impl<E> Clone for Loader<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// Builds a [`Loader`] with defaults other than the plain ones.
#[must_use]
pub struct LoaderBuilder {
    cache: Arc<dyn Cache>,
    defaults: LoadOptions,
    memory: usize,
}

impl LoaderBuilder {
    /// The options every call starts from (`get_or_load` overrides the TTL;
    /// the `_with` methods take whole options).
    pub fn defaults(mut self, defaults: LoadOptions) -> Self {
        self.defaults = defaults;
        self
    }

    /// How many keys' last known values the loader keeps in process memory
    /// for fail-safe calls, to serve while the cache cannot be read
    /// (default [`DEFAULT_MEMORY`]; 0 keeps one).
    pub fn memory(mut self, keys: usize) -> Self {
        self.memory = keys;
        self
    }

    /// The loader.
    pub fn build<E: Send + Sync + 'static>(self) -> Loader<E> {
        Loader {
            inner: Arc::new(Inner {
                cache: self.cache,
                defaults: self.defaults,
                flights: Mutex::new(HashMap::new()),
                memory: Memory::new(self.memory),
            }),
        }
    }
}

impl<E: Send + Sync + 'static> Loader<E> {
    /// Single-flight loading over `cache`. Clones share the flights: make
    /// one per process (or per cache) and hand out clones.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self::builder(cache).build()
    }

    /// Like [`new`](Self::new), with options every call starts from.
    pub fn with_defaults(cache: Arc<dyn Cache>, defaults: LoadOptions) -> Self {
        Self::builder(cache).defaults(defaults).build()
    }

    /// A builder, for defaults and the size of the fail-safe memory.
    pub fn builder(cache: Arc<dyn Cache>) -> LoaderBuilder {
        LoaderBuilder {
            cache,
            defaults: LoadOptions::default(),
            memory: DEFAULT_MEMORY,
        }
    }

    /// The cache it loads through.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    /// The options calls start from.
    pub fn defaults(&self) -> LoadOptions {
        self.inner.defaults
    }

    /// The cached value of `key`, or else `load()`'s, stored with `ttl`
    /// (and the defaults' other options); of concurrent callers that miss,
    /// one runs `load` and the others get its value (or its error).
    ///
    /// As with `CacheExt::get_or_load`: a stored value that no longer
    /// decodes is a miss; a failed write-back is logged and the value still
    /// returned. A cache error that is not a miss is returned as
    /// [`LoadError::Cache`] without loading, unless fail-safe has a value to
    /// serve (or a fail-open layer turns the outage into misses).
    pub async fn get_or_load<T, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        load: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let options = LoadOptions {
            ttl,
            ..self.inner.defaults
        };
        Ok(self.entry(key, options, load, |_| true).await?.value)
    }

    /// [`get_or_load`](Self::get_or_load) with `options` for this call.
    pub async fn get_or_load_with<T, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
    ) -> Result<T, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Ok(self.entry(key, options, load, |_| true).await?.value)
    }

    /// [`get_or_load_with`](Self::get_or_load_with), saying where the value
    /// comes from: the cache, the loader, or fail-safe (stale, and why).
    pub async fn get_or_load_entry<T, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.entry(key, options, load, |_| true).await
    }

    /// Cache-aside for a loader that can answer "not found" (`None`): a
    /// found value is stored with `options.ttl` (and jitter); "not found" is
    /// stored for `options.negative_ttl` when there is one, so that a key
    /// that does not exist stops reaching the database, and not at all
    /// otherwise.
    pub async fn get_or_load_optional<V, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
    ) -> Result<Option<V>, LoadError<E>>
    where
        V: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<V>, E>> + Send + 'static,
    {
        let found: fn(&Option<V>) -> bool = |v| v.is_some();
        Ok(self.entry(key, options, load, found).await?.value)
    }

    /// [`untraced`](Self::untraced) in a `cache.get_or_load` span, whose
    /// children are the cache calls and the load; where the answer came
    /// from is recorded on it, and a stale answer is counted.
    async fn entry<T, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
        found: fn(&T) -> bool,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let span = tracing::debug_span!(
            target: crate::layer::TARGET,
            "cache.get_or_load",
            otel.name = "get_or_load",
            cache.origin = tracing::field::Empty,
            cache.stale.reason = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = self
            .untraced(key, options, load, found)
            .instrument(span.clone())
            .await;
        observe::answered(&span, &result);
        result
    }

    async fn untraced<T, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
        found: fn(&T) -> bool,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let cache_error = |e| LoadError::Cache(Arc::new(e));
        options.check().map_err(cache_error)?;
        let inner = &self.inner;
        let stale = |value, reason| Loaded {
            value,
            origin: Origin::Stale(reason),
        };
        // The fast path: a fresh hit takes no lock and joins no flight.
        let now = SystemTime::now();
        let mut stale_value: Option<T> = None;
        match inner.cache.get(key).await {
            Ok(Some(stored)) => {
                let opened = open_as::<T>(&stored);
                if opened.is_none() {
                    crate::typed::decode_failed(key, &"not a value of the loader's type");
                }
                if let Some((opened, value)) = opened {
                    if opened.is_fresh(now) {
                        inner.remember(key, &opened, options);
                        if options
                            .eager_refresh
                            .is_some_and(|f| opened.refresh_due(now, f))
                        {
                            self.refresh(key, options, load, found);
                        }
                        return Ok(Loaded {
                            value,
                            origin: Origin::Cache,
                        });
                    }
                    if within_fail_safe(&opened, options, now) {
                        inner.remember(key, &opened, options);
                        stale_value = Some(value);
                    }
                }
            }
            Ok(None) => {}
            Err(error) => {
                // The cache cannot be read: fail-safe serves what this
                // loader last saw, or the error stands.
                return match inner.recall(key, options, now) {
                    Some(value) => Ok(stale(value, StaleReason::CacheUnavailable)),
                    None => Err(cache_error(error)),
                };
            }
        }
        let stale_value = match stale_value {
            Some(value) if inner.memory.resting(key, std::time::Instant::now()) => {
                return Ok(stale(value, StaleReason::LoaderResting));
            }
            other => other,
        };
        // Declared before the flight, so dropped after it: if this caller
        // gives up (its future is dropped) and was the last one waiting, the
        // flight is grounded instead of left for the next caller to resume.
        let _last_one_out = Grounder { inner, key };
        let (flight, load) = self.flight(key, options, load, found);
        let landed = async {
            match load {
                // This key's flight belongs to a batch whose loader did not
                // return it: load it alone.
                Some(load) => match flight.await {
                    Ok(None) => fly(Arc::clone(inner), key.to_owned(), options, load, found).await,
                    other => other,
                },
                None => flight.await,
            }
        };
        let (outcome, stale_value) = match (options.soft_timeout, stale_value) {
            (Some(soft), Some(value)) => match tokio::time::timeout(soft, landed).await {
                Ok(outcome) => (outcome, Some(value)),
                // The flight was detached when it took off (see `flight`):
                // it goes on without us and updates the cache.
                Err(_) => return Ok(stale(value, StaleReason::SoftTimeout)),
            },
            (_, value) => (landed.await, value),
        };
        match outcome {
            Ok(Some(bytes)) => Ok(Loaded {
                value: decode(&bytes).map_err(cache_error)?,
                origin: Origin::Loader,
            }),
            Ok(None) => Err(cache_error(CacheError::Backend {
                message: format!("load of {key:?}: the flight answered nothing"),
                source: None,
            })),
            Err(failure) => {
                let reason = failure.stale_reason();
                let fallback = match (&failure, stale_value) {
                    (_, Some(value)) => Some(value),
                    (Failure::Cache(_), None) => inner.recall(key, options, now),
                    _ => None,
                };
                match (options.fail_safe, fallback) {
                    (Some(fail_safe), Some(value)) => {
                        if !matches!(failure, Failure::Cache(_)) {
                            let until = std::time::Instant::now() + fail_safe.throttle;
                            inner.memory.rest(key, until);
                        }
                        observe::fail_safe_activated(reason);
                        Ok(stale(value, reason))
                    }
                    _ => Err(failure.into_error()),
                }
            }
        }
    }

    /// Starts one background refresh of `key` unless a load of it is in the
    /// air already.
    fn refresh<T, F, Fut>(&self, key: &str, options: LoadOptions, load: F, found: fn(&T) -> bool)
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.contains_key(key) {
            return;
        }
        let (inner, owned_key) = (Arc::clone(&self.inner), key.to_owned());
        let flight = landing(&self.inner, key, async move {
            fly(inner, owned_key, options, load, found).await
        });
        flights.insert(key.to_owned(), flight.clone());
        drop(flights);
        let key = key.to_owned();
        runtime.spawn(async move {
            if let Err(Failure::Load(_) | Failure::Timeout(_) | Failure::Cache(_)) = flight.await {
                tracing::debug!(key, "eager refresh failed; the cached value stays");
            }
        });
    }

    /// Batch cache-aside: the values of `keys` (in order, duplicates kept,
    /// `None` where the loader has none), read with one `get_many`; the
    /// loader is called once, with exactly the keys that missed and are not
    /// already being loaded by another caller, and what it returns is stored
    /// with one `set_many` (one TTL draw for the batch: keys loaded in one
    /// batch share their jitter). Keys another caller is loading are waited
    /// for, as with [`get_or_load`](Self::get_or_load); callers of those keys
    /// wait for this batch likewise. A value past its expiry counts as
    /// missing: a batch does not serve stale values, time out, refresh
    /// eagerly, take the stampede lock or cache "not found".
    pub async fn get_or_load_many<T, F, Fut>(
        &self,
        keys: &[String],
        options: LoadOptions,
        load: F,
    ) -> Result<Vec<Option<T>>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        let cache_error = |e| LoadError::Cache(Arc::new(e));
        options.check().map_err(cache_error)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cached = self.inner.cache.get_many(keys).await.map_err(cache_error)?;
        let now = SystemTime::now();
        let mut values: Vec<Option<T>> = cached
            .iter()
            .map(|stored| {
                let (opened, value) = open_as::<T>(stored.as_ref()?)?;
                opened.is_fresh(now).then_some(value)
            })
            .collect();
        let mut missing: Vec<&str> = keys
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(values);
        }
        let _last_ones_out: Vec<Grounder<'_, E>> = missing
            .iter()
            .map(|key| Grounder {
                inner: &self.inner,
                key,
            })
            .collect();
        let flights = self.batch_flights(&missing, options, load);
        let landed = futures::future::join_all(
            flights
                .into_iter()
                .map(|(key, flight)| async move { (key, flight.await) }),
        )
        .await;
        let mut found: HashMap<&str, Bytes> = HashMap::new();
        for (key, outcome) in landed {
            match outcome {
                Ok(Some(bytes)) => {
                    found.insert(key, bytes);
                }
                Ok(None) => {}
                Err(failure) => return Err(failure.into_error()),
            }
        }
        for (key, value) in keys.iter().zip(values.iter_mut()) {
            if value.is_none() {
                if let Some(bytes) = found.get(key.as_str()) {
                    *value = Some(decode(bytes).map_err(cache_error)?);
                }
            }
        }
        Ok(values)
    }

    /// The flights of `keys`: those in the air joined, one new batch flight
    /// for the rest, registered under each of its keys.
    fn batch_flights<'k, T, F, Fut>(
        &self,
        keys: &[&'k str],
        options: LoadOptions,
        load: F,
    ) -> Vec<(&'k str, Flight<E>)>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        let mut joined = Vec::with_capacity(keys.len());
        let mut fresh: Vec<&'k str> = Vec::new();
        for key in keys {
            match flights.get(*key) {
                Some(flight) => joined.push((*key, flight.clone())),
                None => fresh.push(key),
            }
        }
        if fresh.is_empty() {
            return joined;
        }
        let cache = Arc::clone(&self.inner.cache);
        let owned: Vec<String> = fresh.iter().map(|k| (*k).to_owned()).collect();
        let batch = async move { fly_batch(&*cache, owned, options, load).await }
            .boxed()
            .shared();
        for key in fresh {
            let (batch, owned_key) = (batch.clone(), key.to_owned());
            let flight = landing(&self.inner, key, async move {
                batch.await.map(|found| found.get(&owned_key).cloned())
            });
            flights.insert(key.to_owned(), flight.clone());
            joined.push((key, flight));
        }
        joined
    }

    /// The flight for `key`: the one in the air, or a new one. A new flight
    /// with a soft timeout is detached (spawned), so that it lands and
    /// updates the cache after its callers were answered from stale.
    fn flight<T, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
        found: fn(&T) -> bool,
    ) -> (Flight<E>, Option<F>)
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = flights.get(key) {
            return (flight.clone(), Some(load));
        }
        // (A flight nobody waits for any more was grounded by its last
        // caller's `Grounder`, so this key has none.)
        let (inner, owned_key) = (Arc::clone(&self.inner), key.to_owned());
        let flight = landing(&self.inner, key, async move {
            fly(inner, owned_key, options, load, found).await
        });
        flights.insert(key.to_owned(), flight.clone());
        if options.soft_timeout.is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let detached = flight.clone();
                runtime.spawn(async move {
                    let _ = detached.await;
                });
            }
        }
        (flight, None)
    }
}

impl<E> Inner<E> {
    /// Remembers a value read from the cache, for fail-safe calls.
    fn remember(&self, key: &str, opened: &Opened, options: LoadOptions) {
        if let Some(fail_safe) = options.fail_safe {
            let until = opened
                .expires_at()
                .map_or(far_future(), |at| at + fail_safe.max_stale);
            self.memory.remember(key, &opened.payload, until);
        }
    }

    /// The last known value of `key`, for a fail-safe call.
    fn recall<T: DeserializeOwned>(
        &self,
        key: &str,
        options: LoadOptions,
        now: SystemTime,
    ) -> Option<T> {
        options.fail_safe?;
        decode(&self.memory.recall(key, now)?).ok()
    }
}

/// A moment no value outlives.
fn far_future() -> SystemTime {
    SystemTime::now() + crate::MAX_TTL
}

/// Whether a value past its expiry may still be served by `options`'s
/// fail-safe at `now`.
fn within_fail_safe(opened: &Opened, options: LoadOptions, now: SystemTime) -> bool {
    match (options.fail_safe, opened.expires_at()) {
        (Some(fail_safe), Some(at)) => now < at + fail_safe.max_stale,
        _ => false,
    }
}

/// `stored`, opened and decoded; `None` if either fails (a miss).
fn open_as<T: DeserializeOwned>(stored: &Bytes) -> Option<(Opened, T)> {
    let opened = envelope::open(stored)?;
    let value = decode(&opened.payload).ok()?;
    Some((opened, value))
}

/// The flight of `key` that answers with `outcome` and then leaves the map:
/// the next miss starts a new flight (after this one's write-back, so it
/// finds the value in the cache).
fn landing<E: Send + Sync + 'static>(
    inner: &Arc<Inner<E>>,
    key: &str,
    outcome: impl Future<Output = Outcome<E>> + Send + 'static,
) -> Flight<E> {
    let (inner, key) = (Arc::clone(inner), key.to_owned());
    // The flight's spans (its cache calls, the load) belong to the caller
    // that started it, whichever caller ends up polling it.
    let outcome = outcome.in_current_span();
    async move {
        let outcome = outcome.await;
        inner
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        outcome
    }
    .boxed()
    .shared()
}

/// Removes the flight of `key` when nobody waits for it any more (only the
/// map still holds it), dropping, and so cancelling, its load.
struct Grounder<'a, E> {
    inner: &'a Inner<E>,
    key: &'a str,
}

impl<E> Drop for Grounder<'_, E> {
    fn drop(&mut self) {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        let abandoned = flights
            .get(self.key)
            .is_some_and(|flight| flight.strong_count() == Some(1));
        let grounded = if abandoned {
            flights.remove(self.key)
        } else {
            None
        };
        // The load is dropped (cancelled) outside the lock.
        drop(flights);
        drop(grounded);
    }
}

/// One flight: look again (an earlier flight may just have landed), take the
/// stampede lock if asked, load (within the hard timeout), store, answer
/// with the encoded value.
async fn fly<T, E, F, Fut>(
    inner: Arc<Inner<E>>,
    key: String,
    options: LoadOptions,
    load: F,
    found: fn(&T) -> bool,
) -> Outcome<E>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let cache_failed = |e| Failure::Cache(Arc::new(e));
    let cache = &inner.cache;
    // A stored value ends the flight if it is fresh and not due for an
    // eager refresh (a refresh flight must not settle for what it refreshes).
    let usable = |stored: &Bytes| -> Option<Bytes> {
        let (opened, _) = open_as::<T>(stored)?;
        let now = SystemTime::now();
        let due = options
            .eager_refresh
            .is_some_and(|f| opened.refresh_due(now, f));
        (opened.is_fresh(now) && !due).then_some(opened.payload)
    };
    if let Some(stored) = cache.get(&key).await.map_err(cache_failed)? {
        if let Some(payload) = usable(&stored) {
            return Ok(Some(payload));
        }
    }
    let guard = match options.stampede_lock {
        None => None,
        Some(lock) => match lock::take(cache, &key, lock, |s| usable(s).is_some())
            .await
            .map_err(cache_failed)?
        {
            Taken::Found(stored) => return Ok(usable(&stored)),
            Taken::GaveUp => None,
            Taken::Owner(guard) => {
                // The previous owner may have stored the value between our
                // look and our lock.
                if let Some(payload) = cache
                    .get(&key)
                    .await
                    .map_err(cache_failed)?
                    .and_then(|s| usable(&s))
                {
                    guard.release().await;
                    return Ok(Some(payload));
                }
                Some(guard)
            }
        },
    };
    let value = observe::call_loader(options.hard_timeout, load).await?;
    let bytes = encode(&value).map_err(cache_failed)?;
    store(&inner, &key, &bytes, options, found(&value)).await;
    if let Some(guard) = guard {
        guard.release().await;
    }
    Ok(Some(bytes))
}

/// Writes a loaded value back (sealed when the options read the envelope)
/// and remembers it for fail-safe. A failed write is logged, not returned:
/// the caller still gets the value.
async fn store<E>(inner: &Inner<E>, key: &str, bytes: &Bytes, options: LoadOptions, found: bool) {
    let now = SystemTime::now();
    let (fresh_for, kept_for) = if found {
        let fresh_for = options.jittered_ttl();
        (fresh_for, options.kept_for(fresh_for))
    } else {
        match options.negative_ttl {
            // "Not found": remembered only for the negative TTL, if any.
            Some(ttl) => (Some(ttl), Some(ttl)),
            None => return,
        }
    };
    let stored = if options.sealed() {
        envelope::seal(bytes, now, fresh_for)
    } else {
        bytes.clone()
    };
    if let Err(error) = inner.cache.set(key, stored, kept_for).await {
        crate::typed::write_back_failed(&error);
    }
    if let Some(fail_safe) = options.fail_safe {
        let until = fresh_for.map_or(far_future(), |f| now + f + fail_safe.max_stale);
        inner.memory.remember(key, bytes, until);
        inner.memory.wake(key);
    }
}

/// One batch flight: load the keys, store what came back in one
/// `set_many`, answer with each key's encoded value.
async fn fly_batch<T, E, F, Fut>(
    cache: &dyn Cache,
    keys: Vec<String>,
    options: LoadOptions,
    load: F,
) -> Result<HashMap<String, Bytes>, Failure<E>>
where
    T: Serialize,
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Result<HashMap<String, T>, E>>,
{
    let loaded = observe::call_loader(None, || load(keys)).await?;
    let mut found = HashMap::with_capacity(loaded.len());
    for (key, value) in loaded {
        let bytes = encode(&value).map_err(|e| Failure::Cache(Arc::new(e)))?;
        found.insert(key, bytes);
    }
    if !found.is_empty() {
        let (now, fresh_for) = (SystemTime::now(), options.jittered_ttl());
        let items = found
            .iter()
            .map(|(k, v)| {
                let stored = if options.sealed() {
                    envelope::seal(v, now, fresh_for)
                } else {
                    v.clone()
                };
                (k.clone(), stored)
            })
            .collect();
        if let Err(error) = cache.set_many(items, options.kept_for(fresh_for)).await {
            crate::typed::write_back_failed(&error);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::CacheStore;
    use crate::{CacheBuilder, MockCache};

    fn unavailable() -> CacheError {
        CacheError::Unavailable {
            message: "down".into(),
            source: None,
        }
    }

    fn over(mut mock: MockCache) -> Loader<std::io::Error> {
        mock.expect_max_value_len().return_const(1024usize);
        Loader::new(CacheBuilder::new(CacheStore::new(mock)).build())
    }

    #[tokio::test]
    async fn a_lock_the_store_refuses_does_not_stop_the_load() {
        let mut mock = MockCache::new();
        mock.expect_get().returning(|_| Ok(None));
        mock.expect_set_if_absent()
            .times(1)
            .returning(|_, _, _| Err(unavailable()));
        mock.expect_set().times(1).returning(|_, _, _| Ok(()));
        mock.expect_delete_if_equals().never();
        let options = LoadOptions::ttl(Duration::from_secs(1)).stampede_lock(StampedeLock::new(
            Duration::from_secs(1),
            Duration::from_secs(1),
        ));
        let value = over(mock)
            .get_or_load_with("k", options, || async { Ok(7u8) })
            .await
            .unwrap();
        assert_eq!(value, 7);
    }

    #[tokio::test]
    async fn an_outage_without_fail_safe_is_an_error_not_a_load() {
        let mut mock = MockCache::new();
        mock.expect_get().returning(|_| Err(unavailable()));
        mock.expect_set().never();
        let answer = over(mock)
            .get_or_load("k", None, || async { Ok(7u8) })
            .await;
        assert!(
            matches!(answer, Err(LoadError::Cache(ref e)) if e.is_retryable()),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn bad_options_are_refused_before_the_cache_is_touched() {
        let mut mock = MockCache::new();
        mock.expect_get().never();
        let options = LoadOptions::ttl(Duration::from_secs(1)).eager_refresh(1.5);
        let answer = over(mock)
            .get_or_load_with("k", options, || async { Ok(7u8) })
            .await;
        assert!(
            matches!(answer, Err(LoadError::Cache(ref e)) if e.kind() == crate::ErrorKind::Config),
            "{answer:?}"
        );
    }

    #[tokio::test]
    async fn fail_safe_serves_the_remembered_value_while_the_cache_is_down() {
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stored = Arc::new(Mutex::new(None::<Bytes>));
        let mut mock = MockCache::new();
        let (d, s) = (Arc::clone(&down), Arc::clone(&stored));
        mock.expect_get()
            .returning(move |_| match d.load(std::sync::atomic::Ordering::SeqCst) {
                true => Err(unavailable()),
                false => Ok(s.lock().unwrap().clone()),
            });
        let s = Arc::clone(&stored);
        mock.expect_set().returning(move |_, v, _| {
            *s.lock().unwrap() = Some(v);
            Ok(())
        });
        let loader = over(mock);
        let options = LoadOptions::ttl(Duration::from_secs(60))
            .fail_safe(FailSafe::new(Duration::from_secs(60)));
        let first = loader
            .get_or_load_entry("k", options, || async { Ok(1u8) })
            .await
            .unwrap();
        assert_eq!((first.value, first.origin), (1, Origin::Loader));
        down.store(true, std::sync::atomic::Ordering::SeqCst);
        let during = loader
            .get_or_load_entry("k", options, || async {
                Err::<u8, _>(std::io::Error::other("not called"))
            })
            .await
            .unwrap();
        assert_eq!(during.value, 1);
        assert_eq!(during.origin, Origin::Stale(StaleReason::CacheUnavailable));
        // Another key was never seen: the outage is an error for it.
        let unseen = loader
            .get_or_load_entry("other", options, || async { Ok(2u8) })
            .await;
        assert!(matches!(unseen, Err(LoadError::Cache(_))), "{unseen:?}");
    }
}
