//! What the staleness tests share: percentiles, a phase's report, waiting
//! for L1 to serve.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_redis::RedisStore;
use cache_tiered::TieredCache;

/// The `p` quantile of sorted durations (zero for none).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

/// Prints a phase's staleness (reads, stale reads, p50/p99/p99.9/max) and
/// returns its maximum.
pub fn report(name: &str, mut staleness: Vec<Duration>) -> Duration {
    staleness.sort_unstable();
    let stale = staleness.iter().filter(|s| !s.is_zero()).count();
    let max = staleness.last().copied().unwrap_or_default();
    println!(
        "{name:<34} {:>7} reads, {stale:>5} stale; staleness p50 {:?} p99 {:?} p99.9 {:?} max {max:?}",
        staleness.len(),
        percentile(&staleness, 0.5),
        percentile(&staleness, 0.99),
        percentile(&staleness, 0.999),
    );
    max
}

/// Waits (at most 10 s) until every instance's L1 serves.
pub async fn wait_until_serving(caches: &[Arc<TieredCache<RedisStore>>]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !caches.iter().all(|c| c.base().figures().l1_serving) {
        assert!(Instant::now() < deadline, "L1 never started serving");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
