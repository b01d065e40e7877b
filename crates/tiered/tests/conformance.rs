//! The whole conformance suite against the tiered adapter over an
//! in-process L2 (one instance; every behaviour a namespaced view of one
//! tiered store), unchanged. The Redis L2 runs it in cache-redis's
//! `tiered_conformance` test.

use std::sync::Arc;

use async_trait::async_trait;
use cache_conformance::{trials, Harness};
use cache_moka::{MokaConfig, MokaStore};
use cache_port::{Cache, CacheBuilder};
use cache_tiered::{TieredConfig, TieredStore};

struct Tiered(TieredStore<MokaStore>);

#[async_trait]
impl Harness for Tiered {
    fn name(&self) -> String {
        "cache-tiered over cache-moka".into()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        CacheBuilder::new(self.0.clone())
            .namespace(namespace)
            .unwrap()
            .build()
    }
}

fn main() {
    let l2 = MokaConfig::default()
        .capacity_bytes(256 * 1024 * 1024)
        .max_value_len(1024 * 1024)
        .build_store()
        .unwrap();
    let store = TieredConfig::default()
        .l1(MokaConfig::default().capacity_bytes(64 * 1024 * 1024))
        .build_store(l2, None)
        .unwrap();
    cache_conformance::main(trials("tiered-moka", Arc::new(Tiered(store))), ());
}
