//! What the tiered cache records through the `metrics` facade: notices sent
//! and received, the backplane's lag (heartbeat round trips), L1 flushes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_moka::MokaConfig;
use cache_port::Cache;
use cache_store::backplane::{Backplane, LocalBackplane};
use cache_tiered::TieredConfig;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

fn series(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect()
}

#[test]
fn notices_lag_and_flushes_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        // One thread: the listeners' tasks record into this thread's recorder.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let l2 = MokaConfig::default().build_store().unwrap();
            let local = LocalBackplane::new();
            let backplane: Arc<dyn Backplane> = Arc::new(local.clone());
            let build = || {
                TieredConfig::default()
                    .heartbeat(Duration::from_millis(20), Duration::from_millis(200))
                    .build(l2.clone(), Some(Arc::clone(&backplane)))
                    .unwrap()
            };
            let (a, b) = (build(), build());
            let deadline = Instant::now() + Duration::from_secs(10);
            while !(a.base().figures().l1_serving && b.base().figures().l1_serving) {
                assert!(Instant::now() < deadline, "both serve within 10 s");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for i in 0..3 {
                a.set(&format!("k{i}"), "v".into(), None).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            local.cut();
            local.restore();
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop((a, b));
        });
    });
    let s = series(&snapshotter);
    let counter = |name: &str| match s.get(name) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?} in {:#?}", s.keys()),
    };
    assert_eq!(counter("cache.invalidations.sent"), 3);
    assert_eq!(
        counter("cache.invalidations.received"),
        3,
        "b got a's three; a ignores its own"
    );
    assert!(
        counter("cache.l1.flushes") >= 2,
        "each instance flushed at the restore"
    );
    match s.get("cache.backplane.lag") {
        Some(DebugValue::Histogram(lags)) => {
            assert!(lags.len() >= 4, "heartbeats came back: {}", lags.len());
            assert!(lags.iter().all(|l| l.into_inner() < 1.0));
        }
        other => panic!("lag: {other:?}"),
    }
}
