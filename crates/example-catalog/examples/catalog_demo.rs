//! The catalogue wired at startup: `CACHE_URL` picks the adapter (embedded
//! moka when unset). `cargo run -p cache-example-catalog --example catalog_demo`.
//!
//! Observability, both optional:
//! - `METRICS_ADDR=127.0.0.1:9464` serves a Prometheus scrape endpoint there
//!   (and turns the metrics layer on); the demo then keeps serving until Ctrl-C.
//! - `OTEL_EXPORT=stdout` exports the spans (turning the tracing layer on)
//!   through OpenTelemetry's stdout exporter; swap in an OTLP exporter in a
//!   real service.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_composition::{build_module, resolve_cache, CacheConfig};
use cache_example_catalog::{CatalogService, Product, SlowRepository};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reads fail open: during a cache outage the service answers from the repository.
    let mut config = CacheConfig::from_env()?
        .default_namespace("catalog-demo")?
        .with_fail_open(true);
    let mut observe = config.observe();
    let metrics_addr = std::env::var("METRICS_ADDR").ok();
    if let Some(addr) = &metrics_addr {
        cache_composition::serve_prometheus(addr.parse()?)?;
        observe.metrics = true;
        println!("metrics: curl http://{addr}/metrics");
    }
    let tracer_provider = match std::env::var("OTEL_EXPORT").as_deref() {
        Ok("stdout") => {
            use opentelemetry::trace::TracerProvider as _;
            use tracing_subscriber::layer::SubscriberExt;
            let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
                .build();
            let subscriber = tracing_subscriber::registry()
                .with(tracing_subscriber::EnvFilter::new("cache=debug"))
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("catalog-demo")));
            tracing::subscriber::set_global_default(subscriber)?;
            observe.tracing = true;
            Some(provider)
        }
        Ok(other) => return Err(format!("OTEL_EXPORT={other:?}: only stdout is built in").into()),
        Err(_) => None,
    };
    config = config.with_observe(observe);
    println!("cache: {config:?}");
    let cache = resolve_cache(&build_module(&config).await?);
    let products = (1..=5).map(|id| Product {
        id,
        name: format!("product {id}"),
        category: "demo".into(),
        price_cents: 250 * id,
    });
    let repository = Arc::new(SlowRepository::new(Duration::from_millis(200), products));
    let service = CatalogService::new(cache, repository.clone());
    for attempt in 1..=3 {
        let started = Instant::now();
        let product = service.product(3).await?;
        println!(
            "read #{attempt}: {:?} in {:?}",
            product.map(|p| p.name),
            started.elapsed()
        );
    }
    service
        .save(Product {
            id: 3,
            name: "renamed".into(),
            category: "demo".into(),
            price_cents: 1,
        })
        .await?;
    let started = Instant::now();
    println!(
        "after save: {:?} in {:?}",
        service.product(3).await?.map(|p| p.name),
        started.elapsed()
    );
    println!(
        "repository queries: {}, failed invalidations: {}",
        repository.queries(),
        service.invalidation_failures()
    );
    if let Some(provider) = tracer_provider {
        provider.force_flush()?;
    }
    if metrics_addr.is_some() {
        println!("serving metrics until Ctrl-C");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
