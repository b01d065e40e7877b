//! Delegation: a wrapper or a pointer around an adapter is an adapter too.

use std::sync::Arc;

use crate::Cache;

/// Implements [`Cache`] for a type by forwarding every method to the cache
/// that `|this| expr` reaches from `&self`.
///
/// For wrappers that hold an adapter (a shaku component, a layer that only
/// changes a few methods' neighbours), so that nobody writes seventeen
/// forwarding methods by hand.
///
/// ```
/// use std::sync::Arc;
/// use cache_port::{delegate_cache, Cache};
///
/// /// A handle the application passes around.
/// struct AppCache {
///     inner: Arc<dyn Cache>,
/// }
/// delegate_cache!(impl[] AppCache => |this| this.inner);
/// ```
#[macro_export]
macro_rules! delegate_cache {
    (impl[$($generics:tt)*] $ty:ty => |$this:ident| $inner:expr) => {
        #[$crate::__private::async_trait]
        impl<$($generics)*> $crate::Cache for $ty {
            async fn get(&self, key: &str) -> $crate::Result<Option<$crate::__private::Bytes>> {
                let $this = self;
                $inner.get(key).await
            }
            async fn set(
                &self,
                key: &str,
                value: $crate::__private::Bytes,
                ttl: Option<::std::time::Duration>,
            ) -> $crate::Result<()> {
                let $this = self;
                $inner.set(key, value, ttl).await
            }
            async fn delete(&self, key: &str) -> $crate::Result<bool> {
                let $this = self;
                $inner.delete(key).await
            }
            async fn exists(&self, key: &str) -> $crate::Result<bool> {
                let $this = self;
                $inner.exists(key).await
            }
            async fn get_many(&self, keys: &[String]) -> $crate::Result<Vec<Option<$crate::__private::Bytes>>> {
                let $this = self;
                $inner.get_many(keys).await
            }
            async fn set_many(
                &self,
                items: Vec<(String, $crate::__private::Bytes)>,
                ttl: Option<::std::time::Duration>,
            ) -> $crate::Result<()> {
                let $this = self;
                $inner.set_many(items, ttl).await
            }
            async fn delete_many(&self, keys: &[String]) -> $crate::Result<u64> {
                let $this = self;
                $inner.delete_many(keys).await
            }
            async fn delete_pattern(&self, pattern: &str) -> $crate::Result<u64> {
                let $this = self;
                $inner.delete_pattern(pattern).await
            }
            async fn keys(&self, pattern: &str) -> $crate::Result<Vec<String>> {
                let $this = self;
                $inner.keys(pattern).await
            }
            async fn ttl(&self, key: &str) -> $crate::Result<$crate::TtlState> {
                let $this = self;
                $inner.ttl(key).await
            }
            async fn expire(&self, key: &str, ttl: ::std::time::Duration) -> $crate::Result<bool> {
                let $this = self;
                $inner.expire(key, ttl).await
            }
            async fn set_if_absent(
                &self,
                key: &str,
                value: $crate::__private::Bytes,
                ttl: Option<::std::time::Duration>,
            ) -> $crate::Result<bool> {
                let $this = self;
                $inner.set_if_absent(key, value, ttl).await
            }
            async fn incr(
                &self,
                key: &str,
                delta: i64,
                ttl_if_created: Option<::std::time::Duration>,
            ) -> $crate::Result<i64> {
                let $this = self;
                $inner.incr(key, delta, ttl_if_created).await
            }
            async fn clear(&self) -> $crate::Result<()> {
                let $this = self;
                $inner.clear().await
            }
            async fn stats(&self) -> $crate::Result<$crate::Stats> {
                let $this = self;
                $inner.stats().await
            }
            async fn ping(&self) -> $crate::Result<::std::time::Duration> {
                let $this = self;
                $inner.ping().await
            }
            fn max_value_len(&self) -> usize {
                let $this = self;
                $inner.max_value_len()
            }
        }
    };
}

delegate_cache!(impl[T: Cache + ?Sized] Arc<T> => |this| (**this));
delegate_cache!(impl[T: Cache + ?Sized] Box<T> => |this| (**this));
