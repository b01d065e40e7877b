//! The in-process adapter of the cache port, on `moka::future::Cache`.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_moka::MokaConfig;
//! use cache_port::{Cache, TtlState};
//!
//! let cache: Arc<dyn Cache> = Arc::new(MokaConfig::default().namespace("demo").build().unwrap());
//! cache.set("greeting", "hello".into(), Some(Duration::from_secs(60))).await.unwrap();
//! assert_eq!(cache.get("greeting").await.unwrap().as_deref(), Some(&b"hello"[..]));
//! assert!(matches!(cache.ttl("greeting").await.unwrap(), TtlState::ExpiresIn(_)));
//! assert_eq!(cache.delete_pattern("greet*").await.unwrap(), 1);
//! # });
//! ```
//!
//! - Bounded in bytes (keys + values + a fixed per-entry overhead;
//!   [`DEFAULT_CAPACITY_BYTES`] unless configured), least recently used
//!   entries evicted first, evictions counted (unless
//!   `MokaConfig::count_evictions(false)`: counting costs about a third of a
//!   `set`, see its docs).
//! - Per-entry TTLs with Redis `SET` semantics: `set` replaces value and TTL;
//!   an entry is invisible from the instant it expires.
//! - [`MokaStore`] is the store (it implements `cache_store::Store`);
//!   [`MokaCache`] is the port over it, counted and optionally namespaced.
//!   Several namespaces can share one store (`MokaCache::namespaced`), and
//!   any layer of `cache_store::layer` composes over it through
//!   `cache_store::CacheBuilder`.
//! - Patterns through the port's shared Redis-glob matcher, so `keys` and
//!   `delete_pattern` answer exactly as Redis would.
//! - `clear` on a view without a namespace empties the whole store: the store
//!   belongs to this process, unlike a shared Redis database.
//! - Every write to a key runs under its stripe's lock (the store's own,
//!   256 stripes), so concurrent calls on one key behave as some serial
//!   order of them, as on Redis.

mod adapter;
mod config;
mod entry;
mod incr;

pub use adapter::{MokaCache, MokaStore};
pub use config::{MokaConfig, DEFAULT_CAPACITY_BYTES};
pub use entry::ENTRY_OVERHEAD;
