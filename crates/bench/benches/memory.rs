//! Heap bytes per entry at 1M entries of 100-byte values: cache-moka against
//! raw moka. Counted by a global allocator wrapper (bytes requested from the
//! allocator, not the allocator's own overhead).
//! `cargo bench -p cache-bench --bench memory`.

use std::sync::Arc;

use bytes::Bytes;
use cache_moka::MokaConfig;
use cache_port::Cache;
use moka::future::Cache as RawMoka;
use peak_alloc::PeakAlloc;

#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

const ENTRIES: usize = 1_000_000;
const VALUE: usize = 100;

fn main() {
    let rt = cache_bench::one_thread_runtime();
    println!("\nheap bytes per entry, {ENTRIES} entries of {VALUE}-byte values (11-byte keys)");
    println!("{:<52} {:>14} {:>10}", "store", "bytes/entry", "vs raw");
    let raw_bare = rt.block_on(measure(|| async {
        let cache: RawMoka<String, Bytes> =
            RawMoka::builder().max_capacity(2 * ENTRIES as u64).build();
        for i in 0..ENTRIES {
            cache.insert(key(i), value()).await;
        }
        cache.run_pending_tasks().await;
        assert_eq!(cache.entry_count(), ENTRIES as u64);
        Box::new(cache) as Box<dyn std::any::Any>
    }));
    let raw_same = rt.block_on(measure(|| async {
        let cache = cache_bench::raw_moka_as_the_adapter_needs(1 << 31);
        for i in 0..ENTRIES {
            cache.insert(key(i), value());
        }
        cache.run_pending_tasks();
        assert_eq!(cache.entry_count(), ENTRIES as u64);
        Box::new(cache) as Box<dyn std::any::Any>
    }));
    let ours = rt.block_on(measure(|| async {
        let cache = MokaConfig::default()
            .capacity_bytes(1 << 31)
            .build()
            .unwrap();
        for i in 0..ENTRIES {
            cache.set(&key(i), value(), None).await.unwrap();
        }
        let stats = cache.stats().await.unwrap();
        assert_eq!(stats.entries, Some(ENTRIES as u64));
        assert_eq!(stats.evictions, Some(0));
        Box::new(Arc::new(cache)) as Box<dyn std::any::Any>
    }));
    let row =
        |name: &str, bytes: f64| println!("{name:<52} {bytes:>14.1} {:>9.2}x", bytes / raw_same);
    row("raw moka, default (entry-count bound, TinyLFU)", raw_bare);
    row(
        "raw moka, as the adapter needs (weigher, LRU, expiry)",
        raw_same,
    );
    row("cache-moka", ours);
    println!(
        "(the adapter's weigher charges key + value + {} bytes of overhead per entry)",
        cache_moka::ENTRY_OVERHEAD
    );
}

async fn measure<F, Fut>(build: F) -> f64
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Box<dyn std::any::Any>>,
{
    let before = HEAP.current_usage();
    let store = build().await;
    let after = HEAP.current_usage();
    drop(store);
    (after - before) as f64 / ENTRIES as f64
}

fn key(i: usize) -> String {
    format!("key:{i:07}")
}

fn value() -> Bytes {
    Bytes::from(vec![b'v'; VALUE])
}
