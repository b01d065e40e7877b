//! Round trips of batches on a cluster (issue 15, item 3): `get_many`,
//! `set_many` and `delete_many` reach each node in one round trip, not one
//! per key.
//! Counted on the servers: `total_reads_processed` (`INFO stats`) is the
//! number of read events a server handled, one per request that arrives
//! (a pipeline arrives in one read on loopback).

use std::time::Duration;

use cache_port::Cache;
use cache_redis::RedisConfig;
use cache_redis_harness::{RedisCluster, RedisServer};

fn reads(node: &RedisServer) -> u64 {
    node.command("INFO stats")
        .lines()
        .find_map(|l| l.trim().strip_prefix("total_reads_processed:"))
        .map(|n| n.trim().parse().unwrap())
        .expect("INFO stats has total_reads_processed")
}

/// The read events each node handled while `work` ran, less what reading
/// the counter itself costs (measured the same way with no work).
async fn reads_during<F: std::future::Future<Output = ()>>(
    cluster: &RedisCluster,
    work: F,
) -> Vec<u64> {
    let idle: Vec<u64> = {
        let before: Vec<u64> = cluster.nodes().iter().map(reads).collect();
        let after: Vec<u64> = cluster.nodes().iter().map(reads).collect();
        after.iter().zip(&before).map(|(a, b)| a - b).collect()
    };
    let before: Vec<u64> = cluster.nodes().iter().map(reads).collect();
    work.await;
    let after: Vec<u64> = cluster.nodes().iter().map(reads).collect();
    after
        .iter()
        .zip(&before)
        .zip(&idle)
        .map(|((a, b), i)| a - b - i)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_make_one_round_trip_per_node_not_per_key() {
    let cluster = RedisCluster::start();
    let config = RedisConfig::from_url(&cluster.url())
        .unwrap()
        .namespace("rt")
        .pool_size(1)
        .command_timeout(Duration::from_secs(5));
    let cache = config.connect().await.unwrap();
    let keys: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
    let items: Vec<(String, bytes::Bytes)> = keys.iter().map(|k| (k.clone(), "v".into())).collect();
    // Warm fred's connections to every node.
    cache.set_many(items.clone(), None).await.unwrap();

    let set_many = reads_during(&cluster, async {
        cache.set_many(items.clone(), None).await.unwrap();
    })
    .await;
    let get_many = reads_during(&cluster, async {
        let values = cache.get_many(&keys).await.unwrap();
        assert!(values.iter().all(Option::is_some));
    })
    .await;
    let delete_many = reads_during(&cluster, async {
        assert_eq!(cache.delete_many(&keys).await.unwrap(), 100);
    })
    .await;
    cache.set_many(items.clone(), None).await.unwrap();
    let one_by_one = reads_during(&cluster, async {
        for key in &keys {
            cache.get(key).await.unwrap();
        }
    })
    .await;
    println!(
        "read events per node for 100 keys over 3 primaries: set_many {set_many:?}, get_many {get_many:?}, delete_many {delete_many:?}, 100 gets {one_by_one:?}"
    );
    for (name, per_node) in [
        ("set_many", &set_many),
        ("get_many", &get_many),
        ("delete_many", &delete_many),
    ] {
        // One per node when fred writes the whole batch before flushing
        // (measured: [1, 1, 1]); a few more when its writer drains the
        // queue while the batch is still being queued. One per key would be
        // about 33 per node.
        assert!(
            per_node.iter().all(|n| *n <= 8),
            "{name}: a few read events per node, not one per key: {per_node:?}"
        );
        assert!(
            per_node.iter().sum::<u64>() >= 3,
            "{name} reached every node: {per_node:?}"
        );
    }
    assert!(one_by_one.iter().sum::<u64>() >= 100, "{one_by_one:?}");
}

/// On one server: `get_many` is one `MGET`, and `set_many` one script call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_server_a_batch_is_one_round_trip() {
    let server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url())
        .unwrap()
        .namespace("rt")
        .pool_size(1);
    let cache = config.connect().await.unwrap();
    let items: Vec<(String, bytes::Bytes)> =
        (0..100).map(|i| (format!("k{i}"), "v".into())).collect();
    let keys: Vec<String> = items.iter().map(|(k, _)| k.clone()).collect();
    cache.set_many(items.clone(), None).await.unwrap();
    let count = || reads(&server);
    let idle = {
        let before = count();
        count() - before
    };
    let before = count();
    cache.set_many(items, None).await.unwrap();
    let set_many = count() - before - idle;
    let before = count();
    assert!(cache
        .get_many(&keys)
        .await
        .unwrap()
        .iter()
        .all(Option::is_some));
    let get_many = count() - before - idle;
    println!("read events on one server for 100 keys: set_many {set_many}, get_many {get_many}");
    // One script call (one `EVALSHA`, or `EVALSHA` + `SCRIPT LOAD` + `EVALSHA`
    // the first time, done in the warm-up above). One per key would be 100.
    assert!(set_many <= 1, "set_many: {set_many}");
    assert!(get_many <= 1, "get_many: {get_many}");
}

/// The calls of `command` a node has run (`INFO commandstats`).
fn calls(node: &RedisServer, command: &str) -> u64 {
    node.calls(&[command])
}

/// Issue 23, item 2: on a cluster, `get_many` of keys in one hash slot is
/// one `MGET` (one snapshot, one command), where it was one `GET` per key;
/// keys of several slots take one `MGET` per slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_get_many_within_one_slot_is_one_mget() {
    let cluster = RedisCluster::start();
    let config = RedisConfig::from_url(&cluster.url())
        .unwrap()
        .pool_size(1)
        .command_timeout(Duration::from_secs(5));
    let cache = config.connect().await.unwrap();
    // One hash tag: one slot, one node.
    let keys: Vec<String> = (0..100).map(|i| format!("{{user:7}}:k{i}")).collect();
    let items = keys.iter().map(|k| (k.clone(), "v".into())).collect();
    cache.set_many(items, None).await.unwrap();
    let count = |command: &str| -> u64 { cluster.nodes().iter().map(|n| calls(n, command)).sum() };
    let (gets, mgets) = (count("get"), count("mget"));
    let values = cache.get_many(&keys).await.unwrap();
    assert!(values.iter().all(Option::is_some));
    let (gets, mgets) = (count("get") - gets, count("mget") - mgets);
    println!("get_many of 100 keys in one slot: {mgets} MGET, {gets} GET");
    assert_eq!((mgets, gets), (1, 0), "one MGET for one slot, no GET");
    // Three slots, 10 keys each: three MGETs.
    let keys: Vec<String> = (0..30).map(|i| format!("{{t{}}}:k{i}", i % 3)).collect();
    let before = count("mget");
    cache.get_many(&keys).await.unwrap();
    assert_eq!(count("mget") - before, 3, "one MGET per slot");
}
