//! `#[cached]` (cache-macros) expanded on a service's method and on a free
//! function, run on moka and on a real Redis: one load per key for many
//! concurrent callers, the TTL from the attribute, the key from the
//! arguments, a load error shared and not cached.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cache_loading::{LoadError, LoadOptions, Loader};
use cache_macros::cached;
use cache_port::{Cache, TtlState};
use cache_redis_harness::RedisServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
}

#[derive(Debug, thiserror::Error)]
#[error("no product {0}")]
struct NotFound(u64);

/// A service as services are: cheap to clone, holding its loader and its
/// repository (here a counter of calls).
#[derive(Clone)]
struct Catalogue {
    loader: Loader<NotFound>,
    loads: Arc<AtomicUsize>,
}

impl Catalogue {
    #[cached(loader = self.loader, key = "product:{id}", ttl = "5m")]
    async fn product(&self, id: u64) -> Result<Product, NotFound> {
        self.loads.fetch_add(1, SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        if id == 0 {
            return Err(NotFound(id));
        }
        Ok(Product {
            id,
            name: format!("product {id}"),
        })
    }

    /// Two arguments in the key, options from an expression.
    #[cached(
        loader = self.loader,
        key = "search:{category}:{page}",
        options = LoadOptions::ttl(Duration::from_secs(60)).jitter(Duration::from_secs(5))
    )]
    async fn search(&self, category: String, page: u32) -> Result<Vec<u64>, NotFound> {
        self.loads.fetch_add(1, SeqCst);
        Ok(vec![u64::from(page), category.len() as u64])
    }
}

static FREE_LOADS: AtomicUsize = AtomicUsize::new(0);

/// A free function, with its loader from a global.
#[cached(loader = free_loader(), key = "greeting:{name}", ttl = "500ms")]
async fn greeting(name: String) -> Result<String, NotFound> {
    FREE_LOADS.fetch_add(1, SeqCst);
    Ok(format!("hello {name}"))
}

static FREE_LOADER: std::sync::OnceLock<Loader<NotFound>> = std::sync::OnceLock::new();

fn free_loader() -> &'static Loader<NotFound> {
    FREE_LOADER.get().expect("set by the test")
}

async fn exercise(cache: Arc<dyn Cache>) {
    let catalogue = Catalogue {
        loader: Loader::new(Arc::clone(&cache)),
        loads: Arc::new(AtomicUsize::new(0)),
    };
    // 50 concurrent callers of one key: one load.
    let calls = (0..50).map(|_| {
        let catalogue = catalogue.clone();
        async move { catalogue.product(7).await }
    });
    for answer in futures::future::join_all(calls).await {
        assert_eq!(answer.unwrap().name, "product 7");
    }
    assert_eq!(catalogue.loads.load(SeqCst), 1);
    // The key from the argument, the TTL from the attribute.
    match cache.ttl("product:7").await.unwrap() {
        TtlState::ExpiresIn(left) => assert!(left > Duration::from_secs(290), "{left:?}"),
        other => panic!("product:7 has {other:?}"),
    }
    // Cached: no second load.
    assert_eq!(catalogue.product(7).await.unwrap().id, 7);
    assert_eq!(catalogue.loads.load(SeqCst), 1);
    // A load error is returned as `LoadError::Load`, and not cached.
    for _ in 0..2 {
        match catalogue.product(0).await {
            Err(LoadError::Load(e)) => assert_eq!(e.0, 0),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(catalogue.loads.load(SeqCst), 3);
    assert!(!cache.exists("product:0").await.unwrap());
    // Two arguments, options from an expression (TTL 60 s + up to 5 s jitter).
    assert_eq!(catalogue.search("lamps".into(), 2).await.unwrap(), [2, 5]);
    assert_eq!(catalogue.search("lamps".into(), 2).await.unwrap(), [2, 5]);
    assert_eq!(catalogue.loads.load(SeqCst), 4);
    match cache.ttl("search:lamps:2").await.unwrap() {
        TtlState::ExpiresIn(left) => assert!(left <= Duration::from_secs(65), "{left:?}"),
        other => panic!("search:lamps:2 has {other:?}"),
    }
}

#[tokio::test]
async fn the_attribute_memoizes_through_the_loader_on_moka_and_redis() {
    let moka: Arc<dyn Cache> = Arc::new(cache_moka::MokaConfig::default().build().unwrap());
    exercise(Arc::clone(&moka)).await;

    let server = RedisServer::start();
    let redis: Arc<dyn Cache> = Arc::new(
        cache_redis::RedisConfig::from_url(&format!("{}?namespace=macro", server.url()))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    exercise(Arc::clone(&redis)).await;
    assert!(server.command("EXISTS macro:product:7").contains('1'));

    // A free function: its TTL of 500 ms ends, and the next call loads again.
    FREE_LOADER.get_or_init(|| Loader::new(Arc::clone(&redis)));
    assert_eq!(greeting("ann".into()).await.unwrap(), "hello ann");
    assert_eq!(greeting("ann".into()).await.unwrap(), "hello ann");
    assert_eq!(FREE_LOADS.load(SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(greeting("ann".into()).await.unwrap(), "hello ann");
    assert_eq!(FREE_LOADS.load(SeqCst), 2);
    redis.close().await.unwrap();
}
