//! Instruction counts of a `get` hit, for callgrind (timings on this
//! machine move by more than the differences being looked for):
//!
//! ```text
//! cargo build --release -p cache-bench --example hit_instructions
//! for n in 0 100000; do HITS=$n STACK=tiered-ns valgrind --tool=callgrind \
//!     target/release/examples/hit_instructions; done
//! ```
//!
//! (total at 100,000 hits − total at 0) / 100,000 = instructions per hit.
//! `STACK`: `moka`, `moka-ns` (namespace "s1"), `tiered`, `tiered-ns`;
//! the tiered cache is over a moka L2 with no backplane (its L1 serves
//! from the start: the hit path is the one it has over Redis);
//! `tiered-bp` has an in-process backplane, as with other instances (its
//! hits note their reads for the refresh after invalidation; `REFRESH=0`
//! without). `TAGGED=1`:
//! through `cache_tags::TaggedCache`, every entry tagged `product:7`.
//! `LOADER=1`: `Loader::get_or_load` hits (a 100-byte `String` value).
//! `SETS=1`: `set`s with a 300 s TTL over existing keys instead of hits
//! (`HITS` of them); `STACK=moka-uncounted` is `moka` with
//! `count_evictions(false)`, `STACK=raw-moka` a default
//! `moka::future::Cache` (`insert`, no TTL) for reference. `TASKS=n`: the
//! hits spread over n tasks on a 2-worker runtime (for timing with `perf`
//! rather than counting).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_tiered::TieredConfig;

fn main() {
    let hits: usize = std::env::var("HITS")
        .expect("HITS=<number of hits>")
        .parse()
        .expect("HITS: a number");
    let stack = std::env::var("STACK").expect("STACK=moka|moka-ns|tiered|tiered-ns");
    let sets = std::env::var("SETS").is_ok_and(|v| v == "1");
    let moka = || {
        let config = MokaConfig::default().capacity_bytes(64 << 20);
        let config = config.count_evictions(stack != "moka-uncounted");
        match stack.ends_with("-ns") {
            true => config.namespace("s1"),
            false => config,
        }
    };
    let tasks: usize = std::env::var("TASKS").map_or(1, |t| t.parse().expect("TASKS: a number"));
    let rt = match tasks {
        1 => tokio::runtime::Builder::new_current_thread(),
        _ => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(2);
            builder
        }
    }
    .enable_all()
    .build()
    .unwrap();
    rt.block_on(async {
        if stack == "raw-moka" {
            let raw = moka::future::Cache::<String, Bytes>::new(40_000);
            let keys: Vec<String> = (0..1000).map(|i| format!("key:{i:07}")).collect();
            let value = Bytes::from(vec![b'v'; 100]);
            for key in &keys {
                raw.insert(key.clone(), value.clone()).await;
            }
            for i in 0..hits {
                let key = &keys[i % keys.len()];
                match sets {
                    true => raw.insert(key.clone(), value.clone()).await,
                    false => assert!(raw.get(key).await.is_some()),
                }
            }
            return;
        }
        let cache: Arc<dyn Cache> = match stack.as_str() {
            "moka" | "moka-ns" | "moka-uncounted" => Arc::new(moka().build().unwrap()),
            "tiered" | "tiered-ns" => {
                let l2 = MokaConfig::default().build_store().unwrap();
                let config =
                    TieredConfig::default().l1(MokaConfig::default().capacity_bytes(64 << 20));
                let config = match stack.ends_with("-ns") {
                    true => config.namespace("s1"),
                    false => config,
                };
                Arc::new(config.build(l2, None).unwrap())
            }
            // With other instances (a backplane in process): the hit then
            // notes its read for the refresh after invalidation
            // (`REFRESH=0`: without).
            "tiered-bp" => {
                let l2 = MokaConfig::default().build_store().unwrap();
                let backplane: Arc<dyn cache_store::backplane::Backplane> =
                    Arc::new(cache_store::backplane::LocalBackplane::new());
                let refresh = std::env::var("REFRESH").map_or(true, |v| v != "0");
                let cache = TieredConfig::default()
                    .l1(MokaConfig::default().capacity_bytes(64 << 20))
                    .refresh_after_invalidation(refresh)
                    .build(l2, Some(backplane))
                    .unwrap();
                while !cache.base().figures().l1_serving {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Arc::new(cache)
            }
            other => panic!("STACK={other}: moka, moka-ns, tiered, tiered-ns or tiered-bp"),
        };
        let keys: Vec<String> = (0..1000).map(|i| format!("key:{i:07}")).collect();
        let tagged = std::env::var("TAGGED").is_ok_and(|v| v == "1");
        let view = cache_tags::TaggedCache::new(Arc::clone(&cache));
        for key in &keys {
            let value = Bytes::from(vec![b'v'; 100]);
            let ttl = Some(Duration::from_secs(300));
            match tagged {
                true => view.set(key, value, ttl, &["product:7"]).await.unwrap(),
                false => cache.set(key, value, ttl).await.unwrap(),
            }
            view.get(key).await.unwrap();
        }
        if std::env::var("LOADER").is_ok_and(|v| v == "1") {
            let loader: cache_loading::Loader<std::io::Error> = cache_loading::Loader::new(cache);
            let ttl = Some(Duration::from_secs(300));
            let load = || async { Ok::<_, std::io::Error>("v".repeat(100)) };
            for key in &keys {
                loader
                    .get_or_load::<String, _, _>(&format!("l{key}"), ttl, load)
                    .await
                    .unwrap();
            }
            let loaded: Vec<String> = keys.iter().map(|k| format!("l{k}")).collect();
            for i in 0..hits {
                let value: String = loader
                    .get_or_load(&loaded[i % loaded.len()], ttl, || async {
                        Err(std::io::Error::other("a hit never loads"))
                    })
                    .await
                    .unwrap();
                assert_eq!(value.len(), 100);
            }
            return;
        }
        if sets {
            let value = Bytes::from(vec![b'v'; 100]);
            let ttl = Some(Duration::from_secs(300));
            for i in 0..hits {
                let key = &keys[i % keys.len()];
                cache.set(key, value.clone(), ttl).await.unwrap();
            }
            return;
        }
        let keys = Arc::new(keys);
        let spawned: Vec<_> = (0..tasks)
            .map(|t| {
                let (cache, view, keys) = (Arc::clone(&cache), view.clone(), Arc::clone(&keys));
                tokio::spawn(async move {
                    for i in (t..hits).step_by(tasks) {
                        let key = &keys[i % keys.len()];
                        match tagged {
                            true => assert!(view.get(key).await.unwrap().is_some()),
                            false => assert!(cache.get(key).await.unwrap().is_some()),
                        }
                    }
                })
            })
            .collect();
        for task in spawned {
            task.await.unwrap();
        }
    });
}
