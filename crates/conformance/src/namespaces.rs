//! Namespaces: clear and patterns never reach outside their own.

use bytes::Bytes;

use crate::util::b;
use crate::Ctx;

pub async fn clear_empties_the_namespace(cx: Ctx) {
    let items: Vec<(String, Bytes)> = (0..300).map(|i| (format!("k:{i}"), b("v"))).collect();
    cx.cache.set_many(items, None).await.unwrap();
    cx.cache.clear().await.unwrap();
    assert!(cx.cache.keys("*").await.unwrap().is_empty());
    assert_eq!(cx.cache.get("k:1").await.unwrap(), None);
    cx.cache.clear().await.unwrap(); // clearing an empty namespace is fine
}

pub async fn clear_and_delete_pattern_spare_other_namespaces(cx: Ctx) {
    // A sibling whose namespace starts with ours ("ns-x:" vs "ns:"), and one unrelated.
    let sibling = cx.sibling("-x").await;
    let other = cx.sibling("/other").await;
    for c in [&cx.cache, &sibling, &other] {
        c.set("k", b("v"), None).await.unwrap();
        c.set("user:1", b("v"), None).await.unwrap();
    }
    assert_eq!(
        cx.cache.keys("*").await.unwrap().len(),
        2,
        "keys sees only its own namespace"
    );
    assert_eq!(cx.cache.delete_pattern("*").await.unwrap(), 2);
    cx.cache.set("k", b("v"), None).await.unwrap();
    cx.cache.clear().await.unwrap();
    for c in [&sibling, &other] {
        assert_eq!(c.get("k").await.unwrap(), Some(b("v")));
        assert_eq!(c.get("user:1").await.unwrap(), Some(b("v")));
    }
    assert_eq!(cx.cache.get("k").await.unwrap(), None);
}

pub async fn namespace_with_glob_metacharacters_is_escaped(cx: Ctx) {
    // Unescaped, this namespace's SCAN pattern `…:w*[x]?:*` would match the
    // decoy namespace `…:wAAxB`.
    let weird = cx.sibling(":w*[x]?\\").await;
    let decoy = cx.sibling(":wAAxB").await;
    decoy.set("k", b("decoy"), None).await.unwrap();
    weird.set("k", b("mine"), None).await.unwrap();
    weird.set("other", b("mine"), None).await.unwrap();
    assert_eq!(weird.get("k").await.unwrap(), Some(b("mine")));
    let mut listed = weird.keys("*").await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["k", "other"]);
    assert_eq!(weird.delete_pattern("k*").await.unwrap(), 1);
    weird.clear().await.unwrap();
    assert!(weird.keys("*").await.unwrap().is_empty());
    assert_eq!(
        decoy.get("k").await.unwrap(),
        Some(b("decoy")),
        "the decoy namespace was touched"
    );
}
