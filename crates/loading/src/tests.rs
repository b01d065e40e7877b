//! The loader's unit tests over a mocked cache.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use cache_port::{CacheError, ErrorKind, MockCache};
use cache_store::layer::CacheStore;
use cache_store::CacheBuilder;

use crate::*;

fn unavailable() -> CacheError {
    CacheError::Unavailable {
        message: "down".into(),
        source: None,
    }
}

fn over(mut mock: MockCache) -> Loader<std::io::Error> {
    mock.expect_max_value_len().return_const(1024usize);
    Loader::new(CacheBuilder::new(CacheStore::new(mock)).build())
}

#[tokio::test]
async fn a_lock_the_store_refuses_does_not_stop_the_load() {
    let mut mock = MockCache::new();
    mock.expect_get().returning(|_| Ok(None));
    mock.expect_set_if_absent()
        .times(1)
        .returning(|_, _, _| Err(unavailable()));
    mock.expect_set().times(1).returning(|_, _, _| Ok(()));
    mock.expect_delete_if_equals().never();
    let options = LoadOptions::ttl(Duration::from_secs(1)).stampede_lock(StampedeLock::new(
        Duration::from_secs(1),
        Duration::from_secs(1),
    ));
    let value = over(mock)
        .get_or_load_with("k", options, || async { Ok(7u8) })
        .await
        .unwrap();
    assert_eq!(value, 7);
}

#[tokio::test]
async fn an_outage_without_fail_safe_is_an_error_not_a_load() {
    let mut mock = MockCache::new();
    mock.expect_get().returning(|_| Err(unavailable()));
    mock.expect_set().never();
    let answer = over(mock)
        .get_or_load("k", None, || async { Ok(7u8) })
        .await;
    assert!(
        matches!(answer, Err(LoadError::Cache(ref e)) if e.is_retryable()),
        "{answer:?}"
    );
}

#[tokio::test]
async fn bad_options_are_refused_before_the_cache_is_touched() {
    let mut mock = MockCache::new();
    mock.expect_get().never();
    let options = LoadOptions::ttl(Duration::from_secs(1)).eager_refresh(1.5);
    let answer = over(mock)
        .get_or_load_with("k", options, || async { Ok(7u8) })
        .await;
    assert!(
        matches!(answer, Err(LoadError::Cache(ref e)) if e.kind() == ErrorKind::Config),
        "{answer:?}"
    );
}

#[tokio::test]
async fn fail_safe_serves_the_remembered_value_while_the_cache_is_down() {
    let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stored = Arc::new(Mutex::new(None::<Bytes>));
    let mut mock = MockCache::new();
    let (d, s) = (Arc::clone(&down), Arc::clone(&stored));
    mock.expect_get()
        .returning(move |_| match d.load(std::sync::atomic::Ordering::SeqCst) {
            true => Err(unavailable()),
            false => Ok(s.lock().unwrap().clone()),
        });
    let s = Arc::clone(&stored);
    mock.expect_set().returning(move |_, v, _| {
        *s.lock().unwrap() = Some(v);
        Ok(())
    });
    let loader = over(mock);
    let options =
        LoadOptions::ttl(Duration::from_secs(60)).fail_safe(FailSafe::new(Duration::from_secs(60)));
    let first = loader
        .get_or_load_entry("k", options, || async { Ok(1u8) })
        .await
        .unwrap();
    assert_eq!((first.value, first.origin), (1, Origin::Loader));
    down.store(true, std::sync::atomic::Ordering::SeqCst);
    let during = loader
        .get_or_load_entry("k", options, || async {
            Err::<u8, _>(std::io::Error::other("not called"))
        })
        .await
        .unwrap();
    assert_eq!(during.value, 1);
    assert_eq!(during.origin, Origin::Stale(StaleReason::CacheUnavailable));
    // Another key was never seen: the outage is an error for it.
    let unseen = loader
        .get_or_load_entry("other", options, || async { Ok(2u8) })
        .await;
    assert!(matches!(unseen, Err(LoadError::Cache(_))), "{unseen:?}");
}
