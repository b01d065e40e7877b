//! The client-tracking backplane's refusals: a Redis Cluster (not supported
//! yet) and a server or user that refuses `CLIENT TRACKING`, each a typed
//! error that says what to use instead; and that it tells of writes under
//! its prefix only, a flush as everything, and its own heartbeats.

use std::time::Duration;

use cache_port::ErrorKind;
use cache_redis::{RedisConfig, RedisTracking, SERVER_SENDER};
use cache_redis_harness::{RedisCluster, RedisServer, ServerOptions};
use cache_store::backplane::{Backplane, BackplaneEvent, Invalidation, Notice};
use futures::StreamExt;

async fn next(events: &mut futures::stream::BoxStream<'static, BackplaneEvent>) -> BackplaneEvent {
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_tells_of_its_prefix_flushes_and_heartbeats() {
    let server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url()).unwrap();
    let tracking = RedisTracking::connect(&config, "app:").await.unwrap();
    let mut events = tracking.subscribe();
    server.command("SET other:k 1");
    server.command("SET app:k 1");
    assert_eq!(
        next(&mut events).await,
        BackplaneEvent::Notice(Notice {
            sender: SERVER_SENDER,
            what: Invalidation::Keys(vec!["app:k".into()])
        }),
        "other:k is outside the prefix"
    );
    server.command("FLUSHDB");
    assert_eq!(
        next(&mut events).await,
        BackplaneEvent::Notice(Notice {
            sender: SERVER_SENDER,
            what: Invalidation::Clear {
                scope: String::new()
            }
        }),
        "a flush drops everything"
    );
    let beat = Notice {
        sender: 42,
        what: Invalidation::Heartbeat(7),
    };
    tracking.publish(&beat).await.unwrap();
    assert_eq!(next(&mut events).await, BackplaneEvent::Notice(beat));
    // A heartbeat leaves no key behind (cachectl's run found one, 10 s
    // long, when heartbeats were keys with a TTL).
    assert!(
        server.command("DBSIZE").starts_with(":0"),
        "a key stayed behind"
    );
    // Other writes are Redis's to tell: publishing them sends nothing.
    tracking
        .publish(&Notice {
            sender: 42,
            what: Invalidation::Keys(vec!["app:x".into()]),
        })
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(200), events.next())
            .await
            .is_err(),
        "nothing was written, so nothing is told"
    );
    assert!(tracking.sees_every_write());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_refused_client_tracking_is_told_to_use_pubsub() {
    let server = RedisServer::start_with(ServerOptions {
        acl_users: vec!["dave on >dave-pass ~* &* +@all -client".into()],
        ..Default::default()
    });
    let url = server.url().replace("redis://", "redis://dave:dave-pass@");
    let config = RedisConfig::from_url(&url).unwrap();
    let error = RedisTracking::connect(&config, "app:").await.unwrap_err();
    let shown = error.to_string();
    assert!(shown.contains("coherence=pubsub"), "{shown}");
    assert!(!shown.contains("dave-pass"), "{shown}");
    assert_ne!(error.kind(), ErrorKind::Unavailable, "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_is_refused_with_a_config_error() {
    let cluster = RedisCluster::start();
    let config = RedisConfig::from_url(&cluster.url()).unwrap();
    let error = RedisTracking::connect(&config, "app:").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("coherence=pubsub"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_overlapping_the_heartbeats_is_refused() {
    let server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url()).unwrap();
    let error = RedisTracking::connect(&config, "cache-tiered:")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config, "{error}");
}
