//! The catalogue service: cache-aside over the repository, through the port.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use cache_port::{Cache, CacheError, CacheExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::product::{Product, ProductRepository, RepositoryError};

/// How long a product or a listing page stays cached.
pub const PRODUCT_TTL: Duration = Duration::from_secs(300);

/// Products per listing page.
pub const PAGE_SIZE: usize = 20;

/// The catalogue. It depends on the cache port only, never on an adapter.
///
/// Reads are cache-aside through the typed layer: `product:{id}` and
/// `listing:{category}:page:{n}`. Writes go to the repository, then
/// invalidate the product's key and, with `delete_pattern`, every cached
/// page of its category (old and new). When the cache fails, the service
/// still answers from the repository; every such failure is logged and
/// counted in [`CatalogService::cache_failures`].
pub struct CatalogService {
    cache: Arc<dyn Cache>,
    repository: Arc<dyn ProductRepository>,
    cache_failures: AtomicU64,
}

impl CatalogService {
    /// The service over `cache` and `repository`.
    pub fn new(cache: Arc<dyn Cache>, repository: Arc<dyn ProductRepository>) -> Self {
        Self {
            cache,
            repository,
            cache_failures: AtomicU64::new(0),
        }
    }

    /// Cache errors the service degraded around (read from or wrote to the
    /// repository instead).
    pub fn cache_failures(&self) -> u64 {
        self.cache_failures.load(Relaxed)
    }

    /// The product `id`.
    pub async fn product(&self, id: u64) -> Result<Option<Product>, RepositoryError> {
        let key = product_key(id);
        self.cached(&key, || self.repository.find(id)).await
    }

    /// Page `page` (from 0) of the listing of `category`.
    pub async fn listing(
        &self,
        category: &str,
        page: usize,
    ) -> Result<Vec<Product>, RepositoryError> {
        let key = listing_key(category, page);
        self.cached(&key, || async {
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
    pub async fn save(&self, product: Product) -> Result<(), RepositoryError> {
        let old_category = self.repository.find(product.id).await?.map(|p| p.category);
        let (id, category) = (product.id, product.category.clone());
        self.repository.save(product).await?;
        let deleted = self.cache.delete(&product_key(id)).await;
        self.degrade_on_error(deleted, "invalidate product");
        let mut categories = vec![category];
        categories.extend(old_category.filter(|old| *old != categories[0]));
        for category in categories {
            let deleted = self.cache.delete_pattern(&listing_pattern(&category)).await;
            self.degrade_on_error(deleted, "invalidate listing");
        }
        Ok(())
    }

    /// Cache-aside: the cached value of `key`, or `load()`'s, then cached.
    async fn cached<T, F, Fut>(&self, key: &str, load: F) -> Result<T, RepositoryError>
    where
        T: Serialize + DeserializeOwned + Send + Sync,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, RepositoryError>>,
    {
        let mut cache_reachable = true;
        match self.cache.get_typed::<T>(key).await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => {
                // An outage must not also cost a write timeout per request;
                // an undecodable value is simply replaced.
                cache_reachable = !e.is_retryable();
                self.degrade(&e, "read");
            }
        }
        let value = load().await?;
        if cache_reachable {
            let stored = self.cache.set_typed(key, &value, Some(PRODUCT_TTL)).await;
            self.degrade_on_error(stored, "write");
        }
        Ok(value)
    }

    fn degrade_on_error<T>(&self, result: Result<T, CacheError>, what: &str) {
        if let Err(e) = result {
            self.degrade(&e, what);
        }
    }

    fn degrade(&self, error: &CacheError, what: &str) {
        self.cache_failures.fetch_add(1, Relaxed);
        tracing::warn!(%error, what, "cache failed; answering from the repository");
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
