//! `Option<L>` as a layer: a layer chosen at startup from configuration.

use std::future::Future;

use crate::{Reply, Request, Store};
use cache_port::Result;

/// Either of two stores: what an `Option<L>` layer gives (`Layered` when the
/// layer is on, `Bare` when it is off), so that a stack assembled from
/// configuration has one type whichever layers are on, at the cost of one
/// branch per call.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::{layer::{CacheStore, FailOpenLayer}};
/// use cache_port::{Cache, MockCache};
/// use cache_store::CacheBuilder;
///
/// let fail_open_from_config = false;
/// let mut store = MockCache::new();
/// store.expect_max_value_len().return_const(64usize);
/// store.expect_get().returning(|_| Ok(None));
/// let cache = CacheBuilder::new(CacheStore::new(store))
///     .layer(fail_open_from_config.then(FailOpenLayer::new)) // Option<FailOpenLayer>
///     .build();
/// assert_eq!(cache.get("k").await.unwrap(), None);
/// # });
/// ```
#[derive(Debug, Clone)]
pub enum Either<L, S> {
    /// The layer is on.
    Layered(L),
    /// The layer is off: calls go straight to the store below.
    Bare(S),
}

impl<L: Store, S: Store> Store for Either<L, S> {
    #[inline]
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        match self {
            Either::Layered(store) => futures::future::Either::Left(store.call(request)),
            Either::Bare(store) => futures::future::Either::Right(store.call(request)),
        }
    }

    #[inline]
    fn get<'k>(
        &self,
        key: crate::StoreKey<'k>,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>>> + Send {
        match self {
            Either::Layered(store) => futures::future::Either::Left(store.get(key)),
            Either::Bare(store) => futures::future::Either::Right(store.get(key)),
        }
    }

    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<bytes::Bytes>>> {
        match self {
            Either::Layered(store) => store.get_now(key),
            Either::Bare(store) => store.get_now(key),
        }
    }

    #[inline]
    fn watch_now(&self, key: &str) -> Option<(bytes::Bytes, cache_port::Watch)> {
        match self {
            Either::Layered(store) => store.watch_now(key),
            Either::Bare(store) => store.watch_now(key),
        }
    }

    fn max_value_len(&self) -> usize {
        match self {
            Either::Layered(store) => store.max_value_len(),
            Either::Bare(store) => store.max_value_len(),
        }
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        match self {
            Either::Layered(store) => store.scan(scope, pattern),
            Either::Bare(store) => store.scan(scope, pattern),
        }
    }
}

impl<S: Store, L: super::Layer<S>> super::Layer<S> for Option<L> {
    type Store = Either<L::Store, S>;

    fn layer(self, inner: S) -> Self::Store {
        match self {
            Some(layer) => Either::Layered(layer.layer(inner)),
            None => Either::Bare(inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::layer::{CacheStore, FailOpenLayer};
    use crate::CacheBuilder;
    use cache_port::{CacheError, MockCache};

    fn down() -> MockCache {
        let mut mock = MockCache::new();
        mock.expect_max_value_len().return_const(64usize);
        mock.expect_get().returning(|_| {
            Err(CacheError::Unavailable {
                message: "down".into(),
                source: None,
            })
        });
        mock
    }

    #[tokio::test]
    async fn a_layer_that_is_on_applies_and_one_that_is_off_does_not() {
        let on = CacheBuilder::new(CacheStore::new(down()))
            .layer(Some(FailOpenLayer::new()))
            .build();
        assert_eq!(on.get("k").await.unwrap(), None);
        let off = CacheBuilder::new(CacheStore::new(down()))
            .layer(None::<FailOpenLayer>)
            .build();
        assert!(off.get("k").await.is_err());
    }
}
