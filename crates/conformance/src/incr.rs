//! Counters: Redis INCRBY semantics.

use std::time::Duration;

use bytes::Bytes;
use cache_port::{ErrorKind, TtlState};

use crate::util::{assert_kind, b, sleep_ms};
use crate::Ctx;

pub async fn incr_creates_a_counter_from_zero(cx: Ctx) {
    assert_eq!(cx.cache.incr("c", 1, None).await.unwrap(), 1);
    assert_eq!(
        cx.cache.get("c").await.unwrap(),
        Some(b("1")),
        "stored as a decimal string"
    );
    assert_eq!(cx.cache.ttl("c").await.unwrap(), TtlState::Persistent);
    assert_eq!(cx.cache.incr("zero", 0, None).await.unwrap(), 0);
    assert!(
        cx.cache.exists("zero").await.unwrap(),
        "incr by 0 still creates the counter"
    );
}

pub async fn incr_adds_positive_and_negative_deltas(cx: Ctx) {
    assert_eq!(cx.cache.incr("c", 10, None).await.unwrap(), 10);
    assert_eq!(cx.cache.incr("c", -25, None).await.unwrap(), -15);
    assert_eq!(cx.cache.get("c").await.unwrap(), Some(b("-15")));
    assert_eq!(cx.cache.incr("c", 15, None).await.unwrap(), 0);
    assert_eq!(cx.cache.get("c").await.unwrap(), Some(b("0")));
}

pub async fn incr_reads_a_decimal_value_set_by_set(cx: Ctx) {
    for (stored, delta, want) in [
        ("41", 1, 42),
        ("-41", -1, -42),
        ("0", 5, 5),
        ("9223372036854775806", 1, i64::MAX),
    ] {
        cx.cache.set("c", b(stored), None).await.unwrap();
        assert_eq!(
            cx.cache.incr("c", delta, None).await.unwrap(),
            want,
            "{stored} + {delta}"
        );
    }
}

pub async fn incr_ttl_applies_only_when_created(cx: Ctx) {
    let ttl = Duration::from_secs(100);
    cx.cache.incr("new", 1, Some(ttl)).await.unwrap();
    assert!(matches!(cx.cache.ttl("new").await.unwrap(), TtlState::ExpiresIn(d) if d <= ttl));

    // An existing persistent counter stays persistent.
    cx.cache.set("persistent", b("5"), None).await.unwrap();
    assert_eq!(cx.cache.incr("persistent", 1, Some(ttl)).await.unwrap(), 6);
    assert_eq!(
        cx.cache.ttl("persistent").await.unwrap(),
        TtlState::Persistent
    );

    // An existing counter keeps its own (short) TTL: a fixed window.
    cx.cache
        .incr("window", 1, Some(Duration::from_millis(60)))
        .await
        .unwrap();
    assert_eq!(cx.cache.incr("window", 1, Some(ttl)).await.unwrap(), 2);
    sleep_ms(150).await;
    assert_eq!(
        cx.cache.get("window").await.unwrap(),
        None,
        "the window's first TTL must hold"
    );
    assert_eq!(
        cx.cache.incr("window", 1, Some(ttl)).await.unwrap(),
        1,
        "a new window starts at 1"
    );
}

pub async fn incr_refuses_values_that_are_not_integers(cx: Ctx) {
    for bad in [
        "abc",
        "",
        "1.5",
        " 1",
        "1 ",
        "+1",
        "01",
        "-0",
        "9223372036854775808",
        "１",
    ] {
        cx.cache
            .set("c", b(bad), Some(Duration::from_secs(100)))
            .await
            .unwrap();
        assert_kind(
            cx.cache.incr("c", 1, None).await,
            ErrorKind::NotAnInteger,
            bad,
        );
        assert_eq!(
            cx.cache.get("c").await.unwrap(),
            Some(b(bad)),
            "{bad:?} must be left as it was"
        );
        assert!(
            matches!(cx.cache.ttl("c").await.unwrap(), TtlState::ExpiresIn(_)),
            "{bad:?}: TTL kept"
        );
    }
    cx.cache
        .set("bin", Bytes::from_static(&[0xff, 0x00]), None)
        .await
        .unwrap();
    assert_kind(
        cx.cache.incr("bin", 1, None).await,
        ErrorKind::NotAnInteger,
        "binary value",
    );
}

pub async fn incr_refuses_overflow_in_both_directions(cx: Ctx) {
    cx.cache
        .set("max", b(&i64::MAX.to_string()), None)
        .await
        .unwrap();
    assert_kind(
        cx.cache.incr("max", 1, None).await,
        ErrorKind::Overflow,
        "i64::MAX + 1",
    );
    assert_eq!(
        cx.cache.get("max").await.unwrap(),
        Some(b(&i64::MAX.to_string()))
    );
    cx.cache
        .set("min", b(&i64::MIN.to_string()), None)
        .await
        .unwrap();
    assert_kind(
        cx.cache.incr("min", -1, None).await,
        ErrorKind::Overflow,
        "i64::MIN - 1",
    );
    assert_eq!(cx.cache.incr("min", i64::MAX, None).await.unwrap(), -1);
    assert_eq!(
        cx.cache.incr("fresh", i64::MIN, None).await.unwrap(),
        i64::MIN
    );
}

/// Regression (differential test): on Redis, incr with a TTL ran a Lua
/// script whose doubles rounded i64::MAX to i64::MIN.
pub async fn incr_with_a_ttl_keeps_all_64_bits(cx: Ctx) {
    let ttl = Some(Duration::from_secs(100));
    assert_eq!(cx.cache.incr("max", i64::MAX, ttl).await.unwrap(), i64::MAX);
    assert_eq!(cx.cache.incr("min", i64::MIN, ttl).await.unwrap(), i64::MIN);
    assert_eq!(
        cx.cache
            .incr("big", 9_007_199_254_740_993, ttl)
            .await
            .unwrap(),
        9_007_199_254_740_993
    );
    assert_eq!(
        cx.cache.incr("big", 2, ttl).await.unwrap(),
        9_007_199_254_740_995
    );
    // Either side of 2^53, where the Redis script switches from returning
    // the (exact) double to reading the counter back as a string.
    const EDGE: i64 = 1 << 53;
    for (start, delta) in [
        (EDGE - 2, 1),
        (EDGE - 1, 1),
        (EDGE, 1),
        (-EDGE + 2, -1),
        (-EDGE + 1, -1),
        (-EDGE, -1),
    ] {
        let key = format!("edge{start}{delta}");
        assert_eq!(cx.cache.incr(&key, start, ttl).await.unwrap(), start);
        assert_eq!(
            cx.cache.incr(&key, delta, ttl).await.unwrap(),
            start + delta,
            "{start} {delta:+} with a TTL"
        );
    }
    assert_kind(
        cx.cache.incr("max", 1, ttl).await,
        ErrorKind::Overflow,
        "i64::MAX + 1 with a TTL",
    );
    assert_eq!(
        cx.cache.get("max").await.unwrap(),
        Some(b(&i64::MAX.to_string()))
    );
}
