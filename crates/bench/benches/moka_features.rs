//! What each moka feature the contract needs costs (issue 10): a default
//! `moka::future::Cache` (what a user picks; "raw") against
//! `moka::sync::Cache` with one feature at a time, all of them, and
//! cache-moka through `Arc<dyn Cache>` ("port"), 100-byte values, at one
//! task and at 64 tasks on the two-worker runtime.
//! `cargo bench -p cache-bench --bench moka_features`.
//!
//! The features: a weigher (the byte bound), LRU instead of TinyLFU ("set
//! then get" holds in a full store), per-entry expiry (`expire_after`: moka
//! drops an entry when its TTL ends), an eviction listener (the evictions
//! counter of `stats`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_bench::{compare, header, keys, leak, run_tasks, value, Plan};
use cache_moka::MokaConfig;
use cache_port::Cache;

const ENTRIES: usize = 100_000;
const VALUE: usize = 100;
const CAPACITY_BYTES: u64 = 1 << 30;

type Sync = moka::sync::Cache<String, Bytes>;

/// A never-expiring per-entry policy: what `expire_after` costs moka.
struct NoExpiry;

impl moka::Expiry<String, Bytes> for NoExpiry {
    fn expire_after_create(&self, _: &String, _: &Bytes, _: Instant) -> Option<Duration> {
        None
    }
}

fn weighed() -> moka::sync::CacheBuilder<String, Bytes, Sync> {
    Sync::builder()
        .max_capacity(CAPACITY_BYTES)
        .weigher(|k: &String, v: &Bytes| (k.len() + v.len() + cache_moka::ENTRY_OVERHEAD) as u32)
}

fn variants() -> Vec<(&'static str, Sync)> {
    let bound = 4 * ENTRIES as u64;
    vec![
        ("sync, default", Sync::new(bound)),
        ("sync + weigher", weighed().build()),
        (
            "sync + LRU",
            Sync::builder()
                .max_capacity(bound)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        ),
        (
            "sync + per-entry expiry",
            Sync::builder()
                .max_capacity(bound)
                .expire_after(NoExpiry)
                .build(),
        ),
        (
            "sync + eviction listener",
            Sync::builder()
                .max_capacity(bound)
                .eviction_listener(|_, _, _| {})
                .build(),
        ),
        (
            "sync + all four (the adapter's)",
            cache_bench::raw_moka_as_the_adapter_needs(CAPACITY_BYTES),
        ),
    ]
}

fn main() {
    let rt = cache_bench::runtime();
    let plan = Plan::default();
    let hot: &'static Vec<String> = leak(keys("hot", ENTRIES));
    let v: &'static Bytes = leak(value(VALUE));
    let default: &'static moka::future::Cache<String, Bytes> =
        leak(moka::future::Cache::new(4 * ENTRIES as u64));
    let ours: &'static Arc<dyn Cache> = leak(Arc::new(
        MokaConfig::default()
            .capacity_bytes(CAPACITY_BYTES)
            .build()
            .unwrap(),
    ));
    let variants: &'static Vec<(&'static str, Sync)> = leak(variants());
    rt.block_on(async {
        for k in hot {
            default.insert(k.clone(), v.clone()).await;
            ours.set(k, v.clone(), None).await.unwrap();
            for (_, cache) in variants {
                cache.insert(k.clone(), v.clone());
            }
        }
    });

    for tasks in [1usize, 64] {
        header(&format!(
            "default moka::future::Cache (\"raw\") vs each feature (\"port\" column), 100-byte values, {tasks} task(s)"
        ));
        let default_get = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                assert!(default.get(&hot[i * 7919 % ENTRIES]).await.is_some());
            })
        };
        let default_set = |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                default
                    .insert(hot[i * 7919 % ENTRIES].clone(), v.clone())
                    .await;
            })
        };
        for (name, cache) in variants.iter() {
            compare(
                &format!("get (hit): {name}"),
                plan,
                None,
                default_get,
                |n| {
                    run_tasks(&rt, tasks, n, move |i| async move {
                        assert!(cache.get(&hot[i * 7919 % ENTRIES]).is_some());
                    })
                },
            );
            compare(&format!("set: {name}"), plan, None, default_set, |n| {
                run_tasks(&rt, tasks, n, move |i| async move {
                    cache.insert(hot[i * 7919 % ENTRIES].clone(), v.clone());
                })
            });
        }
        compare("get (hit): cache-moka", plan, Some(0.8), default_get, |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                assert!(ours.get(&hot[i * 7919 % ENTRIES]).await.unwrap().is_some());
            })
        });
        compare("set: cache-moka", plan, Some(0.7), default_set, |n| {
            run_tasks(&rt, tasks, n, move |i| async move {
                ours.set(&hot[i * 7919 % ENTRIES], v.clone(), None)
                    .await
                    .unwrap();
            })
        });
    }
}
