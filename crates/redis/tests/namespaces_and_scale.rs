//! Redis-only behaviour: other clients' keys, FLUSHDB only when asked, a
//! 200k-key delete_pattern in bounded memory.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Cache, ErrorKind};
use cache_redis::{RedisCache, RedisConfig};
use cache_redis_harness::RedisServer;
use peak_alloc::PeakAlloc;

/// Counts this test binary's heap, so that "bounded memory" is measured.
#[global_allocator]
static HEAP: PeakAlloc = PeakAlloc;

async fn adapter(server: &RedisServer, namespace: Option<&str>) -> RedisCache {
    let mut config = RedisConfig::from_url(&server.url()).unwrap();
    if let Some(ns) = namespace {
        config = config.namespace(ns);
    }
    RedisConfig::connect(&config).await.unwrap()
}

#[tokio::test]
async fn keys_written_by_another_client_outside_the_namespace_survive() {
    let server = RedisServer::start();
    // Another client's keys: no namespace, a namespace sharing our prefix's
    // start, the bare namespace name, and one the unescaped pattern would match.
    for key in ["plain", "app", "app2:k", "appx", "app-old:k", "other:app:k"] {
        assert!(server
            .command(&format!("SET {key} theirs"))
            .starts_with("+OK"));
    }
    let cache = adapter(&server, Some("app")).await;
    cache
        .set("k", Bytes::from_static(b"ours"), None)
        .await
        .unwrap();
    cache
        .set("user:1", Bytes::from_static(b"ours"), None)
        .await
        .unwrap();
    assert_eq!(
        server.command("GET app:k"),
        "$4\r\nours\r\n+OK\r\n",
        "stored under the prefix"
    );
    let mut listed = cache.keys("*").await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["k", "user:1"]);
    assert_eq!(cache.delete_pattern("*").await.unwrap(), 2);
    cache
        .set("k", Bytes::from_static(b"ours"), None)
        .await
        .unwrap();
    cache.clear().await.unwrap();
    assert_eq!(
        server.command("DBSIZE"),
        ":6\r\n+OK\r\n",
        "only the namespace was emptied"
    );
}

#[tokio::test]
async fn clear_without_a_namespace_flushes_only_when_allowed_and_only_its_database() {
    let server = RedisServer::start();
    let refusing = adapter(&server, None).await;
    refusing
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let err = refusing.clear().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotAllowed);
    assert!(
        refusing.exists("k").await.unwrap(),
        "a refused clear deleted something"
    );

    // Database 1 holds another application's keys: FLUSHDB, never FLUSHALL.
    server.command("SELECT 1\r\nSET elsewhere v");
    let allowed = RedisConfig::connect(
        &RedisConfig::from_url(&server.url())
            .unwrap()
            .allow_flushdb(true),
    )
    .await
    .unwrap();
    allowed.clear().await.unwrap();
    assert!(!allowed.exists("k").await.unwrap());
    assert!(
        server
            .command("SELECT 1\r\nEXISTS elsewhere")
            .contains(":1"),
        "FLUSHALL ran"
    );
    let stats = allowed.stats().await.unwrap();
    assert_eq!(stats.entries, Some(0));
    assert!(stats.bytes.unwrap() > 0);
    assert_eq!(stats.evictions, Some(0), "the server's evicted_keys");
    // Within a namespace the server's figures are not the namespace's:
    // unknown, never a made-up 0.
    let scoped = adapter(&server, Some("app")).await.stats().await.unwrap();
    assert_eq!((scoped.entries, scoped.evictions), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_pattern_over_200k_keys_counts_right_in_bounded_memory() {
    const KEYS: usize = 200_000;
    let server = RedisServer::start();
    let cache = adapter(&server, Some("bulk")).await;
    for batch in 0..(KEYS / 10_000) {
        let items = (0..10_000)
            .map(|i| {
                (
                    format!("item:{}", batch * 10_000 + i),
                    Bytes::from_static(b"v"),
                )
            })
            .collect();
        cache.set_many(items, None).await.unwrap();
    }
    cache
        .set_many(vec![("keep:1".into(), Bytes::from_static(b"v"))], None)
        .await
        .unwrap();
    server.command("SET item:outside v");

    // keys_stream walks the same 200k keys a page at a time (issue 11,
    // item 12): count them with the heap's high-water mark watched.
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let mut streamed = 0usize;
    let mut pages = cache.keys_stream("item:*");
    while let Some(page) = futures::StreamExt::next(&mut pages).await {
        streamed += page.unwrap().len();
    }
    drop(pages);
    let stream_grew_kib = HEAP.peak_usage().saturating_sub(before) / 1024;
    println!("keys_stream: {streamed} keys, peak heap grew {stream_grew_kib} KiB");
    assert!(streamed >= KEYS, "SCAN lists every key present throughout");
    assert!(
        stream_grew_kib < 2 * 1024,
        "keys_stream grew the heap by {stream_grew_kib} KiB: keys were held in memory"
    );

    // Watch the heap's high-water mark during the deletion.
    let before = HEAP.current_usage();
    HEAP.reset_peak_usage();
    let started = Instant::now();
    let removed = cache.delete_pattern("item:*").await.unwrap();
    let took = started.elapsed();
    let grew_kib = HEAP.peak_usage().saturating_sub(before) / 1024;
    println!("delete_pattern: {removed} keys in {took:?}, peak heap grew {grew_kib} KiB");

    assert_eq!(removed, KEYS as u64);
    assert_eq!(cache.keys("*").await.unwrap(), vec!["keep:1".to_owned()]);
    assert!(server.command("EXISTS item:outside").contains(":1"));
    // Holding 200k keys at once takes over 6 MiB (String headers alone are
    // 4.8 MB, their bytes 2.6 MB); one SCAN batch of 1,000 takes tens of KiB.
    assert!(
        grew_kib < 2 * 1024,
        "peak heap grew {grew_kib} KiB: keys were held in memory"
    );
    assert!(took < Duration::from_secs(60));
}

/// Issue 11, item 12: `keys` on Redis stops past its limit with
/// `TooManyKeys` (it used to hold every match: +55 MiB for 1M keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_refuses_past_its_limit() {
    let server = RedisServer::start();
    let store = cache_redis::RedisStore::connect(
        &RedisConfig::from_url(&server.url())
            .unwrap()
            .scan_count(100),
    )
    .await
    .unwrap();
    let cache = cache_store::CacheBuilder::new(store)
        .keys_limit(1000)
        .namespace("limited")
        .unwrap()
        .build();
    let items: Vec<(String, bytes::Bytes)> = (0..1000)
        .map(|i| (format!("k{i}"), bytes::Bytes::from_static(b"v")))
        .collect();
    cache.set_many(items, None).await.unwrap();
    assert_eq!(cache.keys("*").await.unwrap().len(), 1000);
    cache
        .set("one-more", bytes::Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let err = cache.keys("*").await.unwrap_err();
    assert_eq!(err.kind(), cache_port::ErrorKind::TooManyKeys, "{err}");
}
