//! What the loader records through the `metrics` facade: its calls by
//! outcome, their latency, fail-safe activations and stale answers.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cache_loading::{FailSafe, LoadOptions, Loader, Origin, StaleReason};
use cache_port::Cache;
use cache_store::layer::CacheStore;
use cache_store::CacheBuilder;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[test]
fn loader_calls_latency_fail_safe_and_stale_answers_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let runtime = common::runtime();
        runtime.block_on(async {
            let mock = common::one_value_mock();
            let cache: Arc<dyn Cache> = CacheBuilder::new(CacheStore::new(mock)).build();
            let loader: Loader<String> = Loader::new(cache);
            let options = LoadOptions::default()
                .with_ttl(Some(Duration::from_millis(20)))
                .fail_safe(FailSafe::new(Duration::from_secs(60)));
            let fresh = loader
                .get_or_load_entry("k", options, || async { Ok(1u32) })
                .await
                .unwrap();
            assert_eq!(fresh.origin, Origin::Loader);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let stale = loader
                .get_or_load_entry("k", options, || async {
                    Err::<u32, _>("db down".to_owned())
                })
                .await
                .unwrap();
            assert_eq!(stale.origin, Origin::Stale(StaleReason::LoaderFailed));
            // The loader now rests for the throttle: answered stale without a call.
            let resting = loader
                .get_or_load_entry("k", options, || async { Ok(2u32) })
                .await
                .unwrap();
            assert_eq!(resting.origin, Origin::Stale(StaleReason::LoaderResting));
        });
    });
    let series: HashMap<String, DebugValue> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key().clone();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect();
    let counter = |name: &str| match series.get(name) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?} in {:#?}", series.keys()),
    };
    assert_eq!(counter("cache.loader.calls{cache.outcome=ok}"), 1);
    assert_eq!(counter("cache.loader.calls{cache.outcome=error}"), 1);
    assert_eq!(
        counter("cache.fail_safe.activations{cache.stale.reason=loader_failed}"),
        1
    );
    assert_eq!(
        counter("cache.stale.served{cache.stale.reason=loader_failed}"),
        1
    );
    assert_eq!(
        counter("cache.stale.served{cache.stale.reason=loader_resting}"),
        1
    );
    match series.get("cache.loader.duration{}") {
        Some(DebugValue::Histogram(values)) => assert_eq!(values.len(), 2),
        other => panic!("loader duration: {other:?}"),
    }
}
