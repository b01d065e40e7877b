//! The store side of the cache port: what adapters implement, what layers
//! wrap, and the front that turns a stack of them into the port.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use cache_port::{Cache, MockCache};
//! use cache_store::layer::{CacheStore, FailOpenLayer};
//! use cache_store::CacheBuilder;
//! use mockall::predicate::eq;
//!
//! // An adapter's store in production (`cache_moka::MokaStore`,
//! // `cache_redis::RedisStore`); here any `Cache` as a store.
//! let mut store = MockCache::new();
//! store.expect_max_value_len().return_const(1024usize);
//! store.expect_get().with(eq("shop:cart:1")).returning(|_| Ok(None));
//!
//! let cache: Arc<dyn Cache> = CacheBuilder::new(CacheStore::new(store))
//!     .namespace("shop")?            // keys live under `shop:`
//!     .layer(FailOpenLayer::new())   // an outage reads as a miss
//!     .build();                      // counted, validated, boxed once
//! assert_eq!(cache.get("cart:1").await?, None);
//! # Ok::<(), cache_port::CacheError>(())
//! # }).unwrap();
//! ```
//!
//! What is here:
//! - [`Store`], what adapters implement: one generic, unboxed `call` over a
//!   [`Request`] of already validated inputs, answered by a [`Reply`]
//!   (`Store::get`, the one shortcut, for the hottest call).
//! - [`Front`], the one place that validates caller input and boxes a
//!   future; [`CacheBuilder`] composes a store, its [`layer`]s and the front
//!   at startup; [`View`] is the counted, namespaced stack adapters hand out.
//! - [`layer`]: the core layers (namespacing, stats counting, fail-open,
//!   optional layers, any `Cache` as a store) and the [`Layer`](layer::Layer)
//!   trait every layer, here or in another crate, implements.
//! - [`backplane`]: the port through which instances of a tiered cache tell
//!   each other what to drop ([`LocalBackplane`](backplane::LocalBackplane)
//!   within a process).
//! - [`StatsCounters`], the lock-free counters behind `stats()`, and
//!   [`redact_url`], the one URL redactor every adapter's errors and
//!   configurations use.
//!
//! Adapters depend on this crate and on `cache-port`, and on nothing else of
//! the toolkit's (`scripts/check-invariants.sh`). Domain code never needs
//! it: it sees `Arc<dyn Cache>`.

pub mod backplane;
mod builder;
mod counters;
mod front;
pub mod layer;
mod secret;
mod store;
pub mod write_log;

pub use builder::{CacheBuilder, View};
pub use counters::StatsCounters;
pub use front::{Front, DEFAULT_KEYS_LIMIT};
pub use secret::{is_secret_parameter, redact_url, shown_parameter_name};
pub use store::{unexpected_reply, Op, Reply, Request, Store, StoreKey};
