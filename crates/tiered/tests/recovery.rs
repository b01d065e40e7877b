//! Auto-recovery (issue 13, item 4): L1 stops answering the moment its
//! backplane may be losing notices, and is flushed before it answers again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_moka::MokaConfig;
use cache_port::{Cache, ErrorKind};
use cache_redis::{RedisBackplane, RedisConfig, RedisStore, DEFAULT_CHANNEL};
use cache_redis_harness::RedisServer;
use cache_store::backplane::{Backplane, LocalBackplane};
use cache_tiered::{TieredCache, TieredConfig};

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A notice lost while the channel was cut does not leave a stale value:
/// L1 stopped answering at the cut and was flushed at the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_changed_while_the_channel_was_cut_is_not_served_stale() {
    let l2 = MokaConfig::default().build_store().unwrap();
    let local = LocalBackplane::new();
    let backplane: Arc<dyn Backplane> = Arc::new(local.clone());
    let a = TieredConfig::default()
        .build(l2.clone(), Some(Arc::clone(&backplane)))
        .unwrap();
    let b = TieredConfig::default().build(l2, Some(backplane)).unwrap();
    until("both serve", || {
        a.base().figures().l1_serving && b.base().figures().l1_serving
    })
    .await;
    a.set("k", "v1".into(), None).await.unwrap();
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v1"[..])); // now in b's L1

    local.cut();
    until("b stops serving", || !b.base().figures().l1_serving).await;
    a.set("k", "v2".into(), None).await.unwrap(); // this notice is lost
                                                  // While cut, b reads L2.
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    local.restore();
    until("b serves again", || b.base().figures().l1_serving).await;
    assert_eq!(b.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(b.base().figures().flushes >= 1);
}

/// With the cut undone by nobody (the mend never reported), the heartbeat
/// alone stops L1: an instance whose own heartbeats stop coming back stops
/// answering from L1 within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_channel_stops_l1_within_the_heartbeat_bound() {
    let l2 = MokaConfig::default().build_store().unwrap();
    let local = LocalBackplane::new();
    let cache = TieredConfig::default()
        .heartbeat(Duration::from_millis(50), Duration::from_millis(300))
        .build(l2, Some(Arc::new(local.clone()) as Arc<dyn Backplane>))
        .unwrap();
    until("serves", || cache.base().figures().l1_serving).await;
    // Messages vanish but no Down is reported: a silent loss.
    local.cut_silently();
    let cut = Instant::now();
    until("stops serving", || !cache.base().figures().l1_serving).await;
    let took = cut.elapsed();
    println!("silent channel: L1 stopped after {took:?} (bound 300 ms, heartbeat 50 ms)");
    local.restore_silently();
    until("serves again", || cache.base().figures().l1_serving).await;
    assert!(cache.base().figures().flushes >= 1);
}

async fn over_redis(url: &str) -> TieredCache<RedisStore> {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .command_timeout(Duration::from_millis(300))
        .reconnect_delay(Duration::from_millis(100));
    let l2 = RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = RedisBackplane::connect(&config, DEFAULT_CHANNEL)
        .await
        .unwrap();
    TieredConfig::default().build(l2, Some(backplane)).unwrap()
}

/// Redis killed: L1 stops answering (reads fail, as the Redis adapter's
/// do: an outage is not served from a memory nobody can vouch for), and
/// after the restart L1 is flushed and serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_l1_does_not_answer() {
    let mut server = RedisServer::start();
    let cache = over_redis(&server.url()).await;
    until("serves", || cache.base().figures().l1_serving).await;
    cache.set("k", "v".into(), None).await.unwrap();
    assert!(cache.get("k").await.unwrap().is_some()); // backfilled
    assert!(cache.get("k").await.unwrap().is_some()); // an L1 hit
    server.kill();
    let killed = Instant::now();
    until("stops serving", || !cache.base().figures().l1_serving).await;
    println!("Redis killed: L1 stopped after {:?}", killed.elapsed());
    let err = cache.get("k").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{err}"
    );
    server.restart();
    until("serves again", || cache.base().figures().l1_serving).await;
    // The restart lost the data, and L1 was flushed: no ghost of "v".
    assert_eq!(cache.get("k").await.unwrap(), None);
}
