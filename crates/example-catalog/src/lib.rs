//! A worked example of the cache port in a domain service: a product
//! catalogue over a deliberately slow repository.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_example_catalog::{CatalogService, Product, SlowRepository};
//! use cache_port::MockCache;
//!
//! let lamp = Product { id: 1, name: "lamp".into(), category: "lighting".into(), price_cents: 1999 };
//! let repository = Arc::new(SlowRepository::new(Duration::from_millis(1), [lamp.clone()]));
//! // A cache that is down: the service still answers, from the repository.
//! let mut cache = MockCache::new();
//! cache.expect_get().returning(|_| Err(cache_port::CacheError::Unavailable { message: "down".into(), source: None }));
//! let service = CatalogService::new(Arc::new(cache), repository.clone());
//! assert_eq!(service.product(1).await.unwrap(), Some(lamp));
//! assert_eq!(service.cache_failures(), 1);
//! # });
//! ```
//!
//! `examples/catalog_demo.rs` wires it at startup through `cache-composition`
//! (`CACHE_URL` picks the adapter).

mod product;
mod service;

pub use product::{Product, ProductRepository, RepositoryError, SlowRepository};
pub use service::{
    listing_key, listing_pattern, product_key, CatalogService, PAGE_SIZE, PRODUCT_TTL,
};
