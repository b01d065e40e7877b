//! cache-redis through `Arc<dyn Cache>` against raw fred on the same
//! self-started redis-server, at concurrency 1 and 64.
//! `cargo bench -p cache-bench --bench redis`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_bench::{compare, header, keys, leak, run_tasks, time_alone, value, Plan};
use cache_port::Cache;
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;
use fred::prelude::{Builder, ClientLike, Config, KeysInterface, ReconnectPolicy};
use fred::types::scan::Scanner;
use futures::StreamExt;

const VALUE: usize = 100;
const KEYS: usize = 10_000;
const POOL: usize = 4;

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let plan = Plan::REDIS;

    let (ours, uncoalesced, raw) = rt.block_on(async {
        let config = RedisConfig::from_url(&server.url())
            .unwrap()
            .pool_size(POOL)
            .command_timeout(Duration::from_secs(10));
        let ours: Arc<dyn Cache> = Arc::new(RedisConfig::connect(&config).await.unwrap());
        let uncoalesced = config.clone().coalesce(false);
        let uncoalesced: Arc<dyn Cache> = Arc::new(uncoalesced.connect().await.unwrap());
        // The raw client, configured the same way (pool, timeouts, reconnection).
        let mut builder = Builder::from_config(Config::from_url(&server.url()).unwrap());
        builder
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(10))
            .with_connection_config(|c| c.max_command_attempts = 1)
            .set_policy(ReconnectPolicy::new_constant(0, 200));
        let raw = builder.build_pool(POOL).unwrap();
        raw.init().await.unwrap();
        (ours, uncoalesced, raw)
    });
    let hot = keys("hot", KEYS);
    rt.block_on(async {
        let items = hot.iter().map(|k| (k.clone(), value(VALUE))).collect();
        ours.set_many(items, None).await.unwrap();
    });
    let (ours, uncoalesced, raw, hot) = (leak(ours), leak(uncoalesced), leak(raw), leak(hot));
    let v = value(VALUE);

    for concurrency in [1usize, 64] {
        header(&format!(
            "cache-redis vs raw fred, same server, pool of {POOL}, concurrency {concurrency}"
        ));
        // Issue 9's target, on the defaults. At 64 tasks `coalesce=false`
        // as well, as a row of its own (no target).
        let target = (concurrency == 64).then_some(0.95);
        let variants: &[(&str, &'static Arc<dyn Cache>, Option<f64>)] = if concurrency == 64 {
            &[("", ours, target), (", coalesce=false", uncoalesced, None)]
        } else {
            &[("", ours, None)]
        };
        for &(label, cache, row_target) in variants {
            compare(
                &format!("get{label}"),
                plan,
                row_target,
                |n| {
                    run_tasks(&rt, concurrency, n, move |i| async move {
                        let _: Option<Bytes> = raw.get(&hot[i % KEYS]).await.unwrap();
                    })
                },
                |n| {
                    run_tasks(&rt, concurrency, n, move |i| async move {
                        cache.get(&hot[i % KEYS]).await.unwrap();
                    })
                },
            );
            compare(
                &format!("set{label}"),
                plan,
                row_target,
                |n| {
                    let v = v.clone();
                    run_tasks(&rt, concurrency, n, move |i| {
                        let v = v.clone();
                        async move {
                            let () = raw.set(&hot[i % KEYS], v, None, None, false).await.unwrap();
                        }
                    })
                },
                |n| {
                    let v = v.clone();
                    run_tasks(&rt, concurrency, n, move |i| {
                        let v = v.clone();
                        async move { cache.set(&hot[i % KEYS], v, None).await.unwrap() }
                    })
                },
            );
        }
        let batches: Arc<Vec<Vec<String>>> =
            Arc::new(hot.chunks(100).map(|c| c.to_vec()).collect());
        let b = leak(Arc::clone(&batches));
        compare(
            "get_many(100) vs MGET",
            plan,
            Some(0.9),
            |n| {
                run_tasks(&rt, concurrency, n, move |i| async move {
                    let _: Vec<Option<Bytes>> = raw.mget(b[i % b.len()].clone()).await.unwrap();
                })
            },
            |n| {
                run_tasks(&rt, concurrency, n, move |i| async move {
                    ours.get_many(&b[i % b.len()]).await.unwrap();
                })
            },
        );
        let items: Arc<Vec<Vec<(String, Bytes)>>> = Arc::new(
            batches
                .iter()
                .map(|keys| keys.iter().map(|k| (k.clone(), value(VALUE))).collect())
                .collect(),
        );
        let it = leak(items);
        compare(
            "set_many(100) vs a raw pipeline of SET",
            plan,
            target,
            |n| {
                run_tasks(&rt, concurrency, n, move |i| async move {
                    let pipeline = raw.next().pipeline();
                    for (k, v) in &it[i % it.len()] {
                        let () = pipeline.set(k, v.clone(), None, None, false).await.unwrap();
                    }
                    let _: Vec<fred::types::Value> = pipeline.all().await.unwrap();
                })
            },
            |n| {
                run_tasks(&rt, concurrency, n, move |i| async move {
                    ours.set_many(it[i % it.len()].clone(), None).await.unwrap()
                })
            },
        );
        if concurrency == 1 {
            let sequential = time_alone(plan, |n| {
                run_tasks(&rt, 1, n, move |i| async move {
                    for k in &b[i % b.len()] {
                        ours.get(k).await.unwrap();
                    }
                })
            });
            let batched = time_alone(plan, |n| {
                run_tasks(&rt, 1, n, move |i| async move {
                    ours.get_many(&b[i % b.len()]).await.unwrap();
                })
            });
            let speedup = sequential.as_secs_f64() / batched.as_secs_f64();
            println!(
                "{:<44} {:>12} {:>12} {:>6.1}x {:>15}  {:>8}",
                "get_many(100) vs 100 sequential gets",
                cache_bench::show(sequential),
                cache_bench::show(batched),
                speedup,
                "",
                if speedup >= 20.0 {
                    "≥20 ok"
                } else {
                    "≥20 MISS"
                }
            );
        }
    }

    header("delete_pattern over 200k keys vs a raw SCAN + UNLINK loop, concurrency 1");
    const BULK: usize = 200_000;
    let fill = |rt: &tokio::runtime::Runtime| {
        rt.block_on(async {
            for chunk in keys("bulk", BULK).chunks(10_000) {
                let items = chunk
                    .iter()
                    .map(|k| (k.clone(), Bytes::from_static(b"v")))
                    .collect();
                ours.set_many(items, None).await.unwrap();
            }
        })
    };
    compare(
        "delete_pattern(bulk:*)",
        Plan {
            samples: 5,
            sample_time: Duration::from_millis(1),
        },
        Some(0.8),
        |_| {
            fill(&rt);
            rt.block_on(async {
                let start = Instant::now();
                let mut removed = 0u64;
                let mut pages = raw.next().scan("bulk:*", Some(1000), None);
                while let Some(page) = pages.next().await {
                    let mut page = page.unwrap();
                    let keys = page.take_results().unwrap_or_default();
                    if !keys.is_empty() {
                        let n: u64 = raw.unlink(keys).await.unwrap();
                        removed += n;
                    }
                }
                assert_eq!(removed, BULK as u64);
                start.elapsed()
            })
        },
        |_| {
            fill(&rt);
            rt.block_on(async {
                let start = Instant::now();
                assert_eq!(ours.delete_pattern("bulk:*").await.unwrap(), BULK as u64);
                start.elapsed()
            })
        },
    );
    rt.block_on(async {
        let _ = raw.quit().await;
    });
}
