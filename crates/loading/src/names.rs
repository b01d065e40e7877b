//! The loader's metric and attribute names, and their descriptions.
//!
//! The loader records through the [`metrics`](https://docs.rs/metrics)
//! facade (a no-op without a recorder). Its names sit beside the metrics
//! layer's (`cache_observe::names`) on a dashboard; the attribute both use,
//! [`OUTCOME`], is spelled the same in each.

/// Counter: loader calls, labelled with [`OUTCOME`] `ok`, `error` or `timeout`.
pub const LOADER_CALLS: &str = "cache.loader.calls";
/// Histogram, seconds: how long loader calls took.
pub const LOADER_DURATION: &str = "cache.loader.duration";
/// Counter: answers given from a stale value, labelled with [`STALE_REASON`].
pub const STALE_SERVED: &str = "cache.stale.served";
/// Counter: calls that a failed or timed-out load answered with a stale
/// value (fail-safe stepping in), labelled with [`STALE_REASON`]; a subset
/// of [`STALE_SERVED`], which also counts soft timeouts and resting loaders.
pub const FAIL_SAFE_ACTIVATIONS: &str = "cache.fail_safe.activations";

/// Attribute: why a stale value was served (`loader_failed`,
/// `soft_timeout`, `cache_unavailable`, …).
pub const STALE_REASON: &str = "cache.stale.reason";

/// Attribute: `ok`, `error` or `timeout` for a loader call (the metrics
/// layer's `cache.outcome`, with `timeout` added).
pub const OUTCOME: &str = "cache.outcome";

/// Registers a description and a unit for every metric above with the
/// installed recorder. Call it once, after installing the recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        LOADER_CALLS,
        "Loader calls, by outcome (ok, error, timeout)."
    );
    describe_histogram!(
        LOADER_DURATION,
        Unit::Seconds,
        "How long loader calls took."
    );
    describe_counter!(STALE_SERVED, "Answers given from a stale value, by reason.");
    describe_counter!(
        FAIL_SAFE_ACTIVATIONS,
        "Calls a failed or timed-out load answered with a stale value."
    );
}
