//! The whole conformance suite against the Redis adapter, on a throwaway
//! redis-server (and on a local three-primary cluster).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cache_conformance::{assert_conformance, Harness};
use cache_port::Cache;
use cache_redis::{RedisCache, RedisConfig};
use cache_redis_harness::{RedisCluster, RedisServer};

/// Every adapter is a namespaced view of one connection pool.
struct Redis {
    name: &'static str,
    root: RedisCache,
}

#[async_trait]
impl Harness for Redis {
    fn name(&self) -> String {
        self.name.into()
    }

    async fn build(&self, namespace: &str) -> Arc<dyn Cache> {
        Arc::new(self.root.namespaced(namespace).unwrap())
    }
}

async fn connect(url: &str) -> RedisCache {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .namespace("unused-root")
        .max_value_len(1024 * 1024)
        .command_timeout(Duration::from_secs(5));
    RedisCache::connect(config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_passes_the_conformance_suite() {
    let server = RedisServer::start();
    let root = connect(&server.url()).await;
    let report = assert_conformance(Arc::new(Redis {
        name: "cache-redis (standalone)",
        root,
    }))
    .await;
    assert_eq!(report.checked, cache_conformance::behaviours().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_passes_the_conformance_suite() {
    let cluster = RedisCluster::start();
    let root = connect(&cluster.url()).await;
    let report = assert_conformance(Arc::new(Redis {
        name: "cache-redis (3-primary cluster)",
        root,
    }))
    .await;
    assert_eq!(report.checked, cache_conformance::behaviours().len());
}
