//! Coherence of three tiered instances on one Redis (issue 13).
//!
//! Every key has one writer instance (so its writes are ordered: the value
//! is the write's sequence number), and every instance reads every key. For
//! each read, the staleness is how long before the read began the value it
//! returned had been overwritten by an acknowledged write (0 if it had not).
//! Phases: 30 s healthy; then `CLIENT KILL TYPE pubsub`, a 2 s SIGSTOP of
//! Redis, and a restart (which loses the data: the values it wiped count as
//! overwritten at the restart), each followed by 5 s of load. The bound is
//! asserted on reads that begin when no fault is in progress.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::Cache;
use cache_redis::{RedisBackplane, RedisConfig, RedisStore, DEFAULT_CHANNEL};
use cache_redis_harness::RedisServer;
use cache_store::backplane::Backplane;
use cache_tiered::{TieredCache, TieredConfig};

mod common;
use common::{report, wait_until_serving};

const INSTANCES: usize = 3;
const KEYS: usize = 60;
/// The staleness bound for reads outside faults: pub/sub delivery on
/// loopback is well under a millisecond, and the listener applies a notice
/// as soon as its task runs; the rest is scheduling on a 2-core machine
/// that also runs Redis, three instances and the load.
const BOUND: Duration = Duration::from_millis(100);
/// How long after a fault's end reads are still counted as "during" it:
/// a killed subscriber reconnects within its 100 ms reconnect delay and
/// flushes L1 once resubscribed; a restart takes Redis some 100s of ms.
const SETTLE: Duration = Duration::from_millis(1500);

/// What happened to one key: its writes (sequence, when answered, whether
/// acknowledged). A write that failed (a timeout during a fault) may have
/// landed or not, and if it landed, maybe later than writes after it.
#[derive(Default)]
struct History {
    writes: Vec<(u64, Instant, bool)>,
}

/// One read: when it began, its staleness, whether during a fault, the
/// key, the value seen, the instance that read.
type Read = (Instant, Duration, bool, usize, u64, usize);

struct World {
    histories: Vec<Mutex<History>>,
    /// Restarts of Redis (the data was lost at each).
    wipes: Mutex<Vec<Instant>>,
    /// Windows during which a fault is in progress (from, to), each
    /// recorded when the fault begins (`to` is `None` until it ends): a
    /// read that begins during a fault and returns before it ends (from L1,
    /// in a freeze) is one that began during it. Until 2026-12-08 a window
    /// was recorded only when its fault ended, and such a read counted as
    /// after the faults (a run read a value 601 ms stale 600 ms into the
    /// 2 s freeze: the `PUBLISH` was answered, its delivery frozen).
    faults: Mutex<Vec<(Instant, Option<Instant>)>>,
    reads: Mutex<Vec<Read>>,
    errors: AtomicU64,
    stop: AtomicBool,
}

impl World {
    /// How long before `began` the value `seen` of `key` had been
    /// overwritten by an acknowledged write or wiped by a restart.
    fn staleness(&self, key: usize, seen: u64, began: Instant) -> Duration {
        let history = self.histories[key].lock().unwrap();
        let wipes = self.wipes.lock().unwrap();
        let last_wipe = wipes.iter().rev().find(|w| **w < began).copied();
        let mut superseded: Option<Instant> = None;
        let mut note = |at: Instant| {
            if at < began && superseded.is_none_or(|s| at < s) {
                superseded = Some(at);
            }
        };
        // The value of a failed write may have landed at any time, after
        // later writes too: reading it is never stale.
        if seen > 0
            && history
                .writes
                .iter()
                .any(|(s, _, acked)| *s == seen && !acked)
        {
            return Duration::ZERO;
        }
        // Only acknowledged writes supersede: a failed one may never have
        // landed (it counted as written when it failed until 2026-12-07,
        // which made every read of the key's previous value "stale" until
        // the key's next write: 524 ms after a restart, one clean-clone run
        // in seven).
        for (seq, at, _) in history.writes.iter().filter(|w| w.2) {
            // A "missing" read is only superseded by writes since the last
            // wipe (earlier ones were wiped).
            let counts = if seen == 0 {
                last_wipe.is_none_or(|w| *at > w)
            } else {
                *seq > seen
            };
            if counts {
                note(*at);
            }
        }
        if seen > 0 {
            if let Some(written) = history.writes.iter().find(|(s, _, _)| *s == seen) {
                for wipe in wipes.iter().filter(|w| **w > written.1) {
                    note(*wipe);
                }
            }
        }
        superseded.map_or(Duration::ZERO, |at| began - at)
    }

    fn in_fault(&self, at: Instant) -> bool {
        self.faults
            .lock()
            .unwrap()
            .iter()
            .any(|(from, to)| at >= *from && to.is_none_or(|to| at <= to + SETTLE))
    }

    /// Records that a fault begins now; returns its index for `end_fault`.
    fn begin_fault(&self) -> usize {
        let mut faults = self.faults.lock().unwrap();
        faults.push((Instant::now(), None));
        faults.len() - 1
    }

    fn end_fault(&self, fault: usize) {
        self.faults.lock().unwrap()[fault].1 = Some(Instant::now());
    }
}

fn key(k: usize) -> String {
    format!("k{k}")
}

async fn instance(url: &str) -> TieredCache<RedisStore> {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .command_timeout(Duration::from_millis(500))
        .reconnect_delay(Duration::from_millis(100));
    let l2 = RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = RedisBackplane::connect(&config, DEFAULT_CHANNEL)
        .await
        .unwrap();
    TieredConfig::default()
        .namespace("coherence")
        .build(l2, Some(backplane))
        .unwrap()
}

async fn writer(world: Arc<World>, cache: Arc<TieredCache<RedisStore>>, me: usize) {
    let mut next: HashMap<usize, u64> = HashMap::new();
    let mine: Vec<usize> = (0..KEYS).filter(|k| k % INSTANCES == me).collect();
    while !world.stop.load(SeqCst) {
        let k = mine[fastrand::usize(..mine.len())];
        let seq = next.entry(k).or_insert(0);
        *seq += 1;
        let value = Bytes::from(seq.to_string());
        let acked = cache.set(&key(k), value, None).await.is_ok();
        if !acked {
            // Unknown whether it landed: the writer moves on to a new
            // number, and `staleness` treats this one as possible, never
            // required.
            world.errors.fetch_add(1, SeqCst);
        }
        world.histories[k]
            .lock()
            .unwrap()
            .writes
            .push((*seq, Instant::now(), acked));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn reader(world: Arc<World>, cache: Arc<TieredCache<RedisStore>>, me: usize) {
    while !world.stop.load(SeqCst) {
        let k = fastrand::usize(..KEYS);
        let began = Instant::now();
        match cache.get(&key(k)).await {
            Ok(value) => {
                let seen = value
                    .map(|v| std::str::from_utf8(&v).unwrap().parse::<u64>().unwrap())
                    .unwrap_or(0);
                let stale = world.staleness(k, seen, began);
                let during = world.in_fault(began);
                world
                    .reads
                    .lock()
                    .unwrap()
                    .push((began, stale, during, k, seen, me));
            }
            Err(_) => {
                world.errors.fetch_add(1, SeqCst);
            }
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_stay_coherent_through_faults() {
    let mut server = RedisServer::start();
    let url = server.url();
    let mut caches = Vec::new();
    for _ in 0..INSTANCES {
        caches.push(Arc::new(instance(&url).await));
    }
    wait_until_serving(&caches).await;
    let world = Arc::new(World {
        histories: (0..KEYS).map(|_| Mutex::default()).collect(),
        wipes: Mutex::default(),
        faults: Mutex::default(),
        reads: Mutex::default(),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let mut tasks = Vec::new();
    for (me, cache) in caches.iter().enumerate() {
        tasks.push(tokio::spawn(writer(
            Arc::clone(&world),
            Arc::clone(cache),
            me,
        )));
        for _ in 0..2 {
            tasks.push(tokio::spawn(reader(
                Arc::clone(&world),
                Arc::clone(cache),
                me,
            )));
        }
    }
    let healthy_until = Instant::now() + Duration::from_secs(30);
    tokio::time::sleep_until(healthy_until.into()).await;

    // Fault 1: every subscriber connection killed.
    let fault = world.begin_fault();
    let killed = server.command("CLIENT KILL TYPE pubsub");
    world.end_fault(fault);
    println!("CLIENT KILL TYPE pubsub: {}", killed.trim());
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Fault 2: Redis frozen for 2 s.
    let fault = world.begin_fault();
    server.pause();
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.resume();
    world.end_fault(fault);
    tokio::time::sleep(Duration::from_secs(5)).await;

    // Fault 3: Redis restarted (its data lost).
    // The data is lost when the server dies.
    let fault = world.begin_fault();
    world.wipes.lock().unwrap().push(Instant::now());
    server.restart();
    world.end_fault(fault);
    tokio::time::sleep(Duration::from_secs(5)).await;

    world.stop.store(true, SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let reads = std::mem::take(&mut *world.reads.lock().unwrap());
    let healthy: Vec<Duration> = reads
        .iter()
        .filter(|r| r.0 < healthy_until)
        .map(|r| r.1)
        .collect();
    let after_faults: Vec<Duration> = reads
        .iter()
        .filter(|r| r.0 >= healthy_until && !r.2)
        .map(|r| r.1)
        .collect();
    let during: Vec<Duration> = reads.iter().filter(|r| r.2).map(|r| r.1).collect();
    let flushes: Vec<u64> = caches.iter().map(|c| c.base().figures().flushes).collect();
    let unpublished: Vec<u64> = caches
        .iter()
        .map(|c| c.base().figures().publish_failures)
        .collect();
    println!(
        "errors (during faults): {}; L1 flushes per instance: {flushes:?}; invalidations not published: {unpublished:?}",
        world.errors.load(SeqCst)
    );
    // The worst read outside faults, with its key's history around it: what
    // a failure needs to be understood.
    if let Some(worst) = reads
        .iter()
        .filter(|r| !r.2)
        .max_by_key(|r| r.1)
        .filter(|r| r.1 > BOUND)
    {
        let t0 = healthy_until;
        let rel = |at: Instant| at.saturating_duration_since(t0).as_secs_f64() * 1e3 - 0.0;
        println!(
            "worst read: instance {} key {} saw {} at {:.1} ms after the faults began, stale {:?}",
            worst.5,
            worst.3,
            worst.4,
            rel(worst.0),
            worst.1
        );
        println!(
            "faults (ms): {:?}; wipes: {:?}",
            world
                .faults
                .lock()
                .unwrap()
                .iter()
                .map(|(a, b)| (rel(*a), b.map(rel)))
                .collect::<Vec<_>>(),
            world
                .wipes
                .lock()
                .unwrap()
                .iter()
                .map(|w| rel(*w))
                .collect::<Vec<_>>()
        );
        let history = world.histories[worst.3].lock().unwrap();
        for (seq, at, acked) in history.writes.iter().filter(|w| {
            w.1 > worst.0 - Duration::from_secs(3) && w.1 < worst.0 + Duration::from_millis(200)
        }) {
            println!(
                "  write {seq} answered at {:.1} ms, acked {acked}",
                rel(*at)
            );
        }
        for r in reads.iter().filter(|r| {
            r.3 == worst.3
                && r.0 > worst.0 - Duration::from_secs(3)
                && r.0 < worst.0 + Duration::from_millis(200)
        }) {
            println!(
                "  read by {} at {:.1} ms saw {} (stale {:?})",
                r.5,
                rel(r.0),
                r.4,
                r.1
            );
        }
    }
    let healthy_max = report("healthy, 30 s", healthy);
    let after_max = report("between and after faults", after_faults);
    report("during faults (+1.5 s)", during);
    assert!(
        healthy_max <= BOUND,
        "healthy staleness up to {healthy_max:?}"
    );
    assert!(
        after_max <= BOUND,
        "staleness after faults up to {after_max:?}"
    );
    assert!(
        flushes.iter().all(|f| *f >= 2),
        "every instance flushed L1 after the subscriber kill and the restart: {flushes:?}"
    );
}

/// The model's rule for failed writes (the clean-clone failure of
/// 2026-12-07: a write that failed during the restart and never landed
/// made reads of the key's previous value "stale" for 524 ms).
#[test]
fn a_failed_write_neither_supersedes_nor_is_stale_when_read() {
    let world = World {
        histories: (0..1).map(|_| Mutex::default()).collect(),
        wipes: Mutex::default(),
        faults: Mutex::default(),
        reads: Mutex::default(),
        errors: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    world.histories[0].lock().unwrap().writes = vec![(1, at(0), true), (2, at(10), false)];
    // Value 1 read after write 2 failed: write 2 may never have landed.
    assert_eq!(world.staleness(0, 1, at(600)), Duration::ZERO);
    // Value 2 read after write 3 was acknowledged: 2 may have landed late.
    world.histories[0]
        .lock()
        .unwrap()
        .writes
        .push((3, at(20), true));
    assert_eq!(world.staleness(0, 2, at(600)), Duration::ZERO);
    // Value 1 read after write 3 was acknowledged is stale since then.
    assert_eq!(world.staleness(0, 1, at(600)), Duration::from_millis(580));
}
