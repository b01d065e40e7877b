//! The whole conformance suite through the tagged view as a cache port
//! (`impl Cache for TaggedCache`, no tag rule) over moka: whatever reaches
//! a cache through the view (a `Loader`, `CacheExt`) gets the contract's
//! answers, and the `tags::*` behaviours run on a view over the view.

use std::sync::Arc;

use async_trait::async_trait;
use cache_conformance::{trials, Capability, Harness, ViewsOf};
use cache_moka::{MokaConfig, MokaStore};
use cache_port::Cache;
use cache_tags::TaggedCache;

struct ThroughTheView(ViewsOf<MokaStore>);

#[async_trait]
impl Harness for ThroughTheView {
    fn name(&self) -> String {
        "cache-tags over cache-moka".into()
    }

    fn capabilities(&self) -> &'static [Capability] {
        self.0.capabilities()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        Arc::new(TaggedCache::new(self.0.build(namespace).await))
    }
}

fn main() {
    let store = MokaConfig::default()
        .capacity_bytes(256 * 1024 * 1024)
        .max_value_len(1024 * 1024)
        .build_store()
        .unwrap();
    let views = ViewsOf::new("cache-moka", move || {
        let store = store.clone();
        Box::pin(async move { store })
    });
    cache_conformance::main(trials("tagged-view", Arc::new(ThroughTheView(views))), ());
}
