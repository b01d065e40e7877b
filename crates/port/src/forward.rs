//! Forwarding impls: a pointer to an adapter is an adapter too.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::{Cache, Result, Stats, TtlState};

macro_rules! forward {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: Cache + ?Sized> Cache for $ptr {
            async fn get(&self, key: &str) -> Result<Option<Bytes>> {
                (**self).get(key).await
            }
            async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
                (**self).set(key, value, ttl).await
            }
            async fn delete(&self, key: &str) -> Result<bool> {
                (**self).delete(key).await
            }
            async fn exists(&self, key: &str) -> Result<bool> {
                (**self).exists(key).await
            }
            async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
                (**self).get_many(keys).await
            }
            async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
                (**self).set_many(items, ttl).await
            }
            async fn delete_many(&self, keys: &[String]) -> Result<u64> {
                (**self).delete_many(keys).await
            }
            async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
                (**self).delete_pattern(pattern).await
            }
            async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
                (**self).keys(pattern).await
            }
            async fn ttl(&self, key: &str) -> Result<TtlState> {
                (**self).ttl(key).await
            }
            async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
                (**self).expire(key, ttl).await
            }
            async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
                (**self).set_if_absent(key, value, ttl).await
            }
            async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
                (**self).incr(key, delta, ttl_if_created).await
            }
            async fn clear(&self) -> Result<()> {
                (**self).clear().await
            }
            async fn stats(&self) -> Result<Stats> {
                (**self).stats().await
            }
            async fn ping(&self) -> Result<Duration> {
                (**self).ping().await
            }
            fn max_value_len(&self) -> usize {
                (**self).max_value_len()
            }
        }
    )*};
}

forward!(Arc<T>, Box<T>);
