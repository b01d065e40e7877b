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
    let config = cache_redis::RedisConfig::from_url(&server.url()).unwrap();
    let l2 = cache_redis::RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = cache_redis::RedisTracking::connect(&config, "tiered:")
        .await
        .unwrap();
    let cache = cache_tiered::TieredConfig::default()
        .namespace("tiered")
        .build(l2, Some(backplane))
        .unwrap();
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
