//! Resilient loading, first part: single-flight cache-aside.
//!
//! [`CacheExt::get_or_load`](crate::CacheExt::get_or_load) lets every caller
//! that misses call the loader: 500 callers of one cold key make 500 calls
//! to the database. A [`Loader`] makes them one: per key, within a process,
//! the first caller that misses loads, and the others wait for its result
//! (or its error). Flights of different keys never wait for each other.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::typed::{decode, encode};
use crate::{Cache, CacheError};

/// What a [`Loader`] call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    /// The cache failed in a way that is not a miss (a fail-open layer turns
    /// outages into misses), or the loaded value could not be encoded;
    /// shared by every caller of the flight.
    #[error(transparent)]
    Cache(Arc<CacheError>),
    /// The loader failed. Every caller that waited for this flight gets the
    /// same error, shared.
    #[error("the loader failed: {0}")]
    Load(Arc<E>),
}

/// How a loaded value is stored: per call, over the [`Loader`]'s defaults.
///
/// ```
/// use std::time::Duration;
/// use cache_port::loading::LoadOptions;
///
/// let options = LoadOptions::ttl(Duration::from_secs(300))
///     .jitter(Duration::from_secs(30))                // expire within 300..=330 s
///     .negative_ttl(Duration::from_secs(5));          // remember "not found" for 5 s
/// assert_eq!(options.ttl, Some(Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Time to live of a loaded value (`None`: no expiry).
    pub ttl: Option<Duration>,
    /// A random extra of up to this much on each TTL (whole milliseconds,
    /// uniform), so that keys loaded together do not expire together.
    pub jitter: Duration,
    /// How long a "not found" (`None` from the loader of
    /// [`Loader::get_or_load_optional`]) is remembered; `None`: not at all,
    /// every miss loads again.
    pub negative_ttl: Option<Duration>,
}

impl LoadOptions {
    /// Values live `ttl`; no jitter, no negative caching.
    pub fn ttl(ttl: Duration) -> Self {
        Self {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// Adds up to `jitter` to each TTL.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Remembers "not found" for `ttl`.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// The TTL to store a value with: `ttl` plus its jitter.
    fn jittered_ttl(&self) -> Option<Duration> {
        let jitter_ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        self.ttl.map(|ttl| match jitter_ms {
            0 => ttl,
            max => ttl.saturating_add(Duration::from_millis(fastrand::u64(0..=max))),
        })
    }
}

/// What a flight answers: the value's encoded bytes, or why there are none.
/// `Ok(None)`: a batch flight's loader did not return this key.
type Outcome<E> = Result<Option<Bytes>, Failure<E>>;

/// A flight's failure, cloneable so that every waiter gets it.
enum Failure<E> {
    Cache(Arc<CacheError>),
    Load(Arc<E>),
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        match self {
            Failure::Cache(e) => Failure::Cache(Arc::clone(e)),
            Failure::Load(e) => Failure::Load(Arc::clone(e)),
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
}

impl<E> Clone for Loader<E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E: Send + Sync + 'static> Loader<E> {
    /// Single-flight loading over `cache`. Clones share the flights: make
    /// one per process (or per cache) and hand out clones.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self::with_defaults(cache, LoadOptions::default())
    }

    /// Like [`new`](Self::new), with options every call starts from.
    pub fn with_defaults(cache: Arc<dyn Cache>, defaults: LoadOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache,
                defaults,
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The cache it loads through.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    /// The cached value of `key`, or else `load()`'s, stored with `ttl`
    /// (and the default jitter); of concurrent callers that miss, one runs
    /// `load` and the others get its value (or its error).
    ///
    /// As with `CacheExt::get_or_load`: a stored value that no longer
    /// decodes is a miss; a failed write-back is logged and the value still
    /// returned. A cache error that is not a miss is returned as
    /// [`LoadError::Cache`] without loading (add the fail-open layer to load
    /// through an outage).
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
        self.load_with(key, options, load, |_| true).await
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
        self.load_with(key, options, load, |_| true).await
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
        self.load_with(key, options, load, |v: &Option<V>| v.is_some())
            .await
    }

    async fn load_with<T, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        load: F,
        found: fn(&T) -> bool,
    ) -> Result<T, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let cache_error = |e| LoadError::Cache(Arc::new(e));
        // The fast path: a hit takes no lock and joins no flight.
        if let Some(value) = hit::<T>(&*self.inner.cache, key)
            .await
            .map_err(cache_error)?
        {
            return Ok(value);
        }
        // Declared before the flight, so dropped after it: if this caller
        // gives up (its future is dropped) and was the last one waiting, the
        // flight is grounded instead of left for the next caller to resume.
        let _last_one_out = Grounder {
            inner: &self.inner,
            key,
        };
        let (flight, load) = self.flight(key, options, load, found);
        let outcome = match load {
            // This key's flight belongs to a batch whose loader did not
            // return it: load it alone.
            Some(load) => match flight.await {
                Ok(None) => fly(&*self.inner.cache, key, options, load, found).await,
                other => other,
            },
            None => flight.await,
        };
        match outcome {
            Ok(Some(bytes)) => decode(&bytes).map_err(cache_error),
            Ok(None) => Err(cache_error(CacheError::Backend {
                message: format!("load of {key:?}: the flight answered nothing"),
                source: None,
            })),
            Err(Failure::Load(e)) => Err(LoadError::Load(e)),
            Err(Failure::Cache(e)) => Err(LoadError::Cache(e)),
        }
    }

    /// Batch cache-aside: the values of `keys` (in order, duplicates kept,
    /// `None` where the loader has none), read with one `get_many`; the
    /// loader is called once, with exactly the keys that missed and are not
    /// already being loaded by another caller, and what it returns is stored
    /// with one `set_many` (one TTL draw for the batch: keys loaded in one
    /// batch share their jitter). Keys another caller is loading are waited
    /// for, as with [`get_or_load`](Self::get_or_load); callers of those keys
    /// wait for this batch likewise. "Not found" is not cached by a batch.
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
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cached = self.inner.cache.get_many(keys).await.map_err(cache_error)?;
        let mut values: Vec<Option<T>> = cached
            .iter()
            .map(|b| b.as_ref().and_then(|b| decode(b).ok()))
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
                Err(Failure::Load(e)) => return Err(LoadError::Load(e)),
                Err(Failure::Cache(e)) => return Err(LoadError::Cache(e)),
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

    /// The flight for `key`: the one in the air, or a new one.
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
        let (cache, owned_key) = (Arc::clone(&self.inner.cache), key.to_owned());
        let flight = landing(&self.inner, key, async move {
            fly(&*cache, &owned_key, options, load, found).await
        });
        flights.insert(key.to_owned(), flight.clone());
        (flight, None)
    }
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

/// The cached value, decoded; an undecodable one is a miss.
async fn hit<T: DeserializeOwned>(cache: &dyn Cache, key: &str) -> Result<Option<T>, CacheError> {
    match cache.get(key).await? {
        Some(bytes) => Ok(decode(&bytes).ok()),
        None => Ok(None),
    }
}

/// One flight: look again (an earlier flight may just have landed), load,
/// store, answer with the encoded value.
async fn fly<T, E, F, Fut>(
    cache: &dyn Cache,
    key: &str,
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
    if let Some(bytes) = cache.get(key).await.map_err(cache_failed)? {
        if decode::<T>(&bytes).is_ok() {
            return Ok(Some(bytes));
        }
    }
    let value = load().await.map_err(|e| Failure::Load(Arc::new(e)))?;
    let bytes = encode(&value).map_err(cache_failed)?;
    let ttl = if found(&value) {
        Some(options.jittered_ttl())
    } else {
        // "Not found": remembered only for the negative TTL, if any.
        options.negative_ttl.map(Some)
    };
    if let Some(ttl) = ttl {
        if let Err(error) = cache.set(key, bytes.clone(), ttl).await {
            tracing::warn!(key, %error, "loaded value could not be cached; returning it anyway");
        }
    }
    Ok(Some(bytes))
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
    let loaded = load(keys).await.map_err(|e| Failure::Load(Arc::new(e)))?;
    let mut found = HashMap::with_capacity(loaded.len());
    for (key, value) in loaded {
        let bytes = encode(&value).map_err(|e| Failure::Cache(Arc::new(e)))?;
        found.insert(key, bytes);
    }
    if !found.is_empty() {
        let items = found.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Err(error) = cache.set_many(items, options.jittered_ttl()).await {
            tracing::warn!(%error, "loaded values could not be cached; returning them anyway");
        }
    }
    Ok(found)
}
