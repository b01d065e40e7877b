//! [`Loader`]: single-flight cache-aside, and the calls that answer one key.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cache_port::typed::{Codec, MsgPack};
use cache_port::{Cache, CacheError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::answer::{Failure, LoadError, Loaded, Origin, StaleReason};
use crate::fail_safe::within_fail_safe;
use crate::flight::{fly, open_as, Flight, Grounder};
use crate::memory::Memory;
use crate::observe;
use crate::options::LoadOptions;
use crate::DEFAULT_MEMORY;

/// Single-flight cache-aside over any cache.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use cache_loading::Loader;
/// use cache_port::MockCache;
/// use cache_store::layer::CacheStore;
/// use cache_store::CacheBuilder;
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
    pub(crate) inner: Arc<Inner<E>>,
}

pub(crate) struct Inner<E> {
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) defaults: LoadOptions,
    /// In-flight loads by key. The lock is held only to find, add or remove
    /// a flight, never while loading.
    pub(crate) flights: Mutex<HashMap<String, Flight<E>>>,
    /// Last known values, for fail-safe while the cache cannot be read.
    pub(crate) memory: Memory,
    /// Eager refreshes started (`Loader::refreshes_started`).
    pub(crate) refreshes: std::sync::atomic::AtomicU64,
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
                refreshes: std::sync::atomic::AtomicU64::new(0),
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

    /// Eager refreshes this loader (and its clones) started in the
    /// background so far: a refresh is counted when its flight takes off,
    /// before it reads the cache again or calls the load function.
    pub fn refreshes_started(&self) -> u64 {
        self.inner
            .refreshes
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether a load of `key` is in the air: begun by this loader (or a
    /// clone) and not yet landed, its write-back included. While it is, a
    /// read that finds the value due for an eager refresh starts none (the
    /// flight in the air brings the next value).
    pub fn loading(&self, key: &str) -> bool {
        self.inner
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(key)
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
        Ok(self
            .entry(key, options, &MsgPack, load, |_| true)
            .await?
            .value)
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
        Ok(self
            .entry(key, options, &MsgPack, load, |_| true)
            .await?
            .value)
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
        self.get_or_load_as(key, options, &MsgPack, load).await
    }

    /// [`get_or_load_entry`](Self::get_or_load_entry) with a codec of the
    /// caller's choosing instead of MessagePack (what a keyspace of
    /// `cache-keyspace` calls, with its JSON, compression or schema
    /// version). Values are stored, remembered for fail-safe and decoded
    /// with `codec`; a stored value it cannot decode is a counted miss.
    pub async fn get_or_load_as<T, C, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &C,
        load: F,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Send + 'static,
        C: Codec<T> + Clone,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.entry(key, options, codec, load, |_| true).await
    }

    /// [`get_or_load_optional`](Self::get_or_load_optional) with a codec of
    /// the caller's choosing (see [`get_or_load_as`](Self::get_or_load_as)).
    pub async fn get_or_load_optional_as<V, C, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &C,
        load: F,
    ) -> Result<Option<V>, LoadError<E>>
    where
        V: Send + 'static,
        C: Codec<Option<V>> + Clone,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<V>, E>> + Send + 'static,
    {
        let found: fn(&Option<V>) -> bool = |v| v.is_some();
        Ok(self.entry(key, options, codec, load, found).await?.value)
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
        Ok(self.entry(key, options, &MsgPack, load, found).await?.value)
    }

    /// [`untraced`](Self::untraced) in a `cache.get_or_load` span, whose
    /// children are the cache calls and the load; where the answer came
    /// from is recorded on it, and a stale answer is counted.
    async fn entry<T, C, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &C,
        load: F,
        found: fn(&T) -> bool,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Send + 'static,
        C: Codec<T> + Clone,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let span = tracing::debug_span!(
            target: cache_port::report::TARGET,
            "cache.get_or_load",
            otel.name = "get_or_load",
            cache.origin = tracing::field::Empty,
            cache.stale.reason = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = self
            .untraced(key, options, codec, load, found)
            .instrument(span.clone())
            .await;
        observe::answered(&span, &result);
        result
    }

    async fn untraced<T, C, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &C,
        load: F,
        found: fn(&T) -> bool,
    ) -> Result<Loaded<T>, LoadError<E>>
    where
        T: Send + 'static,
        C: Codec<T> + Clone,
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
        // At once where the cache has it at hand (moka, an L1 hit): no
        // boxed future (4.5-4.8 % of a hit's instructions).
        let read = match inner.cache.get_now(key) {
            Some(answer) => answer,
            None => inner.cache.get(key).await,
        };
        match read {
            Ok(Some(stored)) => {
                let opened = open_as(codec, &stored);
                if opened.is_none() {
                    cache_port::typed::decode_failed(key, &"not a value of the loader's type");
                }
                if let Some((opened, value)) = opened {
                    if opened.is_fresh(now) {
                        inner.remember(key, &opened, options);
                        if options
                            .eager_refresh
                            .is_some_and(|f| opened.refresh_due(now, f))
                        {
                            self.refresh(key, options, codec, load, found);
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
                return match inner.recall(key, options, codec, now) {
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
        let (flight, load) = self.flight(key, options, codec, load, found);
        let landed = async {
            match load {
                // This key's flight belongs to a batch whose loader did not
                // return it: load it alone.
                Some(load) => match flight.await {
                    Ok(None) => {
                        fly(
                            Arc::clone(inner),
                            key.to_owned(),
                            options,
                            codec.clone(),
                            load,
                            found,
                        )
                        .await
                    }
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
                value: codec.decode(&bytes).map_err(cache_error)?,
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
                    (Failure::Cache(_), None) => inner.recall(key, options, codec, now),
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
}
