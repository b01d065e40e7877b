//! The whole conformance suite against the in-process adapter.

use std::sync::Arc;

use async_trait::async_trait;
use cache_conformance::{assert_conformance, Harness};
use cache_moka::MokaCache;
use cache_port::Cache;

/// Every adapter is a namespaced view of one shared store.
struct Moka(MokaCache);

#[async_trait]
impl Harness for Moka {
    fn name(&self) -> String {
        "cache-moka".into()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        Arc::new(self.0.namespaced(namespace).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moka_passes_the_conformance_suite() {
    let store = MokaCache::builder()
        .capacity_bytes(256 * 1024 * 1024)
        .max_value_len(1024 * 1024)
        .build()
        .unwrap();
    let report = assert_conformance(Arc::new(Moka(store))).await;
    assert_eq!(report.checked, cache_conformance::behaviours().len());
}
