//! cache-moka through `Arc<dyn Cache>` against raw `moka::future::Cache`,
//! 100-byte values. `cargo bench -p cache-bench --bench moka`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_bench::{compare, header, keys, value, Plan};
use cache_moka::MokaConfig;
use cache_port::Cache;
use moka::future::Cache as RawMoka;

const ENTRIES: usize = 100_000;
const VALUE: usize = 100;

fn main() {
    let rt = cache_bench::one_thread_runtime();
    // More samples than the default: a ~1 µs operation on this machine
    // wanders by ±15 % from sample to sample, and the get-hit target (0.95)
    // is within that.
    let plan = Plan {
        samples: 31,
        ..Plan::default()
    };
    let hot = keys("hot", ENTRIES);
    let cold = keys("cold", ENTRIES);

    let ours: Arc<dyn Cache> = Arc::new(
        MokaConfig::default()
            .capacity_bytes(1 << 30)
            .build()
            .unwrap(),
    );
    // Two baselines. The raw moka the adapter runs on, configured as the
    // adapter needs it (sync cache, bounded in bytes by a weigher, LRU,
    // per-entry expiry, an eviction listener): the ratio is the cost of the
    // port. And what a user would pick instead: a default moka future cache
    // (entry-count bound, TinyLFU, no expiry).
    let raw = cache_bench::raw_moka_as_the_adapter_needs(1 << 30);
    let default: RawMoka<String, Bytes> = RawMoka::new(4 * ENTRIES as u64);
    rt.block_on(async {
        for k in &hot {
            ours.set(k, value(VALUE), None).await.unwrap();
            raw.insert(k.clone(), value(VALUE));
            default.insert(k.clone(), value(VALUE)).await;
        }
    });

    let (raw, ours, default) = (&raw, &ours, &default);
    header("cache-moka (Arc<dyn Cache>) vs raw moka as the adapter needs it, 100-byte values, one task");
    let mut i = 0usize;
    let mut next = |list: &Vec<String>| {
        i = (i + 7919) % list.len();
        list[i].clone()
    };
    let hot_keys: Vec<String> = (0..ENTRIES).map(|_| next(&hot)).collect();
    let cold_keys: Vec<String> = (0..ENTRIES).map(|_| next(&cold)).collect();
    let v = &value(VALUE);

    compare(
        "get (hit)",
        plan,
        Some(0.95),
        |n| sync_loop(n, &hot_keys, |k| assert!(raw.get(k).is_some())),
        |n| {
            rt.block_on(async {
                timed_loop(n, &hot_keys, |k| async move {
                    assert!(ours.get(k).await.unwrap().is_some())
                })
                .await
            })
        },
    );
    compare(
        "get (miss)",
        plan,
        None,
        |n| sync_loop(n, &cold_keys, |k| assert!(raw.get(k).is_none())),
        |n| {
            rt.block_on(async {
                timed_loop(n, &cold_keys, |k| async move {
                    assert!(ours.get(k).await.unwrap().is_none())
                })
                .await
            })
        },
    );
    compare(
        "set (overwrite)",
        plan,
        Some(0.9),
        |n| sync_loop(n, &hot_keys, |k| raw.insert(k.clone(), v.clone())),
        |n| {
            rt.block_on(async {
                timed_loop(n, &hot_keys, |k| async move {
                    ours.set(k, v.clone(), None).await.unwrap()
                })
                .await
            })
        },
    );

    header("cache-moka (Arc<dyn Cache>) vs a default moka::future::Cache (what a user would pick instead)");
    compare(
        "get (hit)",
        plan,
        Some(0.8),
        |n| {
            rt.block_on(async {
                timed_loop(n, &hot_keys, |k| async move {
                    assert!(default.get(k).await.is_some())
                })
                .await
            })
        },
        |n| {
            rt.block_on(async {
                timed_loop(n, &hot_keys, |k| async move {
                    assert!(ours.get(k).await.unwrap().is_some())
                })
                .await
            })
        },
    );
    compare(
        "set (overwrite)",
        plan,
        Some(0.7),
        |n| {
            rt.block_on(async {
                timed_loop(n, &hot_keys, |k| async move {
                    default.insert(k.clone(), v.clone()).await
                })
                .await
            })
        },
        |n| {
            rt.block_on(async {
                timed_loop(n, &hot_keys, |k| async move {
                    ours.set(k, v.clone(), None).await.unwrap()
                })
                .await
            })
        },
    );

    header("cache-moka vs raw moka as the adapter needs it: batches and bulk deletion");
    let batches: Vec<Vec<String>> = hot_keys.chunks(100).map(|c| c.to_vec()).collect();
    compare(
        "get_many(100) vs 100 raw gets",
        plan,
        None,
        |n| {
            rt.block_on(async {
                let start = Instant::now();
                for b in 0..n as usize {
                    for k in &batches[b % batches.len()] {
                        std::hint::black_box(raw.get(k));
                    }
                }
                start.elapsed()
            })
        },
        |n| {
            rt.block_on(async {
                let start = Instant::now();
                for b in 0..n as usize {
                    std::hint::black_box(ours.get_many(&batches[b % batches.len()]).await.unwrap());
                }
                start.elapsed()
            })
        },
    );

    // delete_pattern over 100k entries: the store is refilled before each sample.
    let bulk = keys("bulk", ENTRIES);
    let slow = Plan {
        samples: 5,
        sample_time: Duration::from_millis(1),
    };
    compare(
        "delete_pattern over 100k entries",
        slow,
        None,
        |_| {
            rt.block_on(async {
                for k in &bulk {
                    raw.insert(k.clone(), value(VALUE));
                }
                let start = Instant::now();
                // The raw equivalent: walk the store, pick the prefix, remove and count.
                let doomed: Vec<Arc<String>> = raw
                    .iter()
                    .filter(|(k, _)| k.starts_with("bulk:"))
                    .map(|(k, _)| k)
                    .collect();
                let mut removed = 0;
                for k in doomed {
                    removed += usize::from(raw.remove(&*k).is_some());
                }
                assert_eq!(removed, ENTRIES);
                start.elapsed()
            })
        },
        |_| {
            rt.block_on(async {
                let items = bulk.iter().map(|k| (k.clone(), value(VALUE))).collect();
                ours.set_many(items, None).await.unwrap();
                let start = Instant::now();
                assert_eq!(ours.delete_pattern("bulk:*").await.unwrap(), ENTRIES as u64);
                start.elapsed()
            })
        },
    );
}

/// Runs the synchronous `op` on `n` keys from `keys` (cycling) and times it.
fn sync_loop<'k>(n: u64, keys: &'k [String], mut op: impl FnMut(&'k String)) -> Duration {
    let start = Instant::now();
    for i in 0..n as usize {
        op(&keys[i % keys.len()]);
    }
    start.elapsed()
}

/// Runs `op` on `n` keys from `keys` (cycling) and times it.
async fn timed_loop<'k, F, Fut>(n: u64, keys: &'k [String], mut op: F) -> Duration
where
    F: FnMut(&'k String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = Instant::now();
    for i in 0..n as usize {
        op(&keys[i % keys.len()]).await;
    }
    start.elapsed()
}
