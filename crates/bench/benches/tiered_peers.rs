//! Issue 24's table: the tiered cache side by side with multi-tier-cache
//! 0.6.9 (L1 moka + L2 Redis, `new_with_invalidation`, writes by
//! `set_with_broadcast`) and with our plain Redis adapter, in one run on a
//! self-started redis-server: 64 tasks, 10,000 keys, 100-byte values, a
//! 2-worker runtime, every `set` with a 300 s TTL.
//!
//! 1. An L1 hit, one task, p50 (and our moka adapter alone through the same
//!    front: the reference the issue sets, at most 1.2x).
//! 2. Throughput of three mixes (90 % get / 10 % set uniform; the same with
//!    90 % of the operations on 1 % of the keys; read-only on the hot keys)
//!    at 1 and 3 instances, three alternating rounds of 2 s per cell.
//!
//! multi-tier-cache's L1 is sized to hold every key (its default, 5,000
//! entries, holds half of them); ours is 64 MiB.
//!
//! `cargo bench -p cache-bench --bench tiered_peers`; with
//! `TIERED_PEERS_ONLY='90/10 uniform/3/1'` (mix/instances/system index) it
//! runs ten rounds of one cell of one system, for a profiler, printing for
//! each the CPU per operation of this process and of redis-server and, for
//! the tiered cache, the keys read from L2 after an L1 miss and the keys
//! refreshed per 100 gets. `TIERED_REFRESH=0`: the tiered cache without
//! refresh after invalidation.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_redis::{RedisBackplane, RedisConfig, RedisStore, RedisTracking, DEFAULT_CHANNEL};
use cache_redis_harness::RedisServer;
use cache_store::backplane::Backplane;
use cache_tiered::{TieredConfig, TieredStore};
use multi_tier_cache::{
    CacheManager, CacheStrategy, InvalidationConfig, L1Cache, L2Cache, MokaCacheConfig,
};

const VALUE: usize = 100;
const KEYS: usize = 10_000;
const TASKS: usize = 64;
const INSTANCES: usize = 3;
const TTL: Duration = Duration::from_secs(300);
const ROUND: Duration = Duration::from_secs(2);

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE])
}

/// One system under test: the port, or multi-tier-cache's manager.
#[derive(Clone)]
enum System {
    /// The port, and the tiered store under it (for its figures).
    Port(Arc<dyn Cache>, Option<TieredStore<RedisStore>>),
    MultiTier(Arc<CacheManager>),
}

impl System {
    async fn get(&self, key: &str) -> Option<Bytes> {
        match self {
            System::Port(cache, _) => cache.get(key).await.unwrap(),
            System::MultiTier(manager) => manager.get(key).await.unwrap(),
        }
    }

    async fn set(&self, key: &str, value: Bytes) {
        match self {
            System::Port(cache, _) => cache.set(key, value, Some(TTL)).await.unwrap(),
            System::MultiTier(manager) => manager
                .set_with_broadcast(key, value, CacheStrategy::Custom(TTL))
                .await
                .unwrap(),
        }
    }
}

#[derive(Clone, Copy)]
enum Coherence {
    Tracking,
    PubSub,
}

async fn tiered(url: &str, namespace: &str, coherence: Coherence) -> System {
    let config = RedisConfig::from_url(url).unwrap();
    let l2 = RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = match coherence {
        Coherence::Tracking => RedisTracking::connect(&config, &format!("{namespace}:"))
            .await
            .unwrap(),
        Coherence::PubSub => RedisBackplane::connect(&config, DEFAULT_CHANNEL)
            .await
            .unwrap(),
    };
    // TIERED_REFRESH=0: without refresh after invalidation, to compare.
    let refresh = std::env::var("TIERED_REFRESH").map_or(true, |v| v != "0");
    let cache = TieredConfig::default()
        .l1(MokaConfig::default().capacity_bytes(64 << 20))
        .refresh_after_invalidation(refresh)
        .namespace(namespace)
        .build(l2, Some(backplane))
        .unwrap();
    while !cache.base().figures().l1_serving {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let store = cache.base().clone();
    System::Port(Arc::new(cache), Some(store))
}

async fn redis(url: &str) -> System {
    let config = RedisConfig::from_url(url).unwrap().namespace("plain");
    System::Port(Arc::new(config.connect().await.unwrap()), None)
}

async fn multi_tier(url: &str) -> System {
    let l1 = L1Cache::new(MokaCacheConfig {
        max_capacity: 100_000,
        ..MokaCacheConfig::default()
    })
    .unwrap();
    let l2 = L2Cache::with_url(url).await.unwrap();
    let manager = CacheManager::new_with_invalidation(
        Arc::new(l1),
        Arc::new(l2),
        url,
        InvalidationConfig::default(),
    )
    .await
    .unwrap();
    System::MultiTier(Arc::new(manager))
}

fn key(system: usize, i: usize) -> String {
    // Each system its own keys (multi-tier-cache's keys have no namespace).
    format!("s{system}:key:{i:07}")
}

/// The mixes: (name, percent of sets, hot).
const MIXES: [(&str, u8, bool); 3] = [
    ("90/10 uniform", 10, false),
    ("90/10 hot (90 % on 1 % of keys)", 10, true),
    ("read-only hot", 0, true),
];

/// Operations per second of `TASKS` tasks over `instances` for `ROUND`.
async fn mix(system: usize, instances: &[System], sets: u8, hot: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + ROUND;
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let (instance, done) = (instances[t % instances.len()].clone(), Arc::clone(&done));
            tokio::spawn(async move {
                let v = value();
                let mut n = 0u64;
                while Instant::now() < until {
                    let i = if hot && fastrand::u8(..10) != 0 {
                        fastrand::usize(..KEYS / 100)
                    } else {
                        fastrand::usize(..KEYS)
                    };
                    let k = key(system, i);
                    if fastrand::u8(..100) < sets {
                        instance.set(&k, v.clone()).await;
                    } else {
                        instance.get(&k).await;
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

/// p50 of `n` sequential gets of hot keys, timed one by one.
async fn hit_p50(system: &System, keys: &[String], n: usize) -> Duration {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let hit = system.get(&keys[i % keys.len()]).await;
        times.push(started.elapsed());
        assert!(hit.is_some());
    }
    times.sort_unstable();
    times[n / 2]
}

/// User + system CPU ticks of `/proc/<pid>` so far (0 where unreadable).
fn cpu_ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// CPU ticks of every redis-server process on the machine (the bench's own
/// when it is the only one).
fn redis_cpu_ticks() -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim() == "redis-server")
        })
        .map(|pid| cpu_ticks(&pid))
        .sum()
}

/// Gets answered so far and keys read from L2 (misses of L1) and read
/// back after an invalidation, summed over `instances` (zero for a peer
/// that does not count them).
async fn lookups(instances: &[System]) -> (u64, u64, u64) {
    let mut sum = (0, 0, 0);
    for instance in instances {
        if let System::Port(cache, Some(store)) = instance {
            let stats = cache.stats().await.unwrap();
            let figures = store.figures();
            sum.0 += stats.hits + stats.misses;
            sum.1 += figures.l2_reads;
            sum.2 += figures.refreshed;
        }
    }
    sum
}

fn median(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let url = server.url();
    rt.block_on(async {
        let names = [
            "plain Redis (cache-redis)",
            "tiered, client tracking (default)",
            "tiered, pub/sub backplane",
            "multi-tier-cache 0.6.9 L1+L2",
        ];
        let mut systems: Vec<Vec<System>> = vec![Vec::new(), Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..INSTANCES {
            systems[0].push(redis(&url).await);
            systems[1].push(tiered(&url, "s1", Coherence::Tracking).await);
            systems[2].push(tiered(&url, "s2", Coherence::PubSub).await);
            systems[3].push(multi_tier(&url).await);
        }
        for (s, instances) in systems.iter().enumerate() {
            for i in 0..KEYS {
                instances[0].set(&key(s, i), value()).await;
            }
        }

        // 1. An L1 hit.
        let profiling = std::env::var("TIERED_PEERS_ONLY").is_ok();
        let moka_alone = System::Port(
            Arc::new(
                MokaConfig::default()
                .capacity_bytes(64 << 20)
                .build()
                .unwrap(),
            ),
            None,
        );
        // The same, in the namespace the tiered cache has ("s1"): the
        // prefix costs every read through the front its own work.
        let moka_namespaced = System::Port(
            Arc::new(
                MokaConfig::default()
                .namespace("s1")
                .capacity_bytes(64 << 20)
                .build()
                .unwrap(),
            ),
            None,
        );
        for i in 0..1000 {
            moka_alone.set(&key(9, i), value()).await;
            moka_namespaced.set(&key(8, i), value()).await;
        }
        let hot = |s: usize| (0..1000).map(|i| key(s, i)).collect::<Vec<_>>();
        let n = 100_000;
        let rows: [(&str, &System, Vec<String>); 4] = [
            ("cache-tiered get (an L1 hit)", &systems[1][0], hot(1)),
            ("cache-moka get (our moka alone, same front)", &moka_alone, hot(9)),
            ("multi-tier-cache get (an L1 hit)", &systems[3][0], hot(3)),
            ("cache-moka get, namespace \"s1\" as tiered's", &moka_namespaced, hot(8)),
        ];
        for (_, system, keys) in &rows {
            for k in keys {
                system.get(k).await; // into L1
            }
        }
        let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
        for _ in 0..if profiling { 0 } else { 5 } {
            for (r, (_, system, keys)) in rows.iter().enumerate() {
                p50s[r].push(hit_p50(system, keys, n).await.as_secs_f64() * 1e9);
            }
        }
        if !profiling {
        println!("\nL1 hit, one task, {n} gets per round, 5 rounds: p50 (rounds)");
        let mut mids = Vec::new();
        for ((name, _, _), samples) in rows.iter().zip(&mut p50s) {
            let (mid, lo, hi) = median(samples);
            mids.push(mid);
            println!("{name:<46} {mid:>7.0} ns   ({lo:.0}–{hi:.0})");
        }
        println!(
            "tiered / our moka alone: {:.2}x (target at most 1.2x); tiered / multi-tier-cache: {:.2}x (target below 1); tiered / moka in the same namespace: {:.2}x",
            mids[0] / mids[1],
            mids[0] / mids[2],
            mids[0] / mids[3]
        );
        }

        // `TIERED_PEERS_HITS_ONLY=1`: the L1 hit rows alone (a quick
        // before/after of the hit path).
        if std::env::var_os("TIERED_PEERS_HITS_ONLY").is_some() {
            return;
        }

        // 2. Throughput.
        println!(
            "\nthroughput, {TASKS} tasks, {KEYS} keys, sets with a {TTL:?} TTL, 3 alternating rounds of {ROUND:?}: median ops/s (rounds)"
        );
        // TIERED_PEERS_ONLY=<mix>/<instances>/<system> runs one cell of one
        // system for a profiler (e.g. `90/10 uniform/3/1`), 10 rounds.
        let only = std::env::var("TIERED_PEERS_ONLY").ok();
        for (mix_name, sets, hot) in MIXES {
            for count in [1, INSTANCES] {
                if let Some(only) = &only {
                    let s: usize = only.rsplit('/').next().unwrap().parse().unwrap();
                    if only.starts_with(&format!("{mix_name}/{count}/")) {
                        for _ in 0..10 {
                            let before = lookups(&systems[s][..count]).await;
                            let cpu_before = (cpu_ticks("self"), redis_cpu_ticks());
                            let ops = mix(s, &systems[s][..count], sets, hot).await;
                            let cpu = (
                                cpu_ticks("self") - cpu_before.0,
                                redis_cpu_ticks() - cpu_before.1,
                            );
                            let after = lookups(&systems[s][..count]).await;
                            // Ticks are 10 ms: CPU µs per operation.
                            let per_op = |ticks: u64| ticks as f64 * 1e4 / (ops * ROUND.as_secs_f64());
                            println!(
                                "  CPU per op: this process {:.2} µs, redis-server {:.2} µs",
                                per_op(cpu.0),
                                per_op(cpu.1)
                            );
                            let gets = (after.0 - before.0).max(1) as f64;
                            let missed = 100.0 * (after.1 - before.1) as f64 / gets;
                            let refreshed = 100.0 * (after.2 - before.2) as f64 / gets;
                            println!(
                                "{only}: {ops:.0} ops/s; per 100 gets, {missed:.1} L1 misses and {refreshed:.1} keys refreshed"
                            );
                        }
                    }
                    continue;
                }
                let mut results: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
                for _ in 0..3 {
                    for (s, instances) in systems.iter().enumerate() {
                        results[s].push(mix(s, &instances[..count], sets, hot).await);
                    }
                }
                println!("\n{mix_name}, {count} instance(s)");
                let mut mids = Vec::new();
                for (name, samples) in names.iter().zip(&mut results) {
                    let (mid, lo, hi) = median(samples);
                    mids.push(mid);
                    println!("  {name:<40} {mid:>10.0}   ({lo:.0}–{hi:.0})");
                }
                println!(
                    "  tiered (tracking) vs multi-tier-cache: {:.2}x; vs plain Redis: {:.2}x",
                    mids[1] / mids[3],
                    mids[1] / mids[0]
                );
            }
        }
    });
    drop(server);
}
