//! The typed face: structs in and out of the byte port, as MessagePack maps,
//! and the [`envelope`] that stores a value with its logical expiry.
//!
//! The envelope is a value format, so it lives beside the codec that reads
//! through it: [`decode`] looks through an envelope, so a value a
//! `cache_loading::Loader` stored reads back with [`CacheExt::get_typed`].

mod codec;
pub mod envelope;

pub use codec::{Codec, MsgPack};

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Cache, CacheError, Result};

/// Stored values that no longer decoded and were replaced by `get_or_load`
/// (or a loader), in this process since it started.
static DECODE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Values `get_or_load` (or a `Loader`) loaded but could not store, in this process since
/// it started.
static WRITE_BACK_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many stored values `get_or_load` found undecodable (and reloaded)
/// in this process so far.
pub fn decode_failures() -> u64 {
    DECODE_FAILURES.load(Relaxed)
}

/// How many loaded values `get_or_load` returned without managing to store
/// them (the cache failed on the write-back) in this process so far.
pub fn write_back_failures() -> u64 {
    WRITE_BACK_FAILURES.load(Relaxed)
}

/// Counts a stored value that no longer decoded, and (feature `tracing`)
/// logs it without the key: its [`key_digest`](crate::report::key_digest)
/// correlates the lines. [`CacheExt::get_or_load`] calls it, and so does a
/// loader built on the port, so that [`decode_failures`] covers both.
pub fn decode_failed(key: &str, error: &dyn std::fmt::Display) {
    DECODE_FAILURES.fetch_add(1, Relaxed);
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: crate::report::TARGET,
        key_digest = %crate::report::key_digest(key),
        %error,
        "cached value no longer decodes; reloading it"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (key, error);
}

/// One line per 10 s for write-back failures: during an outage every load
/// fails to store.
#[cfg(feature = "tracing")]
static WRITE_BACK_LOG: crate::report::LogThrottle =
    crate::report::LogThrottle::new(std::time::Duration::from_secs(10));

/// Counts a loaded value that could not be stored, and (feature `tracing`)
/// logs it at most once per 10 s, with how many were held back.
/// [`CacheExt::get_or_load`] calls it, and so does a loader built on the
/// port, so that [`write_back_failures`] covers both.
pub fn write_back_failed(error: &CacheError) {
    WRITE_BACK_FAILURES.fetch_add(1, Relaxed);
    #[cfg(feature = "tracing")]
    if let Some(held_back) = WRITE_BACK_LOG.admit() {
        tracing::warn!(
            target: crate::report::TARGET,
            %error,
            failures_held_back = held_back,
            "loaded value could not be cached; returning it anyway (one line per 10 s)"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = error;
}

/// Encodes `value` as a MessagePack map with field names, so that adding a
/// field with `#[serde(default)]` does not break reading old entries.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes> {
    rmp_serde::to_vec_named(value)
        .map(Bytes::from)
        .map_err(CacheError::codec)
}

/// Decodes a value written by [`encode`], or by a loader (whose
/// [`envelope`] it looks through).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(envelope::payload(bytes)).map_err(CacheError::codec)
}

/// Typed conveniences over any [`Cache`], `dyn Cache` included.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_port::{CacheExt, MockCache};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize, PartialEq, Debug)]
/// struct Product { id: u32, name: String }
///
/// let mut cache = MockCache::new();
/// cache.expect_get().returning(|_| Ok(None)); // a miss…
/// cache.expect_set().times(1).returning(|_, _, _| Ok(())); // …so the loaded value is stored
///
/// let product = cache
///     .get_or_load("product:7", None, || async {
///         Ok::<_, cache_port::CacheError>(Product { id: 7, name: "lamp".into() })
///     })
///     .await
///     .unwrap();
/// assert_eq!(product.name, "lamp");
/// # });
/// ```
///
/// The methods return unboxed futures: through `&dyn Cache` a typed call
/// costs the one boxed future of the port call it makes, no more.
pub trait CacheExt: Cache {
    /// The value of `key` decoded as `T`; a value that no longer decodes is a
    /// [`Codec`](CacheError::Codec) error.
    fn get_typed<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move {
            match self.get(key).await? {
                Some(bytes) => decode(&bytes).map(Some),
                None => Ok(None),
            }
        }
    }

    /// Stores `value` encoded as a MessagePack map.
    fn set_typed<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        let encoded = encode(value);
        async move { self.set(key, encoded?, ttl).await }
    }

    /// Cache-aside: the cached value of `key`, or else `load()`'s, which is
    /// then stored with `ttl`.
    ///
    /// - A stored value that no longer decodes counts as a miss: it is
    ///   reloaded, overwritten, logged and counted (see [`decode_failures`]; logged with the `tracing` feature).
    /// - A failed write-back does not lose the loaded value: it is returned,
    ///   and the failure is logged and counted (see [`write_back_failures`]; logged with the `tracing` feature).
    /// - Any other cache error on the read is returned as it is: an outage is
    ///   not a miss unless the caller chose so, with the
    ///   `FailOpen` layer (`cache_store::layer::FailOpen`). With it, an outage
    ///   reads as a miss, the value is loaded, the write-back fails and is
    ///   counted, and the caller gets the value: graceful degradation.
    fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        load: F,
    ) -> impl Future<Output = Result<T, E>> + Send
    where
        T: Serialize + DeserializeOwned + Send + Sync,
        E: From<CacheError> + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        async move {
            match self.get_typed::<T>(key).await {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => {}
                Err(CacheError::Codec { source }) => {
                    decode_failed(key, &source);
                }
                Err(other) => return Err(other.into()),
            }
            let value = load().await?;
            if let Err(error) = self.set_typed(key, &value, ttl).await {
                write_back_failed(&error);
            }
            Ok(value)
        }
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}
