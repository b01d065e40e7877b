//! `Namespaced<S>`: every key under a namespace's prefix.

use std::borrow::Cow;
use std::future::Future;

use crate::{Reply, Request, Store};
use cache_port::Namespace;
use cache_port::Result;

/// Confines a store to a [`Namespace`]: key `k` is stored as `ns:k`, and
/// pattern operations (`keys`, `delete_pattern`, `clear`, `stats`) are
/// scoped to the prefix `ns:`, so keys in replies come back without it.
///
/// This layer is the only place that knows about prefixes: adapters only
/// ever see full store keys and scopes. Nested namespaces nest
/// (`Namespaced("child")` over `Namespaced("app")` stores `app:child:k`).
/// Without a namespace (`None`) it forwards everything untouched, at no cost.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::{CacheBuilder, layer::CacheStore};
/// use cache_port::{Cache, MockCache};
/// use mockall::predicate::eq;
///
/// let mut store = MockCache::new();
/// store.expect_max_value_len().return_const(1024usize);
/// store.expect_get().with(eq("shop:cart")).returning(|_| Ok(None));
/// let cache = CacheBuilder::new(CacheStore::new(store)).namespace("shop").unwrap().build();
/// assert_eq!(cache.get("cart").await.unwrap(), None);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Namespaced<S> {
    inner: S,
    namespace: Option<Namespace>,
}

impl<S> Namespaced<S> {
    /// `inner` under `namespace` (`None`: the whole store).
    pub fn new(inner: S, namespace: Option<Namespace>) -> Self {
        Self { inner, namespace }
    }

    /// The namespace, if any.
    pub fn namespace(&self) -> Option<&Namespace> {
        self.namespace.as_ref()
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> Store for Namespaced<S> {
    #[inline]
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        let request = match &self.namespace {
            None => request,
            Some(ns) => {
                let prefix = ns.prefix();
                request.map_keys(|key| Cow::Owned([prefix, &key].concat()))
            }
        };
        self.inner.call(request)
    }

    #[inline]
    fn get<'k>(
        &self,
        key: crate::StoreKey<'k>,
    ) -> impl Future<Output = cache_port::Result<Option<bytes::Bytes>>> + Send {
        let key = match &self.namespace {
            None => key,
            Some(ns) => Cow::Owned([ns.prefix(), &key].concat()),
        };
        self.inner.get(key)
    }

    #[inline]
    fn get_now(&self, key: &str) -> Option<cache_port::Result<Option<bytes::Bytes>>> {
        self.with_full_key(key, |full| self.inner.get_now(full))
    }

    #[inline]
    fn watch_now(&self, key: &str) -> Option<(bytes::Bytes, cache_port::Watch)> {
        self.with_full_key(key, |full| self.inner.watch_now(full))
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        match &self.namespace {
            None => self.inner.scan(scope, pattern),
            Some(ns) => self.inner.scan([ns.prefix(), &scope].concat(), pattern),
        }
    }
}

impl<S> Namespaced<S> {
    /// `read` of the key as stored (prefixed), for the calls that answer at
    /// once. The prefixed key is built in a buffer this thread reuses: no
    /// allocation. Taken while in use (a store below that reads through
    /// another namespace on this thread): `None`, and the caller's `get`
    /// answers.
    #[inline]
    fn with_full_key<T>(&self, key: &str, read: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let Some(ns) = &self.namespace else {
            return read(key);
        };
        FULL_KEY.with(|buffer| {
            let mut full = buffer.try_borrow_mut().ok()?;
            full.clear();
            full.push_str(ns.prefix());
            full.push_str(key);
            read(&full)
        })
    }
}

thread_local! {
    /// `Namespaced::get_now`'s prefixed key (it keeps its capacity).
    static FULL_KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Builds [`Namespaced`]; see [`CacheBuilder::namespace`](crate::CacheBuilder::namespace).
#[derive(Debug, Clone)]
pub struct NamespacedLayer(pub Option<Namespace>);

impl<S: Store> super::Layer<S> for NamespacedLayer {
    type Store = Namespaced<S>;

    fn layer(self, inner: S) -> Namespaced<S> {
        Namespaced::new(inner, self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::CacheBuilder;
    use cache_port::Pattern;

    /// Records the keys and scopes each request carried.
    #[derive(Default, Clone)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Store for Recorder {
        async fn call(&self, request: Request<'_>) -> Result<Reply> {
            let seen = format!("{request:?}");
            self.0.lock().unwrap().push(seen);
            Ok(match request {
                Request::Keys { .. } => Reply::Keys(vec!["k".into()]),
                Request::GetMany { keys } => Reply::Values(vec![None; keys.len()]),
                Request::Delete { .. } => Reply::Flag(false),
                Request::Get { .. } => Reply::Value(None),
                _ => Reply::Done,
            })
        }
        fn max_value_len(&self) -> usize {
            64
        }
        /// Answers at once with "now", so that a test tells which way a
        /// read went.
        fn get_now(&self, key: &str) -> Option<Result<Option<bytes::Bytes>>> {
            self.0.lock().unwrap().push(format!("GetNow {key}"));
            Some(Ok(Some("now".into())))
        }
    }

    #[tokio::test]
    async fn keys_and_scopes_get_the_prefix_and_nested_namespaces_nest() {
        let recorder = Recorder::default();
        let cache = CacheBuilder::new(recorder.clone())
            .namespace("app")
            .unwrap()
            .namespace("child")
            .unwrap()
            .build();
        cache.set("k", "v".into(), None).await.unwrap();
        // `get` takes the stores' `get` shortcut: prefixed all the same.
        // Not `get_now`: the outer namespace holds this thread's key buffer,
        // so the inner one declines and the front reads through `get`.
        assert_eq!(cache.get("g").await.unwrap(), None);
        cache.get_many(&["a".into(), "b".into()]).await.unwrap();
        assert_eq!(cache.keys("*").await.unwrap(), vec!["k"]);
        cache.clear().await.unwrap();
        let seen = recorder.0.lock().unwrap().join("\n");
        assert!(seen.contains(r#"key: "app:child:k""#), "{seen}");
        assert!(seen.contains(r#"Get { key: "app:child:g" }"#), "{seen}");
        assert!(seen.contains(r#"["app:child:a", "app:child:b"]"#), "{seen}");
        assert!(seen.contains(r#"Keys { scope: "app:child:""#), "{seen}");
        assert!(seen.contains(r#"Clear { scope: "app:child:" }"#), "{seen}");
    }

    #[tokio::test]
    async fn a_read_answered_at_once_gets_the_prefix_and_leaves_the_buffer_free() {
        let recorder = Recorder::default();
        let cache = CacheBuilder::new(recorder.clone())
            .namespace("app")
            .unwrap()
            .build();
        for key in ["a", "a-longer-key", "b"] {
            assert_eq!(cache.get(key).await.unwrap().as_deref(), Some(&b"now"[..]));
        }
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            ["GetNow app:a", "GetNow app:a-longer-key", "GetNow app:b"],
            "each key prefixed once, no earlier key left in the buffer"
        );
    }

    #[tokio::test]
    async fn without_a_namespace_requests_pass_untouched() {
        let recorder = Recorder::default();
        let store = Namespaced::new(recorder.clone(), None);
        let pattern = Pattern::new("*").unwrap();
        store
            .call(Request::Keys {
                scope: Cow::Borrowed(""),
                pattern: &pattern,
                limit: 10,
            })
            .await
            .unwrap();
        store
            .call(Request::Delete {
                key: Cow::Borrowed("k"),
            })
            .await
            .unwrap();
        let seen = recorder.0.lock().unwrap().join("\n");
        assert!(seen.contains(r#"Keys { scope: """#), "{seen}");
        assert!(seen.contains(r#"Delete { key: "k" }"#), "{seen}");
    }
}
