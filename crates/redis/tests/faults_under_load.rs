//! Faults under load: 64 tasks run mixed operations while the server is
//! paused (SIGSTOP), its clients are cut (`CLIENT KILL`), and it is killed
//! (SIGKILL) and restarted on the same port. What must hold, and the bounds
//! the test states:
//!
//! - no call panics, and every call answers within the command timeout plus
//!   `SLACK` (a loaded two-core machine runs 64 tasks, the server and the
//!   test);
//! - after each fault ends, the first success comes within the reconnect
//!   delay plus `RECOVERY_SLACK`;
//! - increments: every acknowledged one is in the counter, and every one
//!   that failed is reported as `OutcomeUnknown` (never as retryable), so
//!   `acknowledged <= counter <= acknowledged + unknown`, exactly, for the
//!   faults that lose no data (pause, `CLIENT KILL`; a killed server without
//!   persistence starts empty).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Cache, ErrorKind};
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;

const COMMAND_TIMEOUT: Duration = Duration::from_millis(400);
const RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// What a call may take beyond the command timeout on this loaded machine.
const SLACK: Duration = Duration::from_millis(600);
/// What the first success after a fault may take beyond the reconnect delay.
const RECOVERY_SLACK: Duration = Duration::from_millis(1500);
const TASKS: usize = 64;

/// What the load saw.
#[derive(Default)]
struct Tally {
    calls: AtomicU64,
    failures: AtomicU64,
    acknowledged: AtomicU64,
    unknown: AtomicU64,
    /// Failures of an increment that said it could be retried.
    retryable_incr_failures: AtomicU64,
    slowest: Mutex<Duration>,
    /// Per counter key: (acknowledged, outcome unknown).
    per_counter: Mutex<std::collections::HashMap<String, (u64, u64)>>,
    errors_by_kind: Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Tally {
    fn took(&self, took: Duration) {
        let mut slowest = self.slowest.lock().unwrap();
        *slowest = (*slowest).max(took);
    }

    fn failed(&self, kind: ErrorKind) {
        self.failures.fetch_add(1, Relaxed);
        *self
            .errors_by_kind
            .lock()
            .unwrap()
            .entry(format!("{kind:?}"))
            .or_default() += 1;
    }
}

/// One task's mixed operations, until `stop`; increments go to `counter`.
async fn load(
    cache: Arc<dyn Cache>,
    counter: Arc<Mutex<String>>,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    seed: usize,
) {
    let mut n = seed;
    while !stop.load(Relaxed) {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let key = format!("k{}", n % 50);
        let started = Instant::now();
        let outcome: Result<(), cache_port::CacheError> = match n % 6 {
            0 | 1 => cache.get(&key).await.map(drop),
            2 => cache.set(&key, Bytes::from_static(b"v"), None).await,
            3 => {
                let counter = counter.lock().unwrap().clone();
                let result = cache.incr(&counter, 1, None).await;
                let mut per_counter = tally.per_counter.lock().unwrap();
                let entry = per_counter.entry(counter).or_default();
                match result {
                    Ok(_) => {
                        tally.acknowledged.fetch_add(1, Relaxed);
                        entry.0 += 1;
                        Ok(())
                    }
                    Err(e) => {
                        if e.kind() == ErrorKind::OutcomeUnknown {
                            tally.unknown.fetch_add(1, Relaxed);
                            entry.1 += 1;
                        } else if e.is_retryable() {
                            tally.retryable_incr_failures.fetch_add(1, Relaxed);
                        }
                        Err(e)
                    }
                }
            }
            4 => cache.get_many(&[key.clone(), "k1".into()]).await.map(drop),
            _ => cache.delete(&key).await.map(drop),
        };
        tally.took(started.elapsed());
        tally.calls.fetch_add(1, Relaxed);
        if let Err(e) = outcome {
            tally.failed(e.kind());
        }
    }
}

/// Calls `get` until one succeeds; how long that took.
async fn first_success(cache: &dyn Cache) -> Duration {
    let started = Instant::now();
    while cache.get("probe").await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

/// Reads the counter: the acknowledged increments are all there, and at
/// most the unknown ones besides.
async fn check_counter(cache: &dyn Cache, tally: &Tally, name: &str, fault: &str) {
    let (acknowledged, unknown) = tally
        .per_counter
        .lock()
        .unwrap()
        .get(name)
        .copied()
        .unwrap_or_default();
    let value = cache.get(name).await.unwrap().map_or(0, |v| {
        std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap()
    });
    println!("{fault}: counter {value}, acknowledged {acknowledged}, outcome unknown {unknown}");
    assert!(
        acknowledged <= value && value <= acknowledged + unknown,
        "{fault}: counter {value} is not within acknowledged {acknowledged} + unknown {unknown}"
    );
}

/// Moves the load's increments to counter `next`, then waits until no call
/// can still be on its way to the previous one.
async fn switch_counter(counter: &Mutex<String>, next: &str) {
    *counter.lock().unwrap() = next.to_owned();
    tokio::time::sleep(COMMAND_TIMEOUT + SLACK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_load_through_pause_client_kill_and_restart() {
    let mut server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url())
        .unwrap()
        .namespace("load")
        .command_timeout(COMMAND_TIMEOUT)
        .reconnect_delay(RECONNECT_DELAY);
    let cache: Arc<dyn Cache> = Arc::new(RedisConfig::connect(&config).await.unwrap());
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(Mutex::new("counter:pause".to_owned()));
    let tasks: Vec<_> = (0..TASKS)
        .map(|seed| {
            tokio::spawn(load(
                Arc::clone(&cache),
                Arc::clone(&counter),
                Arc::clone(&tally),
                Arc::clone(&stop),
                seed,
            ))
        })
        .collect();

    // 1. Pause the server for 1.5 s under load.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.pause();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.resume();
    let recovered = first_success(&*cache).await;
    println!("pause: first success {recovered:?} after resume");
    assert!(
        recovered <= RECONNECT_DELAY + RECOVERY_SLACK,
        "pause: {recovered:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    switch_counter(&counter, "counter:client-kill").await;
    check_counter(&*cache, &tally, "counter:pause", "pause").await;

    // 2. Cut every client connection, twice.
    for _ in 0..2 {
        server.command("CLIENT KILL TYPE normal");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let recovered = first_success(&*cache).await;
    println!("CLIENT KILL: first success {recovered:?} after the last cut");
    assert!(
        recovered <= RECONNECT_DELAY + RECOVERY_SLACK,
        "client kill: {recovered:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    switch_counter(&counter, "counter:restart").await;
    check_counter(&*cache, &tally, "counter:client-kill", "CLIENT KILL").await;

    // 3. Kill the server and restart it on the same port (no persistence:
    //    it comes back empty, so only the bounds are checked).
    server.kill();
    tokio::time::sleep(Duration::from_millis(800)).await;
    server.restart();
    let recovered = first_success(&*cache).await;
    println!("kill -9 + restart: first success {recovered:?} after the restart");
    assert!(
        recovered <= RECONNECT_DELAY + RECOVERY_SLACK,
        "restart: {recovered:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    stop.store(true, Relaxed);
    for task in tasks {
        task.await.expect("a load task panicked");
    }
    let slowest = *tally.slowest.lock().unwrap();
    println!(
        "{} calls, {} failed {:?}; slowest call {slowest:?}",
        tally.calls.load(Relaxed),
        tally.failures.load(Relaxed),
        tally.errors_by_kind.lock().unwrap()
    );
    assert!(
        slowest <= COMMAND_TIMEOUT + SLACK,
        "a call took {slowest:?}"
    );
    assert_eq!(
        tally.retryable_incr_failures.load(Relaxed),
        0,
        "a failed increment said it could be retried"
    );
    assert!(
        tally.unknown.load(Relaxed) > 0,
        "the faults hit no increment: the test proved nothing"
    );
}
