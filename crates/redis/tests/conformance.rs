//! The whole conformance suite against the Redis adapter, one named trial
//! per behaviour, on a throwaway redis-server and on a local three-primary
//! cluster (`cargo test -p cache-redis --test conformance cluster::incr_`).
//! Each server starts with the first trial that needs it and stops when the
//! run ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_conformance::{trials, ViewsOf};
use cache_redis::{RedisConfig, RedisStore};
use cache_redis_harness::{RedisCluster, RedisServer};

/// What keeps a server alive while its trials run.
enum Server {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

fn main() {
    let servers = Arc::new(Mutex::new(Vec::new()));
    // Every adapter is a namespaced view of one connection pool, connected
    // on first use.
    let harness = |name: &str, start: fn() -> Server, coalesce: bool| {
        let servers = Arc::clone(&servers);
        Arc::new(ViewsOf::new(name, move || {
            let servers = Arc::clone(&servers);
            Box::pin(async move {
                let server = start();
                let url = match &server {
                    Server::Standalone(s) => s.url(),
                    Server::Cluster(c) => c.url(),
                };
                servers.lock().unwrap().push(server);
                let config = RedisConfig::from_url(&url)
                    .unwrap()
                    .max_value_len(1024 * 1024)
                    .coalesce(coalesce)
                    .command_timeout(Duration::from_secs(5));
                RedisStore::connect(&config).await.unwrap()
            })
        }))
    };
    // On one server, concurrent gets and sets are coalesced by default
    // (a cluster never coalesces).
    let mut all = trials(
        "standalone",
        harness(
            "cache-redis (standalone)",
            || Server::Standalone(RedisServer::start()),
            true,
        ),
    );
    // The whole suite again with every call sent alone.
    all.extend(trials(
        "standalone-uncoalesced",
        harness(
            "cache-redis (standalone, coalesce=false)",
            || Server::Standalone(RedisServer::start()),
            false,
        ),
    ));
    all.extend(trials(
        "cluster",
        harness(
            "cache-redis (3-primary cluster)",
            || Server::Cluster(RedisCluster::start()),
            true,
        ),
    ));
    cache_conformance::main(all, servers);
}
