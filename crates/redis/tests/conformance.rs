//! The whole conformance suite against the Redis adapter, one named trial
//! per behaviour, on a throwaway redis-server and on a local three-primary
//! cluster (`cargo test -p cache-redis --test conformance cluster::incr_`).
//! Each server starts with the first trial that needs it and stops when the
//! run ends.

use std::sync::Arc;

use cache_conformance::{trials, ViewsOf};
use cache_redis::{RedisConfig, RedisStore};
use cache_redis_harness::{suite_url, AnyServer, Servers};

fn main() {
    let servers = Servers::default();
    // Every adapter is a namespaced view of one connection pool, connected
    // on first use.
    let harness = |name: &str, start: fn() -> AnyServer, coalesce: bool| {
        let servers = servers.clone();
        Arc::new(ViewsOf::new(name, move || {
            let url = servers.start(start);
            Box::pin(async move {
                let url = suite_url(&url);
                RedisStore::connect(&RedisConfig::from_url(&url).unwrap().coalesce(coalesce))
                    .await
                    .unwrap()
            })
        }))
    };
    // On one server, concurrent gets and sets are coalesced by default
    // (a cluster never coalesces).
    let mut all = trials(
        "standalone",
        harness("cache-redis (standalone)", AnyServer::standalone, true),
    );
    // The whole suite again with every call sent alone.
    all.extend(trials(
        "standalone-uncoalesced",
        harness(
            "cache-redis (standalone, coalesce=false)",
            AnyServer::standalone,
            false,
        ),
    ));
    all.extend(trials(
        "cluster",
        harness("cache-redis (3-primary cluster)", AnyServer::cluster, true),
    ));
    cache_conformance::main(all, servers);
}
