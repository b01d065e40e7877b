//! The whole conformance suite against the Redis adapter, one named trial
//! per behaviour, on a throwaway redis-server and on a local three-primary
//! cluster (`cargo test -p cache-redis --test conformance cluster::incr_`).
//! Each server starts with the first trial that needs it and stops when the
//! run ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cache_conformance::{trials, Harness};
use cache_port::{Cache, CacheBuilder};
use cache_redis::{RedisConfig, RedisStore};
use cache_redis_harness::{RedisCluster, RedisServer};
use tokio::sync::OnceCell;

/// What keeps a server alive while its trials run.
enum Server {
    Standalone(RedisServer),
    Cluster(RedisCluster),
}

/// Every adapter is a namespaced view of one connection pool, connected on
/// first use.
struct Redis {
    name: &'static str,
    start: fn() -> Server,
    servers: Arc<Mutex<Vec<Server>>>,
    store: OnceCell<RedisStore>,
}

#[async_trait]
impl Harness for Redis {
    fn name(&self) -> String {
        self.name.into()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        let store = self
            .store
            .get_or_init(|| async {
                let server = (self.start)();
                let url = match &server {
                    Server::Standalone(s) => s.url(),
                    Server::Cluster(c) => c.url(),
                };
                self.servers.lock().unwrap().push(server);
                let config = RedisConfig::from_url(&url)
                    .unwrap()
                    .max_value_len(1024 * 1024)
                    .command_timeout(Duration::from_secs(5));
                RedisStore::connect(&config).await.unwrap()
            })
            .await;
        CacheBuilder::new(store.clone())
            .namespace(namespace)
            .unwrap()
            .build()
    }
}

fn main() {
    let servers = Arc::new(Mutex::new(Vec::new()));
    let harness = |name, start| {
        Arc::new(Redis {
            name,
            start,
            servers: Arc::clone(&servers),
            store: OnceCell::new(),
        })
    };
    let mut all = trials(
        "standalone",
        harness("cache-redis (standalone)", || {
            Server::Standalone(RedisServer::start())
        }),
    );
    all.extend(trials(
        "cluster",
        harness("cache-redis (3-primary cluster)", || {
            Server::Cluster(RedisCluster::start())
        }),
    ));
    cache_conformance::main(all, servers);
}
