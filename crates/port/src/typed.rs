//! The typed layer: structs in and out of the byte port, as MessagePack maps.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Cache, CacheError, Result};

/// Stored values that no longer decoded and were replaced by `get_or_load`,
/// in this process since it started.
static DECODE_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many stored values `get_or_load` found undecodable (and reloaded)
/// in this process so far.
pub fn decode_failures() -> u64 {
    DECODE_FAILURES.load(Relaxed)
}

/// Encodes `value` as a MessagePack map with field names, so that adding a
/// field with `#[serde(default)]` does not break reading old entries.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Bytes> {
    rmp_serde::to_vec_named(value)
        .map(Bytes::from)
        .map_err(CacheError::codec)
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(CacheError::codec)
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
#[async_trait]
pub trait CacheExt: Cache {
    /// The value of `key` decoded as `T`; a value that no longer decodes is a
    /// [`Codec`](CacheError::Codec) error.
    async fn get_typed<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.get(key).await? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` encoded as a MessagePack map.
    async fn set_typed<T: Serialize + Sync + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<()> {
        self.set(key, encode(value)?, ttl).await
    }

    /// Cache-aside: the cached value of `key`, or else `load()`'s, which is
    /// then stored with `ttl`.
    ///
    /// A stored value that no longer decodes counts as a miss: it is
    /// reloaded, overwritten, logged and counted (see [`decode_failures`]).
    /// Any other cache error is returned as it is: choose a fail-open policy
    /// explicitly if an outage should read as a miss.
    async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        load: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Send + Sync,
        E: From<CacheError> + Send,
        F: FnOnce() -> Fut + Send,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        match self.get_typed::<T>(key).await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(CacheError::Codec { source }) => {
                DECODE_FAILURES.fetch_add(1, Relaxed);
                tracing::warn!(key, error = %source, "cached value no longer decodes; reloading it");
            }
            Err(other) => return Err(other.into()),
        }
        let value = load().await?;
        self.set_typed(key, &value, ttl).await?;
        Ok(value)
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}
