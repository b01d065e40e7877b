//! Issue 25's table: the operations services run all day, as they run them
//! (a TTL on every entry), through cache-redis with its defaults against
//! what a user would pick instead, each with **its own defaults**, on one
//! self-started redis-server, in one run: redis-rs's `ConnectionManager` and
//! multiplexed connection, fred (a `Pool` of 4 with fred's defaults), and
//! multi-tier-cache 0.6.9's L2 (`RedisCache`, a `ConnectionManager` inside).
//! Then the server's own ceiling (`redis-benchmark -P 16`), and moka `set`
//! with a TTL against a default moka and multi-tier-cache's moka L1.
//!
//! 100-byte values, 10,000 keys, a 2-worker runtime, 1 and 64 tasks, a
//! 300 s TTL. "raw" is the peer, "port" is ours; a ratio above 1 means ours
//! is faster. `cargo bench -p cache-bench --bench hot_path`; with
//! `HOT_PATH_ONLY=<text>` only the rows whose name contains it run (for a
//! profiler).

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_bench::{
    compare, header, keys, leak, run_tasks, show, time_alone, value, Plan, RedisPeers,
};
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;
use fred::prelude::{Expiration, KeysInterface};
use multi_tier_cache::{CacheBackend, L1Cache, L2Cache, MokaCacheConfig};
use redis::AsyncCommands;

const VALUE: usize = 100;
const KEYS: usize = 10_000;
const BATCH: usize = 100;
const TTL: Duration = Duration::from_secs(300);
const TTL_MS: u64 = 300_000;

/// Whether the row `name` runs (`HOT_PATH_ONLY`).
fn selected(name: &str) -> bool {
    std::env::var("HOT_PATH_ONLY").map_or(true, |only| name.contains(&only))
}

/// The server whose `INFO commandstats` a profiling run prints.
static SERVER_PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

fn redis_cli(args: &[&str]) -> String {
    let Some(port) = SERVER_PORT.get() else {
        return String::new();
    };
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// 1 and 64, or the one `HOT_PATH_TASKS` names (for a profiler).
fn task_counts() -> Vec<usize> {
    match std::env::var("HOT_PATH_TASKS") {
        Ok(n) => vec![n.parse().expect("HOT_PATH_TASKS is a number")],
        Err(_) => vec![1, 64],
    }
}

/// `compare`, when the row is selected. With `HOT_PATH_ONLY` set, the
/// server's command statistics for the row follow it (`calls`,
/// `usec_per_call`: where the server's time went, both sides together).
fn row(
    name: &str,
    plan: Plan,
    target: Option<f64>,
    raw: impl FnMut(u64) -> Duration,
    ours: impl FnMut(u64) -> Duration,
) {
    if !selected(name) {
        return;
    }
    let profiling = std::env::var("HOT_PATH_ONLY").is_ok();
    if profiling {
        redis_cli(&["CONFIG", "RESETSTAT"]);
    }
    // `HOT_PATH_SIDE=ours|raw`: time one side alone, for a profiler.
    let mut raw = raw;
    let mut ours = ours;
    let server_cpu = || -> f64 {
        let info = redis_cli(&["INFO", "cpu"]);
        ["used_cpu_user:", "used_cpu_sys:"]
            .iter()
            .filter_map(|field| {
                info.lines()
                    .find_map(|l| l.strip_prefix(field))
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .sum()
    };
    let (cpu_before, wall) = (server_cpu(), std::time::Instant::now());
    match std::env::var("HOT_PATH_SIDE").as_deref() {
        Ok("ours") => println!("{name}: ours alone {}", show(time_alone(plan, &mut ours))),
        Ok("raw") => println!("{name}: raw alone {}", show(time_alone(plan, &mut raw))),
        _ => drop(compare(name, plan, target, raw, ours)),
    }
    if profiling {
        let busy = (server_cpu() - cpu_before) / wall.elapsed().as_secs_f64();
        println!("    server CPU: {:.0} % of one core", busy * 100.0);
        for line in redis_cli(&["INFO", "commandstats"]).lines() {
            if let Some(stat) = line.strip_prefix("cmdstat_") {
                println!("    {stat}");
            }
        }
    }
}

struct Peers {
    manager: redis::aio::ConnectionManager,
    multiplexed: redis::aio::MultiplexedConnection,
    fred: fred::clients::Pool,
    mtc_l2: L2Cache,
}

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let plan = Plan::REDIS;
    let url = server.url();
    let _ = SERVER_PORT.set(server.port());
    let (ours, peers) = rt.block_on(async {
        // `HOT_PATH_OPTIONS=pool_size=2&…`: our URL's options, for an
        // experiment (the table is for the defaults).
        let our_url = match std::env::var("HOT_PATH_OPTIONS") {
            Ok(options) => format!("{url}?{options}"),
            Err(_) => url.clone(),
        };
        let ours: Arc<dyn Cache> = Arc::new(
            RedisConfig::from_url(&our_url)
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
        let RedisPeers {
            manager,
            multiplexed,
            fred,
        } = RedisPeers::connect(&url).await;
        let mtc_l2 = L2Cache::with_url(&url).await.unwrap();
        (
            ours,
            Peers {
                manager,
                multiplexed,
                fred,
                mtc_l2,
            },
        )
    });
    let hot = keys("hot", KEYS);
    rt.block_on(async {
        let items = hot.iter().map(|k| (k.clone(), value(VALUE))).collect();
        ours.set_many(items, Some(TTL)).await.unwrap();
    });
    let (ours, peers, hot, v) = (leak(ours), leak(peers), leak(hot), leak(value(VALUE)));

    for tasks in task_counts() {
        header(&format!(
            "cache-redis (defaults) vs peers with their defaults, {tasks} task(s), TTL {TTL:?}; target ≥ 1.0 at 64"
        ));
        let target = (tasks == 64).then_some(1.0);
        // set with a TTL: what services do.
        let our_set_ttl = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                ours.set(&hot[i % KEYS], v.clone(), Some(TTL))
                    .await
                    .unwrap();
            })
        };
        row(
            "set+TTL vs redis-rs ConnectionManager",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = peers.manager.clone();
                    let () = c.pset_ex(&hot[i % KEYS], v.as_ref(), TTL_MS).await.unwrap();
                })
            },
            our_set_ttl,
        );
        row(
            "set+TTL vs redis-rs multiplexed",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = peers.multiplexed.clone();
                    let () = c.pset_ex(&hot[i % KEYS], v.as_ref(), TTL_MS).await.unwrap();
                })
            },
            our_set_ttl,
        );
        row(
            "set+TTL vs fred Pool(4)",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let () = peers
                        .fred
                        .set(
                            &hot[i % KEYS],
                            v.clone(),
                            Some(Expiration::PX(TTL_MS as i64)),
                            None,
                            false,
                        )
                        .await
                        .unwrap();
                })
            },
            our_set_ttl,
        );
        row(
            "set+TTL vs multi-tier-cache L2",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    peers
                        .mtc_l2
                        .set_with_ttl(&hot[i % KEYS], v.clone(), TTL)
                        .await
                        .unwrap();
                })
            },
            our_set_ttl,
        );
        row(
            "set (no TTL) vs redis-rs ConnectionManager",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = peers.manager.clone();
                    let () = c.set(&hot[i % KEYS], v.as_ref()).await.unwrap();
                })
            },
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    ours.set(&hot[i % KEYS], v.clone(), None).await.unwrap();
                })
            },
        );

        // get
        let our_get = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                assert!(ours.get(&hot[i % KEYS]).await.unwrap().is_some());
            })
        };
        row(
            "get vs redis-rs ConnectionManager",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = peers.manager.clone();
                    let got: Option<Vec<u8>> = c.get(&hot[i % KEYS]).await.unwrap();
                    assert!(got.is_some());
                })
            },
            our_get,
        );
        row(
            "get vs redis-rs multiplexed",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = peers.multiplexed.clone();
                    let got: Option<Vec<u8>> = c.get(&hot[i % KEYS]).await.unwrap();
                    assert!(got.is_some());
                })
            },
            our_get,
        );
        row(
            "get vs fred Pool(4)",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let got: Option<Bytes> = peers.fred.get(&hot[i % KEYS]).await.unwrap();
                    assert!(got.is_some());
                })
            },
            our_get,
        );
        row(
            "get vs multi-tier-cache L2",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    assert!(peers.mtc_l2.get(&hot[i % KEYS]).await.is_some());
                })
            },
            our_get,
        );

        // get_many(100): a batch read; the peers' MGET.
        // Owned keys for every side: the port takes `&[String]`, and a
        // service builds its keys either way.
        let batch = |i: usize| -> Vec<String> {
            (0..BATCH)
                .map(|j| hot[(i * BATCH + j * 97) % KEYS].clone())
                .collect()
        };
        let our_get_many = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                let got = ours.get_many(&batch(i)).await.unwrap();
                assert!(got.iter().all(Option::is_some));
            })
        };
        row(
            "get_many(100) vs redis-rs ConnectionManager MGET",
            plan,
            target,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut c = peers.manager.clone();
                    let got: Vec<Option<Vec<u8>>> = c.mget(batch(i)).await.unwrap();
                    assert!(got.iter().all(Option::is_some));
                })
            },
            our_get_many,
        );
        row(
            "get_many(100) vs fred Pool(4) MGET",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let got: Vec<Option<Bytes>> = peers.fred.mget(batch(i)).await.unwrap();
                    assert!(got.iter().all(Option::is_some));
                })
            },
            our_get_many,
        );
        row(
            "get_many(100) vs multi-tier-cache L2 (100 gets)",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let keys = batch(i);
                    let gets = keys.iter().map(|k| peers.mtc_l2.get(k));
                    let got = futures::future::join_all(gets).await;
                    assert!(got.iter().all(Option::is_some));
                })
            },
            our_get_many,
        );

        // set_many(100) with a TTL: the peers' pipeline of SET PX.
        row(
            "set_many(100)+TTL vs redis-rs pipeline of SET PX",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let mut pipe = redis::pipe();
                    for k in batch(i) {
                        pipe.pset_ex(k, v.as_ref(), TTL_MS).ignore();
                    }
                    let mut c = peers.manager.clone();
                    let () = pipe.query_async(&mut c).await.unwrap();
                })
            },
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let items = batch(i).into_iter().map(|k| (k, v.clone())).collect();
                    ours.set_many(items, Some(TTL)).await.unwrap();
                })
            },
        );

        // incr with a TTL on creation: a counter. The peer's way, in one
        // round trip and atomic: MULTI INCRBY + PEXPIRE NX.
        let counters = leak(keys("counter", 64));
        row(
            "incr+TTL on creation vs redis-rs MULTI INCRBY+PEXPIRE NX",
            plan,
            None,
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    let key = counters[i % 64].as_str();
                    let mut pipe = redis::pipe();
                    pipe.atomic()
                        .incr(key, 1)
                        .cmd("PEXPIRE")
                        .arg(key)
                        .arg(TTL_MS)
                        .arg("NX")
                        .ignore();
                    let mut c = peers.manager.clone();
                    let (_count,): (i64,) = pipe.query_async(&mut c).await.unwrap();
                })
            },
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    ours.incr(&counters[i % 64], 1, Some(TTL)).await.unwrap();
                })
            },
        );
    }

    ceiling(&rt, &server, ours, hot);
    moka_sets();
}

/// The server's own ceiling for `GET` and `SET` (`redis-benchmark -c 64 -P
/// 16`, 100-byte values, the same 10,000 keys' worth of random keys) and our
/// 64-task throughput of the same operation, three alternating rounds each;
/// the medians. Target: our `get` ≥ 0.5x the ceiling.
fn ceiling(
    rt: &tokio::runtime::Runtime,
    server: &RedisServer,
    ours: &'static Arc<dyn Cache>,
    hot: &'static [String],
) {
    if !selected("ceiling") {
        return;
    }
    header("cache-redis at 64 tasks vs the server's ceiling (redis-benchmark -c 64 -P 16); ratio = ours / ceiling");
    let port = server.port().to_string();
    let bench = |test: &str| -> f64 {
        let out = Command::new("redis-benchmark")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-t",
                test,
                "-c",
                "64",
                "-P",
                "16",
                "-n",
                "1000000",
                "-d",
                "100",
                "-r",
                "10000",
                "-q",
            ])
            .output()
            .expect("redis-benchmark runs (apt-get install redis-tools)");
        let text = String::from_utf8_lossy(&out.stdout);
        // "GET: 454545.45 requests per second, p50=1.2 msec"
        text.split(['\r', '\n'])
            .rev()
            .find_map(|line| {
                line.split_once(": ")?
                    .1
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no figure in redis-benchmark's output: {text}"))
    };
    let v = leak(value(VALUE));
    for (op, target) in [("get", Some(0.5)), ("set", None)] {
        let mut theirs = Vec::new();
        let mut mine = Vec::new();
        for _ in 0..3 {
            theirs.push(bench(op));
            let per_op = time_alone(Plan::REDIS, |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    let key = &hot[i % KEYS];
                    if op == "get" {
                        assert!(ours.get(key).await.unwrap().is_some());
                    } else {
                        ours.set(key, v.clone(), None).await.unwrap();
                    }
                })
            });
            mine.push(1.0 / per_op.as_secs_f64());
        }
        let median = |xs: &mut Vec<f64>| {
            xs.sort_by(f64::total_cmp);
            xs[xs.len() / 2]
        };
        let spread = |xs: &[f64]| {
            (
                xs.iter().copied().fold(f64::INFINITY, f64::min),
                xs.iter().copied().fold(0.0, f64::max),
            )
        };
        let (t_lo, t_hi) = spread(&theirs);
        let (m_lo, m_hi) = spread(&mine);
        let (t, m) = (median(&mut theirs), median(&mut mine));
        let mark = match target {
            Some(goal) if m / t >= goal => format!("≥{goal} ok"),
            Some(goal) => format!("≥{goal} MISS"),
            None => "-".into(),
        };
        println!(
            "{:<44} {:>9.0}k/s {:>9.0}k/s {:>6.2}x  ceiling {:.0}–{:.0}k, ours {:.0}–{:.0}k  {mark}",
            format!("{op} vs redis-benchmark -P 16"),
            t / 1e3,
            m / 1e3,
            m / t,
            t_lo / 1e3,
            t_hi / 1e3,
            m_lo / 1e3,
            m_hi / 1e3,
        );
    }
}

/// moka `set` with a TTL: cache-moka (its defaults, and again with
/// `count_evictions(false)`) against a default moka
/// (`moka::future::Cache::new`, no TTL: what a user picks first) and
/// multi-tier-cache's moka L1 (`set_with_ttl`), at 1 and 64 tasks.
fn moka_sets() {
    let counting: &'static Arc<dyn Cache> = leak(Arc::new(MokaConfig::default().build().unwrap()));
    let uncounted: &'static Arc<dyn Cache> = leak(Arc::new(
        MokaConfig::default()
            .count_evictions(false)
            .build()
            .unwrap(),
    ));
    moka_set_rows("defaults", counting);
    moka_set_rows("count_evictions=false", uncounted);
}

/// [`moka_sets`]' rows for one configuration of ours.
fn moka_set_rows(ours_is: &str, ours: &'static Arc<dyn Cache>) {
    let rt = cache_bench::runtime();
    let plan = Plan::default();
    let hot = leak(keys("hot", KEYS));
    let v = leak(value(VALUE));
    let default: &'static moka::future::Cache<String, Bytes> =
        leak(moka::future::Cache::new(4 * KEYS as u64));
    let mtc_l1: &'static L1Cache = leak(
        L1Cache::new(MokaCacheConfig {
            max_capacity: 4 * KEYS as u64,
            ..MokaCacheConfig::default()
        })
        .unwrap(),
    );
    for tasks in task_counts() {
        header(&format!(
            "cache-moka ({ours_is}) set+TTL vs moka peers, {tasks} task(s); targets ≥ 1.0 vs multi-tier-cache L1, ≥ 0.8 vs a default moka"
        ));
        let our_set = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                ours.set(&hot[i % KEYS], v.clone(), Some(TTL))
                    .await
                    .unwrap();
            })
        };
        row(
            "moka set+TTL vs a default moka (no TTL)",
            plan,
            Some(0.8),
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    default.insert(hot[i % KEYS].clone(), v.clone()).await;
                })
            },
            our_set,
        );
        row(
            "moka set+TTL vs multi-tier-cache L1",
            plan,
            Some(1.0),
            |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    mtc_l1
                        .set_with_ttl(&hot[i % KEYS], v.clone(), TTL)
                        .await
                        .unwrap();
                })
            },
            our_set,
        );
    }
}
