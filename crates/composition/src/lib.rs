//! The composition root: picks the cache adapter from configuration at
//! startup and provides it through a shaku module as the port.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use cache_composition::{build_module, resolve_cache, CacheConfig};
//!
//! // CACHE_URL=redis://… switches this to Redis; unset, it is embedded moka.
//! let config = CacheConfig::from_lookup(|_| None).unwrap();
//! let module = build_module(&config).await.unwrap();
//! let cache = resolve_cache(&module); // Arc<dyn cache_port::Cache>
//! cache.set("hello", "world".into(), None).await.unwrap();
//! assert_eq!(cache.get("hello").await.unwrap().as_deref(), Some(&b"world"[..]));
//! # });
//! ```
//!
//! - [`CacheConfig`] reads `CACHE_URL` (or any URL): `memory://` / `moka://`
//!   with `capacity`, `max_value_len`, or a Redis URL, and for every adapter
//!   `namespace`, `fail_open`, `keys_limit`, `metrics`, `tracing` and
//!   `trace_keys`. Unknown schemes, unknown or bad options, and a Redis URL
//!   in a build without the `redis` feature are errors at startup.
//! - [`build_cache`] builds the stack with `cache_store::CacheBuilder`: the
//!   adapter's store, the namespace, the metrics and tracing layers and
//!   fail-open if asked for, the stats counters, and the front, boxed once.
//! - `serve_prometheus` (feature `prometheus`) installs a Prometheus
//!   recorder and serves its scrape endpoint (docs/OBSERVABILITY.md).
//! - [`build_module`] connects first (async), then builds the synchronous
//!   shaku [`CacheModule`], whose [`CacheComponent`] hands out the cache.
//! - Applications inject the cache into their own shaku components with
//!   `CacheModule` as a submodule; [`resolve_cache`] hands it out directly.

mod config;
mod module;

/// Guides from `docs/`, included here so that every example in them is
/// compiled and run as a doctest.
pub mod guides {
    #[doc = include_str!("../../../docs/LOADING.md")]
    pub mod loading {}

    #[cfg(feature = "prometheus")]
    #[doc = include_str!("../../../docs/OBSERVABILITY.md")]
    pub mod observability {}
}

#[cfg(feature = "prometheus")]
mod prometheus;
pub use config::{AdapterConfig, CacheConfig, Observe, TierCoherence, TierConfig, CACHE_URL_VAR};
pub use module::{
    build_cache, build_module, module_with, resolve_cache, CacheComponent, CacheModule,
    SelectedCache, SelectedCacheParameters,
};
#[cfg(feature = "prometheus")]
pub use prometheus::{prometheus_builder, serve_prometheus, DURATION_BUCKETS};

/// Builds the adapter `CACHE_URL` names (the embedded default when unset).
pub async fn cache_from_env() -> cache_port::Result<std::sync::Arc<dyn cache_port::Cache>> {
    build_cache(&CacheConfig::from_env()?).await
}
