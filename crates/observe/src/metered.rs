//! `Metered<S>`: every operation timed and counted through the `metrics` facade.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use metrics::{Counter, Gauge, Histogram, Label};
// quanta's clock reads the TSC where it is reliable (falling back to the OS
// clock where not): the timer every call pays for.
use quanta::Instant;

use crate::names;
use cache_port::Namespace;
use cache_port::{CacheError, Result};
use cache_store::{Op, Reply, Request, Store};

/// Records each operation under the names in [`observe::names`](crate::names):
/// its duration ([`OPERATION_DURATION`](names::OPERATION_DURATION), labelled
/// with the operation, adapter, namespace, outcome and error kind), hits
/// and misses ([`LOOKUPS`](names::LOOKUPS)), failures
/// ([`ERRORS`](names::ERRORS)), and, whenever a `stats` call passes, the
/// store's entries, bytes and evictions.
///
/// It records into whatever recorder the process installed (Prometheus,
/// OpenTelemetry, StatsD…) through the [`metrics`] facade; with none
/// installed it costs two clock reads per call. Install the recorder before
/// building the cache: the layer takes its metric handles on first use.
/// Caller errors refused by the front (a bad key, an oversized value) never
/// reach the store and are not timed; `stats()` counts them.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_store::layer::CacheStore;
/// use cache_observe::MetricsLayer;
/// use cache_port::{Cache, MockCache};
/// use cache_store::CacheBuilder;
///
/// let mut store = MockCache::new(); // an adapter's store in production
/// store.expect_max_value_len().return_const(1024usize);
/// store.expect_get().returning(|_| Ok(None));
/// let cache = CacheBuilder::new(CacheStore::new(store))
///     .namespace("shop")?
///     .layer(MetricsLayer::new("moka").namespace("shop"))
///     .build();
/// cache.get("cart:1").await?; // db.client.operation.duration{db.operation.name="get", cache.outcome="miss", …}
/// # Ok::<(), cache_port::CacheError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Metered<S> {
    inner: S,
    handles: Arc<Handles>,
}

/// How many [`Op`]s there are (`Ping` is the last).
const OPS: usize = Op::Ping as usize + 1;

/// The outcomes of a successful call, each a series of its own, taken on
/// its first use (so that no empty series, a `delete` "hit", is exported).
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok = 0,
    Hit = 1,
    Miss = 2,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
        }
    }
}

#[derive(Debug)]
struct Handles {
    /// `db.system.name` and, when set, `db.namespace`.
    base: Vec<Label>,
    durations: [[OnceLock<Histogram>; 3]; OPS],
    lookups: OnceLock<(Counter, Counter)>,
    store: OnceLock<(Gauge, Gauge, Counter)>,
}

impl Handles {
    fn labels(&self, more: &[(&'static str, &'static str)]) -> Vec<Label> {
        let mut labels = self.base.clone();
        labels.extend(more.iter().map(|(k, v)| Label::new(*k, *v)));
        labels
    }

    fn duration(&self, op: Op, outcome: Outcome) -> &Histogram {
        self.durations[op as usize][outcome as usize].get_or_init(|| {
            metrics::histogram!(
                names::OPERATION_DURATION,
                self.labels(&[
                    (names::OPERATION, op.name()),
                    (names::OUTCOME, outcome.name())
                ])
            )
        })
    }

    fn lookups(&self) -> &(Counter, Counter) {
        self.lookups.get_or_init(|| {
            let with = |outcome| {
                metrics::counter!(names::LOOKUPS, self.labels(&[(names::OUTCOME, outcome)]))
            };
            (with("hit"), with("miss"))
        })
    }

    fn failed(&self, op: Op, error: &CacheError, seconds: f64) {
        let kind = error.kind().name();
        metrics::histogram!(
            names::OPERATION_DURATION,
            self.labels(&[
                (names::OPERATION, op.name()),
                (names::OUTCOME, "error"),
                (names::ERROR_TYPE, kind),
            ])
        )
        .record(seconds);
        metrics::counter!(
            names::ERRORS,
            self.labels(&[(names::OPERATION, op.name()), (names::ERROR_TYPE, kind)])
        )
        .increment(1);
    }

    /// A read of one key: its time as a hit or a miss, and counted.
    fn lookup(&self, op: Op, hit: bool, seconds: f64) {
        let (outcome, counter) = match hit {
            true => (Outcome::Hit, &self.lookups().0),
            false => (Outcome::Miss, &self.lookups().1),
        };
        self.duration(op, outcome).record(seconds);
        counter.increment(1);
    }

    /// What `record` does for a `Get`, from the value itself.
    fn record_get(&self, began: Instant, result: &Result<Option<bytes::Bytes>>) {
        let seconds = began.elapsed().as_secs_f64();
        match result {
            Ok(value) => self.lookup(Op::Get, value.is_some(), seconds),
            Err(error) => self.failed(Op::Get, error, seconds),
        }
    }

    fn record(&self, op: Op, began: Instant, result: &Result<Reply>) {
        let seconds = began.elapsed().as_secs_f64();
        let reply = match result {
            Ok(reply) => reply,
            Err(error) => return self.failed(op, error, seconds),
        };
        match reply {
            Reply::Value(value) => self.lookup(op, value.is_some(), seconds),
            Reply::Values(values) => {
                self.duration(op, Outcome::Ok).record(seconds);
                let found = values.iter().filter(|v| v.is_some()).count() as u64;
                let (hits, misses) = self.lookups();
                hits.increment(found);
                misses.increment(values.len() as u64 - found);
            }
            Reply::Stats(stats) => {
                self.duration(op, Outcome::Ok).record(seconds);
                let (entries, bytes, evictions) = self.store.get_or_init(|| {
                    (
                        metrics::gauge!(names::ENTRIES, self.base.clone()),
                        metrics::gauge!(names::BYTES, self.base.clone()),
                        metrics::counter!(names::EVICTIONS, self.base.clone()),
                    )
                });
                if let Some(n) = stats.entries {
                    entries.set(n as f64);
                }
                if let Some(n) = stats.bytes {
                    bytes.set(n as f64);
                }
                if let Some(n) = stats.evictions {
                    evictions.absolute(n);
                }
            }
            _ => self.duration(op, Outcome::Ok).record(seconds),
        }
    }
}

impl<S> Metered<S> {
    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: Store> Store for Metered<S> {
    #[inline]
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        let op = request.op();
        let began = Instant::now();
        self.inner.call(request).map(move |result| {
            self.handles.record(op, began, &result);
            result
        })
    }

    /// Recorded as its `call` records a `Get`.
    #[inline]
    fn get<'k>(
        &self,
        key: cache_store::StoreKey<'k>,
    ) -> impl Future<Output = Result<Option<bytes::Bytes>>> + Send {
        let began = Instant::now();
        self.inner.get(key).map(move |result| {
            self.handles.record_get(began, &result);
            result
        })
    }

    /// Recorded as `get` is; nothing when the store below cannot answer
    /// at once (the caller's `get` then records the read).
    /// Recorded as a `get` hit, as `get_now` is: a watch is taken by a
    /// read of the store (what the caller then keeps under it is its own
    /// memory, not recorded).
    #[inline]
    fn watch_now(&self, key: &str) -> Option<(bytes::Bytes, cache_port::Watch)> {
        let began = Instant::now();
        let watched = self.inner.watch_now(key)?;
        self.handles
            .lookup(Op::Get, true, began.elapsed().as_secs_f64());
        Some(watched)
    }

    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<bytes::Bytes>>> {
        let began = Instant::now();
        let result = self.inner.get_now(key)?;
        self.handles.record_get(began, &result);
        Some(result)
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        self.inner.scan(scope, pattern)
    }
}

/// Builds [`Metered`]: the adapter's name (`db.system.name`) and the
/// namespace (`db.namespace`) label every series it records.
#[derive(Debug, Clone)]
pub struct MetricsLayer {
    system: &'static str,
    namespace: Option<String>,
}

impl MetricsLayer {
    /// Series labelled `db.system.name = system` (`"moka"`, `"redis"`, …).
    pub fn new(system: &'static str) -> Self {
        Self {
            system,
            namespace: None,
        }
    }

    /// Labels every series with `db.namespace = namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// [`namespace`](Self::namespace), when there is one.
    pub fn in_namespace(mut self, namespace: Option<&Namespace>) -> Self {
        self.namespace = namespace.map(|ns| ns.as_str().to_owned());
        self
    }
}

impl<S: Store> cache_store::layer::Layer<S> for MetricsLayer {
    type Store = Metered<S>;

    fn layer(self, inner: S) -> Metered<S> {
        // quanta calibrates its clock on first use (up to 200 ms by its
        // docs): pay for it here, at startup, not in the first call.
        let _ = Instant::now();
        let mut base = vec![Label::new(names::SYSTEM, self.system)];
        if let Some(ns) = self.namespace {
            base.push(Label::new(names::NAMESPACE, ns));
        }
        Metered {
            inner,
            handles: Arc::new(Handles {
                base,
                durations: std::array::from_fn(|_| Default::default()),
                lookups: OnceLock::new(),
                store: OnceLock::new(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bytes::Bytes;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    use metrics_util::MetricKind;

    use super::*;
    use cache_port::{MockCache, Stats};
    use cache_store::layer::CacheStore;
    use cache_store::CacheBuilder;

    /// Every series as `name{label=value,…}` (labels sorted) → its value.
    fn series(snapshotter: &Snapshotter) -> HashMap<String, DebugValue> {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let (kind, key) = key.into_parts();
                let (name, labels) = key.into_parts();
                let mut labels: Vec<String> = labels
                    .into_iter()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                let kind = match kind {
                    MetricKind::Counter => "counter",
                    MetricKind::Gauge => "gauge",
                    MetricKind::Histogram => "histogram",
                };
                (
                    format!("{kind} {}{{{}}}", name.as_str(), labels.join(",")),
                    value,
                )
            })
            .collect()
    }

    /// Every series `body` recorded, run on a current-thread runtime with a
    /// recorder of its own.
    fn recorded(body: impl std::future::Future<Output = ()>) -> HashMap<String, DebugValue> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(body)
        });
        series(&snapshotter)
    }

    fn count(series: &HashMap<String, DebugValue>, name: &str) -> usize {
        match series.get(name) {
            Some(DebugValue::Histogram(values)) => values.len(),
            Some(DebugValue::Counter(n)) => *n as usize,
            Some(DebugValue::Gauge(g)) => g.into_inner() as usize,
            None => panic!("no series {name}; have {:#?}", series.keys()),
        }
    }

    /// Answers reads at once (`get_now`, as the moka store does): "hit"
    /// is there, "fail" fails, any other key is absent.
    struct AtOnce;

    impl Store for AtOnce {
        async fn call(&self, request: Request<'_>) -> Result<Reply> {
            match request {
                Request::Get { key } => self.get_now(&key).unwrap().map(Reply::Value),
                other => panic!("not expected here: {other:?}"),
            }
        }
        fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
            Some(match key {
                "hit" => Ok(Some(Bytes::from("v"))),
                "fail" => Err(CacheError::Backend {
                    message: "down".into(),
                    source: None,
                }),
                _ => Ok(None),
            })
        }
        /// "hit" under a watch that always holds (as a tiered L1 hit).
        fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
            struct Still;
            impl cache_port::Watched for Still {
                fn unchanged(&self, _: &cache_port::Stamp) -> bool {
                    true
                }
            }
            let watch =
                cache_port::Watch::new(std::sync::Arc::new(Still), cache_port::Stamp([0; 3]), None);
            (key == "hit").then(|| (Bytes::from("v"), watch))
        }
        fn max_value_len(&self) -> usize {
            64
        }
    }

    /// A watch taken is a read of the store: recorded as a `get` hit, as
    /// `get_now` is; none taken, nothing recorded.
    #[test]
    fn a_watch_taken_is_recorded_as_a_get_hit() {
        let s = recorded(async {
            let cache = CacheBuilder::new(AtOnce)
                .layer(MetricsLayer::new("moka"))
                .build();
            assert!(cache.watch_now("hit").is_some());
            assert!(cache.watch_now("other").is_none());
        });
        // (timed gets, lookups) by outcome.
        let moka_get = |outcome: &str| {
            (
                count(&s, &format!("histogram db.client.operation.duration{{cache.outcome={outcome},db.operation.name=get,db.system.name=moka}}")),
                count(&s, &format!("counter cache.lookups{{cache.outcome={outcome},db.system.name=moka}}")),
            )
        };
        assert_eq!(moka_get("hit"), (1, 1));
        let misses = "counter cache.lookups{cache.outcome=miss,db.system.name=moka}";
        assert_eq!(count(&s, misses), 0, "no watch is no read");
    }

    /// A read answered at once is recorded as one through `call` is: once,
    /// as a hit, a miss or an error.
    #[test]
    fn a_read_answered_at_once_is_recorded_once() {
        let s = recorded(async {
            let cache = CacheBuilder::new(AtOnce)
                .layer(MetricsLayer::new("moka"))
                .build();
            assert!(cache.get("hit").await.unwrap().is_some());
            assert!(cache.get("other").await.unwrap().is_none());
            assert!(cache.get("another").await.unwrap().is_none());
            assert!(cache.get("fail").await.is_err());
        });
        let d = "histogram db.client.operation.duration";
        assert_eq!(
            count(
                &s,
                &format!("{d}{{cache.outcome=hit,db.operation.name=get,db.system.name=moka}}")
            ),
            1
        );
        assert_eq!(
            count(
                &s,
                &format!("{d}{{cache.outcome=miss,db.operation.name=get,db.system.name=moka}}")
            ),
            2
        );
        assert_eq!(
            count(
                &s,
                "counter cache.lookups{cache.outcome=hit,db.system.name=moka}"
            ),
            1
        );
        assert_eq!(
            count(
                &s,
                "counter cache.lookups{cache.outcome=miss,db.system.name=moka}"
            ),
            2
        );
        assert_eq!(count(&s, "counter cache.errors{db.operation.name=get,db.system.name=moka,error.type=backend}"), 1);
    }

    #[test]
    fn each_outcome_lands_in_its_own_series_and_keys_never_become_labels() {
        let s = recorded(async {
            let mut mock = MockCache::new();
            mock.expect_max_value_len().return_const(64usize);
            mock.expect_get()
                .returning(|k| Ok(k.ends_with("hit").then(|| Bytes::from("v"))));
            mock.expect_get_many().returning(|keys| {
                Ok(keys
                    .iter()
                    .map(|k| (k == "ns:a").then(Bytes::new))
                    .collect())
            });
            mock.expect_set().returning(|_, _, _| Ok(()));
            mock.expect_incr().returning(|_, _, _| {
                Err(CacheError::Timeout {
                    operation: "incr",
                    after: std::time::Duration::from_secs(1),
                    source: None,
                })
            });
            mock.expect_stats().returning(|| {
                let mut stats = Stats::default();
                stats.evictions = Some(4);
                stats.entries = Some(10);
                stats.bytes = Some(2048);
                Ok(stats)
            });
            let cache = CacheBuilder::new(CacheStore::new(mock))
                .namespace("ns")
                .unwrap()
                .layer(MetricsLayer::new("moka").namespace("ns"))
                .build();
            cache.get("user:alice:hit").await.unwrap();
            cache.get("user:bob").await.unwrap();
            cache.get("user:carol").await.unwrap();
            cache
                .get_many(&["a".into(), "b".into(), "c".into()])
                .await
                .unwrap();
            cache.set("k", Bytes::new(), None).await.unwrap();
            cache.incr("n", 1, None).await.unwrap_err();
            cache.stats().await.unwrap();
        });
        let base = "db.namespace=ns,db.system.name=moka";
        let d = "histogram db.client.operation.duration";
        assert_eq!(count(&s, &format!("{d}{{cache.outcome=hit,db.namespace=ns,db.operation.name=get,db.system.name=moka}}")), 1);
        assert_eq!(count(&s, &format!("{d}{{cache.outcome=miss,db.namespace=ns,db.operation.name=get,db.system.name=moka}}")), 2);
        assert_eq!(count(&s, &format!("{d}{{cache.outcome=ok,db.namespace=ns,db.operation.name=get_many,db.system.name=moka}}")), 1);
        assert_eq!(count(&s, &format!("{d}{{cache.outcome=ok,db.namespace=ns,db.operation.name=set,db.system.name=moka}}")), 1);
        // incr's timeout is an outcome it does not know: the front reports
        // `outcome_unknown`, but under the front the store saw a timeout.
        assert_eq!(count(&s, &format!("{d}{{cache.outcome=error,db.namespace=ns,db.operation.name=incr,db.system.name=moka,error.type=timeout}}")), 1);
        assert_eq!(count(&s, "counter cache.errors{db.namespace=ns,db.operation.name=incr,db.system.name=moka,error.type=timeout}"), 1);
        assert_eq!(
            count(
                &s,
                &format!("counter cache.lookups{{cache.outcome=hit,{base}}}")
            ),
            2
        );
        assert_eq!(
            count(
                &s,
                &format!("counter cache.lookups{{cache.outcome=miss,{base}}}")
            ),
            4
        );
        assert_eq!(count(&s, &format!("gauge cache.entries{{{base}}}")), 10);
        assert_eq!(count(&s, &format!("gauge cache.bytes{{{base}}}")), 2048);
        assert_eq!(count(&s, &format!("counter cache.evictions{{{base}}}")), 4);
        for name in s.keys() {
            assert!(
                !name.contains("alice") && !name.contains("user"),
                "a key in a label: {name}"
            );
        }
        // Only series that were used: get hit and miss, get_many, set, incr, stats.
        let durations = s.keys().filter(|k| k.starts_with(d)).count();
        assert_eq!(durations, 6, "{:#?}", s.keys());
    }

    #[test]
    fn every_operation_has_a_slot() {
        assert!((Op::Ping as usize) < OPS);
        assert!((Op::Get as usize) < OPS && (Op::DeleteIfEquals as usize) < OPS);
    }
}
