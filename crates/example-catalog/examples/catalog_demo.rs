//! The catalogue wired at startup: `CACHE_URL` picks the adapter (embedded
//! moka when unset). `cargo run -p cache-example-catalog --example catalog_demo`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_composition::{build_module, resolve_cache, CacheConfig};
use cache_example_catalog::{CatalogService, Product, SlowRepository};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reads fail open: during a cache outage the service answers from the repository.
    let config = CacheConfig::from_env()?
        .default_namespace("catalog-demo")?
        .with_fail_open(true);
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
    Ok(())
}
