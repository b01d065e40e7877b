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
//! What is here, and all that domain code needs:
//! - [`Cache`], the port: one object-safe `#[async_trait]` trait, shared as
//!   `Arc<dyn Cache>`, with [`CacheExt`] for typed values and cache-aside.
//! - Domain types that carry the contract's rules: [`Key`] (non-empty, at most
//!   [`MAX_KEY_LEN`] bytes), [`Namespace`] (non-empty segments joined by
//!   `:`), [`Ttl`] (1 ms to [`MAX_TTL`], rounded up to the millisecond),
//!   [`TtlState`] (missing / persistent / expires in), [`Pattern`] (the
//!   one Redis-glob validator and matcher every adapter uses) and
//!   [`Stats`].
//! - [`CacheError`], the one error type, with [`ErrorKind`] to match on and
//!   [`CacheError::is_retryable`].
//! - [`typed`]: MessagePack values and the [`typed::envelope`] a loader
//!   stores them in; [`report`]: the log target, throttle and key digest
//!   every crate of the toolkit reports with.
//! - `MockCache` (feature `mock`), a mockall mock of the port. It mocks
//!   every method but [`Cache::get_now`], which keeps its default (`None`),
//!   so code that asks it first (the tags view, the loader) reaches the
//!   mocked `get`.
//!
//! What is elsewhere: the store side adapters implement (`Store`, the
//! `Front`, `CacheBuilder`, the core layers) is `cache-store`; the metrics and
//! tracing layers `cache-observe`; single-flight, fail-safe loading
//! (`Loader`) `cache-loading`; the adapters `cache-moka`, `cache-redis` and
//! `cache-tiered`; `CACHE_URL` to a cache `cache-composition`.
//!
//! This crate needs no runtime: it depends on no async runtime, no metrics
//! or tracing facade (`tracing` only with the feature of that name, which
//! the store side turns on), no cache engine and no dependency-injection
//! framework (`scripts/check-invariants.sh` checks it).

mod cache;
mod error;
mod key;
#[cfg(feature = "mock")]
mod mock;
mod namespace;
mod pattern;
pub mod report;
mod stats;
pub mod throttle;
mod ttl;
pub mod typed;
mod watch;

pub use cache::{Cache, KeyPages};
pub use error::{BoxError, CacheError, ErrorKind, Result};
pub use key::{validate_keys, Key, MAX_KEY_LEN};
#[cfg(feature = "mock")]
pub use mock::MockCache;
pub use namespace::{Namespace, MAX_NAMESPACE_LEN};
pub use pattern::{escape_glob, Pattern, MAX_PATTERN_LEN, MAX_PATTERN_STARS};
pub use stats::Stats;
pub use throttle::{Decision, Limit, Quota, Window};
pub use ttl::{Ttl, TtlState, MAX_TTL};
pub use typed::CacheExt;
pub use watch::{Stamp, Watch, Watched};
