//! The in-process adapter of the cache port, on `moka::future::Cache`.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_moka::MokaCache;
//! use cache_port::{Cache, TtlState};
//!
//! let cache: Arc<dyn Cache> = Arc::new(MokaCache::builder().namespace("demo").build().unwrap());
//! cache.set("greeting", "hello".into(), Some(Duration::from_secs(60))).await.unwrap();
//! assert_eq!(cache.get("greeting").await.unwrap().as_deref(), Some(&b"hello"[..]));
//! assert!(matches!(cache.ttl("greeting").await.unwrap(), TtlState::ExpiresIn(_)));
//! assert_eq!(cache.delete_pattern("greet*").await.unwrap(), 1);
//! # });
//! ```
//!
//! - Bounded in bytes (keys + values + a fixed per-entry overhead;
//!   [`DEFAULT_CAPACITY_BYTES`] unless configured), least recently used
//!   entries evicted first, evictions counted.
//! - Per-entry TTLs with Redis `SET` semantics: `set` replaces value and TTL;
//!   an entry is invisible from the instant it expires.
//! - Optional namespace; several namespaces can share one store
//!   ([`MokaCache::namespaced`]).
//! - Patterns through the port's shared Redis-glob matcher, so `keys` and
//!   `delete_pattern` answer exactly as Redis would.
//! - `clear` on a view without a namespace empties the whole store: the store
//!   belongs to this process, unlike a shared Redis database.
//!
//! Known gap: `set` is a plain moka insert, not serialised with the per-key
//! lock that `incr`, `set_if_absent` and `expire` take; a `set` racing an
//! `incr` on the same key can be overwritten by the `incr` it raced.

mod adapter;
mod config;
mod entry;
mod incr;

pub use adapter::MokaCache;
pub use config::{MokaConfig, DEFAULT_CAPACITY_BYTES};
