//! Issue 27's table: what a keyspace costs, and what compression buys, on
//! moka and a self-started redis-server, in one run.
//!
//! 1. A typed `get` hit through a keyspace (`Keyspace::get`, MessagePack)
//!    against what a service writes by hand (`format!` the key,
//!    `Cache::get`, `rmp_serde::from_slice`), 64 tasks, a small struct.
//!    Target: ≥ 0.9x.
//! 2. Realistic JSON-like values (a page of products) of about 1 KB,
//!    100 KB and 1 MB: bytes as MessagePack and JSON, compressed with lz4
//!    (`lz4_flex`, what the keyspace uses) and zstd level 1 and 3 (the C
//!    library, measured here only), and the time to compress and expand
//!    each once (one thread, median of 15).
//! 3. A JSON keyspace `get` on Redis at 64 tasks for each size, without
//!    compression (raw) and with lz4 (ours).
//!
//! `cargo bench -p cache-bench --bench keyspace`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_bench::{compare, header, leak, run_tasks, show, Plan};
use cache_keyspace::{Json, Keyspace};
use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;
use serde::{Deserialize, Serialize};

const KEYS: u64 = 1_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    category: String,
    cents: u64,
    in_stock: bool,
    tags: Vec<String>,
    rating: Option<u8>,
}

const WORDS: [&str; 16] = [
    "lamp", "desk", "oak", "chair", "linen", "brass", "floor", "shade", "walnut", "kitchen",
    "garden", "lighting", "vintage", "modern", "steel", "velvet",
];

fn product(i: u64) -> Product {
    let word = |n: u64| WORDS[(n % WORDS.len() as u64) as usize];
    Product {
        id: 100_000 + i,
        name: format!("{} {} {}", word(i * 7), word(i * 3 + 1), i),
        category: word(i / 5).to_owned(),
        cents: 499 + (i * 7919) % 100_000,
        in_stock: i % 3 != 0,
        tags: (0..(i % 4 + 1))
            .map(|t| word(i + t * 5).to_owned())
            .collect(),
        rating: (i % 5 != 0).then_some((i % 5) as u8),
    }
}

/// A page of products whose JSON is about `bytes` long.
fn page(bytes: usize) -> Vec<Product> {
    let mut page = Vec::new();
    let mut len = 2;
    while len < bytes {
        let p = product(page.len() as u64);
        len += serde_json::to_vec(&p).unwrap().len() + 1;
        page.push(p);
    }
    page
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Median of 15 single runs of `f`.
fn time_once(mut f: impl FnMut()) -> Duration {
    median(
        (0..15)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let rt = cache_bench::runtime();
    let server = RedisServer::start();
    let redis: Arc<dyn Cache> = rt.block_on(async {
        Arc::new(
            RedisConfig::from_url(&server.url())
                .unwrap()
                .connect()
                .await
                .unwrap(),
        )
    });
    let moka: Arc<dyn Cache> = Arc::new(MokaConfig::default().build().unwrap());
    typed_get(&rt, &[("moka", moka), ("redis", Arc::clone(&redis))]);
    sizes();
    compressed_gets(&rt, redis);
}

/// 1. A typed get hit: keyspace against get + rmp_serde by hand.
fn typed_get(rt: &tokio::runtime::Runtime, caches: &[(&str, Arc<dyn Cache>)]) {
    header(
        "typed get hit, 64 tasks: raw = Cache::get + rmp_serde::from_slice, ours = Keyspace::get",
    );
    for (name, cache) in caches {
        let cache = leak(Arc::clone(cache));
        let products = leak(
            Keyspace::<u64, Product>::builder(Arc::clone(cache), "p")
                .build()
                .unwrap(),
        );
        rt.block_on(async {
            for i in 0..KEYS {
                products.set(&i, &product(i)).await.unwrap();
            }
        });
        compare(
            &format!("typed get: {name}"),
            Plan::REDIS,
            Some(0.9),
            |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    // What a service writes by hand: format the key, get, decode.
                    let id = i as u64 % KEYS;
                    let stored = cache.get(&format!("p:{id}")).await.unwrap().unwrap();
                    let p: Product = rmp_serde::from_slice(&stored).unwrap();
                    assert_eq!(p.id, 100_000 + id);
                })
            },
            |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    let id = i as u64 % KEYS;
                    let p = products.get(&id).await.unwrap().unwrap();
                    assert_eq!(p.id, 100_000 + id);
                })
            },
        );
    }
}

/// 2. Bytes and one-thread times of each compression, for each size.
fn sizes() {
    println!(
        "\nrealistic values (pages of products): bytes stored, and one compression / expansion (median of 15)"
    );
    println!(
        "{:<8} {:>9} {:>9} | {:>22} {:>22} {:>22}",
        "size", "msgpack", "json", "lz4 (json)", "zstd 1 (json)", "zstd 3 (json)"
    );
    for size in [1_000, 100_000, 1_000_000] {
        let page = page(size);
        let json = serde_json::to_vec(&page).unwrap();
        let msgpack = rmp_serde::to_vec_named(&page).unwrap();
        let lz4 = lz4_flex::block::compress(&json);
        let lz4_in = time_once(|| drop(lz4_flex::block::compress(&json)));
        let lz4_out = time_once(|| {
            let mut out = vec![0; json.len()];
            lz4_flex::block::decompress_into(&lz4, &mut out).unwrap();
        });
        let zstd_cell = |level: i32| {
            let packed = zstd::bulk::compress(&json, level).unwrap();
            let inn = time_once(|| drop(zstd::bulk::compress(&json, level).unwrap()));
            let out = time_once(|| drop(zstd::bulk::decompress(&packed, json.len()).unwrap()));
            format!("{} B {}/{}", packed.len(), show(inn), show(out))
        };
        println!(
            "{:<8} {:>9} {:>9} | {:>22} {:>22} {:>22}",
            format!("{} KB", json.len() / 1000),
            msgpack.len(),
            json.len(),
            format!("{} B {}/{}", lz4.len(), show(lz4_in), show(lz4_out)),
            zstd_cell(1),
            zstd_cell(3),
        );
    }
    println!("(each cell: bytes, then compress / expand time)");
}

/// 3. A JSON keyspace get on Redis, 64 tasks: plain against lz4.
fn compressed_gets(rt: &tokio::runtime::Runtime, redis: Arc<dyn Cache>) {
    header("JSON keyspace get on Redis, 64 tasks: raw = uncompressed, ours = lz4 (compress_above 1 KiB)");
    let redis = leak(redis);
    for size in [1_000usize, 100_000, 1_000_000] {
        let page = page(size);
        let plain = leak(
            Keyspace::<u64, Vec<Product>>::builder(Arc::clone(redis), "plain")
                .codec(Json)
                .build()
                .unwrap(),
        );
        let packed = leak(
            Keyspace::<u64, Vec<Product>>::builder(Arc::clone(redis), "lz4")
                .codec(Json)
                .compress_above(1024)
                .build()
                .unwrap(),
        );
        let ids = 16u64;
        rt.block_on(async {
            for id in 0..ids {
                plain.set(&id, &page).await.unwrap();
                packed.set(&id, &page).await.unwrap();
            }
        });
        let stored = |prefix: &str| {
            let value = rt
                .block_on(redis.get(&format!("{prefix}:0")))
                .unwrap()
                .unwrap();
            value.len()
        };
        println!(
            "{} KB page: {} B stored plain, {} B with lz4",
            size / 1000,
            stored("plain"),
            stored("lz4")
        );
        let len = page.len();
        let plan = if size >= 1_000_000 {
            Plan {
                samples: 5,
                sample_time: Duration::from_millis(500),
            }
        } else {
            Plan::REDIS
        };
        compare(
            &format!("json get {} KB", size / 1000),
            plan,
            None,
            move |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    let got = plain.get(&(i as u64 % ids)).await.unwrap().unwrap();
                    assert_eq!(got.len(), len);
                })
            },
            move |n| {
                run_tasks(rt, 64, n, move |i| async move {
                    let got = packed.get(&(i as u64 % ids)).await.unwrap().unwrap();
                    assert_eq!(got.len(), len);
                })
            },
        );
    }
}
