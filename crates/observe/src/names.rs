//! The metric and attribute names of the metrics layer ([`Metered`](crate::Metered)).
//!
//! Names live with the code that records them: the loader's are
//! `cache_loading::names`, the tiered cache's `cache_tiered::names`, each
//! with its own `describe`; the attributes they share (`cache.outcome`) are
//! spelled the same in each, which `cache-composition`'s tests check.
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

/// Attribute: the port operation (`get`, `set_many`, …).
pub const OPERATION: &str = "db.operation.name";
/// Attribute: the adapter (`moka`, `redis`, `tiered`, …).
pub const SYSTEM: &str = "db.system.name";
/// Attribute: the cache namespace, when the stack has one.
pub const NAMESPACE: &str = "db.namespace";
/// Attribute: `hit`, `miss`, `ok` or `error` (the loader adds `timeout`).
pub const OUTCOME: &str = "cache.outcome";
/// Attribute: the [`ErrorKind`](cache_port::ErrorKind) name of a failure.
pub const ERROR_TYPE: &str = "error.type";

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
}
