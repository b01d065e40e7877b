//! The composition picks the adapter the configuration names, fails clearly
//! on a bad one, and provides the cache through shaku.

use std::sync::Arc;

use cache_composition::{
    build_cache, build_module, module_with, resolve_cache, AdapterConfig, CacheComponent,
    CacheConfig, CacheModule,
};
use cache_moka::MokaConfig;
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
    let config = CacheConfig::from_url("memory://?capacity=8MiB&namespace=shop").unwrap();
    let AdapterConfig::Memory(c) = config.adapter_config() else {
        panic!("not memory")
    };
    assert_eq!(c.capacity(), 8 << 20);
    assert_eq!(config.namespace(), Some("shop"));
    assert!(!config.fail_open());
    assert_eq!(
        CacheConfig::from_url("moka://").unwrap(),
        CacheConfig::default()
    );
    assert_eq!(c.changed_options(), ["capacity=8388608"]);
}

#[tokio::test]
async fn count_evictions_false_reaches_the_store_and_shows_among_the_changed_options() {
    let config = CacheConfig::from_url("memory://?count_evictions=false").unwrap();
    let AdapterConfig::Memory(c) = config.adapter_config() else {
        panic!("not memory")
    };
    assert_eq!(c.changed_options(), ["count_evictions=false"]);
    let cache = build_cache(&config).await.unwrap();
    assert_eq!(cache.stats().await.unwrap().evictions, None, "not counted");
    let counting = build_cache(&CacheConfig::default()).await.unwrap();
    assert_eq!(counting.stats().await.unwrap().evictions, Some(0));
    let error = CacheConfig::from_url("memory://?count_evictions=no").unwrap_err();
    assert!(error.to_string().contains("count_evictions"), "{error}");
}

#[test]
fn bad_configurations_are_clear_errors() {
    for (url, says) in [
        ("memcached://localhost", "unknown cache scheme"),
        ("localhost:6379", "unknown cache scheme"),
        ("//localhost", "invalid cache URL"),
        ("memory://?namespace=a::b", "empty segment"),
        ("redis://localhost?namespace=:x", "empty segment"),
        ("memory://?fail_open=maybe", "fail_open"),
        ("memory://somewhere", "takes no host"),
        ("memory://?capacity=lots", "size"),
        ("memory://?colour=blue", "unknown option"),
        ("redis://localhost?pool_size=0", "pool_size"),
        ("redis://localhost?what=1", "unknown Redis URL parameter"),
        ("memory://?l1=8MiB", "goes over Redis"),
        ("redis://localhost?l1=lots", "size"),
        ("redis://localhost?l1_max_ttl_ms=1000", "need l1"),
        ("redis://localhost?l1=8MiB&l1_max_ttl_ms=0", "l1_max_ttl_ms"),
        ("redis://localhost?l1_refresh=false", "need l1"),
        (
            "redis://localhost?l1=8MiB&l1_refresh=sometimes",
            "l1_refresh",
        ),
        (
            "redis://localhost?l1=8MiB&backplane_channel=",
            "backplane_channel",
        ),
        (
            "redis://localhost?l1=8MiB&coherence=sometimes",
            "coherence must be",
        ),
        ("redis://localhost?coherence=pubsub", "need l1"),
        (
            "redis://localhost?l1=8MiB&coherence=tracking&backplane_channel=c",
            "backplane_channel is for coherence=pubsub",
        ),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_l1_option_selects_the_tiered_cache_over_redis() {
    let server = RedisServer::start();
    let url = format!(
        "{}/0?namespace=tiered&l1=8MiB&l1_max_ttl_ms=30000",
        server.url()
    );
    let config = CacheConfig::from_url(&url).unwrap();
    assert_eq!(config.tier().unwrap().l1_bytes, 8 << 20);
    assert!(
        config.tier().unwrap().refresh,
        "l1_refresh is on by default"
    );
    let off = CacheConfig::from_url(&format!("{url}&l1_refresh=false")).unwrap();
    assert!(!off.tier().unwrap().refresh);
    assert!(off.to_string().contains("l1_refresh=false"), "{off}");
    let (a, b) = (
        build_cache(&config).await.unwrap(),
        build_cache(&config).await.unwrap(),
    );
    // Both L1s serve once their first heartbeat is back (milliseconds).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.set("k", "v1".into(), None).await.unwrap();
    assert!(server.command("GET tiered:k").contains("v1"), "L2 is Redis");
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    // a's write reaches b's L1 through Redis's client tracking.
    a.set("k", "v2".into(), None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.get("k").await.unwrap().as_deref() != Some(&b"v2"[..]) {
        assert!(std::time::Instant::now() < deadline, "b kept serving v1");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // So does a write by a client that is no tiered cache at all.
    server.command("SET tiered:k v3");
    while b.get("k").await.unwrap().as_deref() != Some(&b"v3"[..]) {
        assert!(
            std::time::Instant::now() < deadline,
            "b kept serving v2 after another client's SET"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Which coherence a URL chooses: tracking by default, pub/sub on a
/// cluster, when asked for, or when a channel is named.
#[test]
fn coherence_is_tracking_unless_a_cluster_or_asked_otherwise() {
    use cache_composition::{AdapterConfig, TierCoherence};
    let chosen = |url: &str| {
        let config = CacheConfig::from_url(url).unwrap();
        let AdapterConfig::Redis(redis) = config.adapter_config() else {
            panic!("{url} is Redis")
        };
        config.tier().unwrap().coherence_over(redis)
    };
    assert_eq!(chosen("redis://h?l1=1MiB"), TierCoherence::Tracking);
    assert_eq!(
        chosen("redis-sentinel://h:26379?sentinelServiceName=m&l1=1MiB"),
        TierCoherence::Tracking
    );
    assert_eq!(
        chosen("redis-cluster://h:7000?l1=1MiB"),
        TierCoherence::PubSub
    );
    assert_eq!(
        chosen("redis://h?l1=1MiB&coherence=pubsub"),
        TierCoherence::PubSub
    );
    assert_eq!(
        chosen("redis://h?l1=1MiB&backplane_channel=mine"),
        TierCoherence::PubSub
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coherence_pubsub_tells_the_tiered_caches_own_writes() {
    let server = RedisServer::start();
    let url = format!("{}/0?namespace=ps&l1=8MiB&coherence=pubsub", server.url());
    let config = CacheConfig::from_url(&url).unwrap();
    let (a, b) = (
        build_cache(&config).await.unwrap(),
        build_cache(&config).await.unwrap(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    a.set("k", "v1".into(), None).await.unwrap();
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    let clients = server.command("CLIENT LIST");
    assert!(
        !clients.contains("flags=t"),
        "no connection tracks keys: {clients}"
    );
    a.set("k", "v2".into(), None).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while b.get("k").await.unwrap().as_deref() != Some(&b"v2"[..]) {
        assert!(std::time::Instant::now() < deadline, "b kept serving v1");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
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
        self.cache.cache()
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
    let shared: Arc<dyn Cache> = Arc::new(MokaConfig::default().namespace("app").build().unwrap());
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
    assert!(again.cache().exists("hello").await.unwrap());
    // The very same cache, not a wrapper around it (a wrapper would box
    // every call a second time).
    assert!(Arc::ptr_eq(&again.cache(), &shared));
}

/// `fail_open=true` puts the fail-open layer under the stats counters: with
/// Redis gone, a read is a miss, counted as a miss, and the typed
/// cache-aside still returns the loaded value.
#[tokio::test]
async fn fail_open_from_the_url_reads_an_outage_as_a_counted_miss() {
    use cache_port::CacheExt;
    let server = RedisServer::start();
    let url = format!(
        "{}/0?namespace=degrade&fail_open=true&command_timeout_ms=300&connect_timeout_ms=2000",
        server.url()
    );
    let cache = build_cache(&CacheConfig::from_url(&url).unwrap())
        .await
        .unwrap();
    cache.set("k", "v".into(), None).await.unwrap();
    let mut server = server;
    server.kill();
    assert_eq!(cache.get("k").await.unwrap(), None);
    let loaded: String = cache
        .get_or_load("product:1", None, || async {
            Ok::<_, cache_port::CacheError>("lamp".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(loaded, "lamp");
    assert!(
        cache.set("k", "v".into(), None).await.is_err(),
        "writes still fail"
    );
    // Within a namespace, Redis stats need no round trip: the counters.
    let stats = cache.stats().await.unwrap();
    assert_eq!(
        (stats.sets, stats.hits, stats.misses, stats.errors),
        (1, 0, 2, 2),
        "one set, two failed-open misses, two failed writes (the write-back and the set)"
    );
}

/// Issue 23, item 6: a configuration reads as a person would say it: the
/// adapter, the URL with its secrets redacted, the namespace, and only the
/// options that differ from their defaults (`cachectl` printed the whole
/// `Debug` struct, 600 characters on one line).
#[test]
fn a_configuration_is_shown_as_a_person_reads_it() {
    let shown = |url: &str| CacheConfig::from_url(url).unwrap().to_string();
    assert_eq!(shown("memory://"), "memory (in-process)");
    assert_eq!(
        shown("memory://?capacity=1MiB&namespace=shop&fail_open=true"),
        "memory (in-process), namespace shop (options: capacity=1048576, fail_open=true)"
    );
    let redis = shown(
        "redis://app:S3cretPw@cache.internal:6379/0?namespace=shop&l1=8MiB&coalesce=false&pool_size=8&metrics=true",
    );
    assert!(!redis.contains("S3cretPw"), "{redis}");
    assert!(
        redis.starts_with("redis at redis://***@cache.internal:6379/0"),
        "{redis}"
    );
    assert!(
        redis.ends_with(
            ", namespace shop, with an in-process L1 of 8388608 bytes (options: pool_size=8, coalesce=false, metrics=true)"
        ),
        "{redis}"
    );
    for debug_only in ["{", "Some(", "RedisConfig", "TlsFiles", "pool_size: "] {
        assert!(!redis.contains(debug_only), "{redis}");
    }
}
