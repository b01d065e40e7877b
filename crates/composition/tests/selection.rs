//! The composition picks the adapter the configuration names, fails clearly
//! on a bad one, and provides the cache through shaku.

use std::sync::Arc;

use cache_composition::{
    build_cache, build_module, module_with, resolve_cache, CacheComponent, CacheConfig, CacheModule,
};
use cache_moka::MokaCache;
use cache_port::{Cache, ErrorKind};
use cache_redis_harness::RedisServer;
use shaku::{module, Component, HasComponent, Interface};

fn env(url: Option<&str>) -> CacheConfig {
    let url = url.map(str::to_owned);
    CacheConfig::from_lookup(move |name| {
        if name == "CACHE_URL" {
            url.clone()
        } else {
            None
        }
    })
    .unwrap()
}

#[test]
fn nothing_configured_is_the_embedded_default() {
    assert_eq!(env(None), CacheConfig::default());
    assert_eq!(env(Some("  ")), CacheConfig::default());
    assert_eq!(env(None).adapter(), "memory");
}

#[test]
fn memory_urls_carry_their_options() {
    let CacheConfig::Memory(c) =
        CacheConfig::from_url("memory://?capacity=8MiB&namespace=shop").unwrap()
    else {
        panic!("not memory")
    };
    assert_eq!(c.capacity(), 8 << 20);
    assert_eq!(c.namespace_ref(), Some("shop"));
    assert_eq!(
        CacheConfig::from_url("moka://").unwrap(),
        CacheConfig::default()
    );
}

#[test]
fn bad_configurations_are_clear_errors() {
    for (url, says) in [
        ("memcached://localhost", "unknown cache scheme"),
        ("localhost:6379", "not a cache URL"),
        ("memory://somewhere", "takes no host"),
        ("memory://?capacity=lots", "size"),
        ("memory://?colour=blue", "unknown option"),
        ("redis://localhost?pool_size=0", "pool_size"),
        ("redis://localhost?what=1", "unknown Redis URL parameter"),
    ] {
        let err = CacheConfig::from_url(url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        assert!(err.to_string().contains(says), "{url}: {err}");
    }
}

#[tokio::test]
async fn a_bad_memory_capacity_fails_at_build() {
    let config = CacheConfig::from_url("memory://?capacity=10").unwrap();
    let err = build_cache(&config).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn redis_url_selects_redis() {
    let server = RedisServer::start();
    let config = CacheConfig::from_url(&format!("{}/0?namespace=composed", server.url())).unwrap();
    assert_eq!(config.adapter(), "redis");
    let cache = resolve_cache(&build_module(&config).await.unwrap());
    cache
        .set("k", "from the module".into(), None)
        .await
        .unwrap();
    assert!(
        server.command("GET composed:k").contains("from the module"),
        "the key went to Redis"
    );
}

#[tokio::test]
async fn unreachable_redis_fails_at_startup() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config =
        CacheConfig::from_url(&format!("redis://127.0.0.1:{port}?connect_timeout_ms=1000"))
            .unwrap();
    let err = build_module(&config).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn a_redis_password_never_shows() {
    let config = CacheConfig::from_url("redis://user:hunter2-secret@127.0.0.1:1/0").unwrap();
    assert!(!format!("{config:?}").contains("hunter2-secret"));
}

// An application component that gets the cache injected.
trait Greeter: Interface {
    fn cache(&self) -> Arc<dyn Cache>;
}

#[derive(Component)]
#[shaku(interface = Greeter)]
struct GreeterImpl {
    #[shaku(inject)]
    cache: Arc<dyn CacheComponent>,
}

impl Greeter for GreeterImpl {
    fn cache(&self) -> Arc<dyn Cache> {
        self.cache.clone()
    }
}

module! {
    AppModule {
        components = [GreeterImpl],
        providers = [],

        use CacheModule {
            components = [dyn CacheComponent],
            providers = []
        }
    }
}

#[tokio::test]
async fn components_get_the_selected_cache_injected() {
    let shared = Arc::new(MokaCache::builder().namespace("app").build().unwrap());
    let cache_module = Arc::new(module_with(shared.clone()));
    let app = AppModule::builder(cache_module.clone()).build();
    let greeter: Arc<dyn Greeter> = app.resolve();
    greeter
        .cache()
        .set("hello", "world".into(), None)
        .await
        .unwrap();
    // The same adapter everywhere: what the component wrote, the module's cache and the adapter see.
    assert_eq!(
        resolve_cache(&*cache_module)
            .get("hello")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"world"[..])
    );
    assert_eq!(
        shared.get("hello").await.unwrap().as_deref(),
        Some(&b"world"[..])
    );
    let again: Arc<dyn CacheComponent> = cache_module.resolve();
    assert!(again.exists("hello").await.unwrap());
}
