//! Refresh after invalidation (`TieredConfig::refresh_after_invalidation`):
//! a key L1 held when another client wrote it is read back in the
//! background, so the next read is an L1 hit; a key L1 did not hold is not
//! read; a refreshed entry leaves L1 when the dropped one would have.
//!
//! Coherence with refresh on is what every other test in this folder runs
//! with (it is the default): `coherence.rs`, `tracking.rs` and
//! `linearizable.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::Cache;
use cache_redis::{RedisCache, RedisStore, RedisTracking};
use cache_redis_harness::RedisServer;
use cache_store::backplane::Backplane;
use cache_tiered::{TieredCache, TieredConfig};

mod common;
use common::wait_until_serving;

const NAMESPACE: &str = "refresh";
/// The TTL of every value written.
const TTL: Option<Duration> = Some(Duration::from_secs(60));

async fn instance(url: &str, config: TieredConfig) -> Arc<TieredCache<RedisStore>> {
    let redis = common::config(url);
    let l2 = RedisStore::connect(&redis).await.unwrap();
    let tracking: Arc<dyn Backplane> = RedisTracking::connect(&redis, &format!("{NAMESPACE}:"))
        .await
        .unwrap();
    let cache = Arc::new(
        config
            .namespace(NAMESPACE)
            .build(l2, Some(tracking))
            .unwrap(),
    );
    wait_until_serving(std::slice::from_ref(&cache)).await;
    cache
}

/// Another client: the plain Redis adapter, in the same namespace.
async fn outsider(url: &str) -> RedisCache {
    common::config(url)
        .namespace(NAMESPACE)
        .connect()
        .await
        .unwrap()
}

/// A value of the round's key written by the other client, then read
/// into this instance's L1 (a backfill that raced the write's invalidation
/// does not land: read until a read is an L1 hit).
async fn written_and_read(cache: &TieredCache<RedisStore>, other: &RedisCache, key: &str) {
    other.set(key, "a".into(), TTL).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await; // its invalidation arrives
    for _ in 0..10 {
        let reads = cache.base().figures().l2_reads;
        assert_eq!(cache.get(key).await.unwrap().as_deref(), Some(&b"a"[..]));
        if cache.base().figures().l2_reads == reads {
            break;
        }
    }
}

/// A Redis server, an instance built with `config` and another client.
async fn setup(config: TieredConfig) -> (RedisServer, Arc<TieredCache<RedisStore>>, RedisCache) {
    let server = RedisServer::start();
    let url = server.url();
    let cache = instance(&url, config).await;
    let other = outsider(&url).await;
    (server, cache, other)
}

/// Whether L1 paused (stopped serving, or was flushed) since `flushes` was
/// read: a heartbeat later than its bound on a loaded machine does that,
/// and a round it falls into proves nothing either way.
fn paused(cache: &TieredCache<RedisStore>, flushes: u64) -> bool {
    let figures = cache.base().figures();
    !figures.l1_serving || figures.flushes != flushes
}

/// Waits up to a second for `cache` to have refreshed more than `before`
/// keys; says whether it did.
async fn refreshed_past(cache: &TieredCache<RedisStore>, before: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while cache.base().figures().refreshed <= before {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_another_client_wrote_is_read_back_into_l1() {
    let (_server, cache, other) = setup(TieredConfig::default()).await;
    let mut clean = 0;
    for round in 0..50 {
        if clean == 10 {
            break;
        }
        // A key of its own each round: L1 does not hold it yet.
        let key = format!("k{round}");
        let flushes = cache.base().figures().flushes;
        written_and_read(&cache, &other, &key).await;
        let refreshed = cache.base().figures().refreshed;
        let written = Bytes::from(format!("b{round}"));
        other.set(&key, written.clone(), TTL).await.unwrap();
        let came = refreshed_past(&cache, refreshed).await;
        let reads = cache.base().figures().l2_reads;
        assert_eq!(cache.get(&key).await.unwrap(), Some(written));
        let read_from_l2 = cache.base().figures().l2_reads - reads;
        if paused(&cache, flushes) {
            eprintln!("round {round}: L1 paused");
            continue;
        }
        assert!(came, "round {round}: the written key was never read back");
        assert_eq!(
            read_from_l2, 0,
            "round {round}: the read after the refresh went to Redis"
        );
        clean += 1;
    }
    assert_eq!(clean, 10, "L1 paused in too many rounds to judge");

    // A key this instance never read is not read for it.
    let refreshed = cache.base().figures().refreshed;
    for i in 0..100 {
        other
            .set(&format!("cold{i}"), "v".into(), TTL)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        cache.base().figures().refreshed,
        refreshed,
        "keys L1 did not hold were read back"
    );
}

/// Off: another client's write drops the key, and the next read goes to
/// Redis (this is what the test above fails with, refresh turned off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_off_leaves_the_key_to_the_next_read() {
    let config = TieredConfig::default().refresh_after_invalidation(false);
    let (_server, cache, other) = setup(config).await;
    written_and_read(&cache, &other, "k").await;
    other.set("k", "b".into(), TTL).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reads = cache.base().figures().l2_reads;
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"b"[..]));
    assert_eq!(cache.base().figures().l2_reads, reads + 1);
    assert_eq!(cache.base().figures().refreshed, 0);
}

/// A refreshed entry keeps the deadline the dropped one had: a key read
/// once and then written by others over and over leaves L1 when its first
/// backfill would have, so refresh never keeps a key this instance stopped
/// reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_entry_leaves_l1_when_the_dropped_one_would_have() {
    const L1_TTL: Duration = Duration::from_millis(400);
    let (_server, cache, other) = setup(TieredConfig::default().l1_max_ttl(L1_TTL)).await;
    let mut clean = 0;
    for round in 0..30 {
        if clean == 3 {
            break;
        }
        let key = format!("k{round}");
        let flushes = cache.base().figures().flushes;
        written_and_read(&cache, &other, &key).await;
        // The entry's deadline is at most `L1_TTL` after its read was sent.
        let read = Instant::now();
        // Written by another client after a while: refreshed (if it lands
        // before the entry's deadline) until `read + L1_TTL` at most.
        tokio::time::sleep(L1_TTL / 2).await;
        let refreshed = cache.base().figures().refreshed;
        other.set(&key, "b".into(), TTL).await.unwrap();
        let came = refreshed_past(&cache, refreshed).await;
        let at_most = read + L1_TTL + Duration::from_millis(100);
        tokio::time::sleep(at_most.saturating_duration_since(Instant::now())).await;
        let reads = cache.base().figures().l2_reads;
        assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some(&b"b"[..]));
        let read_from_l2 = cache.base().figures().l2_reads - reads;
        if !came || paused(&cache, flushes) {
            eprintln!("round {round}: no refresh landed in time, or L1 paused");
            continue;
        }
        assert_eq!(
            read_from_l2, 1,
            "round {round}: the refreshed entry outlived the dropped one's deadline"
        );
        clean += 1;
    }
    assert_eq!(clean, 3, "too few rounds in which a refresh landed in time");
}

/// A key read once and then written by another client over and over is
/// refreshed once, not at every write: only a key read since it was last
/// put into L1 is read back (an idle instance costs Redis one read per key
/// it stopped reading, not one per write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_no_longer_read_is_refreshed_once() {
    let (_server, cache, other) = setup(TieredConfig::default()).await;
    let mut clean = 0;
    for round in 0..20 {
        if clean == 3 {
            break;
        }
        let key = format!("k{round}");
        let flushes = cache.base().figures().flushes;
        written_and_read(&cache, &other, &key).await;
        let refreshed = cache.base().figures().refreshed;
        for i in 0..5 {
            other.set(&key, format!("b{i}").into(), TTL).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        let count = cache.base().figures().refreshed - refreshed;
        if paused(&cache, flushes) {
            eprintln!("round {round}: L1 paused");
            continue;
        }
        assert!(count <= 1, "round {round}: refreshed {count} times");
        clean += 1;
    }
    assert_eq!(clean, 3, "L1 paused in too many rounds to judge");
}
