//! Slots moved between cluster primaries under load (issue 15, item 3); the
//! load is in `cluster_load/mod.rs`.

use std::time::{Duration, Instant};

use cache_redis_harness::RedisCluster;

mod cluster_load;
use cluster_load::{adapter, lost, seed, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_under_load_misses_no_key_and_fails_no_call() {
    let cluster = RedisCluster::start();
    let cache = adapter(&cluster).await;
    seed(&cache).await;
    let load = start_load(&cache);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let primaries = cluster.primary_ports();
    let started = Instant::now();
    let moved = {
        let (from, to) = (primaries[0], primaries[1]);
        let cluster = &cluster;
        tokio::task::block_in_place(|| cluster.reshard(from, to, 2000));
        started.elapsed()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (acked, errors, listings, short) = load.stop().await;
    let lost = lost(&cache, &acked).await;
    println!(
        "resharding 2000 slots took {moved:?}; errors by kind {errors:?}; {} writes acknowledged, \
         {} lost; {listings} keys listings, {} short ({short:?})",
        acked.len(),
        lost.len(),
        short.len()
    );
    assert!(
        errors.is_empty(),
        "calls failed during resharding: {errors:?}"
    );
    assert!(short.is_empty(), "keys missed stable keys: {short:?}");
    assert!(
        lost.is_empty(),
        "lost acknowledged writes: {:?}",
        &lost[..lost.len().min(5)]
    );
}
