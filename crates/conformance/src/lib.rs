//! The conformance suite: every rule of the port contract as a test that any
//! adapter runs.
//!
//! An adapter's tests give a [`Harness`] (how to build a fresh adapter in a
//! namespace, over one store that all of them share) to [`assert_conformance`],
//! which runs every behaviour, prints how many it checked, and fails with the
//! list of those that did not hold.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use cache_conformance::{Harness, run_all};
//! use cache_port::{Cache, MockCache};
//!
//! // A harness over a mock only shows the shape: most behaviours fail on it.
//! struct Mocked;
//! #[async_trait]
//! impl Harness for Mocked {
//!     fn name(&self) -> String { "mock".into() }
//!     async fn build(&self, _namespace: &str) -> Arc<dyn Cache> { Arc::new(MockCache::new()) }
//! }
//! let report = run_all(Arc::new(Mocked)).await;
//! assert_eq!(report.checked, cache_conformance::behaviours().len());
//! assert!(!report.failures.is_empty());
//! # });
//! ```

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cache_port::Cache;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};

mod basic;
mod batch;
mod concurrency;
mod incr;
mod invalid;
mod namespaces;
mod patterns;
mod stats;
mod ttl;
mod vectors;

/// How the suite gets adapters to test.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The adapter's name, for the report.
    fn name(&self) -> String;

    /// A new adapter in `namespace`. Every adapter a harness builds shares one
    /// store (one Redis server, one moka store), so that namespaces can be
    /// checked for isolation; each behaviour gets a namespace of its own.
    /// The adapter's value limit should be small (about 1 MiB) to keep the
    /// too-large-value behaviours cheap.
    async fn build(&self, namespace: &str) -> Arc<dyn Cache>;
}

/// What one behaviour is given.
#[derive(Clone)]
pub struct Ctx {
    /// A fresh adapter in this behaviour's own namespace.
    pub cache: Arc<dyn Cache>,
    harness: Arc<dyn Harness>,
    namespace: String,
}

impl Ctx {
    /// Another adapter over the same store, in the namespace this
    /// behaviour's namespace followed by `suffix`.
    pub async fn sibling(&self, suffix: &str) -> Arc<dyn Cache> {
        self.harness
            .build(&format!("{}{suffix}", self.namespace))
            .await
    }

    /// This behaviour's namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

/// One rule of the contract.
pub struct Behaviour {
    /// Its name: the module and the function.
    pub name: &'static str,
    /// The check; it panics when the rule does not hold.
    pub run: fn(Ctx) -> BoxFuture<'static, ()>,
}

macro_rules! behaviours {
    ($($module:ident :: $test:ident),* $(,)?) => {
        /// Every behaviour of the suite, in a stable order.
        pub fn behaviours() -> Vec<Behaviour> {
            vec![$(Behaviour {
                name: concat!(stringify!($module), "::", stringify!($test)),
                run: |cx| Box::pin($module::$test(cx)),
            }),*]
        }
    };
}

behaviours![
    basic::get_of_missing_key_is_none,
    basic::set_then_get_returns_the_value,
    basic::set_replaces_the_value,
    basic::empty_value_round_trips,
    basic::every_byte_value_round_trips,
    basic::delete_says_whether_the_key_existed,
    basic::exists_reports_presence,
    basic::keys_of_every_shape_round_trip,
    basic::longest_key_is_accepted,
    basic::ping_answers,
    batch::get_many_keeps_order_and_duplicates,
    batch::get_many_of_nothing_is_nothing,
    batch::get_many_of_a_thousand_keys,
    batch::set_many_writes_every_item,
    batch::set_many_of_nothing_is_ok,
    batch::set_many_last_duplicate_wins,
    batch::delete_many_counts_existing_keys,
    ttl::ttl_of_missing_key_is_missing,
    ttl::ttl_of_persistent_key_is_persistent,
    ttl::ttl_reports_the_remaining_time,
    ttl::set_without_ttl_makes_a_key_persistent,
    ttl::set_with_ttl_replaces_the_ttl,
    ttl::sub_millisecond_ttl_rounds_up,
    ttl::expired_key_is_invisible_to_every_operation,
    ttl::set_many_ttl_applies_to_every_item,
    ttl::expire_sets_a_new_ttl_on_an_existing_key,
    ttl::expire_on_a_missing_key_creates_nothing,
    ttl::set_if_absent_writes_only_a_missing_key,
    ttl::set_if_absent_wins_over_an_expired_key,
    incr::incr_creates_a_counter_from_zero,
    incr::incr_adds_positive_and_negative_deltas,
    incr::incr_reads_a_decimal_value_set_by_set,
    incr::incr_ttl_applies_only_when_created,
    incr::incr_refuses_values_that_are_not_integers,
    incr::incr_refuses_overflow_in_both_directions,
    incr::incr_with_a_ttl_keeps_all_64_bits,
    patterns::keys_lists_matching_keys_without_namespace,
    patterns::delete_pattern_removes_and_counts_matches,
    patterns::hash_tags_match_literally,
    vectors::keys_answers_as_redis_on_every_vector,
    vectors::delete_pattern_answers_as_redis_on_every_vector,
    namespaces::clear_empties_the_namespace,
    namespaces::clear_and_delete_pattern_spare_other_namespaces,
    namespaces::namespace_with_glob_metacharacters_is_escaped,
    invalid::bad_keys_are_refused_by_every_operation,
    invalid::bad_ttls_are_refused_by_every_operation,
    invalid::bad_patterns_are_refused_and_delete_nothing,
    invalid::too_large_values_are_refused,
    invalid::a_bad_item_in_a_batch_changes_nothing,
    concurrency::concurrent_incr_loses_nothing,
    concurrency::exactly_one_set_if_absent_wins,
    concurrency::concurrent_sets_leave_one_of_the_values,
    stats::stats_count_hits_misses_and_writes,
    stats::stats_count_errors,
];

/// The outcome of a run.
#[derive(Debug)]
pub struct Report {
    /// The adapter's name.
    pub adapter: String,
    /// How many behaviours ran.
    pub checked: usize,
    /// The behaviours that failed, with their panic messages.
    pub failures: Vec<(&'static str, String)>,
    /// How long the run took.
    pub elapsed: std::time::Duration,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "conformance [{}]: {} behaviours checked, {} passed, {} failed ({:.2?})",
            self.adapter,
            self.checked,
            self.checked - self.failures.len(),
            self.failures.len(),
            self.elapsed
        )?;
        for (name, message) in &self.failures {
            writeln!(f, "  FAILED {name}: {message}")?;
        }
        Ok(())
    }
}

/// Runs every behaviour against adapters from `harness`, several at a time.
pub async fn run_all(harness: Arc<dyn Harness>) -> Report {
    let started = Instant::now();
    let run_id = unique_run_id();
    let all = behaviours();
    let checked = all.len();
    let failures: Vec<_> = futures::stream::iter(all)
        .map(|behaviour| {
            let harness = Arc::clone(&harness);
            let namespace = format!("{run_id}:{}", behaviour.name.replace("::", "."));
            async move {
                let cache = harness.build(&namespace).await;
                let cx = Ctx {
                    cache,
                    harness,
                    namespace,
                };
                let outcome = AssertUnwindSafe((behaviour.run)(cx)).catch_unwind().await;
                outcome
                    .err()
                    .map(|panic| (behaviour.name, panic_message(panic)))
            }
        })
        .buffer_unordered(8)
        .filter_map(|failure| async move { failure })
        .collect()
        .await;
    let mut failures = failures;
    failures.sort();
    Report {
        adapter: harness.name(),
        checked,
        failures,
        elapsed: started.elapsed(),
    }
}

/// Runs the whole suite, prints the report, and panics if any behaviour failed.
pub async fn assert_conformance(harness: Arc<dyn Harness>) -> Report {
    let report = run_all(harness).await;
    println!("{report}");
    assert!(report.failures.is_empty(), "{report}");
    report
}

fn unique_run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("conf-{}-{}", std::process::id(), nanos % 1_000_000_000)
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "non-string panic".to_owned()
    }
}

/// Test helpers shared by the behaviours.
pub(crate) mod util {
    use bytes::Bytes;
    use cache_port::{CacheError, ErrorKind};

    /// `s` as the port's value type.
    pub fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Owned keys.
    pub fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// Asserts `result` failed with `kind`.
    #[track_caller]
    pub fn assert_kind<T: std::fmt::Debug>(
        result: Result<T, CacheError>,
        kind: ErrorKind,
        what: &str,
    ) {
        match result {
            Err(e) => assert_eq!(e.kind(), kind, "{what}: wrong error {e}"),
            Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
        }
    }

    /// Sleeps past a short TTL.
    pub async fn sleep_ms(ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}
