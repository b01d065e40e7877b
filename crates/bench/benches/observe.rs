//! The cost of observability: the same stack built from `CACHE_URL` with
//! and without `metrics=true&tracing=true`, measured in one run.
//! `cargo bench -p cache-bench --bench observe`.
//!
//! The set-up a service runs in production: a Prometheus recorder
//! installed (every operation recorded into its histograms and counters),
//! and a `tracing` subscriber logging at INFO (so the per-operation spans,
//! at DEBUG, are checked and skipped). One more row records the spans too
//! (a registry subscriber with `cache=debug`), for what turning them on costs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_bench::{compare, header, keys, leak, run_tasks, value, Plan};
use cache_composition::{build_cache, CacheConfig};
use cache_port::Cache;
use cache_redis_harness::RedisServer;
use tracing_subscriber::layer::SubscriberExt;

const VALUE: usize = 100;
const KEYS: usize = 10_000;

fn main() {
    // What a service installs once at startup.
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let scrape = recorder.handle();
    metrics::set_global_recorder(recorder).unwrap();
    cache_observe::names::describe();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_writer(std::io::sink)
            .finish(),
    )
    .unwrap();

    // For instruction counts under callgrind (stable where timings are
    // not): `OBSERVE_GETS=<n> OBSERVE_STACK=plain|observed` runs n moka get
    // hits on one stack and exits.
    if let (Ok(n), Ok(stack)) = (
        std::env::var("OBSERVE_GETS"),
        std::env::var("OBSERVE_STACK"),
    ) {
        return count_only(n.parse().unwrap(), &stack);
    }
    moka_rows();
    if std::env::var_os("OBSERVE_MOKA_ONLY").is_none() {
        redis_rows();
    }
    // Proof the recorder was fed: the scrape holds the layer's series.
    assert!(scrape.render().contains("db_client_operation_duration"));
}

fn build(rt: &tokio::runtime::Runtime, url: &str) -> Arc<dyn Cache> {
    rt.block_on(async {
        build_cache(&CacheConfig::from_url(url).unwrap())
            .await
            .unwrap()
    })
}

fn count_only(n: usize, stack: &str) {
    let rt = cache_bench::one_thread_runtime();
    let url = match stack {
        "plain" => "memory://?capacity=1GiB&namespace=bench",
        _ => "memory://?capacity=1GiB&namespace=bench&metrics=true&tracing=true",
    };
    let cache = build(&rt, url);
    let hot = keys("hot", KEYS);
    rt.block_on(async {
        for k in &hot {
            cache.set(k, value(VALUE), None).await.unwrap();
        }
        for i in 0..n {
            assert!(cache.get(&hot[i % KEYS]).await.unwrap().is_some());
        }
    });
}

fn moka_rows() {
    let rt = cache_bench::one_thread_runtime();
    let plain = build(&rt, "memory://?capacity=1GiB&namespace=bench");
    let observed = build(
        &rt,
        "memory://?capacity=1GiB&namespace=bench&metrics=true&tracing=true",
    );
    let metered = build(&rt, "memory://?capacity=1GiB&namespace=bench&metrics=true");
    let traced = build(&rt, "memory://?capacity=1GiB&namespace=bench&tracing=true");
    let hot = keys("hot", KEYS);
    rt.block_on(async {
        // Two stores alike, each with every key.
        for k in &hot {
            plain.set(k, value(VALUE), None).await.unwrap();
            observed.set(k, value(VALUE), None).await.unwrap();
            metered.set(k, value(VALUE), None).await.unwrap();
            traced.set(k, value(VALUE), None).await.unwrap();
        }
    });
    let (plain, observed, metered, traced, hot) = (&plain, &observed, &metered, &traced, &hot);
    let v = &value(VALUE);
    let loop_of = |cache: &Arc<dyn Cache>, n: u64, get: bool| {
        rt.block_on(async {
            let start = Instant::now();
            for i in 0..n as usize {
                let key = &hot[i % hot.len()];
                if get {
                    assert!(cache.get(key).await.unwrap().is_some());
                } else {
                    cache.set(key, v.clone(), None).await.unwrap();
                }
            }
            start.elapsed()
        })
    };
    header("moka: metrics + tracing layers on (\"port\") vs off (\"raw\"), one task; target ≤ 1.25× the time");
    // More samples than the other tables: a 600 ns operation on this
    // machine wanders by ±20 % from sample to sample.
    let plan = Plan {
        samples: 31,
        sample_time: Duration::from_millis(150),
    };
    compare(
        "get (hit)",
        plan,
        Some(0.8),
        |n| loop_of(plain, n, true),
        |n| loop_of(observed, n, true),
    );
    compare(
        "get (hit), metrics layer only",
        plan,
        None,
        |n| loop_of(plain, n, true),
        |n| loop_of(metered, n, true),
    );
    compare(
        "get (hit), tracing layer only",
        plan,
        None,
        |n| loop_of(plain, n, true),
        |n| loop_of(traced, n, true),
    );
    compare(
        "set",
        plan,
        None,
        |n| loop_of(plain, n, false),
        |n| loop_of(observed, n, false),
    );
    let recording =
        || tracing_subscriber::registry().with(tracing_subscriber::EnvFilter::new("cache=debug"));
    compare(
        "get (hit), spans recorded (registry)",
        plan,
        None,
        |n| loop_of(plain, n, true),
        |n| tracing::subscriber::with_default(recording(), || loop_of(observed, n, true)),
    );
}

fn redis_rows() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let plain = build(&rt, &format!("{}/0?namespace=bench", server.url()));
    let observed = build(
        &rt,
        &format!(
            "{}/0?namespace=bench&metrics=true&tracing=true",
            server.url()
        ),
    );
    let hot = keys("hot", KEYS);
    rt.block_on(async {
        let items = hot.iter().map(|k| (k.clone(), value(VALUE))).collect();
        plain.set_many(items, None).await.unwrap();
    });
    let plan = Plan {
        samples: 21,
        sample_time: Duration::from_millis(300),
    };
    let (plain, observed, hot) = (leak(plain), leak(observed), leak(hot));
    // The same loop as the other tables (`cache_bench::run_tasks`).
    let run = |cache: &'static Arc<dyn Cache>, n: u64, tasks: usize| {
        run_tasks(&rt, tasks, n, move |i| async move {
            assert!(cache.get(&hot[i % hot.len()]).await.unwrap().is_some());
        })
    };
    for tasks in [1usize, 64] {
        header(&format!(
            "redis: metrics + tracing layers on (\"port\") vs off (\"raw\"), concurrency {tasks}; target ≤ 1.05× the time at 64"
        ));
        let target = (tasks == 64).then_some(0.952);
        compare(
            "get (hit)",
            plan,
            target,
            |n| run(plain, n, tasks),
            |n| run(observed, n, tasks),
        );
    }
}
