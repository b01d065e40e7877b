//! `Store::get_many_with_ttl` on Redis: values with their remaining TTLs
//! in one script call on one server (the tiered cache backfills from it);
//! not offered on a cluster.

use std::time::Duration;

use cache_port::TtlState;
use cache_redis::{RedisConfig, RedisStore};
use cache_redis_harness::{calls_in, RedisCluster, RedisServer};
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
    let calls = |stats: &str, command: &str| calls_in(stats, &[command]);
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

/// `Store::get_with_ttl`: a tiered cache's miss as one script call (alone,
/// or a share of one when every connection is busy), never `GET` + `PTTL`
/// sent apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_value_with_its_ttl_is_one_command_and_concurrent_ones_share() {
    let server = RedisServer::start();
    for i in 0..64 {
        server.command(&format!("SET k{i} v{i} PX {}", 60_000 + i));
    }
    server.command("LPUSH listed x");
    let store = RedisStore::connect(&RedisConfig::from_url(&server.url()).unwrap())
        .await
        .unwrap();
    let entry = |key: &'static str| {
        let store = store.clone();
        async move {
            store
                .get_with_ttl(key.into())
                .await
                .unwrap()
                .expect("offered")
        }
    };
    assert_eq!(entry("missing").await, None);
    assert_eq!(entry("listed").await, None, "another type reads as a miss");
    let Some((value, TtlState::ExpiresIn(left))) = entry("k7").await else {
        panic!("k7 has a TTL")
    };
    assert_eq!(&value[..], b"v7");
    assert!(left > Duration::from_secs(59) && left <= Duration::from_millis(60_007));
    // 64 at once: each gets its own answer.
    let calls: Vec<_> = (0..64)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("k{i}");
                let found = store.get_with_ttl(key.as_str().into()).await.unwrap();
                (i, found.expect("offered"))
            })
        })
        .collect();
    for call in calls {
        let (i, found) = call.await.unwrap();
        let (value, ttl) = found.expect("present");
        assert_eq!(value, format!("v{i}").as_bytes());
        assert!(ttl.exists());
    }
    // Redis counts the script's own GET and PTTL too: they ran in pairs,
    // and the 67 lookups took far fewer script calls (they shared).
    let stats = server.command("INFO commandstats");
    let calls = |command: &str| calls_in(&stats, &[command]);
    assert_eq!(calls("get"), calls("pttl"), "{stats}");
    assert_eq!(calls("mget"), 0, "{stats}");
    let scripts = calls("evalsha");
    assert!(
        (2..=40).contains(&scripts),
        "{scripts} script calls: {stats}"
    );
}
