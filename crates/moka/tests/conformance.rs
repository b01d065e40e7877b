//! The whole conformance suite against the in-process adapter, one named
//! trial per behaviour (`cargo test -p cache-moka --test conformance incr_`).

use std::sync::Arc;

use async_trait::async_trait;
use cache_conformance::{trials, Harness};
use cache_moka::{MokaConfig, MokaStore};
use cache_port::{Cache, CacheBuilder};

/// Every adapter is a namespaced view of one shared store.
struct Moka(MokaStore);

#[async_trait]
impl Harness for Moka {
    fn name(&self) -> String {
        "cache-moka".into()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        CacheBuilder::new(self.0.clone())
            .namespace(namespace)
            .unwrap()
            .build()
    }
}

fn main() {
    let store = MokaConfig::default()
        .capacity_bytes(256 * 1024 * 1024)
        .max_value_len(1024 * 1024)
        .build_store()
        .unwrap();
    cache_conformance::main(trials("moka", Arc::new(Moka(store))), ());
}
