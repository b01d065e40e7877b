//! keys and delete_pattern over a namespace.

use bytes::Bytes;

use crate::Ctx;

async fn seed(cx: &Ctx, keys: &[&str]) {
    let items = keys
        .iter()
        .map(|k| ((*k).to_owned(), Bytes::from_static(b"v")))
        .collect();
    cx.cache.set_many(items, None).await.unwrap();
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub async fn keys_lists_matching_keys_without_namespace(cx: Ctx) {
    seed(&cx, &["user:1", "user:2", "order:1"]).await;
    assert_eq!(
        sorted(cx.cache.keys("user:*").await.unwrap()),
        vec!["user:1", "user:2"]
    );
    assert_eq!(
        sorted(cx.cache.keys("*").await.unwrap()),
        vec!["order:1", "user:1", "user:2"]
    );
    assert!(cx.cache.keys("nothing*").await.unwrap().is_empty());
    let ns = cx.namespace().to_owned();
    assert!(
        cx.cache.keys(&format!("{ns}*")).await.unwrap().is_empty(),
        "keys are matched without the namespace"
    );
}

pub async fn delete_pattern_removes_and_counts_matches(cx: Ctx) {
    seed(&cx, &["user:1", "user:2", "user:3:cart", "order:1"]).await;
    assert_eq!(cx.cache.delete_pattern("user:?").await.unwrap(), 2);
    assert_eq!(
        sorted(cx.cache.keys("*").await.unwrap()),
        vec!["order:1", "user:3:cart"]
    );
    assert_eq!(cx.cache.delete_pattern("user:?").await.unwrap(), 0);
    assert_eq!(cx.cache.delete_pattern("*").await.unwrap(), 2);
    assert!(cx.cache.keys("*").await.unwrap().is_empty());
}

pub async fn hash_tags_match_literally(cx: Ctx) {
    seed(
        &cx,
        &[
            "{user:1}:profile",
            "{user:1}:cart",
            "{user:2}:cart",
            "user:1:cart",
        ],
    )
    .await;
    assert_eq!(
        sorted(cx.cache.keys("{user:1}:*").await.unwrap()),
        vec!["{user:1}:cart", "{user:1}:profile"]
    );
    assert_eq!(cx.cache.delete_pattern("{user:1}:*").await.unwrap(), 2);
    assert_eq!(
        sorted(cx.cache.keys("*").await.unwrap()),
        vec!["user:1:cart", "{user:2}:cart"]
    );
}

/// `keys_stream` lists what `keys` lists, a page at a time (a key may
/// repeat, as with Redis SCAN; none is missing), and refuses a bad pattern
/// as its one item.
pub async fn keys_stream_lists_what_keys_lists(cx: Ctx) {
    use futures::StreamExt;
    let items: Vec<(String, bytes::Bytes)> = (0..2500)
        .map(|i| (format!("s:{i}"), crate::util::b("v")))
        .collect();
    cx.cache.set_many(items, None).await.unwrap();
    cx.cache
        .set("other", crate::util::b("v"), None)
        .await
        .unwrap();
    for pattern in ["*", "s:1*", "nothing*"] {
        let mut streamed = Vec::new();
        let mut pages = cx.cache.keys_stream(pattern);
        while let Some(page) = pages.next().await {
            streamed.extend(page.unwrap());
        }
        streamed.sort();
        streamed.dedup();
        let mut listed = cx.cache.keys(pattern).await.unwrap();
        listed.sort();
        assert_eq!(streamed.len(), listed.len(), "{pattern}");
        assert_eq!(streamed, listed, "{pattern}");
    }
    let mut bad = cx.cache.keys_stream("[");
    let first = bad.next().await.expect("one item");
    assert_eq!(
        first.unwrap_err().kind(),
        cache_port::ErrorKind::InvalidPattern
    );
    assert!(bad.next().await.is_none());
}
