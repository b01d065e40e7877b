//! Single-key reads and writes.

use bytes::Bytes;
use cache_port::MAX_KEY_LEN;

use crate::util::b;
use crate::Ctx;

pub async fn get_of_missing_key_is_none(cx: Ctx) {
    assert_eq!(cx.cache.get("nothing-here").await.unwrap(), None);
}

pub async fn set_then_get_returns_the_value(cx: Ctx) {
    cx.cache.set("k", b("v"), None).await.unwrap();
    assert_eq!(cx.cache.get("k").await.unwrap(), Some(b("v")));
}

pub async fn set_replaces_the_value(cx: Ctx) {
    cx.cache.set("k", b("first"), None).await.unwrap();
    cx.cache.set("k", b("second"), None).await.unwrap();
    assert_eq!(cx.cache.get("k").await.unwrap(), Some(b("second")));
}

pub async fn empty_value_round_trips(cx: Ctx) {
    cx.cache.set("empty", Bytes::new(), None).await.unwrap();
    assert_eq!(cx.cache.get("empty").await.unwrap(), Some(Bytes::new()));
    assert!(
        cx.cache.exists("empty").await.unwrap(),
        "an empty value is still a value"
    );
}

pub async fn every_byte_value_round_trips(cx: Ctx) {
    let all: Bytes = (0..=255u8)
        .chain((0..=255u8).rev())
        .collect::<Vec<u8>>()
        .into();
    cx.cache.set("bin", all.clone(), None).await.unwrap();
    assert_eq!(cx.cache.get("bin").await.unwrap(), Some(all));
}

pub async fn delete_says_whether_the_key_existed(cx: Ctx) {
    cx.cache.set("k", b("v"), None).await.unwrap();
    assert!(
        cx.cache.delete("k").await.unwrap(),
        "delete of an existing key"
    );
    assert_eq!(cx.cache.get("k").await.unwrap(), None);
    assert!(!cx.cache.delete("k").await.unwrap(), "second delete");
    assert!(
        !cx.cache.delete("never").await.unwrap(),
        "delete of a missing key"
    );
}

pub async fn exists_reports_presence(cx: Ctx) {
    assert!(!cx.cache.exists("k").await.unwrap());
    cx.cache.set("k", b("v"), None).await.unwrap();
    assert!(cx.cache.exists("k").await.unwrap());
    cx.cache.delete("k").await.unwrap();
    assert!(!cx.cache.exists("k").await.unwrap());
}

/// Keys with separators, hash tags, glob metacharacters, spaces, control and
/// multi-byte characters are ordinary keys.
pub async fn keys_of_every_shape_round_trip(cx: Ctx) {
    let shapes = [
        "user:1:profile",
        "a/b/c",
        "{user:1}:cart",
        "a*b",
        "a?b",
        "[x]",
        "back\\slash",
        "with space",
        "tab\tkey",
        "new\nline",
        "é",
        "日本語",
        "emoji 🦀",
        "-",
        "*",
        "?",
        "[",
        "\\",
    ];
    for (n, key) in shapes.iter().enumerate() {
        cx.cache
            .set(key, Bytes::from(n.to_string()), None)
            .await
            .unwrap();
    }
    for (n, key) in shapes.iter().enumerate() {
        assert_eq!(
            cx.cache.get(key).await.unwrap(),
            Some(Bytes::from(n.to_string())),
            "{key:?}"
        );
    }
    let mut listed = cx.cache.keys("*").await.unwrap();
    listed.sort();
    let mut want: Vec<String> = shapes.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(listed, want);
}

pub async fn longest_key_is_accepted(cx: Ctx) {
    let key = "k".repeat(MAX_KEY_LEN);
    cx.cache.set(&key, b("v"), None).await.unwrap();
    assert_eq!(cx.cache.get(&key).await.unwrap(), Some(b("v")));
    let multibyte = "é".repeat(MAX_KEY_LEN / 2);
    cx.cache.set(&multibyte, b("w"), None).await.unwrap();
    assert_eq!(cx.cache.get(&multibyte).await.unwrap(), Some(b("w")));
}

pub async fn ping_answers(cx: Ctx) {
    let rtt = cx.cache.ping().await.unwrap();
    assert!(rtt < std::time::Duration::from_secs(5), "ping took {rtt:?}");
}
