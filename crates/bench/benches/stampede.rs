//! The stampede (issue 12): 500 concurrent callers of one cold key whose
//! loader sleeps 50 ms. How many loader calls, and how long callers wait,
//! for: the port's plain `CacheExt::get_or_load`, moka's own `get_with`
//! (the in-process peer), the `Loader` (single-flight), and four
//! independent loaders over four adapters sharing one store, without and
//! with the distributed stampede lock (three expiries each); on moka,
//! Redis, and the tiered cache over Redis.
//! `cargo bench -p cache-bench --bench stampede`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_loading::{LoadOptions, Loader, StampedeLock};
use cache_moka::MokaConfig;
use cache_port::{Cache, CacheError, CacheExt};
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;

const CALLERS: usize = 500;
const LOAD_TIME: Duration = Duration::from_millis(50);
const ROUNDS: usize = 5;

/// Loader calls and caller waits of one round.
struct Round {
    calls: usize,
    waits: Vec<Duration>,
}

/// Runs `CALLERS` callers of `call` at once; each returns after its value.
async fn round<F, Fut>(call: F) -> Round
where
    F: Fn(Arc<AtomicUsize>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CALLERS)
        .map(|_| {
            let call = call(Arc::clone(&calls));
            tokio::spawn(async move {
                let started = Instant::now();
                call.await;
                started.elapsed()
            })
        })
        .collect();
    let mut waits = Vec::with_capacity(CALLERS);
    for task in tasks {
        waits.push(task.await.unwrap());
    }
    Round {
        calls: calls.load(SeqCst),
        waits,
    }
}

async fn slow_load(calls: Arc<AtomicUsize>) -> Result<String, CacheError> {
    calls.fetch_add(1, SeqCst);
    tokio::time::sleep(LOAD_TIME).await;
    Ok("value".to_owned())
}

fn report(name: &str, rounds: &[Round]) {
    let calls: Vec<usize> = rounds.iter().map(|r| r.calls).collect();
    let mut waits: Vec<Duration> = rounds.iter().flat_map(|r| r.waits.clone()).collect();
    waits.sort_unstable();
    let pct = |p: f64| waits[((waits.len() - 1) as f64 * p) as usize];
    println!(
        "{name:<62} {:>5}–{:<5} {:>9.1?} {:>9.1?} {:>9.1?}",
        calls.iter().min().unwrap(),
        calls.iter().max().unwrap(),
        pct(0.5),
        pct(0.99),
        waits.last().unwrap()
    );
}

fn header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<62} {:>11} {:>9} {:>9} {:>9}",
        "scenario (500 callers, loader 50 ms)", "calls", "wait p50", "p99", "max"
    );
}

/// Every scenario over adapters made by `adapter` (each call a new adapter
/// over the same store).
async fn scenarios<A, AFut>(label: &str, adapter: A)
where
    A: Fn() -> AFut,
    AFut: std::future::Future<Output = Arc<dyn Cache>>,
{
    header(&format!(
        "{label}: loader calls per cold key, {ROUNDS} rounds (min–max)"
    ));
    // Keys of their own: the adapters may share a server with an earlier run.
    let run = fastrand::u32(..);
    let ttl = Some(Duration::from_secs(60));
    let cache = adapter().await;
    let mut rounds = Vec::new();
    for r in 0..ROUNDS {
        let (cache, key) = (Arc::clone(&cache), format!("{run}:naive:{r}"));
        rounds.push(
            round(move |calls| {
                let (cache, key) = (Arc::clone(&cache), key.clone());
                async move {
                    let _: String = cache
                        .get_or_load(&key, ttl, || slow_load(calls))
                        .await
                        .unwrap();
                }
            })
            .await,
        );
    }
    report("CacheExt::get_or_load (plain cache-aside)", &rounds);

    let loader: Loader<CacheError> = Loader::new(Arc::clone(&cache));
    let mut rounds = Vec::new();
    for r in 0..ROUNDS {
        let (loader, key) = (loader.clone(), format!("{run}:single:{r}"));
        rounds.push(
            round(move |calls| {
                let (loader, key) = (loader.clone(), key.clone());
                async move {
                    let _: String = loader
                        .get_or_load(&key, ttl, || slow_load(calls))
                        .await
                        .unwrap();
                }
            })
            .await,
        );
    }
    report("Loader (single-flight, one process)", &rounds);

    for lock in [false, true] {
        let mut loaders = Vec::new();
        for _ in 0..4 {
            loaders.push(Loader::<CacheError>::new(adapter().await));
        }
        let mut options = LoadOptions::ttl(Duration::from_millis(300));
        if lock {
            options = options.stampede_lock(StampedeLock::new(
                Duration::from_secs(5),
                Duration::from_secs(5),
            ));
        }
        let mut rounds = Vec::new();
        // One key, three expiries per round.
        for r in 0..ROUNDS {
            let key = format!("{run}:shared:{lock}:{r}");
            for _expiry in 0..3 {
                let (loaders, key) = (loaders.clone(), key.clone());
                let next = AtomicUsize::new(0);
                rounds.push(
                    round(move |calls| {
                        let i = next.fetch_add(1, SeqCst) % loaders.len();
                        let (loader, key) = (loaders[i].clone(), key.clone());
                        async move {
                            let _: String = loader
                                .get_or_load_with(&key, options, || slow_load(calls))
                                .await
                                .unwrap();
                        }
                    })
                    .await,
                );
                tokio::time::sleep(Duration::from_millis(350)).await;
            }
        }
        let name = if lock {
            "4 loaders, 4 adapters, one store, stampede lock (per expiry)"
        } else {
            "4 loaders, 4 adapters, one store, no lock (per expiry)"
        };
        report(name, &rounds);
    }
}

fn main() {
    let rt = cache_bench::runtime();
    rt.block_on(async {
        // The in-process peer: moka's own single-flight.
        header("moka 0.12 future::Cache::get_with (peer, in-process single-flight)");
        let mut rounds = Vec::new();
        for r in 0..ROUNDS {
            let peer: moka::future::Cache<String, String> = moka::future::Cache::new(10_000);
            let key = format!("peer:{r}");
            rounds.push(
                round(move |calls| {
                    let (peer, key) = (peer.clone(), key.clone());
                    async move {
                        peer.get_with(key, async move { slow_load(calls).await.unwrap() })
                            .await;
                    }
                })
                .await,
            );
        }
        report("moka get_with", &rounds);

        let store = MokaConfig::default().build_store().unwrap();
        scenarios("cache-moka (4 adapters = 4 views of one store)", || {
            let store = store.clone();
            async move { cache_store::CacheBuilder::new(store).build() }
        })
        .await;

        let server = RedisServer::start();
        let url = server.url();
        scenarios("cache-redis (4 adapters = 4 connection pools)", || {
            let url = url.clone();
            async move {
                let config = RedisConfig::from_url(&url).unwrap();
                let cache: Arc<dyn Cache> = Arc::new(config.connect().await.unwrap());
                cache
            }
        })
        .await;
        scenarios(
            "cache-tiered over cache-redis (4 adapters = 4 instances, backplane on)",
            || {
                let url = url.clone();
                async move {
                    let config = RedisConfig::from_url(&url).unwrap();
                    let l2 = cache_redis::RedisStore::connect(&config).await.unwrap();
                    let backplane: Arc<dyn cache_store::backplane::Backplane> =
                        cache_redis::RedisBackplane::connect(&config, cache_redis::DEFAULT_CHANNEL)
                            .await
                            .unwrap();
                    let cache: Arc<dyn Cache> = Arc::new(
                        cache_tiered::TieredConfig::default()
                            .build(l2, Some(backplane))
                            .unwrap(),
                    );
                    cache
                }
            },
        )
        .await;
        drop(server);
    });
}
