//! The whole conformance suite against the tiered adapter over Redis: one
//! instance, every behaviour a namespaced view of one tiered store, the
//! behaviours unchanged. Kept coherent by client tracking (the default) on
//! a throwaway redis-server and through Sentinel, and by the pub/sub
//! backplane on a server and on a local three-primary cluster.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_conformance::{trials, ViewsOf};
use cache_redis::{RedisBackplane, RedisConfig, RedisStore, RedisTracking, DEFAULT_CHANNEL};
use cache_redis_harness::{suite_url, AnyServer, RedisSentinel, Servers};
use cache_store::backplane::Backplane;
use cache_tiered::{TieredConfig, TieredStore};

/// How a tiered store over `config` learns of writes.
#[derive(Clone, Copy)]
enum Coherence {
    Tracking,
    PubSub,
}

async fn tiered(config: RedisConfig, coherence: Coherence) -> TieredStore<RedisStore> {
    let l2 = RedisStore::connect(&config).await.unwrap();
    let backplane: Arc<dyn Backplane> = match coherence {
        // Every behaviour has a namespace of its own: track every key.
        Coherence::Tracking => RedisTracking::connect(&config, "").await.unwrap(),
        Coherence::PubSub => RedisBackplane::connect(&config, DEFAULT_CHANNEL)
            .await
            .unwrap(),
    };
    TieredConfig::default()
        .build_store(l2, Some(backplane))
        .unwrap()
}

fn main() {
    let servers = Servers::default();
    let harness = |name: &str, start: fn() -> AnyServer, coherence: Coherence| {
        let servers = servers.clone();
        Arc::new(ViewsOf::new(name, move || {
            let url = servers.start(start);
            let config = RedisConfig::from_url(&suite_url(&url)).unwrap();
            Box::pin(tiered(config, coherence))
        }))
    };
    let mut all = trials(
        "tiered-redis",
        harness(
            "cache-tiered over cache-redis (standalone, client tracking)",
            AnyServer::standalone,
            Coherence::Tracking,
        ),
    );
    all.extend(trials(
        "tiered-redis-pubsub",
        harness(
            "cache-tiered over cache-redis (standalone, pub/sub backplane)",
            AnyServer::standalone,
            Coherence::PubSub,
        ),
    ));
    all.extend(trials(
        "tiered-redis-cluster",
        harness(
            "cache-tiered over cache-redis (3-primary cluster, pub/sub backplane)",
            AnyServer::cluster,
            Coherence::PubSub,
        ),
    ));
    let deployments = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&deployments);
    all.extend(trials(
        "tiered-sentinel",
        Arc::new(ViewsOf::new(
            "cache-tiered over cache-redis (Sentinel, client tracking)",
            move || {
                let deployment = RedisSentinel::start();
                let config = RedisConfig::from_url(&deployment.url())
                    .unwrap()
                    .max_value_len(1 << 20)
                    .command_timeout(Duration::from_secs(5));
                keep.lock().unwrap().push(deployment);
                Box::pin(tiered(config, Coherence::Tracking))
            },
        )),
    ));
    cache_conformance::main(all, (servers, deployments));
}
