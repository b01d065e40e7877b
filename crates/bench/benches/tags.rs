//! Issue 26's table: what tags cost (`cache_tags::TaggedCache`), on a
//! self-started redis-server, in one run.
//!
//! 1. `delete_by_tag` of a tag on 1, 1,000 and 100,000 entries: its time
//!    (median of 11) and the commands the server ran for it (`INFO
//!    commandstats`): both constant. Against `delete_pattern` over the same
//!    entries in a database of 1,000,000 other keys.
//! 2. A tagged `get` hit against an untagged one, 64 tasks, 100-byte values,
//!    on moka, Redis and the tiered cache (an L1 hit). Targets: Redis ≤ 1.3x
//!    the untagged time, tiered ≤ 1.2x (ratio ≥ 0.77 and ≥ 0.83).
//!
//! `cargo bench -p cache-bench --bench tags`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_bench::{compare, header, keys, leak, run_tasks, show, value, Plan};
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_redis::{RedisConfig, RedisStore, RedisTracking};
use cache_redis_harness::RedisServer;
use cache_store::backplane::Backplane;
use cache_tags::TaggedCache;
use cache_tiered::TieredConfig;

const VALUE: usize = 100;
const KEYS: usize = 10_000;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let url = server.url();
    let redis: Arc<dyn Cache> = rt.block_on(async {
        Arc::new(
            RedisConfig::from_url(&format!("{url}?namespace=tags"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        )
    });
    // `TAGS_ONLY=reads` skips the invalidation table (for a profiler).
    if std::env::var("TAGS_ONLY").as_deref() != Ok("reads") {
        invalidation(&rt, &server, &redis);
    }
    reads(&rt, &url, redis);
}

/// `delete_by_tag` on 1, 1,000 and 100,000 entries, then `delete_pattern`
/// over the same entries among 1,000,000 other keys.
fn invalidation(rt: &tokio::runtime::Runtime, server: &RedisServer, redis: &Arc<dyn Cache>) {
    let tagged = TaggedCache::new(Arc::clone(redis));
    println!("\ndelete_by_tag on Redis: time and the server's commands per call (11 calls each)");
    println!("{:<12} {:>12} {:>10}", "entries", "median", "commands");
    for n in [1usize, 1_000, 100_000] {
        let tag = format!("n{n}");
        let items: Vec<(String, Bytes)> = (0..n)
            .map(|i| (format!("e{n}:{i}"), value(VALUE)))
            .collect();
        let mut times = Vec::new();
        let mut counts = Vec::new();
        for _ in 0..11 {
            rt.block_on(async {
                for chunk in items.chunks(10_000) {
                    tagged
                        .set_many(chunk.to_vec(), None, &[&tag])
                        .await
                        .unwrap();
                }
            });
            let before = server.calls(&[]);
            let start = Instant::now();
            rt.block_on(tagged.delete_by_tag(&tag)).unwrap();
            times.push(start.elapsed());
            // The INFO call itself counts one.
            counts.push(server.calls(&[]) - before - 1);
        }
        assert!(rt.block_on(tagged.get(&items[0].0)).unwrap().is_none());
        counts.sort();
        println!(
            "{:<12} {:>12} {:>10}",
            n,
            show(median(times)),
            format!("{}–{}", counts[0], counts[counts.len() - 1])
        );
    }
    // The same entries by pattern, in a database of a million other keys.
    rt.block_on(async {
        for start in (0..1_000_000).step_by(10_000) {
            let chunk = (start..start + 10_000)
                .map(|i| (format!("other:{i}"), value(10)))
                .collect();
            redis.set_many(chunk, None).await.unwrap();
        }
    });
    let n = 100_000;
    let items: Vec<(String, Bytes)> = (0..n)
        .map(|i| (format!("page:{i}"), value(VALUE)))
        .collect();
    let mut times = Vec::new();
    for _ in 0..3 {
        rt.block_on(async {
            for chunk in items.chunks(10_000) {
                redis.set_many(chunk.to_vec(), None).await.unwrap();
            }
        });
        let start = Instant::now();
        let deleted = rt.block_on(redis.delete_pattern("page:*")).unwrap();
        times.push(start.elapsed());
        assert_eq!(deleted, n as u64);
    }
    times.sort();
    println!(
        "delete_pattern of the same 100,000 entries among 1,000,000 keys: median {} ({}–{}, 3 calls)",
        show(times[1]),
        show(times[0]),
        show(times[2])
    );
    server.command("FLUSHALL");
}

/// A tagged `get` hit against an untagged one, 64 tasks, on each adapter.
fn reads(rt: &tokio::runtime::Runtime, url: &str, redis: Arc<dyn Cache>) {
    let moka: Arc<dyn Cache> = Arc::new(MokaConfig::default().build().unwrap());
    let tiered: Arc<dyn Cache> = rt.block_on(async {
        let config = RedisConfig::from_url(url).unwrap();
        let l2 = RedisStore::connect(&config).await.unwrap();
        let backplane: Arc<dyn Backplane> =
            RedisTracking::connect(&config, "tiered:").await.unwrap();
        let cache = TieredConfig::default()
            .l1(MokaConfig::default().capacity_bytes(64 << 20))
            .namespace("tiered")
            .build(l2, Some(backplane))
            .unwrap();
        while !cache.base().figures().l1_serving {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Arc::new(cache)
    });
    header("a tagged get hit (one tag) vs a plain get hit, 64 tasks; raw = plain");
    for (name, cache, target) in [
        ("moka", moka, None),
        ("redis", redis, Some(0.77)),
        ("tiered (L1 hit)", tiered, Some(0.83)),
    ] {
        let cache = leak(cache);
        let tagged = leak(TaggedCache::new(Arc::clone(cache)));
        let plain = leak(keys("plain", KEYS));
        let with_tag = leak(keys("tagged", KEYS));
        rt.block_on(async {
            let items = plain.iter().map(|k| (k.clone(), value(VALUE))).collect();
            cache.set_many(items, None).await.unwrap();
            let items = with_tag.iter().map(|k| (k.clone(), value(VALUE))).collect();
            tagged.set_many(items, None, &["product:7"]).await.unwrap();
            // Warm a tiered cache's L1 with both.
            for k in plain.iter().chain(with_tag.iter()) {
                assert!(tagged.get(k).await.unwrap().is_some());
            }
        });
        compare(
            &format!("tagged get hit: {name}"),
            Plan::REDIS,
            target,
            |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    assert!(cache.get(&plain[i % KEYS]).await.unwrap().is_some());
                })
            },
            |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    assert!(tagged.get(&with_tag[i % KEYS]).await.unwrap().is_some());
                })
            },
        );
    }
}
