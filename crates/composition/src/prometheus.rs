//! A Prometheus scrape endpoint for the metrics layer (feature `prometheus`).

use std::net::SocketAddr;

use cache_port::{CacheError, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for the durations, in seconds: 10 µs (an in-process
/// hit) to 10 s (a loader at its limit). OpenTelemetry's default database
/// buckets start at 1 ms, where a whole in-process cache would fall into
/// the first one.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The builder [`serve_prometheus`] uses: [`DURATION_BUCKETS`] for every
/// duration and lag, and Prometheus naming (`…_duration_seconds`, counters
/// ending `_total`), so the
/// names follow OpenTelemetry's Prometheus mapping.
pub fn prometheus_builder() -> Result<PrometheusBuilder> {
    let bad = |e: metrics_exporter_prometheus::BuildError| CacheError::Config {
        message: format!("Prometheus exporter: {e}"),
    };
    let mut builder = PrometheusBuilder::new().with_recommended_naming(true);
    let durations = [
        cache_observe::names::OPERATION_DURATION,
        cache_loading::names::LOADER_DURATION,
        #[cfg(feature = "redis")]
        cache_tiered::names::BACKPLANE_LAG,
    ];
    for name in durations {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_owned()), DURATION_BUCKETS)
            .map_err(bad)?;
    }
    Ok(builder)
}

/// Installs a Prometheus recorder as the process's `metrics` recorder and
/// serves `GET /metrics` (any path, in fact) on `addr`, on the current
/// Tokio runtime. Call it at startup, before building the cache with
/// `metrics=true`; the handle renders the same text without HTTP.
///
/// Fails with `Config` when the address cannot be bound or a recorder is
/// installed already.
///
/// ```no_run
/// # async fn startup() -> cache_port::Result<()> {
/// let metrics = cache_composition::serve_prometheus(([127, 0, 0, 1], 9464).into())?;
/// let config = cache_composition::CacheConfig::from_url("memory://?metrics=true")?;
/// let cache = cache_composition::build_cache(&config).await?;
/// # Ok(()) }
/// ```
pub fn serve_prometheus(addr: SocketAddr) -> Result<PrometheusHandle> {
    let failed = |e: &dyn std::fmt::Display| CacheError::Config {
        message: format!("Prometheus exporter on {addr}: {e}"),
    };
    let (recorder, exporter) = prometheus_builder()?
        .with_http_listener(addr)
        .build()
        .map_err(|e| failed(&e))?;
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| failed(&e))?;
    tokio::spawn(exporter);
    describe();
    Ok(handle)
}

/// Registers the description and unit of every metric the toolkit records
/// (the layers', the loader's and, with feature `redis`, the tiered
/// cache's) with the installed recorder; [`serve_prometheus`] calls it.
pub fn describe() {
    cache_observe::names::describe();
    cache_loading::names::describe();
    #[cfg(feature = "redis")]
    cache_tiered::names::describe();
}
