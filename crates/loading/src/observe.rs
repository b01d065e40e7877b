//! What the loader records: its calls and their latency, stale answers and
//! fail-safe activations (metrics), and the `cache.load` span.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::field::Empty;
use tracing::{Instrument, Span};

use cache_port::report::TARGET;

use crate::answer::{Failure, LoadError, Loaded, Origin, StaleReason};
use crate::names;

impl StaleReason {
    /// The reason in snake case, as metrics and spans record it.
    pub fn name(self) -> &'static str {
        match self {
            StaleReason::LoaderFailed => "loader_failed",
            StaleReason::HardTimeout => "hard_timeout",
            StaleReason::SoftTimeout => "soft_timeout",
            StaleReason::LoaderResting => "loader_resting",
            StaleReason::CacheUnavailable => "cache_unavailable",
        }
    }
}

/// Calls the loader (within `hard`, when given) in a `cache.load` span,
/// timing it ([`names::LOADER_DURATION`]) and counting it by outcome
/// ([`names::LOADER_CALLS`]: `ok`, `error`, `timeout`).
pub(super) async fn call_loader<T, E, F, Fut>(
    hard: Option<Duration>,
    load: F,
) -> Result<T, Failure<E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let span = tracing::debug_span!(
        target: TARGET,
        "cache.load",
        otel.name = "load",
        cache.outcome = Empty,
        otel.status_code = Empty,
    );
    let began = Instant::now();
    let result = async {
        let loaded = match hard {
            None => load().await,
            Some(hard) => match tokio::time::timeout(hard, load()).await {
                Ok(loaded) => loaded,
                Err(_) => return Err(Failure::Timeout(hard)),
            },
        };
        loaded.map_err(|e| Failure::Load(Arc::new(e)))
    }
    .instrument(span.clone())
    .await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(Failure::Timeout(_)) => "timeout",
        Err(_) => "error",
    };
    span.record("cache.outcome", outcome);
    if result.is_err() {
        span.record("otel.status_code", "ERROR");
    }
    metrics::histogram!(names::LOADER_DURATION).record(began.elapsed().as_secs_f64());
    metrics::counter!(names::LOADER_CALLS, names::OUTCOME => outcome).increment(1);
    result
}

/// A failed or timed-out load answered from a stale value.
pub(super) fn fail_safe_activated(reason: StaleReason) {
    metrics::counter!(names::FAIL_SAFE_ACTIVATIONS, names::STALE_REASON => reason.name())
        .increment(1);
}

/// Records where the answer of a `get_or_load` came from on its span, and
/// counts a stale answer ([`names::STALE_SERVED`]).
pub(super) fn answered<T, E>(span: &Span, result: &Result<Loaded<T>, LoadError<E>>) {
    match result {
        Ok(Loaded { origin, .. }) => {
            let origin = match origin {
                Origin::Cache => "cache",
                Origin::Loader => "loader",
                Origin::Stale(reason) => {
                    span.record("cache.stale.reason", reason.name());
                    metrics::counter!(names::STALE_SERVED, names::STALE_REASON => reason.name())
                        .increment(1);
                    "stale"
                }
            };
            span.record("cache.origin", origin);
        }
        Err(_) => {
            span.record("otel.status_code", "ERROR");
        }
    }
}
