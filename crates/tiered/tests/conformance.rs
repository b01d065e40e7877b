//! The whole conformance suite against the tiered adapter over an
//! in-process L2 (one instance; every behaviour a namespaced view of one
//! tiered store), unchanged. The Redis L2 runs it in `redis_conformance.rs`.

use std::sync::Arc;

use cache_conformance::{trials, ViewsOf};
use cache_moka::MokaConfig;
use cache_tiered::TieredConfig;

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
    let harness = ViewsOf::new("cache-tiered over cache-moka", move || {
        let store = store.clone();
        Box::pin(async move { store })
    });
    cache_conformance::main(trials("tiered-moka", Arc::new(harness)), ());
}
