//! A `get` hit on the in-process adapter through `Arc<dyn Cache>` allocates
//! once: the front's boxed future. moka's lookup and every layer allocate
//! nothing; a namespace neither: the prefixed key is built in a buffer the
//! thread reuses (`Store::get_now`), where it was a new `String` a read.

use std::alloc::System;
use std::sync::{Arc, Mutex};

use cache_moka::MokaConfig;
use cache_port::Cache;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The allocator's figures are process-wide: one measurement at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const CALLS: usize = 20_000;

/// Allocations per `get` hit, over `CALLS` hits on a current-thread runtime.
fn allocations_per_hit(namespace: Option<&str>) -> f64 {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut config = MokaConfig::default();
    if let Some(ns) = namespace {
        config = config.namespace(ns);
    }
    let cache: Arc<dyn Cache> = Arc::new(config.build().unwrap());
    rt.block_on(async {
        cache.set("k", "v".into(), None).await.unwrap();
        cache.get("k").await.unwrap();
        let region = Region::new(GLOBAL);
        for _ in 0..CALLS {
            assert!(cache.get("k").await.unwrap().is_some());
        }
        region.change().allocations as f64 / CALLS as f64
    })
}

/// Allocations per `get` hit on the raw moka cache the store runs on: its
/// own bookkeeping (now and then its maintenance allocates), which the
/// adapter cannot avoid.
fn raw_allocations_per_hit() -> f64 {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let raw: moka::sync::Cache<String, bytes::Bytes> = moka::sync::Cache::new(1000);
    raw.insert("k".into(), "v".into());
    raw.get("k").unwrap();
    let region = Region::new(GLOBAL);
    for _ in 0..CALLS {
        assert!(raw.get("k").is_some());
    }
    region.change().allocations as f64 / CALLS as f64
}

#[test]
fn a_get_hit_allocates_its_boxed_future_and_nothing_else_of_ours() {
    let ours = allocations_per_hit(None);
    let namespaced = allocations_per_hit(Some("shop"));
    let raw = raw_allocations_per_hit();
    println!("allocations per get hit: ours {ours}, namespaced {namespaced}, raw moka {raw}");
    // moka's own bookkeeping allocates now and then (about 0.01 per get
    // here); what we add is exactly the boxed future, namespace or not.
    assert!((ours - raw - 1.0).abs() < 0.05, "ours {ours}, raw {raw}");
    assert!(
        (namespaced - raw - 1.0).abs() < 0.05,
        "namespaced {namespaced}, raw {raw}"
    );
}
