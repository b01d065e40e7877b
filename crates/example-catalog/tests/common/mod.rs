//! The catalogue the integration tests share: one product, and a repository
//! that holds it.

use std::sync::Arc;
use std::time::Duration;

use cache_example_catalog::{Product, SlowRepository};

/// Product 1, the only one in [`repository`].
pub fn lamp() -> Product {
    Product {
        id: 1,
        name: "lamp".into(),
        category: "lighting".into(),
        price_cents: 1999,
    }
}

/// A repository holding [`lamp`], answering after `delay`.
pub fn repository(delay: Duration) -> Arc<SlowRepository> {
    Arc::new(SlowRepository::new(delay, [lamp()]))
}
