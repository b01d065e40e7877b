//! The whole conformance suite against the tiered adapter over Redis (a
//! throwaway redis-server, and a local three-primary cluster), with the
//! Redis pub/sub backplane on: one instance, every behaviour a namespaced
//! view of one tiered store, the behaviours unchanged.

use std::sync::Arc;

use cache_conformance::{trials, ViewsOf};
use cache_redis::{RedisBackplane, RedisConfig, RedisStore, DEFAULT_CHANNEL};
use cache_redis_harness::{suite_url, AnyServer, Servers};
use cache_store::backplane::Backplane;
use cache_tiered::TieredConfig;

fn main() {
    let servers = Servers::default();
    let harness = |name: &str, start: fn() -> AnyServer| {
        let servers = servers.clone();
        Arc::new(ViewsOf::new(name, move || {
            let url = servers.start(start);
            Box::pin(async move {
                let config = RedisConfig::from_url(&suite_url(&url)).unwrap();
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
        harness(
            "cache-tiered over cache-redis (standalone)",
            AnyServer::standalone,
        ),
    );
    all.extend(trials(
        "tiered-redis-cluster",
        harness(
            "cache-tiered over cache-redis (3-primary cluster)",
            AnyServer::cluster,
        ),
    ));
    cache_conformance::main(all, servers);
}
