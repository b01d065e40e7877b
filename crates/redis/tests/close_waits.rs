//! `close()` returns once the sockets are closed, not once `QUIT` is
//! written. fred's `quit` resolves when the command is on the wire; the
//! connection tasks end, and the sockets close, some time later (fred's
//! docs on `quit`). CI saw a Cluster cache's `close()` return with two of
//! its sockets still open (`drop_closes.rs`): a service that closes its
//! cache and then counts on the connections being gone (a reload, a
//! graceful shutdown under a file-descriptor limit) found them open.
//!
//! For each kind (a standalone store, a Cluster store, the client-tracking
//! and the pub/sub backplanes): rounds of connect, one call, `close`, and
//! this process's open sockets counted at once after `close` returns, with
//! no wait: they must be back to what they were before the round.

use std::future::Future;
use std::pin::Pin;

use cache_port::Cache;
use cache_redis::{connect_url, RedisBackplane, RedisConfig, RedisTracking};
use cache_redis_harness::{open_sockets, RedisCluster, RedisServer};
use cache_store::backplane::Backplane;

const ROUNDS: usize = 20;

type Round<'a> = Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

/// Runs `round` (connect, use, close) [`ROUNDS`] times; after each, the
/// open sockets must be what they were before it.
async fn sockets_closed_when_close_returns(what: &str, round: Round<'_>) {
    // A first round warms up what a process starts once (fred's and
    // tokio's lazily started parts).
    round().await;
    for i in 0..ROUNDS {
        let before = open_sockets();
        round().await;
        let after = open_sockets();
        assert!(
            after <= before,
            "{what}, round {i}: close() returned with {after} sockets open (before: {before})"
        );
    }
}

/// A cache of `url`: connect, one `set`, close.
async fn cache_round(url: String) {
    let cache = connect_url(&url).await.unwrap();
    cache.set("k", "v".into(), None).await.unwrap();
    cache.close().await.unwrap();
}

/// One test for every kind, one after another: the sockets are counted
/// process-wide, so nothing else of this binary may run meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_returns_once_the_sockets_are_closed() {
    let server = RedisServer::start();
    let url = format!("{}/0", server.url());
    sockets_closed_when_close_returns(
        "standalone",
        Box::new(|| Box::pin(cache_round(url.clone()))),
    )
    .await;
    let config = RedisConfig::from_url(&url).unwrap();
    sockets_closed_when_close_returns(
        "client tracking",
        Box::new(|| {
            let config = config.clone();
            Box::pin(async move {
                let tracking = RedisTracking::connect(&config, "").await.unwrap();
                tracking.close().await;
            })
        }),
    )
    .await;
    sockets_closed_when_close_returns(
        "pub/sub backplane",
        Box::new(|| {
            let config = config.clone();
            Box::pin(async move {
                let backplane = RedisBackplane::connect(&config, "ch").await.unwrap();
                backplane.close().await;
            })
        }),
    )
    .await;
    drop(server);

    let cluster = RedisCluster::start();
    let url = cluster.url();
    sockets_closed_when_close_returns("cluster", Box::new(|| Box::pin(cache_round(url.clone()))))
        .await;
}
