//! A small benchmark harness for ratios: each adapter and the raw client it
//! wraps are measured in the same run, in interleaved samples (raw, ours,
//! ours, raw, …) so that drift and noise hit both alike, and compared by
//! their medians.
//!
//! `cargo bench -p cache-bench` runs every table (it starts its own
//! redis-server); `docs/PERFORMANCE.md` explains the method and the figures.

use std::time::{Duration, Instant};

/// How many samples each side gets, and roughly how long one takes.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Samples per side.
    pub samples: usize,
    /// Target duration of one sample (the operation count is calibrated to it).
    pub sample_time: Duration,
}

impl Plan {
    /// The Redis tables' plan: fewer, longer samples than the default, as a
    /// loopback round trip under load is noisier than an in-process call.
    pub const REDIS: Plan = Plan {
        samples: 11,
        sample_time: Duration::from_millis(300),
    };
}

/// The runtime every table runs on: two worker threads, as this machine has
/// two cores (shared with the redis-server under test).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A one-thread runtime, for tables that time one caller in process.
pub fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            samples: 15,
            sample_time: Duration::from_millis(200),
        }
    }
}

/// One line of a table: our adapter against the raw client.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Median time per operation of the raw client.
    pub raw: Duration,
    /// Median time per operation through the port.
    pub ours: Duration,
    /// Throughput through the port relative to the raw client (raw / ours).
    pub ratio: f64,
    /// Lowest and highest per-sample ratio.
    pub spread: (f64, f64),
    /// The target ratio, if there is one.
    pub target: Option<f64>,
}

/// Measures `raw` and `ours`; each closure runs the given number of
/// operations and returns how long they took (setup excluded).
pub fn compare(
    name: &str,
    plan: Plan,
    target: Option<f64>,
    mut raw: impl FnMut(u64) -> Duration,
    mut ours: impl FnMut(u64) -> Duration,
) -> Row {
    let ops = calibrate(&mut raw, plan.sample_time);
    // Warm both up once.
    raw(ops);
    ours(ops);
    let mut raw_times = Vec::with_capacity(plan.samples);
    let mut our_times = Vec::with_capacity(plan.samples);
    for round in 0..plan.samples {
        if round % 2 == 0 {
            raw_times.push(raw(ops));
            our_times.push(ours(ops));
        } else {
            our_times.push(ours(ops));
            raw_times.push(raw(ops));
        }
    }
    let ratios: Vec<f64> = raw_times
        .iter()
        .zip(&our_times)
        .map(|(r, o)| r.as_secs_f64() / o.as_secs_f64())
        .collect();
    let per_op = |t: Duration| t / ops as u32;
    let raw_median = per_op(median(&mut raw_times));
    let our_median = per_op(median(&mut our_times));
    let row = Row {
        name: name.to_owned(),
        raw: raw_median,
        ours: our_median,
        ratio: raw_median.as_secs_f64() / our_median.as_secs_f64(),
        spread: (
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
        ),
        target,
    };
    println!("{}", format_row(&row));
    row
}

/// Times one side alone (for comparisons that are not against a raw client).
pub fn time_alone(plan: Plan, mut run: impl FnMut(u64) -> Duration) -> Duration {
    let ops = calibrate(&mut run, plan.sample_time);
    let mut times: Vec<Duration> = (0..plan.samples).map(|_| run(ops)).collect();
    median(&mut times) / ops as u32
}

/// The number of operations that takes about `target`.
fn calibrate(run: &mut impl FnMut(u64) -> Duration, target: Duration) -> u64 {
    let mut ops = 1u64;
    loop {
        let took = run(ops);
        if took >= target / 4 || ops >= 1 << 24 {
            let per_op = took.as_secs_f64() / ops as f64;
            return ((target.as_secs_f64() / per_op.max(1e-9)) as u64).clamp(1, 1 << 26);
        }
        ops *= 4;
    }
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The header of a table.
pub fn header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<44} {:>12} {:>12} {:>7} {:>15} {:>8}",
        "benchmark", "raw /op", "port /op", "ratio", "spread", "target"
    );
}

/// A row as the table prints it.
pub fn format_row(row: &Row) -> String {
    let target = match row.target {
        Some(t) if row.ratio >= t => format!("≥{t} ok"),
        Some(t) => format!("≥{t} MISS"),
        None => "-".into(),
    };
    format!(
        "{:<44} {:>12} {:>12} {:>6.2}x {:>6.2}–{:<6.2}  {:>8}",
        row.name,
        show(row.raw),
        show(row.ours),
        row.ratio,
        row.spread.0,
        row.spread.1,
        target
    )
}

/// `1.23 µs`, `456 ns`, `7.8 ms`.
pub fn show(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// `n` keys `prefix:0000000`….
pub fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i:07}")).collect()
}

/// A value of `len` bytes.
pub fn value(len: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![b'v'; len])
}

/// Raw moka configured the way cache-moka needs it (bounded in bytes by a
/// weigher charging the adapter's per-entry overhead, LRU, per-entry
/// expiry, an eviction listener), so that a ratio measures the port alone.
pub fn raw_moka_as_the_adapter_needs(
    capacity_bytes: u64,
) -> moka::sync::Cache<String, bytes::Bytes> {
    moka::sync::Cache::builder()
        .max_capacity(capacity_bytes)
        .weigher(|k: &String, v: &bytes::Bytes| {
            (k.len() + v.len() + cache_moka::ENTRY_OVERHEAD) as u32
        })
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .expire_after(NoExpiry)
        .eviction_listener(|_, _, _| {})
        .build()
}

/// Per-entry expiry that never expires: what the adapter's policy costs moka.
struct NoExpiry;

impl moka::Expiry<String, bytes::Bytes> for NoExpiry {
    fn expire_after_create(&self, _: &String, _: &bytes::Bytes, _: Instant) -> Option<Duration> {
        None
    }
}

/// Runs `n` operations spread over `tasks` tasks spawned on the runtime, as
/// a service's requests are; the wall time.
///
/// (Until 2026-11-23 the "tasks" were futures joined on the calling thread:
/// every caller ran on that one thread, so a 64-task row measured the
/// client's CPU per call on one thread while the runtime's two workers
/// idled. See docs/PERFORMANCE.md, "The hot path".)
///
/// One task runs on the calling thread: a lone spawned task's samples were
/// bimodal on this machine (some 10x slower than the rest, spreads of
/// 0.1–7x between two runs of the same client), which measures the
/// virtual machine's wake-ups, not a client.
pub fn run_tasks<F, Fut>(rt: &tokio::runtime::Runtime, tasks: usize, n: u64, op: F) -> Duration
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    rt.block_on(async {
        let start = Instant::now();
        if tasks == 1 {
            for i in 0..n as usize {
                op(i).await;
            }
            return start.elapsed();
        }
        // Exactly `n` operations: the first `n % tasks` tasks run one more.
        // (Until 2026-12-07 every task ran `ceil(n / tasks)`: for slow
        // operations, where calibration picks `n` under `tasks`, 64 ran
        // where `n` were counted, and per-operation times came out up to
        // 64x too long; ratios were unaffected, both sides alike.)
        let (n, tasks) = (n as usize, tasks.min(n as usize).max(1));
        let (per_task, extra) = (n / tasks, n % tasks);
        let runs: Vec<_> = (0..tasks)
            .map(|t| {
                let op = op.clone();
                let first = t * per_task + t.min(extra);
                let count = per_task + usize::from(t < extra);
                tokio::spawn(async move {
                    for i in first..first + count {
                        op(i).await;
                    }
                })
            })
            .collect();
        for run in runs {
            run.await.expect("a benchmark task panicked");
        }
        start.elapsed()
    })
}

/// `value` for the rest of the process, so that spawned tasks
/// ([`run_tasks`]) can borrow the benchmark's fixtures (keys, clients).
pub fn leak<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The Redis clients a user would pick instead of cache-redis, each with
/// its own defaults, connected to `url` (the peers and hot_path benches).
pub struct RedisPeers {
    /// redis-rs's `ConnectionManager` (reconnects; one multiplexed socket).
    pub manager: redis::aio::ConnectionManager,
    /// redis-rs's multiplexed connection.
    pub multiplexed: redis::aio::MultiplexedConnection,
    /// A fred `Pool` of 4, fred's defaults otherwise.
    pub fred: fred::clients::Pool,
}

impl RedisPeers {
    /// Connects every peer to `url`.
    pub async fn connect(url: &str) -> Self {
        use fred::prelude::ClientLike;
        let client = redis::Client::open(url).expect("a redis-rs client");
        let manager = redis::aio::ConnectionManager::new(client.clone())
            .await
            .expect("a ConnectionManager");
        let multiplexed = client
            .get_multiplexed_async_connection()
            .await
            .expect("a multiplexed connection");
        let fred = fred::prelude::Builder::from_config(
            fred::prelude::Config::from_url(url).expect("a fred config"),
        )
        .build_pool(4)
        .expect("a fred pool");
        fred.init().await.expect("fred connects");
        Self {
            manager,
            multiplexed,
            fred,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;

    use super::*;

    #[test]
    fn run_tasks_runs_exactly_n_operations_each_index_once() {
        let rt = runtime();
        for (tasks, n) in [(64, 5u64), (64, 64), (64, 130), (3, 10), (1, 7)] {
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let calls = Arc::new(AtomicUsize::new(0));
            let (s, c) = (Arc::clone(&seen), Arc::clone(&calls));
            run_tasks(&rt, tasks, n, move |i| {
                let (s, c) = (Arc::clone(&s), Arc::clone(&c));
                async move {
                    c.fetch_add(1, SeqCst);
                    s.lock().unwrap().push(i);
                }
            });
            let mut seen = seen.lock().unwrap().clone();
            seen.sort_unstable();
            assert_eq!(calls.load(SeqCst), n as usize, "{tasks} tasks, n = {n}");
            assert_eq!(seen, (0..n as usize).collect::<Vec<_>>());
        }
    }
}
