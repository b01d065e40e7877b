//! Time to live: the three answers of `ttl`, replacement, expiry.

use std::time::{Duration, Instant};

use cache_port::TtlState;

use crate::util::{b, keys, sleep_ms};
use crate::Ctx;

const LONG: Duration = Duration::from_secs(100);
/// Short enough to wait out, long enough to be written before it passes.
const SHORT: Duration = Duration::from_millis(40);

/// Asserts `state` is `ExpiresIn(d)` with `lo < d <= hi`.
#[track_caller]
fn assert_expires_within(state: TtlState, lo: Duration, hi: Duration) {
    match state {
        TtlState::ExpiresIn(d) => {
            assert!(lo < d && d <= hi, "remaining {d:?} not in ({lo:?}, {hi:?}]")
        }
        other => panic!("expected ExpiresIn, got {other:?}"),
    }
}

pub async fn ttl_of_missing_key_is_missing(cx: Ctx) {
    assert_eq!(cx.cache.ttl("missing").await.unwrap(), TtlState::Missing);
}

pub async fn ttl_of_persistent_key_is_persistent(cx: Ctx) {
    cx.cache.set("k", b("v"), None).await.unwrap();
    assert_eq!(cx.cache.ttl("k").await.unwrap(), TtlState::Persistent);
}

pub async fn ttl_reports_the_remaining_time(cx: Ctx) {
    cx.cache.set("k", b("v"), Some(LONG)).await.unwrap();
    assert_expires_within(
        cx.cache.ttl("k").await.unwrap(),
        LONG - Duration::from_secs(5),
        LONG,
    );
    // Remaining time is in whole milliseconds.
    let d = cx.cache.ttl("k").await.unwrap().remaining().unwrap();
    assert_eq!(
        d.subsec_nanos() % 1_000_000,
        0,
        "{d:?} is not whole milliseconds"
    );
}

pub async fn set_without_ttl_makes_a_key_persistent(cx: Ctx) {
    cx.cache.set("k", b("v1"), Some(SHORT)).await.unwrap();
    cx.cache.set("k", b("v2"), None).await.unwrap();
    assert_eq!(cx.cache.ttl("k").await.unwrap(), TtlState::Persistent);
    sleep_ms(100).await;
    assert_eq!(
        cx.cache.get("k").await.unwrap(),
        Some(b("v2")),
        "the old TTL must not survive a set"
    );
}

pub async fn set_with_ttl_replaces_the_ttl(cx: Ctx) {
    cx.cache.set("k", b("v1"), None).await.unwrap();
    cx.cache.set("k", b("v2"), Some(LONG)).await.unwrap();
    assert_expires_within(
        cx.cache.ttl("k").await.unwrap(),
        LONG - Duration::from_secs(5),
        LONG,
    );
    cx.cache.set("k", b("v3"), Some(SHORT)).await.unwrap();
    sleep_ms(100).await;
    assert_eq!(
        cx.cache.get("k").await.unwrap(),
        None,
        "a shorter TTL replaces a longer one"
    );
}

pub async fn sub_millisecond_ttl_rounds_up(cx: Ctx) {
    // Never rounded down to zero (which would be refused or mean "no expiry").
    cx.cache
        .set("tiny", b("v"), Some(Duration::from_nanos(1)))
        .await
        .unwrap();
    let state = cx.cache.ttl("tiny").await.unwrap();
    assert!(
        matches!(state, TtlState::Missing)
            || matches!(state, TtlState::ExpiresIn(d) if d <= Duration::from_millis(1)),
        "1 ns TTL read back as {state:?}"
    );
    // 100.5 ms counts as 101 ms. The lower bound only says the TTL was not
    // cut to nothing: on a loaded machine 50 ms passed between the set and
    // the read (a Cluster run beside the whole suite read exactly 50 ms).
    cx.cache
        .set("k", b("v"), Some(Duration::from_micros(100_500)))
        .await
        .unwrap();
    assert_expires_within(
        cx.cache.ttl("k").await.unwrap(),
        Duration::from_millis(10),
        Duration::from_millis(101),
    );
}

pub async fn expired_key_is_invisible_to_every_operation(cx: Ctx) {
    for k in ["gone", "gone2", "gone3", "gone4", "gone5"] {
        cx.cache.set(k, b("7"), Some(SHORT)).await.unwrap();
    }
    cx.cache.set("stays", b("v"), None).await.unwrap();
    sleep_ms(120).await;
    assert_eq!(cx.cache.get("gone").await.unwrap(), None, "get");
    assert!(!cx.cache.exists("gone").await.unwrap(), "exists");
    assert_eq!(
        cx.cache.ttl("gone").await.unwrap(),
        TtlState::Missing,
        "ttl"
    );
    assert_eq!(
        cx.cache.get_many(&keys(&["gone", "stays"])).await.unwrap(),
        vec![None, Some(b("v"))],
        "get_many"
    );
    assert_eq!(
        cx.cache.keys("*").await.unwrap(),
        vec!["stays".to_owned()],
        "keys"
    );
    assert_eq!(
        cx.cache.delete_pattern("gone*").await.unwrap(),
        0,
        "delete_pattern"
    );
    assert!(!cx.cache.delete("gone2").await.unwrap(), "delete");
    assert_eq!(
        cx.cache
            .delete_many(&keys(&["gone3", "stays"]))
            .await
            .unwrap(),
        1,
        "delete_many"
    );
    assert!(!cx.cache.expire("gone4", LONG).await.unwrap(), "expire");
    assert_eq!(
        cx.cache.ttl("gone4").await.unwrap(),
        TtlState::Missing,
        "expire must not revive"
    );
    assert!(
        cx.cache
            .set_if_absent("gone5", b("new"), None)
            .await
            .unwrap(),
        "set_if_absent"
    );
    assert_eq!(
        cx.cache.incr("gone", 5, None).await.unwrap(),
        5,
        "incr starts from zero"
    );
}

pub async fn set_many_ttl_applies_to_every_item(cx: Ctx) {
    cx.cache
        .set_many(vec![("a".into(), b("1")), ("b".into(), b("2"))], Some(LONG))
        .await
        .unwrap();
    for k in ["a", "b"] {
        assert_expires_within(
            cx.cache.ttl(k).await.unwrap(),
            LONG - Duration::from_secs(5),
            LONG,
        );
    }
    cx.cache
        .set_many(
            vec![("c".into(), b("1")), ("d".into(), b("2"))],
            Some(SHORT),
        )
        .await
        .unwrap();
    sleep_ms(120).await;
    assert_eq!(
        cx.cache.get_many(&keys(&["a", "c", "d"])).await.unwrap(),
        vec![Some(b("1")), None, None]
    );
}

pub async fn expire_sets_a_new_ttl_on_an_existing_key(cx: Ctx) {
    cx.cache.set("k", b("v"), None).await.unwrap();
    assert!(cx.cache.expire("k", LONG).await.unwrap());
    assert_expires_within(
        cx.cache.ttl("k").await.unwrap(),
        LONG - Duration::from_secs(5),
        LONG,
    );
    assert_eq!(
        cx.cache.get("k").await.unwrap(),
        Some(b("v")),
        "expire keeps the value"
    );
    assert!(cx.cache.expire("k", SHORT).await.unwrap());
    sleep_ms(120).await;
    assert_eq!(
        cx.cache.get("k").await.unwrap(),
        None,
        "a shorter TTL replaces a longer one"
    );
}

pub async fn expire_on_a_missing_key_creates_nothing(cx: Ctx) {
    assert!(!cx.cache.expire("missing", LONG).await.unwrap());
    assert!(!cx.cache.exists("missing").await.unwrap());
}

pub async fn set_if_absent_writes_only_a_missing_key(cx: Ctx) {
    assert!(cx
        .cache
        .set_if_absent("lock", b("owner-1"), Some(LONG))
        .await
        .unwrap());
    assert!(!cx
        .cache
        .set_if_absent("lock", b("owner-2"), None)
        .await
        .unwrap());
    assert_eq!(cx.cache.get("lock").await.unwrap(), Some(b("owner-1")));
    assert_expires_within(
        cx.cache.ttl("lock").await.unwrap(),
        LONG - Duration::from_secs(5),
        LONG,
    );
    assert!(cx.cache.set_if_absent("free", b("x"), None).await.unwrap());
    assert_eq!(cx.cache.ttl("free").await.unwrap(), TtlState::Persistent);
}

pub async fn set_if_absent_wins_over_an_expired_key(cx: Ctx) {
    cx.cache
        .set_if_absent("lock", b("old"), Some(SHORT))
        .await
        .unwrap();
    sleep_ms(120).await;
    assert!(cx
        .cache
        .set_if_absent("lock", b("new"), None)
        .await
        .unwrap());
    assert_eq!(cx.cache.get("lock").await.unwrap(), Some(b("new")));
    assert_eq!(cx.cache.ttl("lock").await.unwrap(), TtlState::Persistent);
}

pub async fn delete_if_equals_removes_only_the_expected_value(cx: Ctx) {
    let c = &cx.cache;
    assert!(!c.delete_if_equals("lock", b("token-1")).await.unwrap());
    c.set("lock", b("token-1"), Some(LONG)).await.unwrap();
    assert!(!c.delete_if_equals("lock", b("token-2")).await.unwrap());
    assert!(!c.delete_if_equals("lock", b("token-")).await.unwrap());
    assert!(!c.delete_if_equals("lock", b("")).await.unwrap());
    assert_eq!(c.get("lock").await.unwrap(), Some(b("token-1")));
    assert!(c.delete_if_equals("lock", b("token-1")).await.unwrap());
    assert_eq!(c.get("lock").await.unwrap(), None);
    assert!(!c.delete_if_equals("lock", b("token-1")).await.unwrap());
    // An empty value is a value like any other.
    c.set("empty", b(""), None).await.unwrap();
    assert!(c.delete_if_equals("empty", b("")).await.unwrap());
    assert!(!c.exists("empty").await.unwrap());
}

pub async fn delete_if_equals_ignores_an_expired_key(cx: Ctx) {
    let c = &cx.cache;
    c.set("lock", b("mine"), Some(SHORT)).await.unwrap();
    sleep_ms(120).await;
    assert!(!c.delete_if_equals("lock", b("mine")).await.unwrap());
    // The lock passed to someone else: the old owner cannot release it.
    assert!(c
        .set_if_absent("lock", b("theirs"), Some(LONG))
        .await
        .unwrap());
    assert!(!c.delete_if_equals("lock", b("mine")).await.unwrap());
    assert_eq!(c.get("lock").await.unwrap(), Some(b("theirs")));
}

pub async fn get_and_touch_reads_and_extends_in_one_step(cx: Ctx) {
    let c = &cx.cache;
    c.set(
        "s",
        bytes::Bytes::from("v"),
        Some(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let got = c.get_and_touch("s", Duration::from_secs(10)).await.unwrap();
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    match c.ttl("s").await.unwrap() {
        TtlState::ExpiresIn(left) => {
            assert!(left > Duration::from_secs(9), "{left:?}")
        }
        other => panic!("touched key has {other:?}"),
    }
    // A persistent key gets the TTL.
    c.set("p", bytes::Bytes::from("v"), None).await.unwrap();
    c.get_and_touch("p", Duration::from_secs(5)).await.unwrap();
    assert!(matches!(c.ttl("p").await.unwrap(), TtlState::ExpiresIn(_)));
    // A missing key stays missing.
    assert_eq!(
        c.get_and_touch("missing", Duration::from_secs(5))
            .await
            .unwrap(),
        None
    );
    assert!(!c.exists("missing").await.unwrap());
    // Bad input is refused.
    let zero = c.get_and_touch("s", Duration::ZERO).await.unwrap_err();
    assert_eq!(zero.kind(), cache_port::ErrorKind::InvalidTtl);
    let bad = c
        .get_and_touch("", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), cache_port::ErrorKind::InvalidKey);
}

pub async fn a_key_read_with_get_and_touch_outlives_its_first_ttl(cx: Ctx) {
    let idle = Duration::from_millis(200);
    let c = &cx.cache;
    let mut previous_start = Instant::now();
    c.set("session", bytes::Bytes::from("alive"), Some(idle))
        .await
        .unwrap();
    // Read every half idle time for five idle times: never expires. Judged
    // by the time from the previous touch's start to this one's end, which
    // bounds the time between the two as the store ran them: on a loaded CI
    // machine a 100 ms sleep overran the idle time, and the key expired as
    // it should ("expired while in use", moka). Such a round is not judged;
    // the key is written again.
    let (mut judged, mut stalled) = (0, 0);
    for _ in 0..10 {
        tokio::time::sleep(idle / 2).await;
        let start = Instant::now();
        let alive = c.get_and_touch("session", idle).await.unwrap().is_some();
        let span = previous_start.elapsed();
        previous_start = start;
        // (A margin for millisecond clocks.)
        if span < idle - Duration::from_millis(20) {
            judged += 1;
            assert!(
                alive,
                "expired while in use, {span:?} after the previous touch began"
            );
        } else {
            stalled += 1;
            if !alive {
                previous_start = Instant::now();
                c.set("session", bytes::Bytes::from("alive"), Some(idle))
                    .await
                    .unwrap();
            }
        }
    }
    assert!(
        judged >= 5,
        "only {judged} of 10 touches came in time ({stalled} late)"
    );
    // Left alone, it expires within its idle time (and a little).
    tokio::time::sleep(idle + Duration::from_millis(50)).await;
    assert_eq!(c.get("session").await.unwrap(), None);
}
