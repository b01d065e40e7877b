//! A worked example of the cache port in a domain service: a product
//! catalogue over a deliberately slow repository.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_example_catalog::{CatalogService, Product, SlowRepository};
//! use cache_store::layer::{CacheStore, FailOpenLayer};
//! use cache_store::CacheBuilder;
//! use cache_port::{CacheError, MockCache};
//!
//! let lamp = Product { id: 1, name: "lamp".into(), category: "lighting".into(), price_cents: 1999 };
//! let repository = Arc::new(SlowRepository::new(Duration::from_millis(1), [lamp.clone()]));
//! // A cache that is down, wired fail-open: the service still answers, from the repository.
//! let down = || CacheError::Unavailable { message: "down".into(), source: None };
//! let mut cache = MockCache::new();
//! cache.expect_max_value_len().return_const(1024 * 1024usize);
//! cache.expect_get().returning(move |_| Err(down()));
//! cache.expect_set().returning(move |_, _, _| Err(down()));
//! let fail_open = FailOpenLayer::new();
//! let outages = fail_open.handle();
//! let cache = CacheBuilder::new(CacheStore::new(cache)).layer(fail_open).build();
//! let service = CatalogService::new(cache, repository.clone());
//! assert_eq!(service.product(1).await.unwrap(), Some(lamp));
//! assert_eq!(outages.failed_open(), 2); // the look, and the loader's second look
//! # });
//! ```
//!
//! `examples/catalog_demo.rs` wires it at startup through `cache-composition`
//! (`CACHE_URL` picks the adapter).

mod product;
mod service;

pub use product::{Product, ProductRepository, RepositoryError, SlowRepository};
pub use service::{
    category_tag, listing_key, listing_pattern, listing_tags, loading_options, product_key,
    product_tag, CatalogError, CatalogService, ListingPage, PAGE_SIZE, PRODUCT_TTL,
    PRODUCT_TTL_JITTER, STALE_FOR,
};
