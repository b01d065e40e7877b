//! `FailOpen<C>`: an outage reads as a miss, by the caller's explicit choice.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Cache, Result, Stats, TtlState};

/// Turns a failing backend into misses for reads, for callers who chose that.
///
/// Without it, a backend failure is an error, never a miss. With it, when
/// `get`, `get_many` or `exists` fail with a retryable error (timeout,
/// unavailable), the call answers as a miss (`None`, all `None`, `false`);
/// each such miss is counted ([`FailOpen::failed_open`]) and logged. Bad input
/// and every other error still fail, and writes are never silenced: a
/// failed `set` or `delete` must not pass for done.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_port::{layer::FailOpen, Cache, CacheError, MockCache};
///
/// let mut down = MockCache::new();
/// down.expect_get().returning(|_| Err(CacheError::Unavailable { message: "refused".into(), source: None }));
/// let cache = FailOpen::new(down);
/// assert_eq!(cache.get("k").await.unwrap(), None);
/// assert_eq!(cache.failed_open(), 1);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct FailOpen<C> {
    inner: C,
    failed_open: AtomicU64,
}

impl<C> FailOpen<C> {
    /// Reads through `inner` fail open.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            failed_open: AtomicU64::new(0),
        }
    }

    /// How many reads answered as misses because the backend failed.
    pub fn failed_open(&self) -> u64 {
        self.failed_open.load(Relaxed)
    }

    /// The wrapped adapter.
    pub fn inner(&self) -> &C {
        &self.inner
    }

    /// `fallback` in place of a retryable error, counted and logged.
    fn open<T>(
        &self,
        operation: &'static str,
        result: Result<T>,
        fallback: impl FnOnce() -> T,
    ) -> Result<T> {
        match result {
            Err(error) if error.is_retryable() => {
                self.failed_open.fetch_add(1, Relaxed);
                tracing::warn!(operation, %error, "cache failed; answering as a miss (fail-open)");
                Ok(fallback())
            }
            other => other,
        }
    }
}

#[async_trait]
impl<C: Cache> Cache for FailOpen<C> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.open("get", self.inner.get(key).await, || None)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        self.open("get_many", self.inner.get_many(keys).await, || {
            vec![None; keys.len()]
        })
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.open("exists", self.inner.exists(key).await, || false)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        self.inner.set(key, value, ttl).await
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        self.inner.delete(key).await
    }

    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
        self.inner.set_many(items, ttl).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64> {
        self.inner.delete_many(keys).await
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        self.inner.delete_pattern(pattern).await
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        self.inner.keys(pattern).await
    }

    async fn ttl(&self, key: &str) -> Result<TtlState> {
        self.inner.ttl(key).await
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        self.inner.expire(key, ttl).await
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        self.inner.set_if_absent(key, value, ttl).await
    }

    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
        self.inner.incr(key, delta, ttl_if_created).await
    }

    async fn clear(&self) -> Result<()> {
        self.inner.clear().await
    }

    async fn stats(&self) -> Result<Stats> {
        self.inner.stats().await
    }

    async fn ping(&self) -> Result<Duration> {
        self.inner.ping().await
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheError, ErrorKind, MockCache};

    fn down() -> CacheError {
        CacheError::Timeout {
            operation: "get",
            after: Duration::from_millis(5),
            source: None,
        }
    }

    #[tokio::test]
    async fn reads_fail_open_and_writes_do_not() {
        let mut mock = MockCache::new();
        mock.expect_get().returning(|_| Err(down()));
        mock.expect_get_many().returning(|_| Err(down()));
        mock.expect_exists().returning(|_| Err(down()));
        mock.expect_set().returning(|_, _, _| Err(down()));
        let cache = FailOpen::new(mock);
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(
            cache.get_many(&["a".into(), "b".into()]).await.unwrap(),
            vec![None, None]
        );
        assert!(!cache.exists("k").await.unwrap());
        assert_eq!(cache.failed_open(), 3);
        assert_eq!(
            cache.set("k", Bytes::new(), None).await.unwrap_err().kind(),
            ErrorKind::Timeout
        );
    }

    #[tokio::test]
    async fn bad_input_and_server_errors_still_fail() {
        let mut mock = MockCache::new();
        mock.expect_get().returning(|_| {
            Err(CacheError::InvalidKey {
                reason: "empty".into(),
            })
        });
        mock.expect_exists().returning(|_| {
            Err(CacheError::Backend {
                message: "WRONGTYPE".into(),
                source: None,
            })
        });
        let cache = FailOpen::new(mock);
        assert_eq!(
            cache.get("").await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            cache.exists("k").await.unwrap_err().kind(),
            ErrorKind::Backend
        );
        assert_eq!(cache.failed_open(), 0);
    }
}
