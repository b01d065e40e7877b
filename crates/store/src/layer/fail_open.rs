//! `FailOpen<S>`: an outage reads as a miss, by the caller's explicit choice.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::{Op, Reply, Request, Store};
use cache_port::report::LogThrottle;
use cache_port::Result;

/// Turns a failing backend into misses for reads, for callers who chose that.
///
/// Without it, a backend failure is an error, never a miss. With it, when
/// `get`, `get_many` or `exists` fail with a retryable error (timeout,
/// unavailable), the call answers as a miss (`None`, all `None`, `false`);
/// each such miss is counted ([`FailOpenHandle::failed_open`]) and logged
/// (one line per 10 s, with how many were held back).
/// Bad input and every other error still fail, and writes are never
/// silenced: a failed `set` or `delete` must not pass for done.
///
/// With [`CacheExt::get_or_load`](cache_port::CacheExt::get_or_load), whose
/// write-back failure is logged and counted rather than returned, this is the
/// whole of graceful degradation: during an outage every read loads from the
/// source of truth and answers.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::{layer::{CacheStore, FailOpenLayer}};
/// use cache_port::{Cache, CacheError, MockCache};
/// use cache_store::CacheBuilder;
///
/// let mut down = MockCache::new();
/// down.expect_max_value_len().return_const(64usize);
/// down.expect_get().returning(|_| Err(CacheError::Unavailable { message: "refused".into(), source: None }));
/// down.expect_stats().returning(|| Ok(Default::default()));
/// let fail_open = FailOpenLayer::new();
/// let handle = fail_open.handle();
/// let cache = CacheBuilder::new(CacheStore::new(down)).layer(fail_open).build();
/// assert_eq!(cache.get("k").await.unwrap(), None);
/// assert_eq!(handle.failed_open(), 1);
/// let stats = cache.stats().await.unwrap();
/// assert_eq!((stats.misses, stats.errors), (1, 0)); // a miss, not an error
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FailOpen<S> {
    inner: S,
    failed_open: FailOpenHandle,
    /// One warning per 10 s: an outage fails open every read.
    log: Arc<LogThrottle>,
}

/// Reads how many reads a [`FailOpen`] answered as misses.
#[derive(Debug, Clone, Default)]
pub struct FailOpenHandle(Arc<AtomicU64>);

impl FailOpenHandle {
    /// How many reads answered as misses because the backend failed.
    pub fn failed_open(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

impl<S> FailOpen<S> {
    /// Reads through `inner` fail open.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            failed_open: FailOpenHandle::default(),
            log: Arc::default(),
        }
    }

    /// Its counter.
    pub fn handle(&self) -> FailOpenHandle {
        self.failed_open.clone()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> Store for FailOpen<S> {
    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        let op = request.op();
        let fallback = match op {
            Op::Get | Op::GetAndTouch => Reply::Value(None),
            Op::GetMany => Reply::Values(vec![None; request.batch_len()]),
            Op::Exists => Reply::Flag(false),
            Op::ExistsMany => Reply::Flags(vec![false; request.batch_len()]),
            _ => return self.inner.call(request).await,
        };
        match self.inner.call(request).await {
            Err(error) if error.is_retryable() => {
                self.failed_open.0.fetch_add(1, Relaxed);
                if let Some(held_back) = self.log.admit() {
                    tracing::warn!(
                        target: cache_port::report::TARGET,
                        operation = op.name(),
                        %error,
                        failed_open_held_back = held_back,
                        "cache failed; answering as a miss (fail-open; one line per 10 s)"
                    );
                }
                Ok(fallback)
            }
            other => other,
        }
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        self.inner.scan(scope, pattern)
    }
}

/// Builds [`FailOpen`]; its [`handle`](FailOpenLayer::handle) reads the count.
#[derive(Debug, Clone, Default)]
pub struct FailOpenLayer {
    handle: FailOpenHandle,
}

impl FailOpenLayer {
    /// A layer whose stores share one counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counter of the stores this layer builds.
    pub fn handle(&self) -> FailOpenHandle {
        self.handle.clone()
    }
}

impl<S: Store> super::Layer<S> for FailOpenLayer {
    type Store = FailOpen<S>;

    fn layer(self, inner: S) -> FailOpen<S> {
        FailOpen {
            inner,
            failed_open: self.handle,
            log: Arc::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::layer::CacheStore;
    use crate::CacheBuilder;
    use cache_port::{CacheError, ErrorKind, MockCache};

    fn down() -> CacheError {
        CacheError::Timeout {
            operation: "get",
            after: Duration::from_millis(5),
            source: None,
        }
    }

    fn mock() -> MockCache {
        let mut mock = MockCache::new();
        mock.expect_max_value_len().return_const(64usize);
        mock
    }

    #[tokio::test]
    async fn reads_fail_open_and_writes_do_not() {
        let mut mock = mock();
        mock.expect_get().returning(|_| Err(down()));
        mock.expect_get_many().returning(|_| Err(down()));
        mock.expect_exists().returning(|_| Err(down()));
        mock.expect_set().returning(|_, _, _| Err(down()));
        let layer = FailOpenLayer::new();
        let handle = layer.handle();
        let cache = CacheBuilder::new(CacheStore::new(mock))
            .layer(layer)
            .build();
        assert_eq!(cache.get("k").await.unwrap(), None);
        assert_eq!(
            cache.get_many(&["a".into(), "b".into()]).await.unwrap(),
            vec![None, None]
        );
        assert!(!cache.exists("k").await.unwrap());
        assert_eq!(handle.failed_open(), 3);
        assert_eq!(
            cache.set("k", Bytes::new(), None).await.unwrap_err().kind(),
            ErrorKind::Timeout
        );
    }

    #[tokio::test]
    async fn server_errors_still_fail() {
        let mut mock = mock();
        mock.expect_exists().returning(|_| {
            Err(CacheError::Backend {
                message: "WRONGTYPE".into(),
                source: None,
            })
        });
        let layer = FailOpenLayer::new();
        let handle = layer.handle();
        let cache = CacheBuilder::new(CacheStore::new(mock))
            .layer(layer)
            .build();
        assert_eq!(
            cache.get("").await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            cache.exists("k").await.unwrap_err().kind(),
            ErrorKind::Backend
        );
        assert_eq!(handle.failed_open(), 0);
    }
}
