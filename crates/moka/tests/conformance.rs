//! The whole conformance suite against the in-process adapter, one named
//! trial per behaviour (`cargo test -p cache-moka --test conformance incr_`).

use std::sync::Arc;

use cache_conformance::{trials, ViewsOf};
use cache_moka::MokaConfig;

fn main() {
    let store = MokaConfig::default()
        .capacity_bytes(256 * 1024 * 1024)
        .max_value_len(1024 * 1024)
        .build_store()
        .unwrap();
    // Every adapter is a namespaced view of one shared store.
    let harness = ViewsOf::new("cache-moka", move || {
        let store = store.clone();
        Box::pin(async move { store })
    });
    cache_conformance::main(trials("moka", Arc::new(harness)), ());
}
