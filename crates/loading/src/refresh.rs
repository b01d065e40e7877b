//! Eager refresh: a value near its expiry is loaded again in the
//! background while callers keep getting it.

use std::future::Future;
use std::sync::Arc;

use cache_port::typed::Codec;

use crate::answer::Failure;
use crate::flight::{fly, landing};
use crate::options::LoadOptions;
use crate::Loader;

impl<E: Send + Sync + 'static> Loader<E> {
    /// Starts one background refresh of `key` unless a load of it is in the
    /// air already.
    pub(crate) fn refresh<T, C, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &C,
        load: F,
        found: fn(&T) -> bool,
    ) where
        T: Send + 'static,
        C: Codec<T> + Clone,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if flights.contains_key(key) {
            return;
        }
        let (inner, owned_key, codec) = (Arc::clone(&self.inner), key.to_owned(), codec.clone());
        let flight = landing(&self.inner, key, async move {
            fly(inner, owned_key, options, codec, load, found).await
        });
        flights.insert(key.to_owned(), flight.clone());
        drop(flights);
        self.inner
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let key = key.to_owned();
        runtime.spawn(async move {
            if let Err(Failure::Load(_) | Failure::Timeout(_) | Failure::Cache(_)) = flight.await {
                tracing::debug!(key, "eager refresh failed; the cached value stays");
            }
        });
    }
}
