//! The catalogue's unit tests: the port mocked, with expectations on keys,
//! TTLs, call counts and the error paths.

mod common;

use std::sync::Arc;
use std::time::Duration;

use cache_example_catalog::{
    CatalogError, CatalogService, Product, SlowRepository, PRODUCT_TTL, PRODUCT_TTL_JITTER,
    STALE_FOR,
};
use cache_port::{typed, Cache, CacheError, MockCache};
use cache_store::layer::{CacheStore, FailOpenHandle, FailOpenLayer};
use cache_store::CacheBuilder;
use common::lamp;
use mockall::predicate::{always, eq, function};

/// The mock wired as production wires an adapter: fail-open reads.
fn wired(mut mock: MockCache) -> (Arc<dyn Cache>, FailOpenHandle) {
    mock.expect_max_value_len().return_const(1024 * 1024usize);
    let fail_open = FailOpenLayer::new();
    let handle = fail_open.handle();
    let cache = CacheBuilder::new(CacheStore::new(mock))
        .layer(fail_open)
        .build();
    (cache, handle)
}

/// The TTL a loaded product or page is stored with: fresh for the TTL and
/// its jitter, kept for the fail-safe window beyond.
fn kept_ttl() -> impl mockall::Predicate<Option<Duration>> {
    function(|ttl: &Option<Duration>| {
        ttl.is_some_and(|t| {
            t >= PRODUCT_TTL + STALE_FOR && t <= PRODUCT_TTL + PRODUCT_TTL_JITTER + STALE_FOR
        })
    })
}

fn repository() -> Arc<SlowRepository> {
    common::repository(Duration::ZERO)
}

fn down() -> CacheError {
    CacheError::Unavailable {
        message: "connection refused".into(),
        source: None,
    }
}

#[tokio::test]
async fn a_hit_never_reaches_the_repository() {
    let mut cache = MockCache::new();
    let cached = typed::encode(&lamp()).unwrap();
    cache
        .expect_get()
        .with(eq("product:1"))
        .times(1)
        .returning(move |_| Ok(Some(cached.clone())));
    cache.expect_set().never();
    let repo = repository();
    let service = CatalogService::new(wired(cache).0, repo.clone());
    assert_eq!(service.product(1).await.unwrap(), Some(lamp()));
    assert_eq!(repo.queries(), 0);
}

#[tokio::test]
async fn a_miss_loads_once_and_caches_with_the_ttl() {
    let mut cache = MockCache::new();
    // The look, and the flight's second look (another flight may just
    // have landed).
    cache
        .expect_get()
        .with(eq("product:1"))
        .times(2)
        .returning(|_| Ok(None));
    cache
        .expect_set()
        .with(eq("product:1"), always(), kept_ttl())
        .times(1)
        .returning(|_, value, _| {
            assert_eq!(typed::decode::<Product>(&value).unwrap(), lamp());
            Ok(())
        });
    let repo = repository();
    let service = CatalogService::new(wired(cache).0, repo.clone());
    assert_eq!(service.product(1).await.unwrap(), Some(lamp()));
    assert_eq!(repo.queries(), 1);
}

#[tokio::test]
async fn a_cache_outage_degrades_to_the_repository() {
    let mut cache = MockCache::new();
    // Two reads per product (the look and the flight's), each failed open.
    cache.expect_get().times(4).returning(|_| Err(down()));
    // The write-back is tried, fails, and is counted, not returned.
    cache.expect_set().times(2).returning(|_, _, _| Err(down()));
    let before = cache_port::typed::write_back_failures();
    let repo = repository();
    let (cache, outages) = wired(cache);
    let service = CatalogService::new(cache, repo.clone());
    assert_eq!(service.product(1).await.unwrap(), Some(lamp()));
    assert_eq!(service.product(2).await.unwrap(), None);
    assert_eq!(outages.failed_open(), 4);
    assert!(cache_port::typed::write_back_failures() >= before + 2);
    assert_eq!(repo.queries(), 2);
}

#[tokio::test]
async fn a_cache_error_that_is_no_outage_is_reported() {
    let mut cache = MockCache::new();
    cache.expect_get().returning(|_| {
        Err(CacheError::Auth {
            message: "WRONGPASS".into(),
            source: None,
        })
    });
    let repo = repository();
    let service = CatalogService::new(wired(cache).0, repo.clone());
    let err = service.product(1).await.unwrap_err();
    assert!(
        matches!(err, CatalogError::Cache(ref e) if e.kind() == cache_port::ErrorKind::Auth),
        "{err}"
    );
    assert_eq!(repo.queries(), 0);
}

#[tokio::test]
async fn a_failed_cache_write_still_answers() {
    let mut cache = MockCache::new();
    cache.expect_get().returning(|_| Ok(None));
    cache.expect_set().times(1).returning(|_, _, _| {
        Err(CacheError::Timeout {
            operation: "set",
            after: Duration::from_secs(1),
            source: None,
        })
    });
    let service = CatalogService::new(wired(cache).0, repository());
    assert_eq!(service.product(1).await.unwrap(), Some(lamp()));
}

#[tokio::test]
async fn an_undecodable_entry_is_reloaded_and_replaced() {
    let mut cache = MockCache::new();
    cache
        .expect_get()
        .returning(|_| Ok(Some("not msgpack".into())));
    cache
        .expect_set()
        .with(eq("product:1"), always(), kept_ttl())
        .times(1)
        .returning(|_, _, _| Ok(()));
    let before = cache_port::typed::decode_failures();
    let service = CatalogService::new(wired(cache).0, repository());
    assert_eq!(service.product(1).await.unwrap(), Some(lamp()));
    assert!(cache_port::typed::decode_failures() > before);
}

/// The versions' keys of `tags`, as the tagged view names them.
fn version_keys(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| format!("__tag:{t}")).collect()
}

#[tokio::test]
async fn listings_are_cached_per_page_tagged_with_category_and_products() {
    let mut cache = MockCache::new();
    cache
        .expect_get()
        .with(eq("listing:lighting:page:0"))
        .times(2)
        .returning(|_| Ok(None));
    // The page's tags, from its key and the products on it: their versions
    // are read once and created where missing.
    let tags = version_keys(&["category:lighting", "product:1"]);
    cache
        .expect_get_many()
        .withf(move |keys| keys == tags.as_slice())
        .times(1)
        .returning(|keys| Ok(vec![None; keys.len()]));
    cache
        .expect_set_if_absent()
        .times(2)
        .returning(|_, _, _| Ok(true));
    cache
        .expect_set()
        .with(eq("listing:lighting:page:0"), always(), kept_ttl())
        .times(1)
        .returning(|_, _, _| Ok(()));
    let service = CatalogService::new(wired(cache).0, repository());
    assert_eq!(service.listing("lighting", 0).await.unwrap(), vec![lamp()]);
}

#[tokio::test]
async fn saving_invalidates_the_product_and_both_categories_listings_in_one_write() {
    let mut cache = MockCache::new();
    cache
        .expect_delete()
        .with(eq("product:1"))
        .times(1)
        .returning(|_| Ok(true));
    let tags = version_keys(&["product:1", "category:furniture", "category:lighting"]);
    cache
        .expect_set_many()
        .withf(move |items, ttl| {
            ttl.is_none() && items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>() == tags
        })
        .times(1)
        .returning(|_, _| Ok(()));
    cache.expect_delete_pattern().never();
    let repo = repository();
    let service = CatalogService::new(wired(cache).0, repo.clone());
    service
        .save(Product {
            category: "furniture".into(),
            ..lamp()
        })
        .await
        .unwrap();
    assert_eq!(service.invalidation_failures(), 0);
}

#[tokio::test]
async fn a_category_of_any_text_is_one_tag() {
    let mut cache = MockCache::new();
    cache.expect_delete().returning(|_| Ok(false));
    let tags = version_keys(&["product:1", "category:sale*[50%]", "category:lighting"]);
    cache
        .expect_set_many()
        .withf(move |items, _| items.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>() == tags)
        .times(1)
        .returning(|_, _| Ok(()));
    let service = CatalogService::new(wired(cache).0, repository());
    service
        .save(Product {
            category: "sale*[50%]".into(),
            ..lamp()
        })
        .await
        .unwrap();
    assert_eq!(service.invalidation_failures(), 0);
}

#[tokio::test]
async fn a_failed_invalidation_does_not_fail_the_write() {
    let mut cache = MockCache::new();
    cache.expect_delete().returning(|_| Err(down()));
    cache.expect_set_many().returning(|_, _| Err(down()));
    let repo = repository();
    let service = CatalogService::new(wired(cache).0, repo.clone());
    service
        .save(Product {
            price_cents: 999,
            ..lamp()
        })
        .await
        .unwrap();
    assert_eq!(service.invalidation_failures(), 2);
}
