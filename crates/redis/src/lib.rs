//! The Redis adapter of the cache port, on fred 10.
//!
//! ```no_run
//! # async fn demo() -> Result<(), cache_port::CacheError> {
//! use std::sync::Arc;
//! use cache_port::Cache;
//! use cache_redis::RedisCache;
//!
//! // Options ride on the URL, or come from `RedisConfig`'s builder.
//! let cache: Arc<dyn Cache> =
//!     Arc::new(RedisCache::connect_url("redis://127.0.0.1:6379/0?namespace=shop").await?);
//! cache.set("product:1", "lamp".into(), None).await?;
//! assert_eq!(cache.delete_pattern("product:*").await?, 1);
//! # Ok(()) }
//! ```
//!
//! (Runnable examples that start their own server are in this crate's
//! tests, which need `redis-server`.)
//!
//! See [`RedisCache`] for the commands used, [`RedisConfig`] for the options
//! and their defaults. Errors map onto the port's kinds: a timeout is
//! `Timeout`, a refused or dropped connection `Unavailable`, refused
//! credentials `Auth`, a server error `Backend` with the server's message;
//! fred's error (with secrets scrubbed) is kept as the source.

mod adapter;
mod config;
mod errors;

pub use adapter::RedisCache;
pub use config::{redact_url, RedisConfig, REDIS_MAX_VALUE_LEN};
pub use errors::RedisClientError;
