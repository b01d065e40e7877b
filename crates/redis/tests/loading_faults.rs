//! Resilient loading when Redis dies (issue 12): fail-safe serves the last
//! known value for the whole window, no caller waits past its timeout, and
//! fresh values return once Redis is back.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_loading::{FailSafe, LoadOptions, Loader, Origin, StaleReason};
use cache_redis::RedisConfig;
use cache_redis_harness::RedisServer;

const COMMAND_TIMEOUT: Duration = Duration::from_millis(300);
/// What a call may take beyond the command timeout on a loaded machine.
const SLACK: Duration = Duration::from_millis(700);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_while_the_loader_fails_serves_stale_then_recovers() {
    let mut server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url())
        .unwrap()
        .namespace("loading-faults")
        .command_timeout(COMMAND_TIMEOUT)
        .reconnect_delay(Duration::from_millis(100));
    let cache: Arc<dyn cache_port::Cache> = Arc::new(config.connect().await.unwrap());
    let loader: Loader<std::io::Error> = Loader::new(cache);
    let window = Duration::from_secs(4);
    let options = LoadOptions::ttl(Duration::from_millis(200))
        .fail_safe(FailSafe::new(window).throttle(Duration::from_millis(100)))
        .hard_timeout(Duration::from_millis(300));
    let database_up = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let loads = Arc::new(AtomicUsize::new(0));
    let read = |loader: Loader<std::io::Error>, version: &'static str| {
        let (up, loads) = (Arc::clone(&database_up), Arc::clone(&loads));
        async move {
            let started = Instant::now();
            let answer = loader
                .get_or_load_entry("price", options, move || async move {
                    loads.fetch_add(1, SeqCst);
                    match up.load(SeqCst) {
                        true => Ok(version.to_owned()),
                        false => Err(std::io::Error::other("database down")),
                    }
                })
                .await;
            (answer, started.elapsed())
        }
    };
    let (first, _) = read(loader.clone(), "v1").await;
    assert_eq!(first.unwrap().value, "v1");

    // Redis dies, and the database with it.
    server.kill();
    database_up.store(false, SeqCst);
    let killed = Instant::now();
    let (mut calls, mut slowest) = (0, Duration::ZERO);
    // Eight callers, for the window (its last second spared for the
    // machine's delays).
    while killed.elapsed() < window - Duration::from_secs(1) {
        let answers =
            futures::future::join_all((0..8).map(|_| read(loader.clone(), "never"))).await;
        for (answer, took) in answers {
            let loaded = answer.expect("fail-safe should answer during the outage");
            assert_eq!(loaded.value, "v1");
            assert!(loaded.is_stale(), "{:?}", loaded.origin);
            slowest = slowest.max(took);
            calls += 1;
        }
    }
    println!("outage: {calls} calls, all stale v1, slowest {slowest:?}");
    assert!(
        slowest <= COMMAND_TIMEOUT + SLACK,
        "a caller waited {slowest:?}"
    );

    // Past the window, fail-safe stops: the outage is an error again.
    tokio::time::sleep_until((killed + window + Duration::from_millis(300)).into()).await;
    let (late, took) = read(loader.clone(), "never").await;
    match late {
        Err(cache_loading::LoadError::Cache(e)) => assert!(e.is_retryable(), "{e}"),
        other => panic!("past the fail-safe window: {other:?}"),
    }
    assert!(took <= COMMAND_TIMEOUT + SLACK, "took {took:?}");

    // Both come back: fresh values return.
    server.restart();
    database_up.store(true, SeqCst);
    let restarted = Instant::now();
    loop {
        let (answer, _) = read(loader.clone(), "v2").await;
        if let Ok(loaded) = answer {
            if loaded.value == "v2" {
                assert!(!loaded.is_stale());
                break;
            }
            assert_eq!(loaded.origin, Origin::Stale(StaleReason::CacheUnavailable));
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "no fresh value 10 s after the restart"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("restart -> fresh value after {:?}", restarted.elapsed());
}
