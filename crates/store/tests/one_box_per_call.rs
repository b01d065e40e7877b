//! Through `Arc<dyn Cache>`, a call costs one allocation, its boxed future,
//! however many layers the stack has: the front boxes once, the layers and
//! the store are one unboxed future inside it. Counted with a global
//! allocator over a store that itself allocates nothing.

use std::alloc::System;
use std::sync::Arc;

use cache_port::{Cache, Result};
use cache_store::layer::FailOpenLayer;
use cache_store::{CacheBuilder, Reply, Request, Store};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Answers every `get` with a hit on a shared value, allocating nothing.
struct Hit(bytes::Bytes);

impl Store for Hit {
    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        Ok(match request {
            Request::Get { .. } => Reply::Value(Some(self.0.clone())),
            Request::Exists { .. } => Reply::Flag(true),
            _ => Reply::Done,
        })
    }
    fn max_value_len(&self) -> usize {
        1024
    }
}

/// Allocations made by `CALLS` hits through `cache`.
fn allocations_of_gets(build: impl FnOnce() -> Arc<dyn Cache>) -> u64 {
    let cache = build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        cache.get("warm-up").await.unwrap();
        let region = Region::new(GLOBAL);
        for _ in 0..CALLS {
            let hit = cache.get("k").await.unwrap();
            assert!(hit.is_some());
        }
        region.change().allocations as u64
    })
}

const CALLS: u64 = 1000;

/// One test, on the main thread, without libtest's harness (Cargo.toml:
/// `harness = false`): the allocator's figures are process-wide, and a
/// second thread (a test thread, or the harness reporting it) could
/// allocate during the measurement.
fn main() {
    a_get_allocates_its_boxed_future_and_a_namespace_its_key();
    println!("test a_get_allocates_its_boxed_future_and_a_namespace_its_key ... ok");
    println!();
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}

fn a_get_allocates_its_boxed_future_and_a_namespace_its_key() {
    // Layers: fail-open, counted (added by build), the front.
    let plain = allocations_of_gets(|| {
        CacheBuilder::new(Hit(bytes::Bytes::from_static(b"v")))
            .layer(FailOpenLayer::new())
            .build()
    });
    let namespaced = allocations_of_gets(|| {
        CacheBuilder::new(Hit(bytes::Bytes::from_static(b"v")))
            .namespace("shop")
            .unwrap()
            .layer(FailOpenLayer::new())
            .build()
    });
    assert_eq!(plain, CALLS, "one boxed future per get, nothing else");
    assert_eq!(
        namespaced,
        2 * CALLS,
        "the boxed future and the key `shop:k`"
    );
}
