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

/// Namespaces are hierarchical: `ns` owns `ns:child`'s keys (its `clear`
/// and `delete_pattern("*")` remove them, its `keys` lists them with the
/// child's prefix), and `ns`'s key `child:k` is the child's key `k`.
pub async fn a_namespace_owns_its_children(cx: Ctx) {
    let child = cx.sibling(":child").await;
    child.set("k1", b("v"), None).await.unwrap();
    assert_eq!(cx.cache.get("child:k1").await.unwrap(), Some(b("v")));
    cx.cache.set("child:k2", b("w"), None).await.unwrap();
    assert_eq!(child.get("k2").await.unwrap(), Some(b("w")));
    let mut listed = cx.cache.keys("*").await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["child:k1", "child:k2"]);
    cx.cache.clear().await.unwrap();
    assert!(
        child.keys("*").await.unwrap().is_empty(),
        "clearing a parent clears its children"
    );
    child.set("k3", b("v"), None).await.unwrap();
    assert_eq!(cx.cache.delete_pattern("*").await.unwrap(), 1);
    assert_eq!(child.get("k3").await.unwrap(), None);
}

/// A namespace never reads, lists, counts or deletes a key of its parent,
/// its siblings or a look-alike (`nsX`, `ns*`, `n?`, `[n]s`, `ns\`, `{ns}`).
pub async fn a_namespace_never_reaches_parent_siblings_or_look_alikes(cx: Ctx) {
    let mine = cx.sibling(":app").await;
    let mut planted = Vec::new();
    for suffix in [
        ":apps", ":app*", ":ap?", ":a[p]p", ":app\\", ":{app}", ":ap", ":other",
    ] {
        planted.push(cx.sibling(suffix).await);
    }
    for other in &planted {
        other.set("k", b("theirs"), None).await.unwrap();
        other.set("app", b("theirs"), None).await.unwrap();
    }
    // Keys of the parent (`ns`) that sit beside `app`, not under it.
    cx.cache.set("k", b("parent"), None).await.unwrap();
    cx.cache.set("app", b("parent"), None).await.unwrap();
    mine.set("k", b("mine"), None).await.unwrap();
    assert_eq!(mine.keys("*").await.unwrap(), vec!["k"]);
    assert_eq!(mine.get("app").await.unwrap(), None);
    assert_eq!(mine.delete_pattern("*").await.unwrap(), 1);
    mine.set("k", b("mine"), None).await.unwrap();
    mine.clear().await.unwrap();
    assert_eq!(
        mine.delete_many(&["app".into(), "k".into()]).await.unwrap(),
        0
    );
    for other in &planted {
        assert_eq!(other.get("k").await.unwrap(), Some(b("theirs")));
        assert_eq!(other.get("app").await.unwrap(), Some(b("theirs")));
    }
    assert_eq!(cx.cache.get("k").await.unwrap(), Some(b("parent")));
    assert_eq!(cx.cache.get("app").await.unwrap(), Some(b("parent")));
}

/// Every key `keys` lists can be read back with `get` through the same view:
/// a store key equal to the namespace prefix itself (`ns:`) is not listed.
pub async fn every_listed_key_can_be_read(cx: Ctx) {
    let parent = cx.sibling(":p").await;
    // `p`'s key `c:` … is not addressable as `c`'s key "" from the child:
    parent.set("c:", b("prefix itself"), None).await.unwrap();
    parent.set("c:k", b("v"), None).await.unwrap();
    let child = cx.sibling(":p:c").await;
    let listed = child.keys("*").await.unwrap();
    assert_eq!(listed, vec!["k"]);
    for key in &listed {
        assert!(
            child.get(key).await.unwrap().is_some(),
            "{key:?} is listed but unreadable"
        );
    }
}
