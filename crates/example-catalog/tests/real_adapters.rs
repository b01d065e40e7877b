//! The catalogue on real adapters, wired through the composition root, so
//! that switching CACHE_URL is the only change between them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_composition::{build_cache, CacheConfig};
use cache_example_catalog::{CatalogService, Product, SlowRepository};
use cache_redis_harness::RedisServer;

const SLOW: Duration = Duration::from_millis(50);

fn products() -> Vec<Product> {
    (1..=45)
        .map(|id| Product {
            id,
            name: format!("product {id}"),
            category: if id % 3 == 0 {
                "lighting".into()
            } else {
                "furniture".into()
            },
            price_cents: 100 * id,
        })
        .collect()
}

async fn exercise(url: &str) {
    let cache = build_cache(&CacheConfig::from_url(url).unwrap())
        .await
        .unwrap();
    let repo = Arc::new(SlowRepository::new(SLOW, products()));
    let service = CatalogService::new(cache, repo.clone());

    let started = Instant::now();
    let first = service.product(7).await.unwrap().unwrap();
    assert!(
        started.elapsed() >= SLOW,
        "the first read goes to the repository"
    );
    let started = Instant::now();
    assert_eq!(service.product(7).await.unwrap().unwrap(), first);
    assert!(
        started.elapsed() < SLOW,
        "{url}: the second read is a cache hit"
    );
    assert_eq!(repo.queries(), 1);

    let page1 = service.listing("furniture", 1).await.unwrap();
    assert_eq!(page1.len(), 10);
    assert_eq!(service.listing("furniture", 1).await.unwrap(), page1);
    assert_eq!(repo.queries(), 2);

    // Page 0 shows product 7 and is cached before the write.
    let cached = service.listing("furniture", 0).await.unwrap();
    assert_eq!(cached.iter().find(|p| p.id == 7), Some(&first));
    assert_eq!(service.listing("furniture", 0).await.unwrap(), cached);
    assert_eq!(repo.queries(), 3);

    // A write invalidates the product and its listing pages (by tag).
    service
        .save(Product {
            price_cents: 1,
            ..first.clone()
        })
        .await
        .unwrap();
    assert_eq!(service.product(7).await.unwrap().unwrap().price_cents, 1);
    let page0 = service.listing("furniture", 0).await.unwrap();
    assert_eq!(page0.iter().find(|p| p.id == 7).unwrap().price_cents, 1);
    // And the other cached page of the category, which does not show it.
    assert_eq!(service.listing("furniture", 1).await.unwrap(), page1);
    assert_eq!(service.invalidation_failures(), 0);
}

#[tokio::test]
async fn on_the_embedded_adapter() {
    exercise("memory://?namespace=catalog").await;
}

#[tokio::test]
async fn on_redis() {
    let server = RedisServer::start();
    exercise(&format!("{}/0?namespace=catalog", server.url())).await;
}

#[tokio::test]
async fn on_redis_that_goes_away() {
    let mut server = RedisServer::start();
    let url = format!(
        "{}/0?namespace=catalog&command_timeout_ms=200&fail_open=true",
        server.url()
    );
    let cache = build_cache(&CacheConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    let repo = Arc::new(SlowRepository::new(Duration::ZERO, products()));
    let service = CatalogService::new(cache, repo);
    service.product(1).await.unwrap();
    server.kill();
    // Wired fail-open: the repository still answers, and a save still
    // succeeds; its failed invalidations are counted.
    let before = cache_port::typed::write_back_failures();
    assert_eq!(service.product(2).await.unwrap().unwrap().id, 2);
    assert!(cache_port::typed::write_back_failures() > before);
    let mut renamed = service.product(3).await.unwrap().unwrap();
    renamed.name = "renamed".into();
    service.save(renamed).await.unwrap();
    assert_eq!(service.invalidation_failures(), 2); // the product and its one category
}
