//! The usual harness: every adapter a namespaced view of one store, built
//! on first use (so that a server starts only when a trial needs it).

use std::sync::Arc;

use async_trait::async_trait;
use cache_port::Cache;
use cache_store::{CacheBuilder, Store};
use futures::future::BoxFuture;
use tokio::sync::OnceCell;

use crate::Harness;

/// A [`Harness`] whose adapters are namespaced views of one store, which
/// `init` builds the first time a trial asks for an adapter.
///
/// ```
/// use std::sync::Arc;
/// use cache_conformance::{trials, ViewsOf};
///
/// // An adapter's test: every behaviour on a namespaced view of `store`.
/// fn suite<S: cache_store::Store + Clone>(store: S) -> Vec<libtest_mimic::Trial> {
///     let harness = ViewsOf::new("my adapter", move || {
///         let store = store.clone();
///         Box::pin(async move { store })
///     });
///     trials("mine", Arc::new(harness))
/// }
/// ```
pub struct ViewsOf<S> {
    name: String,
    init: Box<dyn Fn() -> BoxFuture<'static, S> + Send + Sync>,
    store: OnceCell<S>,
}

impl<S> ViewsOf<S> {
    /// Views of the store `init` builds, reported as `name`.
    pub fn new(
        name: impl Into<String>,
        init: impl Fn() -> BoxFuture<'static, S> + Send + Sync + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            init: Box::new(init),
            store: OnceCell::new(),
        }
    }
}

#[async_trait]
impl<S: Store + Clone> Harness for ViewsOf<S> {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        let store = self.store.get_or_init(|| (self.init)()).await;
        CacheBuilder::new(store.clone())
            .namespace(namespace)
            .expect("a valid namespace")
            .build()
    }
}
