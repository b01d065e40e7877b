//! What the staleness tests share: percentiles, a phase's report, waiting
//! for L1 to serve, an instance kept coherent by client tracking.

// Each test file uses a part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_redis::{RedisConfig, RedisStore, RedisTracking};
use cache_store::backplane::Backplane;
use cache_tiered::{TieredCache, TieredConfig};

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

/// The staleness tests' Redis settings: short timeouts, quick reconnects.
pub fn config(url: &str) -> RedisConfig {
    RedisConfig::from_url(url)
        .unwrap()
        .command_timeout(Duration::from_millis(500))
        .reconnect_delay(Duration::from_millis(100))
}

/// A tiered instance over the Redis at `url`, in `namespace`, kept coherent
/// by client tracking.
pub async fn instance(url: &str, namespace: &str) -> Arc<TieredCache<RedisStore>> {
    let config = config(url);
    let l2 = RedisStore::connect(&config).await.unwrap();
    let tracking: Arc<dyn Backplane> = RedisTracking::connect(&config, &format!("{namespace}:"))
        .await
        .unwrap();
    Arc::new(
        TieredConfig::default()
            .namespace(namespace)
            .build(l2, Some(tracking))
            .unwrap(),
    )
}
