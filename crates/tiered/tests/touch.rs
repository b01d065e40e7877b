//! `touch_from_l1`: a touch whose `GETEX` raced a `set` of the same key
//! through this instance (a shorter TTL) must not leave a deadline behind
//! that claims the longer expiry: the next touch extends L2 again.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_moka::{MokaConfig, MokaStore};
use cache_port::{Cache, KeyPages, Pattern, Result, TtlState};
use cache_store::{Reply, Request, Store};
use cache_tiered::TieredConfig;
use tokio::sync::{Notify, Semaphore};

/// A moka L2 whose `GetAndTouch` waits at a gate while `hold` is set.
#[derive(Clone)]
struct Gated {
    inner: MokaStore,
    hold: Arc<AtomicBool>,
    entered: Arc<Notify>,
    gate: Arc<Semaphore>,
}

impl Store for Gated {
    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        if matches!(request, Request::GetAndTouch { .. }) && self.hold.load(SeqCst) {
            self.entered.notify_one();
            let _permit = self.gate.acquire().await.unwrap();
        }
        self.inner.call(request).await
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }

    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        self.inner.scan(scope, pattern)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_that_raced_a_shorter_set_leaves_no_deadline_behind() {
    let l2 = Gated {
        inner: MokaConfig::default().build_store().unwrap(),
        hold: Arc::new(AtomicBool::new(false)),
        entered: Arc::new(Notify::new()),
        gate: Arc::new(Semaphore::new(0)),
    };
    let raw = l2.inner.clone();
    let cache = Arc::new(
        TieredConfig::default()
            .touch_from_l1(Duration::from_millis(500))
            .build(l2.clone(), None)
            .unwrap(),
    );
    let idle = Duration::from_secs(10);
    cache.set("s", Bytes::from("v"), Some(idle)).await.unwrap();
    // A touch whose GETEX is held at L2's door...
    l2.hold.store(true, SeqCst);
    let entered = l2.entered.notified();
    let touch = tokio::spawn({
        let cache = Arc::clone(&cache);
        async move { cache.get_and_touch("s", idle).await }
    });
    entered.await;
    l2.hold.store(false, SeqCst);
    // ...while a set with a shorter TTL goes through and lands first in
    // this model (the GETEX then runs after it on the server, giving the
    // key 10 s again: both orders are fine, as long as the deadline kept
    // is never longer than what L2 holds).
    cache
        .set("s", Bytes::from("w"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    // The set landed in L2 after the GETEX was sent; make L2 hold the
    // shorter TTL whatever order the server ran them in.
    l2.gate.add_permits(1);
    assert!(touch.await.unwrap().unwrap().is_some());
    raw.call(Request::Expire {
        key: Cow::Borrowed("s"),
        ttl: cache_port::Ttl::new(Duration::from_secs(1)).unwrap(),
    })
    .await
    .unwrap();
    // The next touch must extend L2 (its deadline is unknown), not answer
    // from L1 on the GETEX's stale deadline.
    assert!(cache.get_and_touch("s", idle).await.unwrap().is_some());
    match cache.ttl("s").await.unwrap() {
        TtlState::ExpiresIn(left) => assert!(
            left >= idle - Duration::from_millis(500),
            "L2 holds it {left:?}: the touch trusted a deadline a concurrent set had spoiled"
        ),
        other => panic!("{other:?}"),
    }
}
