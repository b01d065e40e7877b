//! The byte bound's per-entry charge against what an entry really costs in
//! resident memory (issue 11, item 13). Each shape is measured in a fresh
//! process (this test binary runs itself as a child), since freed memory is
//! reused and would hide the cost of a second measurement in one process:
//! RSS growth over 100,000 entries, divided by the count, minus the key and
//! value bytes, is the real per-entry overhead (moka's node and queues, our
//! expiry instant, the allocator's headers and rounding over ≈ 9 allocations
//! per entry). The charge must cover it, so the byte bound bounds RSS.

use std::process::Command;

use cache_moka::{MokaConfig, ENTRY_OVERHEAD};
use cache_port::Cache;
use libtest_mimic::{Arguments, Failed, Trial};

const ENTRIES: usize = 100_000;
const CHILD: &str = "ENTRY_CHARGE_CHILD";
/// Entry shapes: key bytes, value bytes.
const SHAPES: &[(usize, usize)] = &[(8, 8), (11, 100), (32, 16384)];

fn rss_bytes() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: f64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096.0
}

/// In the child: fills a store with `ENTRIES` entries of one shape and
/// prints the RSS overhead per entry beyond its key and value.
fn child(shape: &str) {
    let (k, v) = shape.split_once(',').unwrap();
    let (k, v): (usize, usize) = (k.parse().unwrap(), v.parse().unwrap());
    let keys: Vec<String> = (0..ENTRIES).map(|i| format!("{i:0k$}")).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let cache = MokaConfig::default()
            .capacity_bytes(1 << 40)
            .build()
            .unwrap();
        let before = rss_bytes();
        for key in &keys {
            cache
                .set(key, bytes::Bytes::from(vec![b'v'; v]), None)
                .await
                .unwrap();
        }
        assert_eq!(cache.stats().await.unwrap().entries, Some(ENTRIES as u64));
        let per_entry = (rss_bytes() - before) / ENTRIES as f64;
        println!("overhead {:.1}", per_entry - (k + v) as f64);
    });
}

/// In the parent: the overhead of one shape, measured in a fresh process.
fn measured_overhead(k: usize, v: usize) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{k},{v}"))
        .output()
        .expect("run the measuring child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("overhead "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no figure from the child: {text}"))
}

fn the_charge_covers_the_resident_cost_of_every_entry_shape() -> Result<(), Failed> {
    let mut worst: f64 = 0.0;
    for &(k, v) in SHAPES {
        let overhead = measured_overhead(k, v);
        println!("key {k} B, value {v} B: {overhead:.0} B of RSS per entry beyond key and value (charged {ENTRY_OVERHEAD})");
        worst = worst.max(overhead);
    }
    let charge = ENTRY_OVERHEAD as f64;
    if charge < worst * 0.95 {
        return Err(format!("the charge of {charge} B is below the measured {worst:.0} B: the byte bound does not bound RSS").into());
    }
    if charge > worst * 1.25 {
        return Err(format!(
            "the charge of {charge} B is far above the measured {worst:.0} B: recalibrate"
        )
        .into());
    }
    Ok(())
}

fn main() {
    if let Ok(shape) = std::env::var(CHILD) {
        child(&shape);
        return;
    }
    let args = Arguments::from_args();
    let trials = vec![Trial::test(
        "the_charge_covers_the_resident_cost_of_every_entry_shape",
        the_charge_covers_the_resident_cost_of_every_entry_shape,
    )];
    libtest_mimic::run(&args, trials).exit();
}
