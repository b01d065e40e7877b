//! The catalogue's spans exported through OpenTelemetry: a `get_or_load`
//! span per product read, the cache operations and the load as its
//! children, with the semantic-convention attributes.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use cache_composition::{build_cache, CacheConfig};
use cache_example_catalog::CatalogService;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::EnvFilter;

fn attributes(span: &SpanData) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let value = match &kv.value {
                Value::String(s) => s.to_string(),
                other => other.to_string(),
            };
            (kv.key.to_string(), value)
        })
        .collect()
}

#[test]
fn a_product_read_exports_a_get_or_load_span_with_its_children() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(EnvFilter::new("cache=debug"))
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("catalog")));
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = CacheConfig::from_url("memory://?namespace=catalog&tracing=true").unwrap();
            let cache = build_cache(&config).await.unwrap();
            let (lamp, repository) = (common::lamp(), common::repository(Duration::from_millis(1)));
            let service = CatalogService::new(cache, repository);
            assert_eq!(service.product(1).await.unwrap(), Some(lamp.clone()));
            assert_eq!(service.product(1).await.unwrap(), Some(lamp));
        });
    });
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let roots: Vec<&SpanData> = spans.iter().filter(|s| s.name == "get_or_load").collect();
    assert_eq!(
        roots.len(),
        2,
        "{:#?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let origin = |s: &SpanData| attributes(s)["cache.origin"].clone();
    assert_eq!(
        (origin(roots[0]), origin(roots[1])),
        ("loader".into(), "cache".into())
    );
    let children = |root: &SpanData| -> Vec<String> {
        let mut children: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.parent_span_id == root.span_context.span_id())
            .collect();
        children.sort_by_key(|s| s.start_time);
        children.iter().map(|s| s.name.to_string()).collect()
    };
    assert_eq!(children(roots[0]), ["get", "get", "load", "set"]);
    assert_eq!(children(roots[1]), ["get"]);
    let get = spans.iter().find(|s| s.name == "get").unwrap();
    let attrs = attributes(get);
    assert_eq!(attrs["db.operation.name"], "get");
    assert_eq!(attrs["db.system.name"], "moka");
    assert_eq!(attrs["db.namespace"], "catalog");
    assert_eq!(attrs["cache.outcome"], "miss");
    assert!(!attrs.contains_key("cache.key"));
    // Every span of a read shares its trace.
    assert!(spans
        .iter()
        .filter(|s| s.parent_span_id == roots[0].span_context.span_id())
        .all(|s| s.span_context.trace_id() == roots[0].span_context.trace_id()));
}
