//! The catalogue service: cache-aside over the repository, through the port.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use cache_keyspace::{unescape_id, KeyPart, KeyWriter, Keyspace};
use cache_loading::{FailSafe, LoadError, LoadOptions, Loader};
use cache_port::{Cache, CacheError};
use cache_tags::{TagRule, TaggedCache};

use crate::product::{Product, ProductRepository, RepositoryError};

/// How long a product or a listing page stays fresh (plus up to
/// [`PRODUCT_TTL_JITTER`], so that pages cached together do not expire
/// together).
pub const PRODUCT_TTL: Duration = Duration::from_secs(300);

/// The random extension of each [`PRODUCT_TTL`].
pub const PRODUCT_TTL_JITTER: Duration = Duration::from_secs(30);

/// How long past its TTL a product may still be served when the repository
/// (or the cache) is down.
pub const STALE_FOR: Duration = Duration::from_secs(3600);

/// Products per listing page.
pub const PAGE_SIZE: usize = 20;

/// How the catalogue loads: single-flight always; jitter; fail-safe for an
/// hour (the repository rests 10 s after a failure); a reader holding a
/// stale value waits at most 250 ms for the repository, and no reader waits
/// more than 3 s; an unknown product id is remembered for 30 s.
pub fn loading_options() -> LoadOptions {
    LoadOptions::ttl(PRODUCT_TTL)
        .jitter(PRODUCT_TTL_JITTER)
        .fail_safe(FailSafe::new(STALE_FOR).throttle(Duration::from_secs(10)))
        .soft_timeout(Duration::from_millis(250))
        .hard_timeout(Duration::from_secs(3))
        .negative_ttl(Duration::from_secs(30))
}

/// What a catalogue read can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The repository failed, and fail-safe had nothing to serve instead.
    #[error(transparent)]
    Repository(Arc<RepositoryError>),
    /// The cache failed in a way neither fail-safe nor fail-open covers (bad
    /// input, a server error, refused credentials): a bug or a
    /// misconfiguration to see, not an outage to ride out.
    #[error(transparent)]
    Cache(Arc<CacheError>),
    /// The repository did not answer in time, and there was nothing stale.
    #[error("the repository did not answer within {after:?}")]
    TimedOut {
        /// The hard timeout.
        after: Duration,
    },
}

impl From<RepositoryError> for CatalogError {
    fn from(e: RepositoryError) -> Self {
        CatalogError::Repository(Arc::new(e))
    }
}

impl From<LoadError<RepositoryError>> for CatalogError {
    fn from(e: LoadError<RepositoryError>) -> Self {
        match e {
            LoadError::Load(e) => CatalogError::Repository(e),
            LoadError::Cache(e) => CatalogError::Cache(e),
            LoadError::Timeout { after } => CatalogError::TimedOut { after },
            other => CatalogError::Cache(Arc::new(CacheError::Backend {
                message: other.to_string(),
                source: None,
            })),
        }
    }
}

/// The catalogue. It depends on the cache port only, never on an adapter.
///
/// Reads are cache-aside through a [`Loader`] with [`loading_options`]:
/// `product:{id}` and `listing:{category}:page:{n}`. 500 concurrent readers
/// of a cold product make one repository query; while the repository is
/// down, readers get the last known product for up to [`STALE_FOR`]. Writes
/// go to the repository, then invalidate the product's key and, by tag,
/// every cached listing page of its category (old and new) and every page
/// that showed it: the loader reads and writes through a
/// [`TaggedCache`] whose rule ([`listing_tags`]) tags each page with its
/// category and the products on it, so that one write invalidates them all
/// (where `delete_pattern` walked the whole key space).
///
/// Riding out a cache outage is the wiring's choice: with fail-safe alone,
/// readers get what this process last saw (or the outage as an error); with
/// a cache built fail-open as well (`CACHE_URL=…&fail_open=true`, or the
/// `FailOpen` layer), an outage reads as a miss and products come from the
/// repository. Failed invalidations (writes are never failed open) are
/// logged and counted in [`CatalogService::invalidation_failures`]: the
/// entries expire within their TTL.
pub struct CatalogService {
    /// `product:{id}`: a product, or "no such product" (kept 30 s).
    products: Keyspace<u64, Option<Product>, cache_keyspace::MsgPack, RepositoryError>,
    /// `listing:{category}:page:{n}`, tagged by [`listing_tags`].
    listings: Keyspace<ListingPage, Vec<Product>, cache_keyspace::MsgPack, RepositoryError>,
    tags: TaggedCache,
    repository: Arc<dyn ProductRepository>,
    invalidation_failures: AtomicU64,
}

/// A listing page's id: its category (free text, escaped in the key) and
/// its number. Its key is `listing:{category}:page:{n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingPage {
    /// The category.
    pub category: String,
    /// The page, from 0.
    pub page: usize,
}

impl KeyPart for ListingPage {
    fn write_key(&self, out: &mut KeyWriter<'_>) {
        out.part(&self.category);
        out.part("page");
        out.number(self.page);
    }
}

impl CatalogService {
    /// The service over `cache` and `repository`.
    pub fn new(cache: Arc<dyn Cache>, repository: Arc<dyn ProductRepository>) -> Self {
        let tags = TaggedCache::new(cache).tag_with(listing_tags());
        let loader = Loader::with_defaults(Arc::new(tags.clone()), loading_options());
        Self {
            products: Keyspace::on_loader(loader.clone(), "product")
                .build()
                .expect("a valid keyspace name"),
            listings: Keyspace::on_loader(loader, "listing")
                .build()
                .expect("a valid keyspace name"),
            tags,
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
        let repository = Arc::clone(&self.repository);
        Ok(self
            .products
            .get_or_load_optional(&id, move || async move { repository.find(id).await })
            .await?)
    }

    /// Page `page` (from 0) of the listing of `category`.
    pub async fn listing(&self, category: &str, page: usize) -> Result<Vec<Product>, CatalogError> {
        let (repository, owned) = (Arc::clone(&self.repository), category.to_owned());
        let load = move || async move {
            let all = repository.by_category(&owned).await?;
            Ok(all
                .into_iter()
                .skip(page * PAGE_SIZE)
                .take(PAGE_SIZE)
                .collect())
        };
        let id = ListingPage {
            category: category.to_owned(),
            page,
        };
        Ok(self.listings.get_or_load(&id, load).await?)
    }

    /// Saves `product` and invalidates what the cache holds about it.
    pub async fn save(&self, product: Product) -> Result<(), CatalogError> {
        let old_category = self.repository.find(product.id).await?.map(|p| p.category);
        let (id, category) = (product.id, product.category.clone());
        self.repository.save(product).await?;
        let deleted = self.products.delete(&id).await;
        self.note_failure(deleted, "invalidate product");
        // One write: the pages that showed it, and every page of its old
        // and new category (a new or moved product shifts them all).
        let mut tags = vec![product_tag(id), category_tag(&category)];
        tags.extend(
            old_category
                .filter(|old| *old != category)
                .map(|old| category_tag(&old)),
        );
        let invalidated = self.tags.delete_by_tags(&tags).await;
        self.note_failure(invalidated, "invalidate listings");
        Ok(())
    }

    fn note_failure<T>(&self, result: Result<T, CacheError>, what: &str) {
        if let Err(error) = result {
            self.invalidation_failures.fetch_add(1, Relaxed);
            tracing::warn!(%error, what, "cache invalidation failed; the entry expires within its TTL");
        }
    }
}

/// The cache key of product `id` (`product:{id}`).
pub fn product_key(id: u64) -> String {
    format!("product:{id}")
}

/// The cache key of a listing page: `listing:{category}:page:{n}`, the
/// category escaped by the keyspace's rule (`cache_keyspace::escape_id`), so
/// that no category reaches another's pages.
pub fn listing_key(category: &str, page: usize) -> String {
    format!(
        "listing:{}:page:{page}",
        cache_keyspace::escape_id(category)
    )
}

/// The pattern of every cached page of a category's listing, for `cachectl
/// delete-pattern` by hand: the service invalidates by tag.
pub fn listing_pattern(category: &str) -> String {
    format!(
        "listing:{}:page:*",
        cache_port::escape_glob(&cache_keyspace::escape_id(category))
    )
}

/// The tag of every listing page that shows product `id`.
pub fn product_tag(id: u64) -> String {
    format!("product:{id}")
}

/// The tag of every listing page of `category`. A category too long for a
/// tag (over 246 bytes) makes its pages uncacheable (their write-back is
/// refused and counted), never stale.
pub fn category_tag(category: &str) -> String {
    format!("category:{category}")
}

/// The tag rule of listing pages: each page (`listing:{category}:page:{n}`)
/// with its category's tag and the tag of each product it shows; any other
/// entry none.
pub fn listing_tags() -> TagRule {
    Arc::new(|key: &str, stored: &bytes::Bytes| {
        // The escaped category holds no ':', so the split is exact.
        let Some(category) = key
            .strip_prefix("listing:")
            .and_then(|rest| rest.rsplit_once(":page:"))
            .and_then(|(category, _)| unescape_id(category))
        else {
            return Vec::new();
        };
        let mut tags = vec![category_tag(&category)];
        if let Ok(products) = cache_port::typed::decode::<Vec<Product>>(stored) {
            tags.extend(products.iter().map(|p| product_tag(p.id)));
        }
        tags
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_of_any_text_keeps_to_its_own_pages_and_tag() {
        let page = |category: &str| {
            Keyspace::<ListingPage, Vec<Product>>::builder(
                Arc::new(cache_port::MockCache::new()),
                "listing",
            )
            .build()
            .unwrap()
            .key(&ListingPage {
                category: category.to_owned(),
                page: 3,
            })
            .unwrap()
        };
        for category in ["lamps", "a:b", "50% *off*", "{x}"] {
            let key = page(category);
            assert_eq!(key, listing_key(category, 3));
            let pattern = cache_port::Pattern::new(&listing_pattern(category)).unwrap();
            assert!(pattern.matches(&key), "{key}");
            assert!(!pattern.matches(&page(&format!("{category}x"))));
            let stored = cache_port::typed::encode(&Vec::<Product>::new()).unwrap();
            assert_eq!(listing_tags()(&key, &stored), [category_tag(category)]);
        }
    }
}
