//! The tiered cache's metric names, and their descriptions.
//!
//! Recorded through the [`metrics`](https://docs.rs/metrics) facade (a no-op
//! without a recorder), beside the metrics layer's (`cache_observe::names`).

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

/// Registers a description and a unit for every metric above with the
/// installed recorder. Call it once, after installing the recorder.
pub fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
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
