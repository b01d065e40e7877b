//! The domain: products and where they are kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;

/// A product of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its identifier.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its category, which names its listing.
    pub category: String,
    /// Its price in cents.
    pub price_cents: u64,
}

/// The repository failed (the database is down, say).
#[derive(Debug, thiserror::Error)]
#[error("repository error: {0}")]
pub struct RepositoryError(pub String);

/// Where products really live: the slow source of truth.
#[async_trait]
pub trait ProductRepository: Send + Sync {
    /// The product `id`, if it exists.
    async fn find(&self, id: u64) -> Result<Option<Product>, RepositoryError>;
    /// Every product of `category`, by id.
    async fn by_category(&self, category: &str) -> Result<Vec<Product>, RepositoryError>;
    /// Stores `product`, replacing any with its id.
    async fn save(&self, product: Product) -> Result<(), RepositoryError>;
}

/// An in-memory repository that takes `delay` per query, like a remote
/// database would, and counts its queries.
#[derive(Debug)]
pub struct SlowRepository {
    delay: Duration,
    products: RwLock<HashMap<u64, Product>>,
    queries: AtomicU64,
}

impl SlowRepository {
    /// A repository holding `products`, answering after `delay`.
    pub fn new(delay: Duration, products: impl IntoIterator<Item = Product>) -> Self {
        Self {
            delay,
            products: RwLock::new(products.into_iter().map(|p| (p.id, p)).collect()),
            queries: AtomicU64::new(0),
        }
    }

    /// How many queries (reads and writes) it has answered.
    pub fn queries(&self) -> u64 {
        self.queries.load(Relaxed)
    }

    async fn wait(&self) {
        self.queries.fetch_add(1, Relaxed);
        tokio::time::sleep(self.delay).await;
    }
}

#[async_trait]
impl ProductRepository for SlowRepository {
    async fn find(&self, id: u64) -> Result<Option<Product>, RepositoryError> {
        self.wait().await;
        Ok(self.products.read().await.get(&id).cloned())
    }

    async fn by_category(&self, category: &str) -> Result<Vec<Product>, RepositoryError> {
        self.wait().await;
        let mut found: Vec<Product> = self
            .products
            .read()
            .await
            .values()
            .filter(|p| p.category == category)
            .cloned()
            .collect();
        found.sort_by_key(|p| p.id);
        Ok(found)
    }

    async fn save(&self, product: Product) -> Result<(), RepositoryError> {
        self.wait().await;
        self.products.write().await.insert(product.id, product);
        Ok(())
    }
}
