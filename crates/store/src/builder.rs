//! `CacheBuilder`: a store, its layers, and the front, composed at startup.

use std::sync::Arc;

use crate::layer::{Counted, Layer, Namespaced};
use crate::Store;
use crate::{Front, DEFAULT_KEYS_LIMIT};
use cache_port::Cache;
use cache_port::Namespace;
use cache_port::Result;
use cache_port::Stats;

/// Composes a cache: an adapter's store, the layers over it (each call wraps
/// what came before, so the last layer added sees calls first), and the
/// [`Front`] that validates and boxes.
///
/// [`build`](CacheBuilder::build) adds the [`Counted`] layer outermost, so
/// `stats()` counts what the layers below answered (a fail-open miss is a
/// miss), and boxes the whole stack once as `Arc<dyn Cache>`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::{layer::{CacheStore, FailOpenLayer}};
/// use cache_port::{Cache, MockCache};
/// use cache_store::CacheBuilder;
/// use mockall::predicate::eq;
///
/// let mut store = MockCache::new(); // an adapter's store in production
/// store.expect_max_value_len().return_const(1024usize);
/// store.expect_get().with(eq("shop:cart:1")).returning(|_| Ok(None));
///
/// let cache = CacheBuilder::new(CacheStore::new(store))
///     .namespace("shop")?            // keys live under `shop:`
///     .layer(FailOpenLayer::new())   // an outage reads as a miss
///     .build();                      // counted, validated, boxed once
/// assert_eq!(cache.get("cart:1").await?, None);
/// # Ok::<(), cache_port::CacheError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct CacheBuilder<S> {
    store: S,
    keys_limit: usize,
}

impl<S: Store> CacheBuilder<S> {
    /// Starts from an adapter's store.
    pub fn new(store: S) -> Self {
        Self {
            store,
            keys_limit: DEFAULT_KEYS_LIMIT,
        }
    }

    /// The most keys `keys` collects before it answers
    /// [`TooManyKeys`](cache_port::CacheError::TooManyKeys) (default
    /// [`DEFAULT_KEYS_LIMIT`]; at least 1).
    pub fn keys_limit(mut self, limit: usize) -> Self {
        self.keys_limit = limit;
        self
    }

    /// Puts every key under `namespace` (validated: see [`Namespace`]).
    /// Called twice, namespaces nest: `.namespace("app")?.namespace("eu")?`
    /// stores `app:eu:key`.
    pub fn namespace(self, namespace: &str) -> Result<CacheBuilder<Namespaced<S>>> {
        Ok(self.in_namespace(Some(Namespace::new(namespace)?)))
    }

    /// Puts every key under `namespace`, when there is one.
    pub fn in_namespace(self, namespace: Option<Namespace>) -> CacheBuilder<Namespaced<S>> {
        CacheBuilder {
            store: Namespaced::new(self.store, namespace),
            keys_limit: self.keys_limit,
        }
    }

    /// Wraps what has been built so far in `layer`.
    pub fn layer<L: Layer<S>>(self, layer: L) -> CacheBuilder<L::Store> {
        CacheBuilder {
            store: layer.layer(self.store),
            keys_limit: self.keys_limit,
        }
    }

    /// The stack built so far, without a front.
    pub fn into_store(self) -> S {
        self.store
    }

    /// The counted stack behind a front, unboxed: for callers that keep the
    /// concrete type (a generic service, a shaku component).
    pub fn build_front(self) -> Front<Counted<S>> {
        Front::new(Counted::new(self.store)).with_keys_limit(self.keys_limit)
    }

    /// The counted stack behind a front, as the port.
    pub fn build(self) -> Arc<dyn Cache> {
        Arc::new(self.build_front())
    }
}

/// The stack every adapter crate hands out as its cache type: counted,
/// optionally namespaced, over a shareable store (`cache_moka::MokaCache`,
/// `cache_redis::RedisCache`).
pub type View<S> = Front<Counted<Namespaced<S>>>;

impl<S: Store + Clone> Front<Counted<Namespaced<S>>> {
    /// A view of `store` under `namespace`, with counters of its own.
    pub fn over(store: S, namespace: Option<Namespace>) -> Self {
        CacheBuilder::new(store)
            .in_namespace(namespace)
            .build_front()
    }

    /// A view of the same store in the child namespace `child` of this
    /// view's (`app` → `app:child`; without a namespace, `child`), with
    /// counters of its own. Views nest as folders do: the parent's `clear`
    /// empties the child too.
    pub fn namespaced(&self, child: &str) -> Result<Self> {
        let namespace = match self.namespace_ref() {
            Some(parent) => parent.child(child)?,
            None => Namespace::new(child)?,
        };
        Ok(Self::over(self.base().clone(), Some(namespace)))
    }

    /// This view's namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace_ref().map(Namespace::as_str)
    }

    fn namespace_ref(&self) -> Option<&Namespace> {
        self.store().inner().namespace()
    }

    /// The adapter's store under this view.
    pub fn base(&self) -> &S {
        self.store().inner().inner()
    }

    /// This view's counters, without asking the store for its figures.
    pub fn counters(&self) -> Stats {
        self.store().snapshot()
    }
}
