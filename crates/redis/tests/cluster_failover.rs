//! A cluster primary killed under load (issue 15, item 3); the load is in
//! `cluster_load/mod.rs`.

use std::time::{Duration, Instant};

use cache_redis_harness::RedisCluster;

mod cluster_load;
use cluster_load::{adapter, seed, start_load};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_killed_under_load_is_replaced_by_its_replica() {
    let mut cluster = RedisCluster::start_with(1, Some(1000));
    let cache = adapter(&cluster, Duration::from_millis(1000)).await;
    seed(&cache).await;
    let load = start_load(&cache);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = cluster.primary_ports()[0];
    let killed = Instant::now();
    cluster.node_mut(victim).kill();
    // Until every kind of call has worked for 2 s in a row.
    let mut calm_since = Instant::now();
    let mut seen = 0;
    loop {
        let now_errors: usize = load.errors.lock().unwrap().values().sum();
        if now_errors != seen {
            seen = now_errors;
            calm_since = Instant::now();
        }
        if calm_since.elapsed() > Duration::from_secs(2)
            && killed.elapsed() > Duration::from_secs(3)
        {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(40),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = calm_since - killed;
    let finished = load.finish(&cache).await;
    println!(
        "cluster primary killed: errors stopped {recovered:?} after the kill; {}",
        finished.summary()
    );
    assert_eq!(cluster.primary_ports().len(), 3, "a replica was promoted");
    finished.assert_none_lost();
}
