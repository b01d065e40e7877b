//! The load of the cluster fault tests: Redis Cluster, not just healthy (issue 15, item 3), on loopback.
//! (The two tests run in separate binaries, `cluster_failover` and
//! `cluster_reshard`, sharing this file's load. During a reshard, a few
//! calls in flight when fred rebuilds a node's connections go unanswered
//! until the command timeout; see docs/SEMANTICS.md.)
//!
//! - three primaries with a replica each; a primary killed under load
//!   (`get`, `set`, `get_many`, `keys`, `delete_pattern`): its replica is
//!   promoted, the adapter follows, errors are typed and retryable, and no
//!   acknowledged write is lost;
//! - slots moved between primaries (`redis-cli --cluster reshard`) under the
//!   same load: MOVED and ASK are followed, `keys` and `delete_pattern`
//!   never miss a key that exists throughout and never fail, no write is
//!   lost, and the only failures (of single-key calls) are retryable
//!   timeouts.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::Cache;
use cache_redis::RedisConfig;
use cache_redis_harness::RedisCluster;

pub const STABLE: usize = 2000;

pub type Errors = Arc<Mutex<BTreeMap<String, usize>>>;

fn note(errors: &Errors, what: &str, e: &cache_port::CacheError) {
    assert!(e.is_retryable(), "{what} failed for good: {e}");
    *errors
        .lock()
        .unwrap()
        .entry(format!("{what} {:?}", e.kind()))
        .or_default() += 1;
}

pub async fn adapter(cluster: &RedisCluster, command_timeout: Duration) -> Arc<dyn Cache> {
    let config = RedisConfig::from_url(&cluster.url())
        .unwrap()
        .namespace("cf")
        .command_timeout(command_timeout)
        .reconnect_delay(Duration::from_millis(100));
    Arc::new(config.connect().await.unwrap())
}

/// The load: writers (acknowledged writes recorded), readers of the stable
/// keys and `get_many`, and a lister: `keys("stable:*")` must list every
/// stable key, and `delete_pattern("scratch:*")` must not fail for good.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, u64, Instant)>>>,
    pub errors: Errors,
    listings: Arc<AtomicU64>,
    /// The slowest `set`, in µs.
    pub slowest_set_us: Arc<AtomicU64>,
    short_listings: Arc<Mutex<Vec<usize>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

pub fn start_load(cache: &Arc<dyn Cache>) -> Load {
    let load = Load {
        stop: Arc::default(),
        acked: Arc::default(),
        errors: Arc::default(),
        listings: Arc::default(),
        slowest_set_us: Arc::default(),
        short_listings: Arc::default(),
        tasks: Vec::new(),
    };
    let mut tasks = Vec::new();
    for writer in 0..6 {
        let (cache, stop, acked, errors, slowest) = (
            Arc::clone(cache),
            Arc::clone(&load.stop),
            Arc::clone(&load.acked),
            Arc::clone(&load.errors),
            Arc::clone(&load.slowest_set_us),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(SeqCst) {
                n += 1;
                let key = format!("w{writer}:{n}");
                let started = Instant::now();
                let outcome = cache.set(&key, Bytes::from(n.to_string()), None).await;
                slowest.fetch_max(started.elapsed().as_micros() as u64, SeqCst);
                match outcome {
                    Ok(()) => acked.lock().unwrap().push((key, n, Instant::now())),
                    Err(e) => note(&errors, "set", &e),
                }
                if n % 50 == 0 {
                    let scratch = format!("scratch:{writer}:{n}");
                    if let Err(e) = cache.set(&scratch, Bytes::new(), None).await {
                        note(&errors, "set", &e);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    for _ in 0..3 {
        let (cache, stop, errors) = (
            Arc::clone(cache),
            Arc::clone(&load.stop),
            Arc::clone(&load.errors),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(SeqCst) {
                let keys: Vec<String> = (0..10)
                    .map(|_| format!("stable:{}", fastrand::usize(..STABLE)))
                    .collect();
                match cache.get_many(&keys).await {
                    Ok(values) => assert!(
                        values.iter().all(Option::is_some),
                        "a stable key read as missing"
                    ),
                    Err(e) => note(&errors, "get_many", &e),
                }
                match cache.get(&keys[0]).await {
                    Ok(value) => assert!(value.is_some(), "a stable key read as missing"),
                    Err(e) => note(&errors, "get", &e),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    let (cache, stop, errors, listings, short) = (
        Arc::clone(cache),
        Arc::clone(&load.stop),
        Arc::clone(&load.errors),
        Arc::clone(&load.listings),
        Arc::clone(&load.short_listings),
    );
    tasks.push(tokio::spawn(async move {
        while !stop.load(SeqCst) {
            match cache.keys("stable:*").await {
                Ok(keys) => {
                    listings.fetch_add(1, SeqCst);
                    if keys.len() != STABLE {
                        short.lock().unwrap().push(keys.len());
                    }
                }
                Err(e) => note(&errors, "keys", &e),
            }
            // The streaming form lists every stable key too.
            let mut streamed = std::collections::HashSet::new();
            let mut pages = cache.keys_stream("stable:*");
            let mut complete = true;
            while let Some(page) = futures::StreamExt::next(&mut pages).await {
                match page {
                    Ok(page) => streamed.extend(page),
                    Err(e) => {
                        note(&errors, "keys_stream", &e);
                        complete = false;
                        break;
                    }
                }
            }
            if complete {
                listings.fetch_add(1, SeqCst);
                if streamed.len() != STABLE {
                    short.lock().unwrap().push(streamed.len());
                }
            }
            if let Err(e) = cache.delete_pattern("scratch:*").await {
                note(&errors, "delete_pattern", &e);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }));
    Load { tasks, ..load }
}

/// What a load saw, from the start to [`Load::finish`].
pub struct Finished {
    /// The slowest acknowledged `set`.
    pub slowest_set: Duration,
    /// Writes the cache acknowledged: key, value, when.
    pub acked: Vec<(String, u64, Instant)>,
    /// Failed calls, by operation and error kind.
    pub errors: BTreeMap<String, usize>,
    /// How many `keys` listings ran.
    pub listings: u64,
    /// Listings that missed stable keys (how many each missed).
    pub short: Vec<usize>,
    /// Acknowledged writes the cache no longer holds.
    pub lost: Vec<String>,
}

impl Finished {
    /// One line for the test's output.
    pub fn summary(&self) -> String {
        format!(
            "slowest set {:?}; errors by kind {:?}; {} writes acknowledged, {} lost; {} keys listings, {} short ({:?})",
            self.slowest_set,
            self.errors,
            self.acked.len(),
            self.lost.len(),
            self.listings,
            self.short.len(),
            self.short,
        )
    }

    /// Fails the test if any acknowledged write was lost.
    pub fn assert_none_lost(&self) {
        assert!(
            self.lost.is_empty(),
            "lost acknowledged writes: {:?}",
            &self.lost[..self.lost.len().min(5)]
        );
    }
}

impl Load {
    /// Stops the load, waits for its tasks, and reads back every
    /// acknowledged write.
    pub async fn finish(self, cache: &Arc<dyn Cache>) -> Finished {
        let slowest_set = Duration::from_micros(self.slowest_set_us.load(SeqCst));
        self.stop.store(true, SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acked = std::mem::take(&mut *self.acked.lock().unwrap());
        let errors = self.errors.lock().unwrap().clone();
        let short = self.short_listings.lock().unwrap().clone();
        let lost = lost(cache, &acked).await;
        Finished {
            slowest_set,
            acked,
            errors,
            listings: self.listings.load(SeqCst),
            short,
            lost,
        }
    }
}

async fn lost(cache: &Arc<dyn Cache>, acked: &[(String, u64, Instant)]) -> Vec<String> {
    let mut lost = Vec::new();
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|a| a.0.clone()).collect();
        // Just after slots moved, a pipeline of 500 GETs may meet many MOVED
        // replies, and fred resyncs its map for each: the read can time out
        // once (retryable), as a caller would see, and is tried again.
        let mut attempts = 0;
        let values = loop {
            match cache.get_many(&keys).await {
                Ok(values) => break values,
                Err(e) if e.is_retryable() && attempts < 10 => attempts += 1,
                Err(e) => panic!("reading back: {e}"),
            }
        };
        for ((key, n, _), value) in chunk.iter().zip(values) {
            if value.as_deref() != Some(n.to_string().as_bytes()) {
                lost.push(key.clone());
            }
        }
    }
    lost
}

pub async fn seed(cache: &Arc<dyn Cache>) {
    let items: Vec<(String, Bytes)> = (0..STABLE)
        .map(|i| (format!("stable:{i}"), Bytes::from_static(b"s")))
        .collect();
    cache.set_many(items, None).await.unwrap();
}
