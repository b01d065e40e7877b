//! The shaku module that provides the selected adapter as the port.

use std::sync::Arc;

use cache_moka::MokaCache;
use cache_port::{delegate_cache, Cache, Result};
use shaku::{Component, HasComponent, Interface};

use crate::config::CacheConfig;

/// The port as a shaku interface: components that need a cache declare
/// `#[shaku(inject)] cache: Arc<dyn CacheComponent>`, and can hand it on as
/// an `Arc<dyn Cache>` (trait upcasting). Only this crate names shaku: the
/// port and the adapters do not know it.
pub trait CacheComponent: Cache + Interface {}

impl<T: Cache + Interface> CacheComponent for T {}

/// The one cache component: the adapter chosen at startup. Built from its
/// parameters, never from scratch; without parameters it is a fresh embedded
/// moka store, the default.
#[derive(Component)]
#[shaku(interface = CacheComponent)]
pub struct SelectedCache {
    /// The adapter built from the configuration.
    #[shaku(default = Arc::new(MokaCache::new()))]
    cache: Arc<dyn Cache>,
}

delegate_cache!(impl[] SelectedCache => |this| this.cache);

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

/// Builds (and, for Redis, connects) the configured adapter.
///
/// Connecting is async and happens here, before the module is built:
/// shaku's `build` is synchronous.
pub async fn build_cache(config: &CacheConfig) -> Result<Arc<dyn Cache>> {
    Ok(match config {
        CacheConfig::Memory(c) => Arc::new(c.clone().build()?),
        #[cfg(feature = "redis")]
        CacheConfig::Redis(c) => Arc::new(cache_redis::RedisCache::connect(c.clone()).await?),
    })
}

/// Builds the configured adapter and a [`CacheModule`] that provides it.
pub async fn build_module(config: &CacheConfig) -> Result<CacheModule> {
    let cache = build_cache(config).await?;
    Ok(module_with(cache))
}

/// A [`CacheModule`] providing `cache` (for tests, or an adapter built by hand).
pub fn module_with(cache: Arc<dyn Cache>) -> CacheModule {
    CacheModule::builder()
        .with_component_parameters::<SelectedCache>(SelectedCacheParameters { cache })
        .build()
}

/// The cache a module provides, as the port.
pub fn resolve_cache(module: &impl HasComponent<dyn CacheComponent>) -> Arc<dyn Cache> {
    let component: Arc<dyn CacheComponent> = module.resolve();
    component
}
