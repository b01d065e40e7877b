//! The catalogue service: cache-aside over the repository, through the port.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use cache_port::{Cache, CacheError, CacheExt};

use crate::product::{Product, ProductRepository, RepositoryError};

/// How long a product or a listing page stays cached.
pub const PRODUCT_TTL: Duration = Duration::from_secs(300);

/// Products per listing page.
pub const PAGE_SIZE: usize = 20;

/// What a catalogue read can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The repository failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// The cache failed in a way fail-open does not cover (bad input, a
    /// server error, refused credentials): a bug or a misconfiguration to
    /// see, not an outage to ride out.
    #[error(transparent)]
    Cache(#[from] CacheError),
}

/// The catalogue. It depends on the cache port only, never on an adapter.
///
/// Reads are cache-aside through [`CacheExt::get_or_load`]: `product:{id}`
/// and `listing:{category}:page:{n}`. Writes go to the repository, then
/// invalidate the product's key and, with `delete_pattern`, every cached
/// page of its category (old and new).
///
/// Graceful degradation is the wiring's job, not this code's: give it a
/// cache built with fail-open (`CACHE_URL=…&fail_open=true`, or the
/// `FailOpen` layer). Then during an outage a read is a miss, the value is
/// loaded from the repository, the failed write-back is logged and counted
/// by the port, and the caller gets the value. Failed invalidations (writes
/// are never failed open) are logged and counted in
/// [`CatalogService::invalidation_failures`]: the entries expire within
/// [`PRODUCT_TTL`].
pub struct CatalogService {
    cache: Arc<dyn Cache>,
    repository: Arc<dyn ProductRepository>,
    invalidation_failures: AtomicU64,
}

impl CatalogService {
    /// The service over `cache` and `repository`.
    pub fn new(cache: Arc<dyn Cache>, repository: Arc<dyn ProductRepository>) -> Self {
        Self {
            cache,
            repository,
            invalidation_failures: AtomicU64::new(0),
        }
    }

    /// Invalidations that failed (the cache was unreachable during a save).
    pub fn invalidation_failures(&self) -> u64 {
        self.invalidation_failures.load(Relaxed)
    }

    /// The product `id`.
    pub async fn product(&self, id: u64) -> Result<Option<Product>, CatalogError> {
        self.cache
            .get_or_load(&product_key(id), Some(PRODUCT_TTL), || async {
                Ok(self.repository.find(id).await?)
            })
            .await
    }

    /// Page `page` (from 0) of the listing of `category`.
    pub async fn listing(&self, category: &str, page: usize) -> Result<Vec<Product>, CatalogError> {
        let key = listing_key(category, page);
        self.cache
            .get_or_load(&key, Some(PRODUCT_TTL), || async {
                let all = self.repository.by_category(category).await?;
                Ok(all
                    .into_iter()
                    .skip(page * PAGE_SIZE)
                    .take(PAGE_SIZE)
                    .collect())
            })
            .await
    }

    /// Saves `product` and invalidates what the cache holds about it.
    pub async fn save(&self, product: Product) -> Result<(), CatalogError> {
        let old_category = self.repository.find(product.id).await?.map(|p| p.category);
        let (id, category) = (product.id, product.category.clone());
        self.repository.save(product).await?;
        let deleted = self.cache.delete(&product_key(id)).await;
        self.note_failure(deleted, "invalidate product");
        let mut categories = vec![category];
        categories.extend(old_category.filter(|old| *old != categories[0]));
        for category in categories {
            let deleted = self.cache.delete_pattern(&listing_pattern(&category)).await;
            self.note_failure(deleted, "invalidate listing");
        }
        Ok(())
    }

    fn note_failure<T>(&self, result: Result<T, CacheError>, what: &str) {
        if let Err(error) = result {
            self.invalidation_failures.fetch_add(1, Relaxed);
            tracing::warn!(%error, what, "cache invalidation failed; the entry expires within its TTL");
        }
    }
}

/// The cache key of product `id`.
pub fn product_key(id: u64) -> String {
    format!("product:{id}")
}

/// The cache key of a listing page.
pub fn listing_key(category: &str, page: usize) -> String {
    format!("listing:{}:page:{page}", category)
}

/// The pattern of every cached page of a category's listing (the category
/// escaped, since it is free text).
pub fn listing_pattern(category: &str) -> String {
    format!("listing:{}:page:*", cache_port::escape_glob(category))
}
