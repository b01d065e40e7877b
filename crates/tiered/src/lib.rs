//! The tiered adapter: an in-process L1 (moka) over an L2 (any store of the
//! port; Redis in production), L2 the authority, many instances kept
//! coherent through a backplane: Redis client tracking
//! (`cache_redis::RedisTracking`, which sees every write Redis sees) or
//! Redis pub/sub (`cache_redis::RedisBackplane`, the tiered caches' own
//! writes only).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use cache_moka::MokaConfig;
//! use cache_store::backplane::{Backplane, LocalBackplane};
//! use cache_port::Cache;
//! use cache_tiered::TieredConfig;
//!
//! // Two instances over one L2, told of each other's writes.
//! let l2 = MokaConfig::default().build_store().unwrap();
//! let backplane: Arc<dyn Backplane> = Arc::new(LocalBackplane::new());
//! let a = TieredConfig::default().build(l2.clone(), Some(backplane.clone())).unwrap();
//! let b = TieredConfig::default().build(l2, Some(backplane)).unwrap();
//! tokio::time::sleep(std::time::Duration::from_millis(50)).await; // heartbeats start
//! a.set("price", "10".into(), None).await.unwrap();
//! assert_eq!(b.get("price").await.unwrap().as_deref(), Some(&b"10"[..])); // b's L1 now holds it
//! a.set("price", "12".into(), None).await.unwrap(); // b is told to drop it
//! tokio::time::sleep(std::time::Duration::from_millis(20)).await;
//! assert_eq!(b.get("price").await.unwrap().as_deref(), Some(&b"12"[..]));
//! # });
//! ```
//!
//! What it guarantees, and what the tests measure, is in docs/SEMANTICS.md
//! ("Tiered") and `crates/tiered/tests/`.

mod coherence;
mod config;
mod listener;
pub mod names;
mod reads;
mod refresh;
mod store;
mod touch;
mod writes;

pub use config::TieredConfig;
pub use store::{TieredFigures, TieredStore};

/// The port over a tiered store: counted, optionally namespaced.
pub type TieredCache<L2> = cache_store::View<TieredStore<L2>>;
