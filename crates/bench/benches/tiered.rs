//! The tiered cache (issue 13), on a self-started redis-server, in one run:
//! 1. a hot `get` (an L1 hit) against the Redis adapter's `get` and against
//!    raw moka (default `sync::Cache`), per-operation latency p50/p99;
//! 2. throughput of a 90/10 read/write mix at 64 tasks spread over 3
//!    instances: tiered (with client tracking, the default) against the
//!    plain Redis adapter (issue 24's wider table: `tiered_peers`);
//! 3. heap bytes per L1 entry.
//!
//! `cargo bench -p cache-bench --bench tiered`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_redis::{RedisConfig, RedisStore, RedisTracking};
use cache_redis_harness::RedisServer;
use cache_store::backplane::Backplane;
use cache_tiered::TieredConfig;
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const VALUE: usize = 100;
const KEYS: usize = 10_000;
const TASKS: usize = 64;
const INSTANCES: usize = 3;

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE])
}

fn key(i: usize) -> String {
    format!("key:{i:07}")
}

async fn tiered(url: &str, l1_bytes: u64) -> Arc<dyn Cache> {
    let config = RedisConfig::from_url(url).unwrap();
    let l2 = RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = RedisTracking::connect(&config, "").await.unwrap();
    let cache = TieredConfig::default()
        .l1(MokaConfig::default().capacity_bytes(l1_bytes))
        .build(l2, Some(backplane))
        .unwrap();
    while !cache.base().figures().l1_serving {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Arc::new(cache)
}

async fn redis(url: &str) -> Arc<dyn Cache> {
    Arc::new(RedisConfig::from_url(url).unwrap().connect().await.unwrap())
}

/// p50, p99 of `n` sequential calls of `op`, timed one by one.
async fn latencies<F, Fut>(n: usize, mut op: F) -> (Duration, Duration)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        op(i).await;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    (times[n / 2], times[n * 99 / 100])
}

/// Operations per second of `TASKS` tasks over `caches` (round robin) for
/// `secs`, 90 % `get` and 10 % `set` over `KEYS` keys: uniformly, or
/// (`hot`) with 90 % of the operations on the first 1 % of the keys.
async fn mix(caches: &[Arc<dyn Cache>], secs: u64, hot: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (cache, done) = (Arc::clone(&caches[t % caches.len()]), Arc::clone(&done));
            tokio::spawn(async move {
                let v = value();
                let mut n = 0u64;
                while Instant::now() < until {
                    let k = if hot && fastrand::u8(..10) != 0 {
                        key(fastrand::usize(..KEYS / 100))
                    } else {
                        key(fastrand::usize(..KEYS))
                    };
                    if fastrand::u8(..10) == 0 {
                        cache.set(&k, v.clone(), None).await.unwrap();
                    } else {
                        cache.get(&k).await.unwrap();
                    }
                    n += 1;
                }
                done.fetch_add(n, Relaxed);
            })
        })
        .collect();
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let url = server.url();
    rt.block_on(async {
        // 1. A hot get.
        let tiered_cache = tiered(&url, 64 << 20).await;
        let redis_cache = redis(&url).await;
        let raw: moka::sync::Cache<String, Bytes> = moka::sync::Cache::new(100_000);
        // The tiered cache's L1 alone: our moka adapter through the same
        // front and layers (issue 24's reference for an L1 hit).
        let moka_cache = cache_moka::MokaConfig::default()
            .capacity_bytes(64 << 20)
            .build()
            .unwrap();
        for i in 0..1000 {
            tiered_cache.set(&key(i), value(), None).await.unwrap();
            moka_cache.set(&key(i), value(), None).await.unwrap();
            raw.insert(key(i), value());
        }
        let keys: Vec<String> = (0..1000).map(key).collect();
        for k in &keys {
            tiered_cache.get(k).await.unwrap(); // backfill L1
        }
        let n = 200_000;
        println!("\nhot get, 1 task, {n} calls each (interleaved 4 rounds), 100-byte values");
        println!("{:<44} {:>10} {:>10}", "", "p50", "p99");
        let mut rows: Vec<(&str, Vec<(Duration, Duration)>)> = vec![
            ("raw moka 0.12 sync::Cache (default)", vec![]),
            ("cache-tiered get (an L1 hit)", vec![]),
            ("cache-redis get (loopback)", vec![]),
            ("cache-moka get (our L1 alone, same front)", vec![]),
        ];
        for _round in 0..4 {
            rows[0].1.push(
                latencies(n, |i| {
                    let hit = raw.get(&keys[i % 1000]);
                    assert!(hit.is_some());
                    std::future::ready(())
                })
                .await,
            );
            rows[1].1.push(
                latencies(n, |i| {
                    let cache = &tiered_cache;
                    let k = &keys[i % 1000];
                    async move {
                        assert!(cache.get(k).await.unwrap().is_some());
                    }
                })
                .await,
            );
            rows[2].1.push(
                latencies(n / 20, |i| {
                    let cache = &redis_cache;
                    let k = &keys[i % 1000];
                    async move {
                        assert!(cache.get(k).await.unwrap().is_some());
                    }
                })
                .await,
            );
            rows[3].1.push(
                latencies(n, |i| {
                    let cache = &moka_cache;
                    let k = &keys[i % 1000];
                    async move {
                        assert!(cache.get(k).await.unwrap().is_some());
                    }
                })
                .await,
            );
        }
        let med = |v: &[(Duration, Duration)], pick: fn(&(Duration, Duration)) -> Duration| {
            let mut d: Vec<Duration> = v.iter().map(pick).collect();
            d.sort_unstable();
            (d[d.len() / 2], d[0], d[d.len() - 1])
        };
        let mut p50s = Vec::new();
        for (name, samples) in &rows {
            let (p50, lo50, hi50) = med(samples, |s| s.0);
            let (p99, lo99, hi99) = med(samples, |s| s.1);
            p50s.push(p50);
            println!(
                "{name:<44} {:>10.2?} {:>10.2?}   (rounds: p50 {lo50:.2?}–{hi50:.2?}, p99 {lo99:.2?}–{hi99:.2?})",
                p50, p99
            );
        }
        println!(
            "L1 hit vs Redis get at p50: {:.0}x faster; vs raw moka: {:.2}x the time; vs cache-moka: {:.2}x the time (issue 24: at most 1.2x)",
            p50s[2].as_secs_f64() / p50s[1].as_secs_f64(),
            p50s[1].as_secs_f64() / p50s[0].as_secs_f64(),
            p50s[1].as_secs_f64() / p50s[3].as_secs_f64()
        );

        // 2. Throughput, 90/10, 64 tasks over 3 instances.
        let mut tiered_instances = Vec::new();
        let mut redis_instances = Vec::new();
        for _ in 0..INSTANCES {
            tiered_instances.push(tiered(&url, 64 << 20).await);
            redis_instances.push(redis(&url).await);
        }
        for i in 0..KEYS {
            redis_instances[0].set(&key(i), value(), None).await.unwrap();
        }
        for hot in [false, true] {
            let shape = if hot { "90 % of operations on 1 % of the keys" } else { "uniform keys" };
            println!("\n90/10 get/set mix, {shape}, {TASKS} tasks over {INSTANCES} instances, {KEYS} keys, 3 rounds of 3 s");
            let (mut t, mut r) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                r.push(mix(&redis_instances, 3, hot).await);
                t.push(mix(&tiered_instances, 3, hot).await);
            }
            let show = |name: &str, v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                println!(
                    "{name:<44} {:>10.0} ops/s   (rounds {:.0}–{:.0})",
                    v[1], v[0], v[2]
                );
                v[1]
            };
            let rm = show("cache-redis (3 adapters)", &mut r);
            let tm = show("cache-tiered (3 instances, client tracking)", &mut t);
            println!("tiered / redis: {:.2}x", tm / rm);
        }

        // 3. Heap bytes per L1 entry.
        let entries = 100_000usize;
        let before = HEAP.current_usage();
        let one = tiered(&url, 1 << 30).await;
        for i in 0..entries {
            one.set(&format!("mem:{i:07}"), value(), None).await.unwrap();
        }
        let base = HEAP.current_usage();
        for i in 0..entries {
            one.get(&format!("mem:{i:07}")).await.unwrap();
        }
        let after = HEAP.current_usage();
        println!(
            "\nheap per L1 entry ({entries} entries, 11-byte keys, {VALUE}-byte values): {:.0} bytes (the whole instance: {:.1} MiB)",
            (after - base) as f64 / entries as f64,
            (after - before) as f64 / (1 << 20) as f64
        );
        drop(one);
    });
    drop(server);
}
