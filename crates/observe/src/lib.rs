//! Observability for any cache stack: the metrics and tracing layers, the
//! names they record under, and how a key may appear in a span.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use cache_observe::{KeyField, MetricsLayer, TracingLayer};
//! use cache_port::{Cache, MockCache};
//! use cache_store::layer::CacheStore;
//! use cache_store::CacheBuilder;
//!
//! let mut store = MockCache::new(); // an adapter's store in production
//! store.expect_max_value_len().return_const(1024usize);
//! store.expect_get().returning(|_| Ok(None));
//! let cache = CacheBuilder::new(CacheStore::new(store))
//!     .layer(MetricsLayer::new("moka"))                          // durations, hits, errors
//!     .layer(TracingLayer::new("moka").keys(KeyField::Hashed))   // one span per operation
//!     .build();
//! assert_eq!(cache.get("cart:1").await?, None);
//! # Ok::<(), cache_port::CacheError>(())
//! # }).unwrap();
//! ```
//!
//! - [`Metered`] ([`MetricsLayer`]) records each operation through the
//!   [`metrics`](https://docs.rs/metrics) facade under the names in
//!   [`names`]; [`Traced`] ([`TracingLayer`]) opens one `tracing` span per
//!   operation and logs a failing backend once per interval.
//! - [`KeyField`]: keys are hidden from spans by default, hashed or cut
//!   short when asked.
//!
//! With no metrics recorder and no tracing subscriber installed, both are
//! no-ops. The loader and the tiered cache record their own figures
//! (`cache_loading::names`, `cache_tiered::names`); the log target, the
//! throttle and the key digest they all use are the port's
//! ([`cache_port::report`]).

mod key_field;
mod metered;
pub mod names;
mod traced;

pub use key_field::KeyField;
pub use metered::{Metered, MetricsLayer};
pub use traced::{Traced, TracingLayer};
