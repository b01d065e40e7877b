//! Issue 28's write-behind costs, in one run: what a durable write
//! (`DurableWriteBehind::write`: one script on Redis appending to the
//! Stream, then the cache's `set`, moka here) costs against
//! - a raw `XADD` of the same fields with redis-rs's multiplexed
//!   connection, its defaults (what a user appending to a Stream by hand
//!   pays, without the capacity check, the cache or the flusher), and
//! - the in-process `WriteBehind::write` (what durability costs),
//!
//! at 1 and 64 tasks, 100-byte values over 10,000 keys. Both write-behinds
//! flush to a repository that takes every batch at once, while the bench
//! runs (the durable one's flusher reads and acknowledges on the same
//! server).
//!
//! `cargo bench -p cache-bench --bench write_behind`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_bench::{compare, header, leak, run_tasks, Plan, RedisPeers};
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_recipes::{
    DurableConfig, DurableWriteBehind, Repository, WriteBehind, WriteBehindConfig,
};
use cache_redis::{RedisConfig, RedisWriteLog};
use cache_redis_harness::RedisServer;

const KEYS: usize = 10_000;

/// A repository that takes everything at once.
struct Sink;

#[async_trait]
impl Repository for Sink {
    type Error = std::io::Error;

    async fn save_many(&self, _: &[(String, Bytes)]) -> Result<(), std::io::Error> {
        Ok(())
    }
}

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let url = server.url();
    let keys = leak((0..KEYS).map(|i| format!("order:{i}")).collect::<Vec<_>>());
    let value = leak(Bytes::from(vec![b'v'; 100]));
    let (durable, in_process, peers) = rt.block_on(async {
        let moka = || -> Arc<dyn Cache> { Arc::new(MokaConfig::default().build().unwrap()) };
        let log = RedisWriteLog::connect(&RedisConfig::from_url(&url).unwrap(), "bench")
            .await
            .unwrap();
        // The default batch (1,000): see DurableConfig's default.
        let config = DurableConfig {
            delay: Duration::from_millis(10),
            capacity: 1_000_000,
            ..DurableConfig::default()
        };
        let durable = DurableWriteBehind::new(Arc::new(Sink), moka(), log, config);
        let in_process = WriteBehind::new(
            Arc::new(Sink),
            moka(),
            WriteBehindConfig {
                delay: Duration::from_millis(10),
                capacity: 1_000_000,
                ..WriteBehindConfig::default()
            },
        );
        (durable, in_process, RedisPeers::connect(&url).await)
    });
    let (durable, in_process) = (leak(durable), leak(in_process));
    let multiplexed = leak(peers.multiplexed);

    for tasks in [1usize, 64] {
        let rt = &rt;
        let ours = |n| {
            run_tasks(rt, tasks, n, move |i| async move {
                durable
                    .write(&keys[i % KEYS], value.clone(), None)
                    .await
                    .unwrap();
            })
        };
        header(&format!(
            "write-behind, {tasks} task(s): ours = DurableWriteBehind::write (Redis Stream + moka)"
        ));
        compare(
            &format!("durable write vs raw XADD (redis-rs multiplexed), {tasks} task(s)"),
            Plan::REDIS,
            None,
            |n| {
                run_tasks(rt, tasks, n, move |i| async move {
                    let mut c = multiplexed.clone();
                    let _: String = redis::cmd("XADD")
                        .arg("raw:{bench}:writes")
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(100_000)
                        .arg("*")
                        .arg("k")
                        .arg(&keys[i % KEYS])
                        .arg("v")
                        .arg(value.as_ref())
                        .query_async(&mut c)
                        .await
                        .unwrap();
                })
            },
            ours,
        );
        compare(
            &format!("durable write vs in-process WriteBehind::write, {tasks} task(s)"),
            Plan::REDIS,
            None,
            |n| {
                run_tasks(rt, tasks, n, move |i| async move {
                    in_process
                        .write(&keys[i % KEYS], value.clone(), None)
                        .await
                        .unwrap();
                })
            },
            ours,
        );
    }
    // How fast one flusher drains a backlog: 100,000 writes appended to a
    // log first, then a write-behind started on it, by batch size.
    println!();
    for batch in [100usize, 1_000] {
        let name = leak(format!("drain{batch}"));
        let log = leak(rt.block_on(async {
            RedisWriteLog::connect(&RedisConfig::from_url(&url).unwrap(), name)
                .await
                .unwrap()
        }));
        let backlog: u64 = 100_000;
        run_tasks(&rt, 64, backlog, move |i| async move {
            use cache_store::write_log::WriteLog;
            log.append(&keys[i % KEYS], value.clone(), u64::MAX)
                .await
                .unwrap();
        });
        let took = rt.block_on(async {
            let start = std::time::Instant::now();
            let config = DurableConfig {
                batch,
                delay: Duration::from_millis(10),
                ..DurableConfig::default()
            };
            let moka: Arc<dyn Cache> = Arc::new(MokaConfig::default().build().unwrap());
            let behind =
                DurableWriteBehind::new(Arc::new(Sink), moka, Arc::clone(log) as _, config);
            while behind.unflushed().await.unwrap() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let took = start.elapsed();
            behind.shutdown().await;
            took
        });
        println!(
            "one flusher, batches of {batch}: drained {backlog} logged writes in {took:.2?}, {:.0} writes/s",
            backlog as f64 / took.as_secs_f64()
        );
    }
}
