//! Sliding sessions and the deny-list on moka, a real Redis, and a tiered
//! cache over that Redis: a session read every half idle time for 20 idle
//! times never expires; one left alone ends within its idle time and 50 ms;
//! a lifetime ends a session however often it is read; a user's sessions
//! end together; a hostile id reaches nothing.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cache_port::Cache;
use cache_recipes::{DenyList, SessionId, SessionStore};
use cache_redis_harness::RedisServer;
use cache_store::backplane::Backplane;

const IDLE: Duration = Duration::from_millis(200);
/// Redis expires a key it is asked for at once, moka at its next read; the
/// slack is scheduling on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Cart {
    items: Vec<u64>,
}

async fn redis(server: &RedisServer, namespace: &str) -> Arc<dyn Cache> {
    let url = format!("{}?namespace={namespace}", server.url());
    Arc::new(
        cache_redis::RedisConfig::from_url(&url)
            .unwrap()
            .connect()
            .await
            .unwrap(),
    )
}

async fn tiered(server: &RedisServer) -> Arc<dyn Cache> {
    tiered_with(server, "tiered", true, None).await
}

/// A tiered cache in `namespace` over the server, its backplane client
/// tracking or pub/sub, touching from L1 with `slack` if given.
async fn tiered_with(
    server: &RedisServer,
    namespace: &str,
    tracking: bool,
    slack: Option<Duration>,
) -> Arc<cache_tiered::TieredCache<cache_redis::RedisStore>> {
    let config = cache_redis::RedisConfig::from_url(&server.url()).unwrap();
    let l2 = cache_redis::RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = if tracking {
        cache_redis::RedisTracking::connect(&config, &format!("{namespace}:"))
            .await
            .unwrap()
    } else {
        cache_redis::RedisBackplane::connect(&config, namespace)
            .await
            .unwrap()
    };
    let mut tiered = cache_tiered::TieredConfig::default().namespace(namespace);
    if let Some(slack) = slack {
        tiered = tiered.touch_from_l1(slack);
    }
    let cache = tiered.build(l2, Some(backplane)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cache.base().figures().l1_serving {
        assert!(Instant::now() < deadline, "the tiered cache never served");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Arc::new(cache)
}

async fn sessions_hold(name: &str, cache: Arc<dyn Cache>) {
    let store: SessionStore<Cart> = SessionStore::new(
        Arc::clone(&cache),
        "session",
        IDLE,
        Duration::from_secs(3600),
    )
    .unwrap();
    let cart = Cart { items: vec![7, 9] };
    // (Another user than the other checks', which destroy ann's sessions
    // meanwhile.)
    let kept = store.create("carol", &cart).await.unwrap();
    let left_alone = store.create("carol", &cart).await.unwrap();
    // Read every half idle time for 20 idle times: never expires.
    let start = Instant::now();
    while start.elapsed() < IDLE * 20 {
        tokio::time::sleep(IDLE / 2).await;
        let session = store.get(&kept).await.unwrap();
        assert_eq!(
            session.map(|s| s.value),
            Some(cart.clone()),
            "{name}: the session expired while in use, {:?} in",
            start.elapsed()
        );
    }
    // The one left alone ended long ago; the one in use ends within its
    // idle time once left alone.
    assert!(store.get(&left_alone).await.unwrap().is_none(), "{name}");
    tokio::time::sleep(IDLE + SLACK).await;
    assert!(
        store.get(&kept).await.unwrap().is_none(),
        "{name}: outlived its idle time"
    );
}

async fn lifetimes_users_and_ids(name: &str, cache: Arc<dyn Cache>) {
    // A lifetime of 500 ms ends a session read every 100 ms.
    let short: SessionStore<Cart> = SessionStore::new(
        Arc::clone(&cache),
        "short",
        Duration::from_millis(400),
        Duration::from_millis(500),
    )
    .unwrap();
    let id = short.create("bob", &Cart { items: vec![] }).await.unwrap();
    let start = Instant::now();
    let mut last_seen = Duration::ZERO;
    while start.elapsed() < Duration::from_millis(900) {
        if short.get(&id).await.unwrap().is_some() {
            last_seen = start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last_seen >= Duration::from_millis(300) && last_seen < Duration::from_millis(500) + SLACK,
        "{name}: last read at {last_seen:?} of a 500 ms lifetime"
    );

    // Every session of a user ends with one write; others' stay.
    let store: SessionStore<Cart> = SessionStore::new(
        Arc::clone(&cache),
        "session",
        IDLE * 10,
        Duration::from_secs(60),
    )
    .unwrap();
    let cart = Cart { items: vec![1] };
    let ann: Vec<SessionId> = futures_all(&store, "ann", &cart, 5).await;
    let bob = store.create("bob", &cart).await.unwrap();
    store.destroy_user("ann").await.unwrap();
    for id in &ann {
        assert!(store.get(id).await.unwrap().is_none(), "{name}");
    }
    let bobs = store.get(&bob).await.unwrap().unwrap();
    assert_eq!((bobs.user.as_str(), bobs.value), ("bob", cart.clone()));
    // A new session of ann after the destroy is alive.
    let again = store.create("ann", &cart).await.unwrap();
    assert!(store.get(&again).await.unwrap().is_some(), "{name}");
    assert!(store.destroy(&again).await.unwrap());
    assert!(store.get(&again).await.unwrap().is_none());

    // A hostile id from a cookie reads nothing and reaches no other key.
    for text in ["*", "?", "[a-f]*", "x:y", ""] {
        let id = SessionId::from_client(text);
        assert!(store.get(&id).await.unwrap().is_none(), "{name}: {text:?}");
        assert!(!store.destroy(&id).await.unwrap(), "{name}: {text:?}");
    }
    assert!(store.get(&bob).await.unwrap().is_some(), "{name}");
    // Ids are unguessable and their Debug keeps them secret.
    assert_eq!(bob.as_str().len(), 32);
    assert!(!format!("{bob:?}").contains(&bob.as_str()[4..]));
}

async fn futures_all(
    store: &SessionStore<Cart>,
    user: &str,
    cart: &Cart,
    n: usize,
) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(store.create(user, cart).await.unwrap());
    }
    ids
}

async fn deny_list(name: &str, cache: Arc<dyn Cache>) {
    let denied = DenyList::new(cache, "revoked").unwrap();
    denied
        .revoke("jti-1", SystemTime::now() + Duration::from_millis(300))
        .await
        .unwrap();
    denied
        .revoke("jti-old", SystemTime::now() - Duration::from_secs(1))
        .await
        .unwrap();
    assert!(denied.is_revoked("jti-1").await.unwrap(), "{name}");
    assert!(
        !denied.is_revoked("jti-old").await.unwrap(),
        "{name}: an expired token was written"
    );
    assert!(!denied.is_revoked("jti-2").await.unwrap(), "{name}");
    // Remembered exactly as long as the token would be valid.
    tokio::time::sleep(Duration::from_millis(300) + SLACK).await;
    assert!(
        !denied.is_revoked("jti-1").await.unwrap(),
        "{name}: kept past its token's life"
    );
}

async fn everything(name: &str, cache: Arc<dyn Cache>) {
    tokio::join!(
        sessions_hold(name, Arc::clone(&cache)),
        lifetimes_users_and_ids(name, Arc::clone(&cache)),
        deny_list(name, cache),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_moka() {
    everything(
        "moka",
        Arc::new(cache_moka::MokaConfig::default().build().unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_redis_and_on_a_tiered_cache_over_it() {
    let server = RedisServer::start();
    tokio::join!(
        everything("redis", redis(&server, "plain").await),
        everything("tiered", tiered(&server).await),
    );
}

/// `touch_from_l1`'s slack in these tests: a touch leaves the session at
/// least `IDLE − TOUCH_SLACK` (120 ms) in L2.
const TOUCH_SLACK: Duration = Duration::from_millis(80);

/// Sessions read every tenth of their idle time for 20 idle times through
/// a tiered cache touching from L1: never expire, most reads need no L2
/// write and many no round trip at all, and after every read L2 holds the
/// session at least `IDLE − TOUCH_SLACK` from when the read began.
async fn read_from_l1_within_the_bound(
    name: &str,
    cache: Arc<cache_tiered::TieredCache<cache_redis::RedisStore>>,
) {
    let port: Arc<dyn Cache> = cache.clone();
    let store: SessionStore<Cart> = SessionStore::new(
        Arc::clone(&port),
        "session",
        IDLE,
        Duration::from_secs(3600),
    )
    .unwrap();
    let cart = Cart { items: vec![1] };
    let id = store.create("dora", &cart).await.unwrap();
    let key = cache_keyspace::KeyRule::new("session")
        .unwrap()
        .key(id.as_str())
        .unwrap();
    let l2_writes_before = cache.base().figures().touches_from_l1;
    let start = Instant::now();
    let mut reads = 0u64;
    while start.elapsed() < IDLE * 20 {
        tokio::time::sleep(IDLE / 10).await;
        let began = Instant::now();
        let session = store.get(&id).await.unwrap();
        assert_eq!(
            session.map(|s| s.value),
            Some(cart.clone()),
            "{name}: expired while in use, {:?} in",
            start.elapsed()
        );
        reads += 1;
        match port.ttl(&key).await.unwrap() {
            cache_port::TtlState::ExpiresIn(left) => {
                // Redis floors its PTTL to whole milliseconds.
                let from_began = left + began.elapsed() + Duration::from_millis(1);
                assert!(
                    from_began >= IDLE - TOUCH_SLACK,
                    "{name}: L2 holds it {from_began:?} from the read, under {:?}",
                    IDLE - TOUCH_SLACK
                );
            }
            other => panic!("{name}: L2's TTL is {other:?}"),
        }
    }
    let from_l1 = cache.base().figures().touches_from_l1 - l2_writes_before;
    println!("{name}: {reads} reads, {from_l1} answered from L1 with no L2 command");
    // Of every five reads or so, the first extends (a GETEX) and the next
    // need none; with client tracking the GETEX's own invalidation drops
    // L1's copy, and the next read goes to L2 (measured here: 75 % from L1
    // over pub/sub, 50 % over tracking). A third is the floor on a busy
    // machine (timers late).
    assert!(
        from_l1 * 3 >= reads,
        "{name}: {from_l1} of {reads} reads from L1"
    );
    // Left alone, it ends within its idle time.
    tokio::time::sleep(IDLE + SLACK).await;
    assert!(
        store.get(&id).await.unwrap().is_none(),
        "{name}: outlived its idle time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_on_a_tiered_cache_are_read_from_l1_within_a_stated_bound() {
    let server = RedisServer::start();
    let tracking = tiered_with(&server, "l1t", true, Some(TOUCH_SLACK)).await;
    let pubsub = tiered_with(&server, "l1p", false, Some(TOUCH_SLACK)).await;
    tokio::join!(
        read_from_l1_within_the_bound("tracking", Arc::clone(&tracking)),
        read_from_l1_within_the_bound("pub/sub", Arc::clone(&pubsub)),
        sessions_hold("tracking, touching from L1", tracking),
        sessions_hold("pub/sub, touching from L1", pubsub),
    );
}

/// Client tracking hears a raw client shorten a session's TTL: the next
/// read extends it again, although this instance's own deadline was fresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ttl_shortened_by_another_client_is_extended_by_the_next_touch() {
    let server = RedisServer::start();
    let cache = tiered_with(&server, "raw", true, Some(TOUCH_SLACK)).await;
    let port: Arc<dyn Cache> = cache.clone();
    let store: SessionStore<Cart> = SessionStore::new(
        Arc::clone(&port),
        "session",
        IDLE * 10,
        Duration::from_secs(3600),
    )
    .unwrap();
    let id = store.create("erin", &Cart { items: vec![] }).await.unwrap();
    let key = cache_keyspace::KeyRule::new("session")
        .unwrap()
        .key(id.as_str())
        .unwrap();
    assert!(store.get(&id).await.unwrap().is_some()); // a GETEX: the deadline is 2 s away
    tokio::time::sleep(Duration::from_millis(20)).await; // its own invalidation drops L1's copy
    assert!(store.get(&id).await.unwrap().is_some()); // L2's value and TTL, backfilled
    assert!(store.get(&id).await.unwrap().is_some()); // from L1: no L2 command
    assert_eq!(cache.base().figures().touches_from_l1, 1);
    server.command(&format!("PEXPIRE raw:{key} 300"));
    tokio::time::sleep(Duration::from_millis(50)).await; // the invalidation arrives
    let began = Instant::now();
    assert!(store.get(&id).await.unwrap().is_some());
    match port.ttl(&key).await.unwrap() {
        cache_port::TtlState::ExpiresIn(left) => assert!(
            left + began.elapsed() >= IDLE * 10 - TOUCH_SLACK,
            "left {left:?}: the shortened TTL was not extended"
        ),
        other => panic!("{other:?}"),
    }
}
