//! Behaviour under failure: a killed, restarted, paused server; credentials.

use std::error::Error as _;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Cache, ErrorKind};
use cache_redis::{RedisCache, RedisConfig};
use cache_redis_harness::{RedisServer, ServerOptions};

const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);
/// What a failing call may take beyond the command timeout.
const SLACK: Duration = Duration::from_millis(700);

async fn adapter(url: &str) -> RedisCache {
    let config = RedisConfig::from_url(url)
        .unwrap()
        .namespace("faults")
        .command_timeout(COMMAND_TIMEOUT)
        .reconnect_delay(Duration::from_millis(100));
    RedisConfig::connect(&config).await.unwrap()
}

/// Runs `call` and asserts it fails retryably within the command timeout.
async fn assert_fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = cache_port::Result<T>>,
) -> ErrorKind {
    let started = Instant::now();
    let err = call.await.expect_err(what);
    let took = started.elapsed();
    assert!(err.is_retryable(), "{what}: {err} is not retryable");
    assert!(
        took <= COMMAND_TIMEOUT + SLACK,
        "{what}: failed only after {took:?}"
    );
    err.kind()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_server_fails_fast_and_a_restart_is_picked_up_without_rebuilding() {
    let mut server = RedisServer::start();
    let cache = adapter(&server.url()).await;
    cache
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();

    server.kill();
    for round in 0..3 {
        let kind =
            assert_fails_fast(&format!("get #{round} on a dead server"), cache.get("k")).await;
        assert!(
            matches!(kind, ErrorKind::Timeout | ErrorKind::Unavailable),
            "{kind:?}"
        );
    }
    assert_fails_fast(
        "set on a dead server",
        cache.set("k", Bytes::from_static(b"v"), None),
    )
    .await;
    assert_fails_fast("delete_pattern on a dead server", cache.delete_pattern("*")).await;
    assert!(
        cache.stats().await.unwrap().errors >= 5,
        "errors are counted"
    );

    server.restart();
    let restarted = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match cache.set("k", Bytes::from_static(b"again"), None).await {
            Ok(()) => break,
            Err(e) => assert!(
                restarted.elapsed() < Duration::from_secs(10),
                "not back after 10 s: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let back_after = restarted.elapsed();
    println!("restart -> first successful call: {back_after:?} ({attempts} attempts)");
    assert_eq!(
        cache.get("k").await.unwrap(),
        Some(Bytes::from_static(b"again"))
    );
    assert!(
        back_after < Duration::from_secs(3),
        "took {back_after:?} to come back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_server_times_out_and_recovers_when_resumed() {
    let server = RedisServer::start();
    let cache = adapter(&server.url()).await;
    cache
        .set("k", Bytes::from_static(b"v"), None)
        .await
        .unwrap();

    server.pause();
    let kind = assert_fails_fast("get on a paused server", cache.get("k")).await;
    assert_eq!(kind, ErrorKind::Timeout);
    // A timed-out incr may still run when the server resumes: its outcome
    // is unknown, and it does not invite a blind retry (issue 11, item 6).
    let err = cache.incr("n", 1, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("incr timed out after 500ms")
            && err.to_string().contains("outcome is unknown"),
        "{err}"
    );
    let err = cache
        .set_if_absent("lock", Bytes::new(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
    // Idempotent calls stay retryable.
    // (A timed-out set may land once the server resumes: another key.)
    let err = cache.set("probe", Bytes::new(), None).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.source().is_some(),
        "the client's error is kept as the source"
    );
    server.resume();

    let resumed = Instant::now();
    while cache.get("k").await.is_err() {
        assert!(
            resumed.elapsed() < Duration::from_secs(5),
            "not back after resume"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        cache.get("k").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}

#[tokio::test]
async fn unreachable_server_is_an_error_at_startup() {
    let free = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let config = RedisConfig::from_url(&format!("redis://127.0.0.1:{free}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2));
    let err = RedisConfig::connect(&config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn password_protected_server_works_and_a_wrong_password_is_a_clear_startup_error() {
    let server = RedisServer::start_with(ServerOptions {
        password: Some("right-horse-battery".into()),
        acl_users: vec!["alice on >alice-pass ~app:* &* +@all".into()],
        ..Default::default()
    });
    let port = server.port();

    let good = adapter(&format!("redis://:right-horse-battery@127.0.0.1:{port}")).await;
    good.set("k", Bytes::from_static(b"v"), None).await.unwrap();
    assert_eq!(good.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
    assert!(!format!("{good:?}").contains("right-horse-battery"));

    // An ACL user limited to `app:*` keys, in the `app` namespace.
    let alice = RedisConfig::connect(
        &RedisConfig::from_url(&format!(
            "redis://alice:alice-pass@127.0.0.1:{port}/0?namespace=app"
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    alice
        .set("k", Bytes::from_static(b"alice"), None)
        .await
        .unwrap();
    assert_eq!(alice.keys("*").await.unwrap(), vec!["k".to_owned()]);
    // Outside its ACL key pattern the server refuses: a backend error, not a miss.
    let outside = RedisConfig::connect(
        &RedisConfig::from_url(&format!(
            "redis://alice:alice-pass@127.0.0.1:{port}/0?namespace=other"
        ))
        .unwrap(),
    )
    .await
    .unwrap();
    let err = outside.get("k").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Backend | ErrorKind::Auth),
        "{err}"
    );
    assert!(err.to_string().contains("NOPERM"), "{err}");

    for url in [
        format!("redis://:wrong-password-123@127.0.0.1:{port}"),
        format!("redis://alice:wrong-password-123@127.0.0.1:{port}"),
        format!("redis://127.0.0.1:{port}"),
    ] {
        let started = Instant::now();
        let err = RedisConfig::connect(&RedisConfig::from_url(&url).unwrap())
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        let shown = format!("{err} {err:?} {:?}", err.source().map(|s| s.to_string()));
        if url.contains('@') {
            assert_eq!(err.kind(), ErrorKind::Auth, "{url}: {err}");
        } else {
            // No password at all: the first command is refused (NOAUTH).
            assert!(matches!(err.kind(), ErrorKind::Auth), "{url}: {err}");
        }
        assert!(
            !shown.contains("wrong-password-123") && !shown.contains("right-horse-battery"),
            "{shown}"
        );
    }
}

/// Every public future is `Send`, so the adapter works on any executor.
#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let config = RedisConfig::from_url("redis://127.0.0.1:1").unwrap();
    is_send(&RedisConfig::connect(&config));
    is_send(&cache_redis::connect_url("redis://127.0.0.1:1"));
}

/// Issue 11, item 7: a full server (maxmemory with noeviction answers OOM)
/// is its own kind, retryable, with the server's message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_is_a_retryable_full_error() {
    let server = RedisServer::start();
    let cache = adapter(&server.url()).await;
    server.command("CONFIG SET maxmemory-policy noeviction");
    server.command("CONFIG SET maxmemory 2mb");
    let value = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut full = None;
    for i in 0..200 {
        if let Err(e) = cache.set(&format!("fill:{i}"), value.clone(), None).await {
            full = Some(e);
            break;
        }
    }
    let err = full.expect("a 2 MB server took 12 MB");
    assert_eq!(err.kind(), ErrorKind::Full, "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("OOM"), "{err}");
    // A batch, which runs as one script on one server, fails the same way.
    let batch = (0..4)
        .map(|i| (format!("batch:{i}"), value.clone()))
        .collect();
    let err = cache.set_many(batch, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Full, "{err}");
    assert!(err.is_retryable());
    // Deleting frees space: the same write then succeeds.
    cache.delete_pattern("fill:*").await.unwrap();
    cache.set("fill:again", value, None).await.unwrap();
}

/// Issue 11, item 8: a server that accepts connections and never answers
/// fails the start within the configured connect timeout (it used to take
/// the timeout plus a command timeout, for a QUIT nobody answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_the_start_within_the_connect_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // Accept every connection and hold it open without a word.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            held.push(stream);
        }
    });
    let connect_timeout = Duration::from_millis(500);
    let config = RedisConfig::from_url(&format!("redis://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(connect_timeout)
        .command_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let err = RedisConfig::connect(&config).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(
        took < connect_timeout + Duration::from_millis(400),
        "the start failed after {took:?}, past the {connect_timeout:?} bound"
    );
}

/// Issue 11, item 8: with `lazy_connect`, a service starts while Redis does
/// not answer; calls fail at once with `Unavailable` until the connection
/// is up, then work, with no restart of the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_connect_starts_without_redis_and_serves_once_it_answers() {
    let server = RedisServer::start();
    server.pause();
    let url = format!("{}?lazy_connect=true&namespace=lazy", server.url());
    let config = RedisConfig::from_url(&url)
        .unwrap()
        .command_timeout(COMMAND_TIMEOUT)
        .reconnect_delay(Duration::from_millis(100));
    let started = Instant::now();
    let cache = RedisConfig::connect(&config).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "the start waited for Redis"
    );
    let before = Instant::now();
    let err = cache.get("k").await.unwrap_err();
    assert!(
        before.elapsed() < Duration::from_millis(50),
        "a call waited: {:?}",
        before.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("not connected yet"), "{err}");
    server.resume();
    let resumed = Instant::now();
    loop {
        match cache.set("k", Bytes::from_static(b"v"), None).await {
            Ok(()) => break,
            Err(e) => {
                assert!(
                    resumed.elapsed() < Duration::from_secs(10),
                    "never came up: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert_eq!(
        cache.get("k").await.unwrap(),
        Some(Bytes::from_static(b"v"))
    );
}
