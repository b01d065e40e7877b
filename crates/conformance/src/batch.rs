//! Batches: get_many, set_many, delete_many.

use std::time::Duration;

use bytes::Bytes;
use cache_port::TtlState;

use crate::util::{b, keys};
use crate::Ctx;

pub async fn get_many_keeps_order_and_duplicates(cx: Ctx) {
    cx.cache.set("a", b("1"), None).await.unwrap();
    cx.cache.set("c", b("3"), None).await.unwrap();
    let got = cx
        .cache
        .get_many(&keys(&["c", "missing", "a", "c", "a"]))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![Some(b("3")), None, Some(b("1")), Some(b("3")), Some(b("1"))]
    );
}

pub async fn get_many_of_nothing_is_nothing(cx: Ctx) {
    assert_eq!(
        cx.cache.get_many(&[]).await.unwrap(),
        Vec::<Option<Bytes>>::new()
    );
}

pub async fn get_many_of_a_thousand_keys(cx: Ctx) {
    let items: Vec<(String, Bytes)> = (0..1000)
        .map(|i| (format!("k{i}"), Bytes::from(format!("v{i}"))))
        .collect();
    cx.cache.set_many(items, None).await.unwrap();
    let wanted: Vec<String> = (0..1100).map(|i| format!("k{i}")).collect();
    let got = cx.cache.get_many(&wanted).await.unwrap();
    assert_eq!(got.len(), 1100);
    for (i, value) in got.iter().enumerate() {
        let want = (i < 1000).then(|| Bytes::from(format!("v{i}")));
        assert_eq!(value, &want, "k{i}");
    }
}

pub async fn set_many_writes_every_item(cx: Ctx) {
    cx.cache
        .set("b", b("old"), Some(Duration::from_secs(100)))
        .await
        .unwrap();
    cx.cache
        .set_many(
            vec![
                ("a".into(), b("1")),
                ("b".into(), b("2")),
                ("c".into(), Bytes::new()),
            ],
            None,
        )
        .await
        .unwrap();
    let got = cx.cache.get_many(&keys(&["a", "b", "c"])).await.unwrap();
    assert_eq!(got, vec![Some(b("1")), Some(b("2")), Some(Bytes::new())]);
    // Like set, set_many replaces the TTL too.
    assert_eq!(cx.cache.ttl("b").await.unwrap(), TtlState::Persistent);
}

pub async fn set_many_of_nothing_is_ok(cx: Ctx) {
    cx.cache.set_many(Vec::new(), None).await.unwrap();
    cx.cache
        .set_many(Vec::new(), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(cx.cache.keys("*").await.unwrap().is_empty());
}

pub async fn set_many_last_duplicate_wins(cx: Ctx) {
    cx.cache
        .set_many(
            vec![("k".into(), b("first")), ("k".into(), b("last"))],
            None,
        )
        .await
        .unwrap();
    assert_eq!(cx.cache.get("k").await.unwrap(), Some(b("last")));
}

pub async fn delete_many_counts_existing_keys(cx: Ctx) {
    cx.cache
        .set_many(
            vec![
                ("a".into(), b("1")),
                ("b".into(), b("2")),
                ("c".into(), b("3")),
            ],
            None,
        )
        .await
        .unwrap();
    // Duplicates and missing keys count once and not at all.
    let removed = cx
        .cache
        .delete_many(&keys(&["a", "b", "a", "missing"]))
        .await
        .unwrap();
    assert_eq!(removed, 2);
    assert_eq!(
        cx.cache.get_many(&keys(&["a", "b", "c"])).await.unwrap(),
        vec![None, None, Some(b("3"))]
    );
    assert_eq!(cx.cache.delete_many(&[]).await.unwrap(), 0);
}

pub async fn exists_many_answers_each_key_in_order(cx: Ctx) {
    cx.cache.set("a", b("1"), None).await.unwrap();
    cx.cache.set("c", Bytes::new(), None).await.unwrap();
    cx.cache
        .set("gone", b("x"), Some(Duration::from_millis(30)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let got = cx
        .cache
        .exists_many(&keys(&["c", "missing", "a", "gone", "c"]))
        .await
        .unwrap();
    assert_eq!(got, [true, false, true, false, true]);
    assert_eq!(cx.cache.exists_many(&[]).await.unwrap(), Vec::<bool>::new());
    // One answer per key, in order, for a batch past any slicing.
    let many: Vec<String> = (0..600).map(|i| format!("k{i}")).collect();
    let items: Vec<(String, Bytes)> = many
        .iter()
        .step_by(3)
        .map(|k| (k.clone(), b("v")))
        .collect();
    cx.cache.set_many(items, None).await.unwrap();
    let got = cx.cache.exists_many(&many).await.unwrap();
    assert_eq!(got, (0..600).map(|i| i % 3 == 0).collect::<Vec<_>>());
}
