//! The Redis adapter of the cache port, on fred 10.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let server = cache_redis_harness::RedisServer::start(); // a throwaway redis-server
//! # let url = format!("{}/0?namespace=shop", server.url());
//! use std::sync::Arc;
//! use cache_port::Cache;
//! use cache_redis::RedisCache;
//!
//! // Options ride on the URL (here redis://127.0.0.1:PORT/0?namespace=shop),
//! // or come from `RedisConfig`'s builder.
//! let cache: Arc<dyn Cache> = Arc::new(cache_redis::connect_url(&url).await.unwrap());
//! cache.set("product:1", "lamp".into(), None).await.unwrap();
//! assert_eq!(cache.delete_pattern("product:*").await.unwrap(), 1);
//! # });
//! ```
//!
//! See [`RedisCache`] for the commands used, [`RedisConfig`] for the options
//! and their defaults. Errors map onto the port's kinds: a timeout is
//! `Timeout`, a refused or dropped connection `Unavailable`, refused
//! credentials `Auth`, a server error `Backend` with the server's message;
//! fred's error (with secrets scrubbed) is kept as the source.

mod backplane;
mod batches;
mod coalesce;
mod commands;
mod config;
mod connection;
mod errors;
mod migration;
mod scripts;
mod store;
#[cfg(feature = "tls")]
mod tls;
mod tracking;
mod walk_retry;
mod walks;
mod write_log;

pub use backplane::{RedisBackplane, DEFAULT_CHANNEL};
pub use config::{redact_url, RedisConfig, REDIS_MAX_VALUE_LEN};
pub use errors::RedisClientError;
pub use store::{connect_url, RedisCache, RedisStore};
pub use tracking::{RedisTracking, SERVER_SENDER};
pub use write_log::{RedisWriteLog, MAX_WRITES_PER_READ};
