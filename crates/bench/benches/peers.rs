//! cache-redis, as a user configures it (`RedisConfig::from_url` defaults),
//! against the Rust clients a user would pick instead, each **with its own
//! defaults**, on the same self-started redis-server, in one run (issue 10):
//! redis-rs's `ConnectionManager` and multiplexed connection, and a fred
//! `Pool` of 4 with fred's defaults. `cargo bench -p cache-bench --bench peers`.
//!
//! "raw" is the peer, "port" is ours; a ratio above 1 means ours is faster.

use std::sync::Arc;

use bytes::Bytes;
use cache_bench::{compare, header, keys, leak, run_tasks, value, Plan, RedisPeers};
use cache_port::Cache;
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;
use fred::prelude::KeysInterface;
use redis::AsyncCommands;

const VALUE: usize = 100;
const KEYS: usize = 10_000;

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let plan = Plan::REDIS;
    let url = server.url();
    let (ours, uncoalesced, manager, multiplexed, fred_pool) = rt.block_on(async {
        let ours: Arc<dyn Cache> = Arc::new(
            RedisConfig::from_url(&url)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
        // The same without the one option that changes the hot path.
        let uncoalesced: Arc<dyn Cache> = Arc::new(
            RedisConfig::from_url(&format!("{url}?coalesce=false"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
        let RedisPeers {
            manager,
            multiplexed,
            fred: fred_pool,
        } = RedisPeers::connect(&url).await;
        (ours, uncoalesced, manager, multiplexed, fred_pool)
    });
    let hot = keys("hot", KEYS);
    rt.block_on(async {
        let items = hot.iter().map(|k| (k.clone(), value(VALUE))).collect();
        ours.set_many(items, None).await.unwrap();
    });
    let (ours, uncoalesced, hot, v) =
        (leak(ours), leak(uncoalesced), leak(hot), leak(value(VALUE)));
    let (manager, multiplexed, fred_pool) = (leak(manager), leak(multiplexed), leak(fred_pool));

    for (tasks, label, ours) in [
        (1usize, "defaults", ours),
        (64, "defaults", ours),
        (64, "coalesce=false", uncoalesced),
    ] {
        header(&format!(
            "cache-redis ({label}) vs peers with their defaults, concurrency {tasks}; target ≥ 1.0 at 64 on the defaults"
        ));
        // Issue 10's target is for the defaults; the other row shows them.
        let target = (tasks == 64 && label == "defaults").then_some(1.0);
        let our_get = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                assert!(ours.get(&hot[i % KEYS]).await.unwrap().is_some());
            })
        };
        let our_set = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                ours.set(&hot[i % KEYS], v.clone(), None).await.unwrap();
            })
        };
        compare(
            "get vs redis-rs ConnectionManager",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = manager.clone();
                    let got: Option<Vec<u8>> = c.get(&hot[i % KEYS]).await.unwrap();
                    assert!(got.is_some());
                })
            },
            our_get,
        );
        compare(
            "set vs redis-rs ConnectionManager",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = manager.clone();
                    let () = c.set(&hot[i % KEYS], v.as_ref()).await.unwrap();
                })
            },
            our_set,
        );
        compare(
            "get vs redis-rs multiplexed connection",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = multiplexed.clone();
                    let got: Option<Vec<u8>> = c.get(&hot[i % KEYS]).await.unwrap();
                    assert!(got.is_some());
                })
            },
            our_get,
        );
        compare(
            "get vs fred Pool(4), fred's defaults",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let got: Option<Bytes> = fred_pool.get(&hot[i % KEYS]).await.unwrap();
                    assert!(got.is_some());
                })
            },
            our_get,
        );
        compare(
            "set vs fred Pool(4), fred's defaults",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let () = fred_pool
                        .set(&hot[i % KEYS], v.clone(), None, None, false)
                        .await
                        .unwrap();
                })
            },
            our_set,
        );
    }
}
