//! Rate limit accuracy: 64 tasks hammer one subject for 10 s at well over
//! 10x its quota. The allowed requests are within 1 % of what GCRA allows
//! (the burst plus one per interval) and, in every window of 1 s and of
//! 100 ms, never more than the burst plus the window's share; on Redis the
//! 64 tasks are spread over 4 independent caches (4 clients of one server,
//! as 4 processes would be), which share the one limit.
//!
//! Timestamps are the client's: a decision was made between the request's
//! send and its answer, so a window counts the allowed requests certainly
//! inside it (sent and answered within it) against its bound, and the
//! total is checked against the bound for the whole run's span.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cache_port::Cache;
use cache_recipes::{Quota, RateLimiter};
use cache_redis_harness::RedisServer;

const RUN: Duration = Duration::from_secs(10);
const TASKS: usize = 64;
const COUNT: u32 = 200;
const BURST: u32 = 20;

struct Record {
    /// (sent, answered) of each allowed request.
    allowed: Mutex<Vec<(Instant, Instant)>>,
    attempts: AtomicU64,
    stop: AtomicBool,
}

async fn hammer(limiters: Vec<RateLimiter>) -> (Arc<Record>, Instant, Instant) {
    let record = Arc::new(Record {
        allowed: Mutex::new(Vec::new()),
        attempts: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let start = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (limiter, record) = (limiters[i % limiters.len()].clone(), Arc::clone(&record));
            tokio::spawn(async move {
                while !record.stop.load(SeqCst) {
                    let sent = Instant::now();
                    let decision = limiter.check("hot").await.unwrap();
                    let answered = Instant::now();
                    record.attempts.fetch_add(1, SeqCst);
                    if decision.allowed {
                        record.allowed.lock().unwrap().push((sent, answered));
                    }
                    // In process nothing waits: let the other tasks run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(RUN).await;
    record.stop.store(true, SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    (record, start, Instant::now())
}

fn check(name: &str, record: &Record, start: Instant, end: Instant) {
    let quota = Quota::per(COUNT, Duration::from_secs(1)).unwrap();
    let interval = quota.emission_interval();
    let mut allowed = record.allowed.lock().unwrap().clone();
    allowed.sort();
    let attempts = record.attempts.load(SeqCst);
    let n = allowed.len() as f64;
    // What GCRA allows from a fresh subject over the span (the burst, then
    // one per interval), and over the span of certain decisions.
    let span = end - start;
    let most = f64::from(BURST) + span.as_secs_f64() / interval.as_secs_f64();
    let least = f64::from(BURST) + RUN.as_secs_f64() / interval.as_secs_f64();
    println!(
        "{name}: {attempts} attempts ({:.0}/s, {:.0}x the quota), {} allowed; GCRA allows {least:.0} to {most:.0}",
        attempts as f64 / span.as_secs_f64(),
        attempts as f64 / span.as_secs_f64() / f64::from(COUNT),
        allowed.len()
    );
    assert!(
        attempts as f64 / span.as_secs_f64() >= 10.0 * f64::from(COUNT),
        "{name}: the load was under 10x the quota"
    );
    assert!(n <= most + 1.0, "{name}: {n} allowed, above {most:.0}");
    assert!(
        n >= least * 0.99,
        "{name}: {n} allowed, more than 1 % under {least:.0}"
    );
    // Every window: the allowed requests certainly inside it.
    for window in [Duration::from_millis(100), Duration::from_secs(1)] {
        let bound = BURST as usize + (window.as_micros() / interval.as_micros()) as usize + 1;
        let mut worst = 0;
        for (i, &(from, _)) in allowed.iter().enumerate() {
            let inside = allowed[i..]
                .iter()
                .take_while(|(sent, _)| *sent < from + window)
                .filter(|(_, answered)| *answered <= from + window)
                .count();
            worst = worst.max(inside);
        }
        println!("{name}: at most {worst} allowed in any {window:?} (bound {bound})");
        assert!(
            worst <= bound,
            "{name}: {worst} in {window:?}, above {bound}"
        );
    }
}

/// One limiter on each of 4 independent clients of `server`, as 4
/// processes would have.
async fn four_clients(
    server: &RedisServer,
    name: &str,
    limit: impl Into<cache_recipes::Limit> + Copy,
) -> Vec<RateLimiter> {
    let mut limiters = Vec::new();
    for _ in 0..4 {
        let cache: Arc<dyn Cache> = Arc::new(
            cache_redis::RedisConfig::from_url(&server.url())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
        limiters.push(RateLimiter::new(cache, name, limit).unwrap());
    }
    limiters
}

fn quota() -> Quota {
    Quota::per(COUNT, Duration::from_secs(1))
        .unwrap()
        .burst(BURST)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_of_one_redis_share_one_exact_limit() {
    let server = RedisServer::start();
    let limiters = four_clients(&server, "limit", quota()).await;
    let (record, start, end) = hammer(limiters).await;
    check("redis, 4 clients", &record, start, end);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_the_same_limit_holds() {
    let cache: Arc<dyn Cache> = Arc::new(cache_moka::MokaConfig::default().build().unwrap());
    let limiter = RateLimiter::new(cache, "limit", quota()).unwrap();
    let (record, start, end) = hammer(vec![limiter]).await;
    check("moka", &record, start, end);
}

/// An exact sliding window of 200 a second under the same hammering: any
/// 1 s holds at most 200 allowed requests (those certainly inside it), and
/// the run allows at least 99 % of 200 per whole second.
async fn window_accuracy(name: &str, limiters: Vec<RateLimiter>) {
    let (record, start, end) = hammer(limiters).await;
    let mut allowed = record.allowed.lock().unwrap().clone();
    allowed.sort();
    let n = allowed.len();
    let whole_seconds = (end - start).as_secs();
    println!("{name}, window: {n} allowed in {:?}", end - start);
    assert!(
        n as f64 >= 0.99 * f64::from(COUNT) * whole_seconds as f64,
        "{name}: {n} allowed"
    );
    assert!(
        n as u64 <= u64::from(COUNT) * (whole_seconds + 1),
        "{name}: {n} allowed"
    );
    let second = Duration::from_secs(1);
    let mut worst = 0;
    for (i, &(from, _)) in allowed.iter().enumerate() {
        let inside = allowed[i..]
            .iter()
            .take_while(|(sent, _)| *sent < from + second)
            .filter(|(_, answered)| *answered < from + second)
            .count();
        worst = worst.max(inside);
    }
    println!("{name}, window: at most {worst} allowed in any 1 s (limit {COUNT})");
    assert!(worst <= COUNT as usize, "{name}: {worst} in one second");
}

fn window() -> cache_recipes::Window {
    cache_recipes::Window::new(COUNT, Duration::from_secs(1)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sliding_window_holds_exactly_on_redis_and_in_process() {
    let server = RedisServer::start();
    let limiters = four_clients(&server, "window", window()).await;
    window_accuracy("redis, 4 clients", limiters).await;
    let moka: Arc<dyn Cache> = Arc::new(cache_moka::MokaConfig::default().build().unwrap());
    window_accuracy(
        "moka",
        vec![RateLimiter::new(moka, "window", window()).unwrap()],
    )
    .await;
}
