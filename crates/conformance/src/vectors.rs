//! keys and delete_pattern against a real Redis's recorded answers
//! (`vectors/redis-glob.json`: 82 patterns over 62 keys, from redis-server 7.0.15).

use std::collections::BTreeSet;

use bytes::Bytes;
use cache_port::ErrorKind;
use serde::Deserialize;

use crate::Ctx;

#[derive(Deserialize)]
struct Vectors {
    keys: Vec<String>,
    patterns: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    pattern: String,
    matches: Vec<String>,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("../vectors/redis-glob.json")).expect("vectors parse")
}

/// Patterns the contract names as refused, whatever else the validator refuses.
const MUST_REFUSE: &[&str] = &["", "a\\", "\\", "[abc", "[^", "user:[", "[a-"];

async fn seed(cx: &Ctx, keys: &[String]) {
    let items = keys
        .iter()
        .map(|k| (k.clone(), Bytes::from_static(b"v")))
        .collect();
    cx.cache.set_many(items, None).await.unwrap();
}

pub async fn keys_answers_as_redis_on_every_vector(cx: Ctx) {
    let v = vectors();
    seed(&cx, &v.keys).await;
    let (mut accepted, mut refused) = (0, 0);
    for row in &v.patterns {
        match cx.cache.keys(&row.pattern).await {
            Ok(found) => {
                assert!(
                    !MUST_REFUSE.contains(&row.pattern.as_str()),
                    "{:?} must be refused",
                    row.pattern
                );
                let found: BTreeSet<_> = found.into_iter().collect();
                let want: BTreeSet<_> = row.matches.iter().cloned().collect();
                assert_eq!(found, want, "keys({:?})", row.pattern);
                accepted += 1;
            }
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::InvalidPattern,
                    "keys({:?}): {e}",
                    row.pattern
                );
                refused += 1;
            }
        }
    }
    assert_eq!(accepted + refused, v.patterns.len());
    assert!(
        accepted >= 60,
        "only {accepted} of the recorded patterns were accepted"
    );
}

pub async fn delete_pattern_answers_as_redis_on_every_vector(cx: Ctx) {
    let v = vectors();
    let all: BTreeSet<String> = v.keys.iter().cloned().collect();
    for row in &v.patterns {
        seed(&cx, &v.keys).await;
        match cx.cache.delete_pattern(&row.pattern).await {
            Ok(n) => assert_eq!(
                n as usize,
                row.matches.len(),
                "delete_pattern({:?}) count",
                row.pattern
            ),
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::InvalidPattern,
                    "delete_pattern({:?}): {e}",
                    row.pattern
                );
                let left: BTreeSet<String> =
                    cx.cache.keys("*").await.unwrap().into_iter().collect();
                assert_eq!(
                    left, all,
                    "a refused pattern {:?} deleted something",
                    row.pattern
                );
                continue;
            }
        }
        let left: BTreeSet<String> = cx.cache.keys("*").await.unwrap().into_iter().collect();
        let want: BTreeSet<String> = all
            .iter()
            .filter(|k| !row.matches.contains(k))
            .cloned()
            .collect();
        assert_eq!(
            left, want,
            "keys left after delete_pattern({:?})",
            row.pattern
        );
    }
}
