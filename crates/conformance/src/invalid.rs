//! Bad input: a typed error, and nothing changed.

use std::time::Duration;

use bytes::Bytes;
use cache_port::{ErrorKind, Pattern, TtlState, MAX_KEY_LEN, MAX_TTL};

use crate::util::{assert_kind, b, keys};
use crate::Ctx;

pub async fn bad_keys_are_refused_by_every_operation(cx: Ctx) {
    let long = "k".repeat(MAX_KEY_LEN + 1);
    let long_multibyte = "é".repeat(MAX_KEY_LEN / 2 + 1);
    for bad in ["", long.as_str(), long_multibyte.as_str()] {
        let what = |op: &str| format!("{op}(key of {} bytes)", bad.len());
        let c = &cx.cache;
        assert_kind(c.get(bad).await, ErrorKind::InvalidKey, &what("get"));
        assert_kind(
            c.set(bad, b("v"), None).await,
            ErrorKind::InvalidKey,
            &what("set"),
        );
        assert_kind(c.delete(bad).await, ErrorKind::InvalidKey, &what("delete"));
        assert_kind(c.exists(bad).await, ErrorKind::InvalidKey, &what("exists"));
        assert_kind(c.ttl(bad).await, ErrorKind::InvalidKey, &what("ttl"));
        assert_kind(
            c.expire(bad, Duration::from_secs(1)).await,
            ErrorKind::InvalidKey,
            &what("expire"),
        );
        assert_kind(
            c.set_if_absent(bad, b("v"), None).await,
            ErrorKind::InvalidKey,
            &what("set_if_absent"),
        );
        assert_kind(
            c.delete_if_equals(bad, b("v")).await,
            ErrorKind::InvalidKey,
            &what("delete_if_equals"),
        );
        assert_kind(
            c.incr(bad, 1, None).await,
            ErrorKind::InvalidKey,
            &what("incr"),
        );
        assert_kind(
            c.get_many(&keys(&["ok", bad])).await,
            ErrorKind::InvalidKey,
            &what("get_many"),
        );
        assert_kind(
            c.exists_many(&keys(&["ok", bad])).await,
            ErrorKind::InvalidKey,
            &what("exists_many"),
        );
        assert_kind(
            c.set_many(vec![("ok".into(), b("v")), (bad.to_owned(), b("v"))], None)
                .await,
            ErrorKind::InvalidKey,
            &what("set_many"),
        );
        assert_kind(
            c.delete_many(&keys(&["ok", bad])).await,
            ErrorKind::InvalidKey,
            &what("delete_many"),
        );
    }
    assert!(
        cx.cache.keys("*").await.unwrap().is_empty(),
        "a refused call wrote something"
    );
}

pub async fn bad_ttls_are_refused_by_every_operation(cx: Ctx) {
    cx.cache.set("k", b("v"), None).await.unwrap();
    let too_long = MAX_TTL + Duration::from_millis(1);
    for bad in [Duration::ZERO, too_long, Duration::MAX] {
        let what = |op: &str| format!("{op}(ttl {bad:?})");
        let c = &cx.cache;
        assert_kind(
            c.set("k", b("new"), Some(bad)).await,
            ErrorKind::InvalidTtl,
            &what("set"),
        );
        assert_kind(
            c.set("fresh", b("new"), Some(bad)).await,
            ErrorKind::InvalidTtl,
            &what("set"),
        );
        assert_kind(
            c.set_many(vec![("fresh".into(), b("v"))], Some(bad)).await,
            ErrorKind::InvalidTtl,
            &what("set_many"),
        );
        assert_kind(
            c.set_if_absent("fresh", b("v"), Some(bad)).await,
            ErrorKind::InvalidTtl,
            &what("set_if_absent"),
        );
        assert_kind(
            c.incr("counter", 1, Some(bad)).await,
            ErrorKind::InvalidTtl,
            &what("incr"),
        );
        assert_kind(
            c.expire("k", bad).await,
            ErrorKind::InvalidTtl,
            &what("expire"),
        );
    }
    assert_eq!(cx.cache.get("k").await.unwrap(), Some(b("v")));
    assert_eq!(cx.cache.ttl("k").await.unwrap(), TtlState::Persistent);
    assert_eq!(cx.cache.keys("*").await.unwrap(), vec!["k".to_owned()]);
    // The longest TTL is accepted.
    cx.cache.set("k", b("v"), Some(MAX_TTL)).await.unwrap();
    assert!(
        matches!(cx.cache.ttl("k").await.unwrap(), TtlState::ExpiresIn(d) if d > MAX_TTL - Duration::from_secs(60))
    );
}

pub async fn bad_patterns_are_refused_and_delete_nothing(cx: Ctx) {
    cx.cache
        .set_many(
            keys(&["a", "ab", "[", "\\", "]"])
                .into_iter()
                .map(|k| (k, b("v")))
                .collect(),
            None,
        )
        .await
        .unwrap();
    let too_long = "a".repeat(cache_port::MAX_PATTERN_LEN + 1);
    let too_many_stars = "*a".repeat(cache_port::MAX_PATTERN_STARS + 1);
    for pattern in [
        "",
        "[abc",
        "[",
        "a\\",
        "\\",
        "[a-",
        "[]",
        "[!a]",
        "[é]",
        too_long.as_str(),
        too_many_stars.as_str(),
    ] {
        assert!(
            Pattern::new(pattern).is_err(),
            "the shared validator accepts {pattern:?}"
        );
        assert_kind(
            cx.cache.keys(pattern).await,
            ErrorKind::InvalidPattern,
            &format!("keys({pattern:?})"),
        );
        assert_kind(
            cx.cache.delete_pattern(pattern).await,
            ErrorKind::InvalidPattern,
            &format!("delete_pattern({pattern:?})"),
        );
    }
    assert_eq!(
        cx.cache.keys("*").await.unwrap().len(),
        5,
        "a refused pattern deleted something"
    );
}

pub async fn too_large_values_are_refused(cx: Ctx) {
    let limit = cx.cache.max_value_len();
    let too_large = Bytes::from(vec![b'x'; limit + 1]);
    let c = &cx.cache;
    c.set("k", b("small"), None).await.unwrap();
    assert_kind(
        c.set("k", too_large.clone(), None).await,
        ErrorKind::ValueTooLarge,
        "set",
    );
    assert_kind(
        c.set_if_absent("new", too_large.clone(), None).await,
        ErrorKind::ValueTooLarge,
        "set_if_absent",
    );
    assert_kind(
        c.set_many(vec![("a".into(), b("ok")), ("b".into(), too_large)], None)
            .await,
        ErrorKind::ValueTooLarge,
        "set_many",
    );
    assert_eq!(c.get("k").await.unwrap(), Some(b("small")));
    assert_eq!(c.keys("*").await.unwrap(), vec!["k".to_owned()]);
    if limit <= 8 * 1024 * 1024 {
        let at_limit = Bytes::from(vec![b'y'; limit]);
        c.set("k", at_limit.clone(), None).await.unwrap();
        assert_eq!(
            c.get("k").await.unwrap(),
            Some(at_limit),
            "a value of exactly the limit"
        );
    }
}

pub async fn a_bad_item_in_a_batch_changes_nothing(cx: Ctx) {
    cx.cache.set("a", b("old"), None).await.unwrap();
    let batch = vec![
        ("a".to_owned(), b("new")),
        ("b".to_owned(), b("new")),
        (String::new(), b("bad")),
    ];
    assert_kind(
        cx.cache.set_many(batch, None).await,
        ErrorKind::InvalidKey,
        "set_many",
    );
    assert_eq!(
        cx.cache.get_many(&keys(&["a", "b"])).await.unwrap(),
        vec![Some(b("old")), None]
    );
    assert_kind(
        cx.cache.delete_many(&keys(&["a", ""])).await,
        ErrorKind::InvalidKey,
        "delete_many",
    );
    assert_eq!(cx.cache.get("a").await.unwrap(), Some(b("old")));
}
