//! The shaku module that provides the selected cache, and the stack it builds.

use std::sync::Arc;

use cache_observe::{MetricsLayer, TracingLayer};
use cache_port::{Cache, Result};
use cache_store::layer::FailOpenLayer;
use cache_store::{CacheBuilder, Store};
use shaku::{Component, HasComponent, Interface};

#[cfg(feature = "redis")]
use crate::config::TierCoherence;
use crate::config::{AdapterConfig, CacheConfig};

/// The cache as a shaku interface: components that need a cache declare
/// `#[shaku(inject)] cache: Arc<dyn CacheComponent>` and call
/// [`cache`](CacheComponent::cache) for the port. Only this crate names
/// shaku: the port and the adapters do not know it.
///
/// It hands out the built `Arc<dyn Cache>` itself rather than being a
/// `Cache`, so that a call through an injected cache costs the same one boxed
/// future as any other: a wrapper implementing the port would box again.
pub trait CacheComponent: Interface {
    /// The configured cache.
    fn cache(&self) -> Arc<dyn Cache>;
}

/// The one cache component: the stack built at startup. Without parameters
/// it is a fresh embedded moka store, the default.
#[derive(Component)]
#[shaku(interface = CacheComponent)]
pub struct SelectedCache {
    /// The cache built from the configuration.
    #[shaku(default = CacheBuilder::new(cache_moka::MokaStore::default()).build())]
    cache: Arc<dyn Cache>,
}

impl CacheComponent for SelectedCache {
    fn cache(&self) -> Arc<dyn Cache> {
        Arc::clone(&self.cache)
    }
}

mod generated {
    // shaku's macro takes no doc attribute; the re-export below carries the docs.
    #![allow(missing_docs)]
    use super::SelectedCache;

    shaku::module! {
        pub CacheModule {
            components = [SelectedCache],
            providers = []
        }
    }
}

/// Provides [`CacheComponent`]. Use it as a submodule of an application's own
/// module to inject the cache into its components.
pub use generated::CacheModule;

/// Builds (and, for Redis, connects) the configured cache: the adapter's
/// store, the namespace layer, fail-open when asked for, the stats layer and
/// the front (with the keys limit), boxed once.
///
/// Connecting is async and happens here, before any module is built:
/// shaku's `build` is synchronous.
pub async fn build_cache(config: &CacheConfig) -> Result<Arc<dyn Cache>> {
    Ok(match config.adapter_config() {
        AdapterConfig::Memory(c) => stack(c.build_store()?, config, "moka"),
        #[cfg(feature = "redis")]
        AdapterConfig::Redis(c) => {
            let l2 = cache_redis::RedisStore::connect(c).await?;
            match config.tier() {
                None => stack(l2, config, "redis"),
                Some(tier) => {
                    let backplane: Arc<dyn cache_store::backplane::Backplane> =
                        match tier.coherence_over(c) {
                            TierCoherence::PubSub => {
                                cache_redis::RedisBackplane::connect(c, &tier.channel).await?
                            }
                            _ => {
                                let prefix = config.namespace_ref().map_or("", |n| n.prefix());
                                cache_redis::RedisTracking::connect(c, prefix).await?
                            }
                        };
                    let tiered = cache_tiered::TieredConfig::default()
                        .l1(cache_moka::MokaConfig::default().capacity_bytes(tier.l1_bytes))
                        .l1_max_ttl(tier.l1_max_ttl)
                        .refresh_after_invalidation(tier.refresh)
                        .build_store(l2, Some(backplane))?;
                    stack(tiered, config, "tiered")
                }
            }
        }
    })
}

/// The configured layers over `store`, in their one order: namespace
/// innermost, then metrics and tracing (so they see the store's own
/// answers: an outage shows as errors even when reads fail open), then
/// fail-open, then the stats counters (added by `build`), so that a
/// failed-open read is counted by `stats()` as the miss it answered.
fn stack<S: Store>(store: S, config: &CacheConfig, system: &'static str) -> Arc<dyn Cache> {
    let observe = config.observe();
    let namespace = config.namespace_ref();
    let metrics = observe
        .metrics
        .then(|| MetricsLayer::new(system).in_namespace(namespace));
    let tracing = observe.tracing.then(|| {
        TracingLayer::new(system)
            .in_namespace(namespace)
            .keys(observe.trace_keys)
    });
    CacheBuilder::new(store)
        .keys_limit(config.keys_limit())
        .in_namespace(namespace.cloned())
        .layer(metrics)
        .layer(tracing)
        .layer(config.fail_open().then(FailOpenLayer::new))
        .build()
}

/// Builds the configured cache and a [`CacheModule`] that provides it.
pub async fn build_module(config: &CacheConfig) -> Result<CacheModule> {
    let cache = build_cache(config).await?;
    Ok(module_with(cache))
}

/// A [`CacheModule`] providing `cache` (for tests, or a cache built by hand).
pub fn module_with(cache: Arc<dyn Cache>) -> CacheModule {
    CacheModule::builder()
        .with_component_parameters::<SelectedCache>(SelectedCacheParameters { cache })
        .build()
}

/// The cache a module provides, as the port.
pub fn resolve_cache(module: &impl HasComponent<dyn CacheComponent>) -> Arc<dyn Cache> {
    let component: Arc<dyn CacheComponent> = module.resolve();
    component.cache()
}
