//! `Counted<S>`: the `stats()` counters, for any store.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt;

use cache_port::Stats;

use crate::StatsCounters;
use crate::{Op, Reply, Request, Store};
use cache_port::Result;

/// Counts what calls through it do: hits and misses (`get`, each key of
/// `get_many`), sets (`set`, each item of `set_many`, a winning
/// `set_if_absent`), deletes (`delete`, `delete_many`, `delete_pattern`) and
/// errors (every failed call). A `stats` request answers with these
/// counters over the inner store's figures (`evictions`, `entries`, `bytes`).
///
/// [`CacheBuilder::build`](crate::CacheBuilder::build) puts one outermost in
/// every stack, so every adapter counts alike, and whatever the layers below
/// answer is what is counted: a read that a [`FailOpen`](super::FailOpen)
/// below turned into a miss counts as a miss, not an error.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::{CacheBuilder, layer::CacheStore};
/// use cache_port::{Cache, MockCache, Stats};
///
/// let mut inner = MockCache::new();
/// inner.expect_max_value_len().return_const(64usize);
/// inner.expect_get().returning(|_| Ok(None));
/// inner.expect_stats().returning(|| Ok(Stats::default()));
/// let cache = CacheBuilder::new(CacheStore::new(inner)).build(); // counted
/// cache.get("k").await.unwrap();
/// assert_eq!(cache.stats().await.unwrap().misses, 1);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    counters: Arc<StatsCounters>,
}

impl<S> Counted<S> {
    /// Counts the calls made to `inner` through this layer.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The counters, as they are now.
    pub fn snapshot(&self) -> Stats {
        self.counters.snapshot()
    }

    fn count(&self, op: Op, batch: u64, reply: &Reply) {
        let c = &self.counters;
        match (op, reply) {
            (Op::Get, Reply::Value(v)) => c.lookup(v.is_some()),
            (Op::GetMany, Reply::Values(values)) => {
                let found = values.iter().filter(|v| v.is_some()).count() as u64;
                c.lookups(found, values.len() as u64 - found);
            }
            (Op::Set, Reply::Done) | (Op::SetIfAbsent, Reply::Flag(true)) => c.sets(1),
            (Op::SetMany, Reply::Done) => c.sets(batch),
            (Op::Delete | Op::DeleteIfEquals, Reply::Flag(true)) => c.deletes(1),
            (Op::DeleteMany | Op::DeletePattern, Reply::Count(n)) => c.deletes(*n),
            _ => {}
        }
    }
}

impl<S: Store> Store for Counted<S> {
    #[inline]
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        let op = request.op();
        let batch = match &request {
            Request::SetMany { items, .. } => items.len() as u64,
            _ => 1,
        };
        // A plain `map`, not an `async` block: one poll, no state machine
        // of its own on the hot path.
        self.inner
            .call(request)
            .map(move |result| self.counted(op, batch, result))
    }

    #[inline]
    fn get<'k>(
        &self,
        key: crate::StoreKey<'k>,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>>> + Send {
        // What `counted` does for a `Get`: an error, or a hit or a miss.
        self.inner.get(key).map(move |result| {
            let result = self.counters.track(result);
            if let Ok(value) = &result {
                self.counters.lookup(value.is_some());
            }
            result
        })
    }

    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<bytes::Bytes>>> {
        // Counted as its `get` is.
        let result = self.counters.track(self.inner.get_now(key)?);
        if let Ok(value) = &result {
            self.counters.lookup(value.is_some());
        }
        Some(result)
    }

    #[inline]
    fn watch_now(&self, key: &str) -> Option<(bytes::Bytes, cache_port::Watch)> {
        // Counted as a `get` hit.
        let watched = self.inner.watch_now(key)?;
        self.counters.lookup(true);
        Some(watched)
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        self.inner.scan(scope, pattern)
    }
}

impl<S> Counted<S> {
    /// Counts what `result` says about the call, and hands it back (a
    /// `stats` reply with the counters laid over the store's figures).
    fn counted(&self, op: Op, batch: u64, result: Result<Reply>) -> Result<Reply> {
        match self.counters.track(result) {
            Ok(Reply::Stats(store)) => {
                let mut stats = self.counters.snapshot();
                stats.evictions = store.evictions;
                stats.entries = store.entries;
                stats.bytes = store.bytes;
                Ok(Reply::Stats(Box::new(stats)))
            }
            Ok(reply) => {
                self.count(op, batch, &reply);
                Ok(reply)
            }
            Err(e) => Err(e),
        }
    }
}

/// Builds [`Counted`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CountedLayer;

impl<S: Store> super::Layer<S> for CountedLayer {
    type Store = Counted<S>;

    fn layer(self, inner: S) -> Counted<S> {
        Counted::new(inner)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::layer::CacheStore;
    use crate::CacheBuilder;
    use cache_port::{CacheError, MockCache};

    #[tokio::test]
    async fn counts_each_kind_of_outcome() {
        let mut mock = MockCache::new();
        mock.expect_max_value_len().return_const(64usize);
        mock.expect_get().returning(|k| match k {
            "down" => Err(CacheError::Unavailable {
                message: "down".into(),
                source: None,
            }),
            k => Ok((k == "hit").then(|| Bytes::from("v"))),
        });
        mock.expect_get_many()
            .returning(|keys| Ok(keys.iter().map(|_| None).collect()));
        mock.expect_set_many().returning(|_, _| Ok(()));
        mock.expect_set_if_absent().returning(|_, _, _| Ok(false));
        mock.expect_delete_pattern().returning(|_| Ok(7));
        mock.expect_incr()
            .returning(|_, _, _| Err(CacheError::NotAnInteger));
        mock.expect_stats().returning(|| {
            let mut stats = Stats::default();
            stats.evictions = Some(3);
            Ok(stats)
        });
        let cache = CacheBuilder::new(CacheStore::new(mock)).build();
        cache.get("hit").await.unwrap();
        cache.get("miss").await.unwrap();
        // An error is an error, neither a hit nor a miss (the store's `get`
        // fast path counts as `call` does).
        cache.get("down").await.unwrap_err();
        cache.get_many(&["a".into(), "b".into()]).await.unwrap();
        let items = vec![("a".into(), Bytes::new()), ("b".into(), Bytes::new())];
        cache.set_many(items, None).await.unwrap();
        assert!(!cache.set_if_absent("a", Bytes::new(), None).await.unwrap());
        cache.delete_pattern("*").await.unwrap();
        cache.incr("a", 1, None).await.unwrap_err();
        // Refused by the front: never reaches the store, but is an error.
        cache.get("").await.unwrap_err();
        let stats = cache.stats().await.unwrap();
        assert_eq!(
            (
                stats.hits,
                stats.misses,
                stats.sets,
                stats.deletes,
                stats.errors
            ),
            (1, 3, 2, 7, 3)
        );
        assert_eq!(stats.evictions, Some(3));
    }
}
