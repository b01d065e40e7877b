//! The cache port: what domain code depends on, whatever the cache stores in.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_port::{Cache, CacheExt, MockCache, TtlState};
//! use mockall::predicate::eq;
//!
//! // Domain code takes the port as `Arc<dyn Cache>` and never names an adapter.
//! async fn remember_login(cache: &dyn Cache, user: u64) -> cache_port::Result<i64> {
//!     cache.incr(&format!("logins:{user}"), 1, Some(Duration::from_secs(3600))).await
//! }
//!
//! // Its unit tests use the port's mock (feature `mock`); production wires an
//! // adapter (cache-moka, cache-redis) in at startup instead.
//! let mut mock = MockCache::new();
//! mock.expect_incr()
//!     .with(eq("logins:7"), eq(1), eq(Some(Duration::from_secs(3600))))
//!     .times(1)
//!     .returning(|_, _, _| Ok(1));
//! mock.expect_ttl().returning(|_| Ok(TtlState::Persistent));
//! let cache: Arc<dyn Cache> = Arc::new(mock);
//!
//! assert_eq!(remember_login(cache.as_ref(), 7).await.unwrap(), 1);
//! assert_eq!(cache.ttl("anything").await.unwrap(), TtlState::Persistent);
//! # });
//! ```
//!
//! What is here:
//! - [`Cache`], the port: one object-safe `#[async_trait]` trait, shared as
//!   `Arc<dyn Cache>`; `Arc<T>` and `Box<T>` of an adapter are adapters too,
//!   and [`delegate_cache!`] makes any wrapper one.
//! - Domain types that carry the contract's rules: [`Key`] (non-empty, at most
//!   [`MAX_KEY_LEN`] bytes), [`Ttl`] (1 ms to [`MAX_TTL`], rounded up to the
//!   millisecond), [`TtlState`] (missing / persistent / expires in), and
//!   [`Pattern`], the one Redis-glob validator and matcher every adapter uses.
//! - [`CacheError`], the one error type, with [`ErrorKind`] to match on and
//!   [`CacheError::is_retryable`].
//! - [`CacheExt`], typed values (serde + MessagePack with field names) and
//!   cache-aside, for every `Cache`.
//! - `MockCache` (feature `mock`), a mockall mock of the port.
//! - [`Stats`]; [`layer::Counted`] keeps its counters for any adapter.
//! - [`layer::FailOpen`]: an explicit, counted and logged choice to read an
//!   outage as a miss.
//!
//! This crate depends on no adapter and on no dependency-injection framework.

mod cache;
mod error;
mod forward;
mod key;
pub mod layer;
mod pattern;
mod stats;
mod ttl;
pub mod typed;

pub use cache::Cache;
#[cfg(feature = "mock")]
pub use cache::MockCache;
pub use error::{BoxError, CacheError, ErrorKind, Result};
pub use key::{validate_keys, Key, MAX_KEY_LEN};
pub use pattern::{escape_glob, Pattern, MAX_PATTERN_LEN, MAX_PATTERN_STARS};
pub use stats::{Stats, StatsCounters};
pub use ttl::{Ttl, TtlState, MAX_TTL};
pub use typed::CacheExt;

/// Re-exports for [`delegate_cache!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use bytes::Bytes;
}
