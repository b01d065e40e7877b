//! The whole conformance suite against the tiered adapter over Redis (a
//! throwaway redis-server, and a local three-primary cluster), with the
//! Redis pub/sub backplane on: one instance, every behaviour a namespaced
//! view of one tiered store, the behaviours unchanged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_conformance::{trials, ViewsOf};
use cache_redis::{RedisBackplane, RedisConfig, RedisStore, DEFAULT_CHANNEL};
use cache_redis_harness::{RedisCluster, RedisServer};
use cache_store::backplane::Backplane;
use cache_tiered::TieredConfig;

enum Server {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

fn main() {
    let servers = Arc::new(Mutex::new(Vec::new()));
    let harness = |name: &str, start: fn() -> Server| {
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
                    .command_timeout(Duration::from_secs(5));
                let l2 = RedisStore::connect(&config).await.unwrap();
                let backplane: Arc<dyn Backplane> =
                    RedisBackplane::connect(&config, DEFAULT_CHANNEL)
                        .await
                        .unwrap();
                TieredConfig::default()
                    .build_store(l2, Some(backplane))
                    .unwrap()
            })
        }))
    };
    let mut all = trials(
        "tiered-redis",
        harness("cache-tiered over cache-redis (standalone)", || {
            Server::Standalone(RedisServer::start())
        }),
    );
    all.extend(trials(
        "tiered-redis-cluster",
        harness("cache-tiered over cache-redis (3-primary cluster)", || {
            Server::Cluster(RedisCluster::start())
        }),
    ));
    cache_conformance::main(all, servers);
}
