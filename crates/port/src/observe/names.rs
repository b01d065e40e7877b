//! Metric and attribute names, in one place so that the layers, the loader,
//! the tiered cache and the dashboards agree.
//!
//! Where an OpenTelemetry semantic convention for database clients fits,
//! its name is used (`db.client.operation.duration`, `db.operation.name`,
//! `db.system.name`, `db.namespace`, `error.type`); the cache's own figures
//! live under `cache.`. Prometheus exporters turn the dots into underscores
//! (`db_client_operation_duration_seconds`). Keys never become labels: a
//! label value is an operation, an adapter, a namespace, an outcome or an
//! error kind, all from small fixed sets.

/// Histogram, seconds: how long each port operation took, labelled with
/// [`OPERATION`], [`SYSTEM`], [`NAMESPACE`] (when set), [`OUTCOME`] and, on
/// failure, [`ERROR_TYPE`].
pub const OPERATION_DURATION: &str = "db.client.operation.duration";
/// Counter: keys looked up (`get`, each key of `get_many`), labelled with
/// [`OUTCOME`] `hit` or `miss`, [`SYSTEM`] and [`NAMESPACE`].
pub const LOOKUPS: &str = "cache.lookups";
/// Counter: operations that failed, labelled with [`OPERATION`],
/// [`ERROR_TYPE`], [`SYSTEM`] and [`NAMESPACE`].
pub const ERRORS: &str = "cache.errors";
/// Gauge: entries in the store, when it can tell (updated by each `stats`).
pub const ENTRIES: &str = "cache.entries";
/// Gauge: bytes the store holds, when it can tell (updated by each `stats`).
pub const BYTES: &str = "cache.bytes";
/// Counter: entries the store dropped to stay within its capacity (the
/// store's own running total, updated by each `stats`).
pub const EVICTIONS: &str = "cache.evictions";

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

/// Counter: invalidation notices a tiered cache published.
pub const INVALIDATIONS_SENT: &str = "cache.invalidations.sent";
/// Counter: invalidation notices a tiered cache received from other
/// instances (its own are not counted).
pub const INVALIDATIONS_RECEIVED: &str = "cache.invalidations.received";
/// Histogram, seconds: how long an instance's own heartbeat took to come
/// back over the backplane, the delivery lag every invalidation sees.
pub const BACKPLANE_LAG: &str = "cache.backplane.lag";
/// Counter: times a tiered cache flushed its in-process tier because
/// notices may have been lost.
pub const L1_FLUSHES: &str = "cache.l1.flushes";

/// Attribute: the port operation (`get`, `set_many`, …).
pub const OPERATION: &str = "db.operation.name";
/// Attribute: the adapter (`moka`, `redis`, `tiered`, …).
pub const SYSTEM: &str = "db.system.name";
/// Attribute: the cache namespace, when the stack has one.
pub const NAMESPACE: &str = "db.namespace";
/// Attribute: `hit`, `miss`, `ok` or `error` (and for the loader `timeout`).
pub const OUTCOME: &str = "cache.outcome";
/// Attribute: the [`ErrorKind`](crate::ErrorKind) name of a failure.
pub const ERROR_TYPE: &str = "error.type";
/// Attribute: why a stale value was served (`loader_failed`,
/// `soft_timeout`, `cache_unavailable`, …).
pub const STALE_REASON: &str = "cache.stale.reason";

/// Registers a description and a unit for every metric above with the
/// installed recorder (Prometheus prints them as `# HELP`, and with unit
/// suffixes on, names the durations `…_seconds`). Call it once, after
/// installing the recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        OPERATION_DURATION,
        Unit::Seconds,
        "How long each cache operation took."
    );
    describe_counter!(LOOKUPS, "Keys looked up, by outcome (hit or miss).");
    describe_counter!(
        ERRORS,
        "Cache operations that failed, by operation and error kind."
    );
    describe_gauge!(
        ENTRIES,
        "Entries in the store (updated by each stats call)."
    );
    describe_gauge!(
        BYTES,
        Unit::Bytes,
        "Bytes the store holds (updated by each stats call)."
    );
    describe_counter!(
        EVICTIONS,
        "Entries the store dropped to stay within its capacity."
    );
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
    describe_counter!(
        INVALIDATIONS_SENT,
        "Invalidation notices this tiered cache published."
    );
    describe_counter!(
        INVALIDATIONS_RECEIVED,
        "Invalidation notices received from other instances."
    );
    describe_histogram!(
        BACKPLANE_LAG,
        Unit::Seconds,
        "How long this instance's heartbeat took to come back over the backplane."
    );
    describe_counter!(
        L1_FLUSHES,
        "Times the in-process tier was flushed because notices may have been lost."
    );
}
