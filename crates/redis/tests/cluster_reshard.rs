//! Slots moved between cluster primaries under load (issue 15, item 3); the
//! load is in `cluster_load/mod.rs`.

use std::time::{Duration, Instant};

use cache_redis_harness::RedisCluster;

mod cluster_load;
use cluster_load::{adapter, seed, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_under_load_misses_no_key_and_loses_no_write() {
    let cluster = RedisCluster::start();
    let cache = adapter(&cluster, Duration::from_millis(3000)).await;
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
    let finished = load.finish(&cache).await;
    println!(
        "resharding 2000 slots took {moved:?}; {}",
        finished.summary()
    );
    let (errors, short) = (&finished.errors, &finished.short);
    // Calls in flight when fred rebuilds a node's connections after a MOVED
    // can go unanswered until the command timeout: for a single-key call
    // that is a typed, retryable timeout (`note` asserts it), the caller's
    // to retry. A walk (`keys`, `keys_stream`, `delete_pattern`) sends such
    // a step again (`walk_retry.rs`): it never fails for it. What must never
    // happen: a failed walk, a missed key or a lost write.
    assert!(
        errors.keys().all(|kind| kind.ends_with("Timeout")),
        "calls failed during resharding other than by a timeout: {errors:?}"
    );
    let walks: Vec<_> = errors
        .keys()
        .filter(|kind| {
            ["keys ", "keys_stream ", "delete_pattern "]
                .iter()
                .any(|w| kind.starts_with(w))
        })
        .collect();
    assert!(
        walks.is_empty(),
        "walks failed during resharding: {errors:?}"
    );
    assert!(short.is_empty(), "keys missed stable keys: {short:?}");
    finished.assert_none_lost();
}
