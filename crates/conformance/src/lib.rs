//! The conformance suite: every rule of the port contract as a named test
//! that any adapter runs.
//!
//! An adapter's test target (with `harness = false`) gives a [`Harness`]
//! (how to build a fresh adapter in a namespace, over one store that all of
//! them share) to [`main`], which turns every behaviour into a libtest-mimic
//! trial named after it: `cargo test -p cache-moka incr_` runs only the
//! `incr` behaviours, and a failure names its behaviour. Behaviours that
//! need a [`Capability`] the harness does not declare are not run, and the
//! run says which and why.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use cache_conformance::{trials, Capability, Harness};
//! use cache_port::{Cache, MockCache};
//!
//! // A harness over a lone mock (it cannot make sibling views of one store).
//! struct Mocked;
//! #[async_trait]
//! impl Harness for Mocked {
//!     fn name(&self) -> String { "mock".into() }
//!     fn capabilities(&self) -> &'static [Capability] { &[] }
//!     async fn build(&self, _namespace: &str) -> Arc<dyn Cache> { Arc::new(MockCache::new()) }
//! }
//! let all = cache_conformance::behaviours().len();
//! let runnable = trials("mock", Arc::new(Mocked)).len();
//! assert!(runnable < all); // the namespace behaviours need Capability::SharedStore
//! ```

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cache_port::Cache;
use futures::future::BoxFuture;
use futures::FutureExt;
use libtest_mimic::{Arguments, Failed, Trial};

mod basic;
mod batch;
mod concurrency;
mod incr;
mod invalid;
mod keyspaces;
mod loading;
mod namespaces;
mod patterns;
mod rate_limits;
mod recipes;
mod resilience;
mod stats;
mod tags;
mod ttl;
mod vectors;
mod views;

pub use views::ViewsOf;

/// What a harness's adapters can do beyond the contract's core, so that a
/// behaviour needing it runs only where it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Capability {
    /// `build` gives views in different namespaces over one shared store,
    /// so that namespaces can be checked for isolation and nesting.
    SharedStore,
}

/// How the suite gets adapters to test.
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// The adapter's name, for the report.
    fn name(&self) -> String;

    /// What the adapters built can do (default: every [`Capability`]).
    fn capabilities(&self) -> &'static [Capability] {
        &[Capability::SharedStore]
    }

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
    /// behaviour's namespace followed by `suffix` (`-x` gives a look-alike
    /// sibling, `:x` a child).
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
    /// The capabilities it needs.
    pub needs: &'static [Capability],
    /// The check; it panics when the rule does not hold.
    pub run: fn(Ctx) -> BoxFuture<'static, ()>,
}

macro_rules! behaviours {
    ($($module:ident :: $test:ident $([needs $($cap:ident),*])?),* $(,)?) => {
        /// Every behaviour of the suite, in a stable order.
        pub fn behaviours() -> Vec<Behaviour> {
            vec![$(Behaviour {
                name: concat!(stringify!($module), "::", stringify!($test)),
                needs: &[$($(Capability::$cap),*)?],
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
    batch::exists_many_answers_each_key_in_order,
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
    ttl::delete_if_equals_removes_only_the_expected_value,
    ttl::delete_if_equals_ignores_an_expired_key,
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
    patterns::keys_stream_lists_what_keys_lists,
    vectors::keys_answers_as_redis_on_every_vector,
    vectors::delete_pattern_answers_as_redis_on_every_vector,
    namespaces::clear_empties_the_namespace,
    namespaces::clear_and_delete_pattern_spare_other_namespaces [needs SharedStore],
    namespaces::namespace_with_glob_metacharacters_is_escaped [needs SharedStore],
    namespaces::a_namespace_owns_its_children [needs SharedStore],
    namespaces::a_namespace_never_reaches_parent_siblings_or_look_alikes [needs SharedStore],
    namespaces::every_listed_key_can_be_read [needs SharedStore],
    invalid::bad_keys_are_refused_by_every_operation,
    ttl::get_and_touch_reads_and_extends_in_one_step,
    ttl::a_key_read_with_get_and_touch_outlives_its_first_ttl,
    keyspaces::typed_values_round_trip_with_every_codec,
    keyspaces::undecodable_values_are_counted_misses_that_the_loader_replaces,
    keyspaces::values_of_set_typed_and_the_loader_read_through_a_keyspace,
    keyspaces::a_hostile_id_never_reaches_another_keyspace,
    rate_limits::a_burst_is_allowed_then_the_rest_waits_its_turn,
    rate_limits::a_check_of_cost_zero_peeks_and_a_cost_counts_as_many,
    rate_limits::the_key_expires_when_the_allowance_is_full_again,
    rate_limits::a_key_holding_something_else_is_refused_and_kept,
    rate_limits::concurrent_checks_allow_exactly_the_burst,
    rate_limits::a_sliding_window_allows_its_limit_in_any_window_and_no_more,
    rate_limits::concurrent_window_checks_allow_exactly_the_limit,
    recipes::write_behind_shows_writes_at_once_and_saves_each_keys_last_value,
    invalid::bad_ttls_are_refused_by_every_operation,
    invalid::bad_patterns_are_refused_and_delete_nothing,
    invalid::too_large_values_are_refused,
    invalid::a_bad_item_in_a_batch_changes_nothing,
    concurrency::concurrent_incr_loses_nothing,
    concurrency::exactly_one_set_if_absent_wins,
    concurrency::concurrent_sets_leave_one_of_the_values,
    concurrency::mixed_writes_on_one_key_are_serialisable,
    concurrency::a_token_lock_excludes,
    concurrency::get_many_reads_each_key_once_within_the_call,
    loading::five_hundred_callers_of_a_cold_key_make_one_loader_call,
    loading::a_failed_load_is_shared_and_not_remembered,
    loading::a_slow_key_does_not_hold_up_another,
    loading::an_abandoned_flight_does_not_wedge_the_key,
    loading::ttl_jitter_spreads_expiries,
    loading::not_found_is_remembered_only_for_the_negative_ttl,
    loading::get_or_load_many_reads_once_loads_once_writes_once,
    resilience::stampede_lock_makes_one_load_per_expiry_across_loaders,
    resilience::fail_safe_serves_stale_while_the_loader_fails,
    resilience::fail_safe_ends_after_max_stale,
    resilience::loader_and_plain_values_read_each_other,
    resilience::soft_timeout_answers_stale_and_the_load_lands,
    resilience::hard_timeout_abandons_the_load,
    resilience::eager_refresh_keeps_a_steady_reader_from_waiting,
    stats::stats_count_hits_misses_and_writes,
    stats::stats_count_errors,
    tags::delete_by_tag_hides_every_entry_of_the_tag_and_spares_the_rest,
    tags::an_invalidated_entry_is_removed_when_read,
    tags::untagged_values_are_stored_as_given_and_every_value_round_trips,
    tags::a_lost_version_hides_its_entries_never_shows_them_stale,
    tags::a_malformed_header_is_a_codec_error,
    tags::bad_tags_are_refused_and_write_nothing,
    tags::invalidations_race_writers_by_the_rules,
    tags::one_key_reads_never_see_an_entry_after_its_invalidation,
];

/// The runtime every trial runs on (trials run on libtest-mimic's threads
/// and `block_on` this shared runtime).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a tokio runtime")
    })
}

/// Runs `future` to completion on the suite's runtime (for harness set-up).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    runtime().block_on(future)
}

/// One trial per behaviour the harness can run, named
/// `conformance::<group>::<module>::<behaviour>`. Behaviours that need a
/// capability the harness lacks are left out, and a line on stderr says so.
pub fn trials(group: &str, harness: Arc<dyn Harness>) -> Vec<Trial> {
    let run_id = unique_run_id();
    let has = harness.capabilities();
    let mut trials = Vec::new();
    for behaviour in behaviours() {
        let missing: Vec<_> = behaviour
            .needs
            .iter()
            .filter(|c| !has.contains(c))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "conformance [{}]: {} not run: needs {missing:?}",
                harness.name(),
                behaviour.name
            );
            continue;
        }
        let harness = Arc::clone(&harness);
        let namespace = format!("{run_id}:{}", behaviour.name.replace("::", "."));
        let name = format!("conformance::{group}::{}", behaviour.name);
        trials.push(Trial::test(name, move || {
            runtime().block_on(async move {
                let cache = harness.build(&namespace).await;
                let cx = Ctx {
                    cache,
                    harness,
                    namespace,
                };
                AssertUnwindSafe((behaviour.run)(cx))
                    .catch_unwind()
                    .await
                    .map_err(|panic| Failed::from(panic_message(panic)))
            })
        }));
    }
    trials
}

/// The `main` of a conformance test target (`harness = false`): runs
/// `trials` with libtest's command line (filters, `--list`, `--exact`, …),
/// eight at a time unless `--test-threads` says otherwise, then drops
/// `keep_alive` (the servers the harnesses started) and exits with the
/// outcome.
pub fn main(trials: Vec<Trial>, keep_alive: impl Sized) -> ! {
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        // Behaviours mostly wait (TTLs, round trips): run several at a time.
        args.test_threads = Some(8);
    }
    let conclusion = libtest_mimic::run(&args, trials);
    drop(keep_alive);
    conclusion.exit()
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
