//! Both Redis backplanes hear everything from the moment `connect`
//! returns. Their watchers used to take fred's notification channels when
//! the spawned watcher first ran, and what fred delivered before that went
//! nowhere: the client-tracking doctest hung on a loaded CI machine, and a
//! tiered cache could keep a value another client overwrote in that window.
//!
//! The check: a thread writes (or publishes) numbered keys without pause
//! while `connect` runs; `MONITOR` gives the server's order, so the test
//! knows which of them came after the backplane was armed (`CLIENT TRACKING
//! on` / `SUBSCRIBE`); every one of those must be told. A current-thread
//! runtime: fred's readers of the arming reply and of the first
//! invalidations run in one batch, before the watcher is first polled, so
//! the old code lost some in every run (21–47 of ~9,000 per run).

use std::collections::HashSet;
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cache_redis::{RedisBackplane, RedisConfig, RedisTracking};
use cache_redis_harness::RedisServer;
use cache_store::backplane::{Backplane, BackplaneEvent, Invalidation, Notice};
use futures::StreamExt;

/// A command in RESP.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Runs `attempts` connects while a thread sends `command(key)` for keys
/// `app:a<attempt>:<n>`; `armed` is what `MONITOR` shows (lowercase) when
/// the backplane is armed. Panics naming the keys sent after arming and
/// never told.
fn every_key_after_arming_is_told<B, F>(
    armed_marker: &str,
    command: fn(&str) -> Vec<u8>,
    connect: impl Fn(RedisConfig) -> F,
) where
    B: Backplane + ?Sized,
    F: Future<Output = Arc<B>>,
{
    let server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url()).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw = || std::net::TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let mut monitor = raw();
    monitor.write_all(&resp(&[b"MONITOR"])).unwrap();
    let mut monitored = BufReader::new(monitor).lines();
    assert_eq!(monitored.next().unwrap().unwrap(), "+OK");
    let (attempts, mut checked, mut untold) = (10, 0, Vec::new());
    for attempt in 0..attempts {
        let writing = Arc::new(AtomicBool::new(true));
        let end = format!("end-{attempt}");
        let writer = std::thread::spawn({
            let (writing, mut socket, end) = (Arc::clone(&writing), raw(), end.clone());
            move || {
                let mut replies = BufReader::new(socket.try_clone().unwrap());
                let mut line = String::new();
                let mut n = 0;
                // Bounded below the channels' 4,096, so that no lag (told
                // as Down + Up: a flush) stands in for the notices.
                while writing.load(Ordering::Relaxed) && n < 2_000 {
                    socket
                        .write_all(&command(&format!("app:a{attempt}:{n}")))
                        .unwrap();
                    line.clear();
                    replies.read_line(&mut line).unwrap();
                    n += 1;
                }
                socket.write_all(&resp(&[b"ECHO", end.as_bytes()])).unwrap();
            }
        });
        let told = runtime.block_on(async {
            let backplane = connect(config.clone()).await;
            let mut events = backplane.subscribe();
            tokio::time::sleep(Duration::from_millis(50)).await;
            writing.store(false, Ordering::Relaxed);
            let mut told = HashSet::new();
            while let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_millis(300), events.next()).await
            {
                if let BackplaneEvent::Notice(Notice {
                    what: Invalidation::Keys(keys),
                    ..
                }) = event
                {
                    told.extend(keys);
                }
            }
            backplane.close().await;
            told
        });
        writer.join().unwrap();
        // The server's order: the writer's keys after this attempt's
        // backplane was armed, up to its closing ECHO.
        let mut armed = false;
        for line in monitored.by_ref() {
            let line = line.unwrap();
            let lower = line.to_ascii_lowercase();
            if lower.contains(armed_marker) {
                armed = true;
            } else if line.contains(&format!("\"{end}\"")) {
                break;
            } else if let Some(key) = line.find("app:a").map(|at| &line[at..]) {
                // (In a published notice the key ends the message.)
                let key = key.split('"').next().unwrap();
                if armed {
                    checked += 1;
                    if !told.contains(key) {
                        untold.push(key.to_owned());
                    }
                }
            }
        }
        assert!(armed, "MONITOR never showed {armed_marker}");
    }
    assert!(checked > 0, "no key was sent after arming");
    assert!(
        untold.is_empty(),
        "{} of {checked} keys sent after the backplane was armed were never told: {:?}",
        untold.len(),
        &untold[..untold.len().min(5)]
    );
}

#[test]
fn client_tracking_tells_of_every_write_after_it_is_armed() {
    every_key_after_arming_is_told(
        r#""client" "tracking" "on""#,
        |key| resp(&[b"SET", key.as_bytes(), b"1"]),
        |config| async move { RedisTracking::connect(&config, "app:").await.unwrap() },
    );
}

#[test]
fn pubsub_tells_of_every_notice_after_it_is_subscribed() {
    every_key_after_arming_is_told(
        r#""subscribe" "start-test""#,
        |key| {
            let notice = Notice {
                sender: 7,
                what: Invalidation::Keys(vec![key.to_owned()]),
            };
            resp(&[b"PUBLISH", b"start-test", &notice.encode()])
        },
        |config| async move {
            RedisBackplane::connect(&config, "start-test")
                .await
                .unwrap()
        },
    );
}
