//! `Cache::watch_now` on the tiered cache (what the tags view keeps its
//! tags' versions under): a watch on an L1 hit holds while a read would
//! still answer its value, fails at once on this instance's own write, and
//! within the staleness bound on a raw client's write, a `FLUSHDB`, and
//! the L1 entry's expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Cache, Watch};
use cache_redis_harness::RedisServer;

mod common;
use common::{instance, wait_until_serving};

/// The tiered cache's stated staleness bound on loopback.
const BOUND: Duration = Duration::from_millis(100);

/// How long `watch` took to fail, failing the test past ten bounds.
async fn failed_within(watch: &Watch, what: &str) -> Duration {
    let began = Instant::now();
    while watch.holds() {
        assert!(
            began.elapsed() < 10 * BOUND,
            "{what}: the watch still holds after {:?}",
            began.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    began.elapsed()
}

/// A watch on `key`, reading it first so that L1 holds it.
async fn watched(cache: &Arc<dyn Cache>, key: &str, value: &str) -> Watch {
    let deadline = Instant::now() + 10 * BOUND;
    loop {
        assert_eq!(
            cache.get(key).await.unwrap().as_deref(),
            Some(value.as_bytes())
        );
        if let Some((at_hand, watch)) = cache.watch_now(key) {
            assert_eq!(&at_hand[..], value.as_bytes());
            assert!(watch.holds());
            return watch;
        }
        assert!(Instant::now() < deadline, "{key} never came into L1");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_fails_on_every_change_a_read_would_see() {
    let server = RedisServer::start();
    let tiered = instance(&server.url(), "w").await;
    wait_until_serving(&[Arc::clone(&tiered)]).await;
    let cache: Arc<dyn Cache> = tiered;

    assert!(cache.watch_now("missing").is_none(), "nothing at hand");
    assert!(cache.watch_now("").is_none(), "a key get refuses");

    // This instance's own write: at once (it bumps before it changes L1).
    cache.set("k", Bytes::from("v1"), None).await.unwrap();
    let watch = watched(&cache, "k", "v1").await;
    cache.set("k", Bytes::from("v2"), None).await.unwrap();
    assert!(!watch.holds(), "an own write left the watch holding");
    let watch = watched(&cache, "k", "v2").await;
    cache.delete("k").await.unwrap();
    assert!(!watch.holds(), "an own delete left the watch holding");

    // A raw client's write, delete and FLUSHDB: within the bound.
    cache.set("k", Bytes::from("v3"), None).await.unwrap();
    let watch = watched(&cache, "k", "v3").await;
    server.command("SET w:k raw");
    let raw_set = failed_within(&watch, "a raw SET").await;
    let watch = watched(&cache, "k", "raw").await;
    server.command("DEL w:k");
    let raw_del = failed_within(&watch, "a raw DEL").await;
    cache.set("k", Bytes::from("v4"), None).await.unwrap();
    let watch = watched(&cache, "k", "v4").await;
    server.command("FLUSHDB");
    let flush = failed_within(&watch, "FLUSHDB").await;

    // The entry's expiry ends the watch, whatever else holds.
    cache
        .set("short", Bytes::from("s"), Some(Duration::from_millis(300)))
        .await
        .unwrap();
    let watch = watched(&cache, "short", "s").await;
    // (L2 may answer a moment longer: L1's copy is timed from before the
    // write was sent, so it expires first.)
    let expiry = failed_within(&watch, "the entry's expiry").await;
    assert!(
        expiry < Duration::from_millis(300) + BOUND,
        "the watch outlived the entry: {expiry:?}"
    );
    eprintln!(
        "watch failed after: raw SET {raw_set:?}, raw DEL {raw_del:?}, FLUSHDB {flush:?}, expiry {expiry:?}"
    );
    for (what, took) in [("SET", raw_set), ("DEL", raw_del), ("FLUSHDB", flush)] {
        assert!(took <= BOUND, "{what}: the watch held {took:?}");
    }
}
