//! Peak resident memory of cache-moka at a given capacity and write
//! concurrency: what a user should plan for (issue 11, item 13). Each
//! configuration runs in a fresh process (this binary runs itself), writes
//! 2 GiB of values of mixed sizes (log-uniform, 16 B to 64 KiB) through the
//! port with 1 or 4 writer tasks into a 64 MiB store, and reports the
//! process's peak RSS (`VmHWM`) against its RSS before the store existed.
//! `cargo bench -p cache-bench --bench rss`.

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use cache_moka::MokaConfig;
use cache_port::Cache;

const CAPACITY: u64 = 64 * 1024 * 1024;
const WRITTEN: u64 = 2 * 1024 * 1024 * 1024;
const CHILD: &str = "RSS_BENCH_WRITERS";

/// A `/proc/self/status` field, in bytes.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn child(writers: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(writers.max(2))
        .build()
        .unwrap();
    let baseline = status_kib("VmRSS:");
    rt.block_on(async {
        let cache: Arc<dyn Cache> = Arc::new(
            MokaConfig::default()
                .capacity_bytes(CAPACITY)
                .build()
                .unwrap(),
        );
        let per_writer = WRITTEN / writers as u64;
        let tasks: Vec<_> = (0..writers)
            .map(|w| {
                let cache = Arc::clone(&cache);
                tokio::spawn(async move {
                    let mut rng = fastrand::Rng::with_seed(w as u64);
                    let mut written = 0u64;
                    let mut i = 0u64;
                    while written < per_writer {
                        // Log-uniform sizes: as many tiny values as large ones.
                        let size = (16.0 * 4096f64.powf(rng.f64())) as usize;
                        let key = format!("w{w}:{}", i % 500_000);
                        cache
                            .set(&key, Bytes::from(vec![b'v'; size]), None)
                            .await
                            .unwrap();
                        written += size as u64;
                        i += 1;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = cache.stats().await.unwrap();
        assert!(stats.bytes.unwrap() <= CAPACITY);
    });
    let peak = status_kib("VmHWM:");
    println!("peak {} baseline {}", peak, baseline);
}

fn main() {
    if let Ok(writers) = std::env::var(CHILD) {
        child(writers.parse().unwrap());
        return;
    }
    println!("\npeak RSS of cache-moka, capacity 64 MiB, 2 GiB of mixed-size values written");
    println!(
        "{:<10} {:>16} {:>18}",
        "writers", "peak RSS (MiB)", "x capacity"
    );
    for writers in [1usize, 4] {
        let out = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, writers.to_string())
            .output()
            .expect("run the child");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = text
            .lines()
            .find(|l| l.starts_with("peak "))
            .expect("a figure");
        let nums: Vec<u64> = line
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let grown = nums[0].saturating_sub(nums[1]) as f64 / (1024.0 * 1024.0);
        println!("{writers:<10} {grown:>16.1} {:>17.2}x", grown / 64.0);
    }
}
