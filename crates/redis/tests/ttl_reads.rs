//! `Store::get_many_with_ttl` on Redis: values with their remaining TTLs
//! in one script call on one server (the tiered cache backfills from it);
//! not offered on a cluster.

use std::time::Duration;

use cache_port::TtlState;
use cache_redis::{RedisConfig, RedisStore};
use cache_redis_harness::{RedisCluster, RedisServer};
use cache_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_come_with_their_ttls_in_one_command() {
    let server = RedisServer::start();
    server.command("SET persistent p");
    server.command("SET expiring e PX 60000");
    server.command("LPUSH listed x");
    let store = RedisStore::connect(&RedisConfig::from_url(&server.url()).unwrap())
        .await
        .unwrap();
    let before = server.command("INFO commandstats");
    let keys = ["persistent", "missing", "expiring", "listed", "persistent"];
    let found = store
        .get_many_with_ttl(keys.iter().map(|k| (*k).into()).collect())
        .await
        .unwrap()
        .expect("offered on one server");
    let ttl = |i: usize| found[i].as_ref().map(|(_, ttl)| *ttl);
    assert_eq!(found[0].as_ref().map(|(v, _)| &v[..]), Some(&b"p"[..]));
    assert_eq!(ttl(0), Some(TtlState::Persistent));
    assert_eq!(found[1], None, "a missing key");
    let Some(TtlState::ExpiresIn(left)) = ttl(2) else {
        panic!("{:?}", found[2])
    };
    assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
    assert_eq!(found[3], None, "another type reads as a miss, as in get");
    assert_eq!(found[4], found[0], "a repeated key");
    let after = server.command("INFO commandstats");
    let calls = |stats: &str, command: &str| -> u64 {
        stats
            .lines()
            .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
            .and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse().ok())
            .unwrap_or(0)
    };
    let scripts = calls(&after, "evalsha") + calls(&after, "eval")
        - calls(&before, "evalsha")
        - calls(&before, "eval");
    assert!(
        (1..=2).contains(&scripts),
        "one script call (and a reload): {scripts}"
    );
    assert_eq!(calls(&after, "mget"), calls(&before, "mget"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_does_not_offer_it() {
    let cluster = RedisCluster::start();
    let store = RedisStore::connect(&RedisConfig::from_url(&cluster.url()).unwrap())
        .await
        .unwrap();
    let answer = store
        .get_many_with_ttl(vec!["a".into(), "b".into()])
        .await
        .unwrap();
    assert!(answer.is_none());
}
