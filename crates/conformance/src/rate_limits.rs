//! Rate limits (`Cache::throttle`, GCRA): the same decisions on every
//! adapter, one atomic step per check, a key that expires when the
//! subject's allowance is full again.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_port::{ErrorKind, Limit, Quota, TtlState, Window};

use crate::Ctx;

fn quota(count: u32, period: Duration, burst: u32) -> Quota {
    Quota::per(count, period).unwrap().burst(burst).unwrap()
}

pub async fn a_burst_is_allowed_then_the_rest_waits_its_turn(cx: Ctx) {
    // 10 per second, 3 at once.
    let q = quota(10, Duration::from_secs(1), 3);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let d = cx.cache.throttle("ip:1", q.into(), 1).await.unwrap();
        assert!(d.allowed);
        assert_eq!(d.limit, 3);
        assert_eq!(d.retry_after, Duration::ZERO);
        remaining.push(d.remaining);
    }
    assert_eq!(remaining, [2, 1, 0]);
    let denied = cx.cache.throttle("ip:1", q.into(), 1).await.unwrap();
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    // The next request is allowed 100 ms after the first (one interval),
    // less the time the calls took; the allowance is full after 300 ms.
    assert!(
        denied.retry_after > Duration::from_millis(20)
            && denied.retry_after <= Duration::from_millis(100),
        "{:?}",
        denied.retry_after
    );
    assert!(denied.reset_after <= Duration::from_millis(300));
    assert!(denied.reset_after > denied.retry_after);
    // A denial counts nothing: waiting `retry_after` is enough.
    tokio::time::sleep(denied.retry_after + Duration::from_millis(5)).await;
    assert!(
        cx.cache
            .throttle("ip:1", q.into(), 1)
            .await
            .unwrap()
            .allowed
    );
    // Another subject has its own allowance.
    assert_eq!(
        cx.cache
            .throttle("ip:2", q.into(), 1)
            .await
            .unwrap()
            .remaining,
        2
    );
}

pub async fn a_check_of_cost_zero_peeks_and_a_cost_counts_as_many(cx: Ctx) {
    let q = quota(10, Duration::from_secs(1), 5);
    let peek = cx.cache.throttle("user:7", q.into(), 0).await.unwrap();
    assert!(peek.allowed);
    assert_eq!(peek.remaining, 5);
    assert!(!cx.cache.exists("user:7").await.unwrap(), "a peek wrote");
    let heavy = cx.cache.throttle("user:7", q.into(), 4).await.unwrap();
    assert!(heavy.allowed);
    assert_eq!(heavy.remaining, 1);
    let too_heavy = cx.cache.throttle("user:7", q.into(), 2).await.unwrap();
    assert!(!too_heavy.allowed);
    assert_eq!(too_heavy.remaining, 1);
    assert!(
        cx.cache
            .throttle("user:7", q.into(), 1)
            .await
            .unwrap()
            .allowed
    );
    // More than the burst is never allowed.
    assert!(
        !cx.cache
            .throttle("user:8", q.into(), 6)
            .await
            .unwrap()
            .allowed
    );
}

pub async fn the_key_expires_when_the_allowance_is_full_again(cx: Ctx) {
    let q = quota(100, Duration::from_secs(1), 100);
    // 20 requests' worth in one call (20 calls of 1 took up to 200 ms on a
    // loaded CI machine, and the key expired before the reads below).
    assert!(
        cx.cache
            .throttle("api", q.into(), 20)
            .await
            .unwrap()
            .allowed
    );
    // 20 requests at 10 ms each: full again within 200 ms.
    match cx.cache.ttl("api").await.unwrap() {
        TtlState::ExpiresIn(left) => assert!(left <= Duration::from_millis(200), "{left:?}"),
        other => panic!("the subject's key has {other:?}"),
    }
    // Its value is the schedule, a decimal integer (microseconds).
    let stored = cx.cache.get("api").await.unwrap().unwrap();
    assert!(std::str::from_utf8(&stored).unwrap().parse::<u64>().is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!cx.cache.exists("api").await.unwrap());
    assert_eq!(
        cx.cache
            .throttle("api", q.into(), 0)
            .await
            .unwrap()
            .remaining,
        100
    );
}

pub async fn a_key_holding_something_else_is_refused_and_kept(cx: Ctx) {
    let q = quota(1, Duration::from_secs(1), 1);
    cx.cache
        .set("taken", Bytes::from("not a schedule"), None)
        .await
        .unwrap();
    let error = cx.cache.throttle("taken", q.into(), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAnInteger);
    assert_eq!(
        cx.cache.get("taken").await.unwrap(),
        Some(Bytes::from("not a schedule"))
    );
    let error = cx.cache.throttle("", q.into(), 1).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidKey);
}

pub async fn concurrent_checks_allow_exactly_the_burst(cx: Ctx) {
    // A period so long that nothing refills during the test: exactly the
    // burst of 64 concurrent checks (each its own task) is allowed.
    let q = quota(10, Duration::from_secs(3600), 10);
    let allowed = Arc::new(AtomicU64::new(0));
    let checks: Vec<_> = (0..64)
        .map(|_| {
            let (cache, allowed) = (Arc::clone(&cx.cache), Arc::clone(&allowed));
            tokio::spawn(async move {
                if cache.throttle("hot", q.into(), 1).await.unwrap().allowed {
                    allowed.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for check in checks {
        check.await.unwrap();
    }
    assert_eq!(allowed.load(SeqCst), 10);
}

pub async fn a_sliding_window_allows_its_limit_in_any_window_and_no_more(cx: Ctx) {
    let w: Limit = Window::new(3, Duration::from_millis(400)).unwrap().into();
    for left in [2, 1, 0] {
        let d = cx.cache.throttle("w", w, 1).await.unwrap();
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (3, left));
    }
    let denied = cx.cache.throttle("w", w, 1).await.unwrap();
    assert!(!denied.allowed);
    assert!(denied.retry_after <= Duration::from_millis(400));
    assert!(
        denied.retry_after > Duration::from_millis(250),
        "{:?}",
        denied.retry_after
    );
    // The state: the allowed requests' times, kept one window.
    let stored = cx.cache.get("w").await.unwrap().unwrap();
    let times: Vec<u64> = std::str::from_utf8(&stored)
        .unwrap()
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    match cx.cache.ttl("w").await.unwrap() {
        TtlState::ExpiresIn(left) => assert!(left <= Duration::from_millis(400)),
        other => panic!("the window's key has {other:?}"),
    }
    // Half a window later nothing has left it: no fixed window resets here.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(!cx.cache.throttle("w", w, 1).await.unwrap().allowed);
    tokio::time::sleep(denied.retry_after).await;
    assert!(cx.cache.throttle("w", w, 1).await.unwrap().allowed);
    // A cost above the limit is never allowed; a peek counts nothing.
    assert!(!cx.cache.throttle("w2", w, 4).await.unwrap().allowed);
    assert_eq!(cx.cache.throttle("w2", w, 0).await.unwrap().remaining, 3);
    assert!(!cx.cache.exists("w2").await.unwrap());
}

pub async fn concurrent_window_checks_allow_exactly_the_limit(cx: Ctx) {
    let w: Limit = Window::new(10, Duration::from_secs(3600)).unwrap().into();
    let allowed = Arc::new(AtomicU64::new(0));
    let checks: Vec<_> = (0..64)
        .map(|_| {
            let (cache, allowed) = (Arc::clone(&cx.cache), Arc::clone(&allowed));
            tokio::spawn(async move {
                if cache.throttle("hot-window", w, 1).await.unwrap().allowed {
                    allowed.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for check in checks {
        check.await.unwrap();
    }
    assert_eq!(allowed.load(SeqCst), 10);
}
