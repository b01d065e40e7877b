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
//!   `Arc<dyn Cache>`, with [`CacheExt`] for typed values and cache-aside.
//! - [`Store`], what adapters implement: one generic, unboxed `call` over a
//!   [`Request`] of already validated inputs, answered by a [`Reply`].
//! - [`Front`], the one place that validates caller input and boxes a
//!   future; [`CacheBuilder`] composes a store, its [`layer`]s and the front
//!   at startup; [`View`] is the counted, namespaced stack adapters hand out.
//! - [`layer`]: namespacing, stats counting, fail-open, metrics, tracing,
//!   and any `Cache` as a store; each one file with its own tests.
//! - [`observe`]: metric names, the log throttle, how keys show in spans.
//! - Domain types that carry the contract's rules: [`Key`] (non-empty, at most
//!   [`MAX_KEY_LEN`] bytes), [`Namespace`] (non-empty segments joined by
//!   `:`), [`Ttl`] (1 ms to [`MAX_TTL`], rounded up to the millisecond),
//!   [`TtlState`] (missing / persistent / expires in), and [`Pattern`], the
//!   one Redis-glob validator and matcher every adapter uses.
//! - [`CacheError`], the one error type, with [`ErrorKind`] to match on and
//!   [`CacheError::is_retryable`].
//! - [`loading::Loader`]: single-flight cache-aside (of concurrent callers
//!   that miss a key, one loads).
//! - `MockCache` (feature `mock`), a mockall mock of the port.
//!
//! This crate depends on no adapter and on no dependency-injection framework.

pub mod backplane;
mod builder;
mod cache;
mod error;
mod front;
mod key;
pub mod layer;
pub mod loading;
mod namespace;
pub mod observe;
mod pattern;
mod secret;
mod stats;
mod store;
mod ttl;
pub mod typed;

pub use builder::{CacheBuilder, View};
pub use cache::Cache;
#[cfg(feature = "mock")]
pub use cache::MockCache;
pub use error::{BoxError, CacheError, ErrorKind, Result};
pub use front::{Front, DEFAULT_KEYS_LIMIT};
pub use key::{validate_keys, Key, MAX_KEY_LEN};
pub use namespace::{Namespace, MAX_NAMESPACE_LEN};
pub use pattern::{escape_glob, Pattern, MAX_PATTERN_LEN, MAX_PATTERN_STARS};
pub use secret::{is_secret_parameter, redact_url, shown_parameter_name};
pub use stats::{Stats, StatsCounters};
pub use store::{unexpected_reply, KeyPages, Op, Reply, Request, Store, StoreKey};
pub use ttl::{Ttl, TtlState, MAX_TTL};
pub use typed::CacheExt;
