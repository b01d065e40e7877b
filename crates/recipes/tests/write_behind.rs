//! Write-behind and write-through against a repository that fails for a
//! while: every acknowledged write reaches the repository, once, in each
//! key's order, with the last value of each key last; writers are pushed
//! back when the buffer is full; a graceful shutdown loses nothing.

use std::collections::HashMap;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::Cache;
use cache_recipes::{Full, WriteBehind, WriteBehindConfig, WriteThrough, WriteThroughError};

mod common;
use common::Db;

fn moka() -> Arc<dyn Cache> {
    Arc::new(cache_moka::MokaConfig::default().build().unwrap())
}

fn seq(value: &Bytes) -> u64 {
    std::str::from_utf8(value).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_reaches_the_repository_once_in_order_through_an_outage() {
    let db = Arc::new(Db::default());
    let cache = moka();
    let config = WriteBehindConfig {
        batch: 16,
        delay: Duration::from_millis(20),
        capacity: 1000,
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    };
    let behind = Arc::new(WriteBehind::new(
        Arc::clone(&db),
        Arc::clone(&cache),
        config,
    ));
    let start = Instant::now();
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let behind = Arc::clone(&behind);
            tokio::spawn(async move {
                // Each writer owns 10 keys; values count up per key.
                let mut last: HashMap<String, u64> = HashMap::new();
                let mut n = 0u64;
                while start.elapsed() < Duration::from_secs(1) {
                    n += 1;
                    let key = format!("k{}", w * 10 + (n % 10));
                    behind
                        .write(&key, Bytes::from(n.to_string()), None)
                        .await
                        .unwrap();
                    last.insert(key, n);
                    if n % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                last
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.failing.store(true, SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    db.failing.store(false, SeqCst);
    let mut acknowledged: HashMap<String, u64> = HashMap::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    // The cache had each write at once.
    for (key, n) in &acknowledged {
        let cached = cache.get(key).await.unwrap().unwrap();
        assert_eq!(seq(&cached), *n, "{key}");
    }
    let behind = Arc::into_inner(behind).unwrap();
    let flushed = behind.shutdown().await;
    assert!(
        flushed.retries >= 1,
        "the outage was never seen: {flushed:?}"
    );
    // Per key: the values saved count up (in order, none twice), and the
    // last is the last acknowledged write.
    let applied = db.applied.lock().unwrap().clone();
    let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
    for (key, value) in &applied {
        per_key.entry(key.clone()).or_default().push(seq(value));
    }
    assert_eq!(per_key.len(), acknowledged.len());
    for (key, saved) in &per_key {
        assert!(
            saved.windows(2).all(|w| w[0] < w[1]),
            "{key}: saved out of order or twice: {saved:?}"
        );
        assert_eq!(saved.last(), acknowledged.get(key), "{key}");
    }
    println!(
        "{} writes acknowledged over {} keys; {} saves in {} batches, {} retries",
        acknowledged.values().sum::<u64>() / 10,
        acknowledged.len(),
        applied.len(),
        flushed.batches,
        flushed.retries
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_pushes_writers_back_and_shutdown_loses_nothing() {
    let db = Arc::new(Db::default());
    db.failing.store(true, SeqCst);
    let config = WriteBehindConfig {
        batch: 2,
        delay: Duration::from_millis(1),
        capacity: 4,
        ..WriteBehindConfig::default()
    };
    let behind = Arc::new(WriteBehind::new(Arc::clone(&db), moka(), config));
    // Keys until the buffer is full: one batch (1 or 2 keys, as the
    // flusher's timer falls) is in flight, retried; 4 wait behind it.
    let mut accepted = Vec::new();
    for i in 0..20 {
        match behind
            .try_write(&format!("k{i}"), Bytes::from("1"), None)
            .await
        {
            Ok(written) => {
                written.unwrap();
                accepted.push(format!("k{i}"));
            }
            Err(Full(capacity)) => {
                assert_eq!(capacity, 4);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!((5..=6).contains(&accepted.len()), "{accepted:?}");
    assert_eq!(behind.pending(), 4);
    // A key already pending always has room: its value is replaced.
    let last = accepted.last().unwrap().clone();
    assert!(behind
        .try_write(&last, Bytes::from("2"), None)
        .await
        .is_ok());
    // A writer of a new key waits for room...
    let waiting = {
        let behind = Arc::clone(&behind);
        tokio::spawn(async move { behind.write("k99", Bytes::from("1"), None).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "a write went past a full buffer");
    // ...until the repository is back.
    db.failing.store(false, SeqCst);
    waiting.await.unwrap().unwrap();
    let behind = Arc::into_inner(behind).unwrap();
    behind.shutdown().await;
    let applied = db.applied.lock().unwrap().clone();
    let saved: HashMap<String, Bytes> = applied.into_iter().collect();
    assert_eq!(saved.len(), accepted.len() + 1, "{saved:?}");
    assert_eq!(saved[&last], Bytes::from("2"));
    assert!(saved.contains_key("k99"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_dropped_without_shutdown_still_flushes_what_it_holds() {
    let db = Arc::new(Db::default());
    let config = WriteBehindConfig {
        delay: Duration::from_secs(3600),
        ..WriteBehindConfig::default()
    };
    let behind = WriteBehind::new(Arc::clone(&db), moka(), config);
    behind.write("k", Bytes::from("1"), None).await.unwrap();
    assert_eq!(behind.pending(), 1);
    drop(behind);
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.applied.lock().unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the dropped handle's write was lost"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_never_leaves_the_cache_newer_than_the_repository() {
    let db = Arc::new(Db::default());
    let cache = moka();
    let through = WriteThrough::new(Arc::clone(&db), Arc::clone(&cache));
    cache.set("k", Bytes::from("old"), None).await.unwrap();
    through.write("k", Bytes::from("new")).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap(), None, "the old copy stayed");
    assert_eq!(
        db.applied.lock().unwrap().last().unwrap().1,
        Bytes::from("new")
    );
    // A failed save touches nothing.
    cache.set("k", Bytes::from("new"), None).await.unwrap();
    db.failing.store(true, SeqCst);
    assert!(matches!(
        through.write("k", Bytes::from("newer")).await,
        Err(WriteThroughError::Repository(_))
    ));
    assert_eq!(cache.get("k").await.unwrap(), Some(Bytes::from("new")));
}
