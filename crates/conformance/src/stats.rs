//! stats: hits, misses, writes, deletes, errors.

use cache_port::ErrorKind;

use crate::util::{assert_kind, b, keys};
use crate::Ctx;

pub async fn stats_count_hits_misses_and_writes(cx: Ctx) {
    let c = &cx.cache;
    let before = c.stats().await.unwrap();
    assert_eq!(
        (before.hits, before.misses, before.sets),
        (0, 0, 0),
        "a fresh adapter starts at zero"
    );
    assert_eq!(before.hit_rate(), None);
    c.set("a", b("1"), None).await.unwrap();
    c.set_many(vec![("b".into(), b("2")), ("c".into(), b("3"))], None)
        .await
        .unwrap();
    c.get("a").await.unwrap(); // hit
    c.get("missing").await.unwrap(); // miss
    c.get_many(&keys(&["a", "b", "nope"])).await.unwrap(); // 2 hits, 1 miss
    c.delete("a").await.unwrap();
    c.delete("a").await.unwrap(); // nothing deleted
    let s = c.stats().await.unwrap();
    assert_eq!(s.hits, 3, "hits");
    assert_eq!(s.misses, 2, "misses");
    assert_eq!(s.sets, 3, "sets");
    assert_eq!(s.deletes, 1, "deletes");
    assert_eq!(s.hit_rate(), Some(0.6));
    assert_eq!(s.errors, 0);
}

pub async fn stats_count_errors(cx: Ctx) {
    assert_kind(cx.cache.get("").await, ErrorKind::InvalidKey, "get");
    assert_kind(cx.cache.keys("[").await, ErrorKind::InvalidPattern, "keys");
    let s = cx.cache.stats().await.unwrap();
    assert_eq!(s.errors, 2);
    assert_eq!((s.hits, s.misses), (0, 0), "a refused get is not a lookup");
}
