//! Issue 23, item 1: a cache dropped by its last handle gives back what it
//! took. A service that rebuilds its cache on a configuration reload, a test
//! suite, or a multi-tenant process builds and drops many: each dropped Redis
//! or tiered cache used to leave 4 client connections open and 5 tasks alive,
//! reconnecting after every `CLIENT KILL`.
//!
//! For each kind (memory, Redis, tiered, Sentinel, Cluster): 100 caches built
//! from URLs, each used once and dropped; then the servers' clients
//! (`CLIENT LIST`), this process's open sockets and tokio's alive tasks must
//! come back to what they were before, within 5 s. `close()` waits for it.

use std::time::{Duration, Instant};

use cache_composition::{build_cache, CacheConfig};
use cache_redis_harness::{open_sockets, RedisCluster, RedisSentinel, RedisServer};

/// How long a dropped cache may take to give everything back.
const WITHIN: Duration = Duration::from_secs(5);
const CACHES: usize = 100;

/// What a process and its servers hold at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd)]
struct Held {
    clients: usize,
    sockets: usize,
    tasks: usize,
}

/// Clients connected to each of `servers` (less the one asking).
fn clients(servers: &[&RedisServer]) -> usize {
    servers
        .iter()
        .map(|s| {
            s.command("CLIENT LIST")
                .lines()
                .filter(|l| l.contains("id="))
                .count()
                - 1
        })
        .sum()
}

fn held(servers: &[&RedisServer]) -> Held {
    Held {
        clients: clients(servers),
        sockets: open_sockets(),
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    }
}

/// Waits until what is held is back to `baseline` (or below), or fails
/// after [`WITHIN`] saying what stayed.
async fn back_to(baseline: Held, servers: &[&RedisServer], what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let now = held(servers);
        if now.clients <= baseline.clients
            && now.sockets <= baseline.sockets
            && now.tasks <= baseline.tasks
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WITHIN,
            "{CACHES} dropped {what} caches still hold {now:?} after {WITHIN:?} (before: {baseline:?})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Builds, uses once and drops `CACHES` caches of `url`, then waits for
/// everything to come back.
async fn build_and_drop(url: &str, servers: &[&RedisServer], what: &str) {
    let config = CacheConfig::from_url(url).unwrap();
    // One cache first, so that what a first connection warms up once per
    // process (fred's and tokio's own lazily started parts) is in the baseline.
    let warm = build_cache(&config).await.unwrap();
    warm.set("k", "v".into(), None).await.unwrap();
    warm.close().await.unwrap();
    drop(warm);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = held(servers);
    for i in 0..CACHES {
        let cache = build_cache(&config).await.unwrap();
        cache.set(&format!("k{i}"), "v".into(), None).await.unwrap();
        drop(cache);
    }
    let took = back_to(baseline, servers, what).await;
    println!("{what}: {CACHES} caches dropped, back to {baseline:?} within {took:?}");
    // An explicit close waits until the connections are gone.
    let cache = build_cache(&config).await.unwrap();
    cache.set("k", "v".into(), None).await.unwrap();
    cache.close().await.unwrap();
    let closed = held(servers);
    assert!(
        closed.sockets <= baseline.sockets,
        "{what}: close() returned with {closed:?} held (before: {baseline:?})"
    );
    assert!(
        cache.get("k").await.is_err() || what == "memory",
        "{what}: a closed cache still answered"
    );
    drop(cache);
    back_to(baseline, servers, what).await;
}

/// One test for every kind, one kind after another: the open sockets are
/// counted process-wide, so nothing else of this binary may run meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_caches_of_every_kind_give_everything_back() {
    build_and_drop("memory://?capacity=1MiB", &[], "memory").await;

    let server = RedisServer::start();
    build_and_drop(&format!("{}/0", server.url()), &[&server], "redis").await;
    let tiered = format!("{}/0?l1=1MiB", server.url());
    build_and_drop(&tiered, &[&server], "tiered").await;
    drop(server);

    let mut sentinel = RedisSentinel::start();
    let url = sentinel.url();
    let primary: &RedisServer = sentinel.primary();
    build_and_drop(&url, &[primary], "sentinel").await;
    drop(sentinel);

    let cluster = RedisCluster::start();
    let nodes: Vec<&RedisServer> = cluster.nodes().iter().collect();
    build_and_drop(&cluster.url(), &nodes, "cluster").await;
}
