//! What only the in-process adapter has: a byte bound, LRU eviction, shared
//! stores, its configuration errors.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_moka::MokaConfig;
use cache_port::{Cache, ErrorKind};

fn value(len: usize) -> Bytes {
    Bytes::from(vec![b'v'; len])
}

/// 4,000 entries of 1 KiB into a store of 1 MiB: about four times its
/// capacity.
async fn overfill(config: MokaConfig) -> cache_moka::MokaCache {
    let cache = config.capacity_bytes(1024 * 1024).build().unwrap();
    for i in 0..4000 {
        cache
            .set(&format!("k{i}"), value(1024), None)
            .await
            .unwrap();
    }
    cache
}

#[tokio::test]
async fn the_store_stays_within_its_byte_bound_and_counts_evictions() {
    let cache = overfill(MokaConfig::default()).await;
    let stats = cache.stats().await.unwrap();
    assert!(stats.bytes.unwrap() <= 1024 * 1024, "{stats:?}");
    assert!(stats.evictions.is_some_and(|n| n > 2000), "{stats:?}");
    assert!(stats.entries.unwrap() < 1000, "{stats:?}");
    // Least recently used went first: the newest entry is still there.
    assert!(cache.exists("k3999").await.unwrap());
    assert!(!cache.exists("k0").await.unwrap());
}

#[tokio::test]
async fn without_eviction_counting_the_bound_and_lru_hold_and_evictions_are_unknown() {
    let cache = overfill(MokaConfig::default().count_evictions(false)).await;
    let stats = cache.stats().await.unwrap();
    assert!(stats.bytes.unwrap() <= 1024 * 1024, "{stats:?}");
    assert!(stats.entries.unwrap() < 1000, "{stats:?}");
    assert_eq!(stats.evictions, None, "not counted, and not a made-up 0");
    assert!(cache.exists("k3999").await.unwrap());
    assert!(!cache.exists("k0").await.unwrap());
}

#[tokio::test]
async fn a_just_written_key_is_readable_in_a_full_store() {
    let cache = MokaConfig::default()
        .capacity_bytes(64 * 1024)
        .build()
        .unwrap();
    for i in 0..2000 {
        let key = format!("k{i}");
        cache.set(&key, value(100), None).await.unwrap();
        assert!(
            cache.get(&key).await.unwrap().is_some(),
            "set then get failed for {key}"
        );
    }
}

#[tokio::test]
async fn recently_read_entries_survive_eviction() {
    let cache = MokaConfig::default()
        .capacity_bytes(256 * 1024)
        .build()
        .unwrap();
    cache.set("hot", value(100), None).await.unwrap();
    for i in 0..5000 {
        cache
            .set(&format!("cold{i}"), value(100), None)
            .await
            .unwrap();
        if i % 50 == 0 {
            assert!(
                cache.get("hot").await.unwrap().is_some(),
                "hot key evicted at {i}"
            );
        }
    }
}

#[tokio::test]
async fn value_limit_is_at_most_the_capacity() {
    let cache = MokaConfig::default()
        .capacity_bytes(1024 * 1024)
        .build()
        .unwrap();
    let limit = cache.max_value_len();
    assert!(limit < 1024 * 1024 && limit > 1000 * 1000, "{limit}");
    let err = cache.set("big", value(limit + 1), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    cache.set("big", value(limit), None).await.unwrap();
    assert_eq!(
        cache.get("big").await.unwrap().map(|v| v.len()),
        Some(limit)
    );
}

#[test]
fn bad_configurations_are_errors() {
    let kind = |c: MokaConfig| c.build().unwrap_err().kind();
    assert_eq!(
        kind(MokaConfig::default().capacity_bytes(0)),
        ErrorKind::Config
    );
    assert_eq!(
        kind(MokaConfig::default().capacity_bytes(4096)),
        ErrorKind::Config
    );
    assert_eq!(
        kind(MokaConfig::default().max_value_len(0)),
        ErrorKind::Config
    );
    assert_eq!(
        kind(
            MokaConfig::default()
                .capacity_bytes(1 << 20)
                .max_value_len(2 << 20)
        ),
        ErrorKind::Config
    );
    assert_eq!(kind(MokaConfig::default().namespace("")), ErrorKind::Config);
    assert_eq!(
        MokaConfig::default()
            .build()
            .unwrap()
            .namespaced("")
            .unwrap_err()
            .kind(),
        ErrorKind::Config
    );
}

#[tokio::test]
async fn namespaces_share_one_store() {
    let root = MokaConfig::default().build().unwrap();
    let a = root.namespaced("a").unwrap();
    let b = root.namespaced("b").unwrap();
    a.set("k", Bytes::from_static(b"in a"), None).await.unwrap();
    b.set("k", Bytes::from_static(b"in b"), None).await.unwrap();
    assert_eq!(a.namespace(), Some("a"));
    // The root view sees the store keys, prefixes included.
    let mut all = root.keys("*").await.unwrap();
    all.sort();
    assert_eq!(all, vec!["a:k", "b:k"]);
    // Without a namespace, clear empties the whole (private) store.
    root.clear().await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn debug_output_is_short_and_useful() {
    let cache = MokaConfig::default().namespace("app").build().unwrap();
    let text = format!("{cache:?}");
    assert!(
        text.contains("app") && text.contains("capacity_bytes"),
        "{text}"
    );
}

#[tokio::test]
async fn long_ttls_do_not_overflow_the_clock() {
    let cache = MokaConfig::default().build().unwrap();
    cache
        .set("k", value(1), Some(cache_port::MAX_TTL))
        .await
        .unwrap();
    cache
        .set(
            "k2",
            value(1),
            Some(Duration::from_secs(60 * 365 * 24 * 3600)),
        )
        .await
        .unwrap();
    assert!(cache.get("k").await.unwrap().is_some());
    assert!(cache.get("k2").await.unwrap().is_some());
}

/// Every public future is `Send`, so the adapter works on any executor.
#[test]
fn futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let cache: Arc<dyn Cache> = Arc::new(MokaConfig::default().build().unwrap());
    is_send(&cache.get("k"));
    is_send(&cache.set("k", Bytes::new(), None));
    is_send(&cache.get_many(&[]));
    is_send(&cache.delete_pattern("*"));
    is_send(&cache.incr("k", 1, None));
    is_send(&cache.clear());
    is_send(&cache.stats());
    let concrete = MokaConfig::default().build().unwrap();
    is_send(&concrete.get("k"));
    is_send(&concrete.keys("*"));
}

/// Issue 11, item 1: a key removed by `clear()` on the root view (no
/// namespace) no longer counts as deleted, as on Redis. moka's lazy
/// `invalidate_all` used to hand the cleared entry back to `remove`.
#[tokio::test]
async fn a_key_cleared_from_the_root_view_is_gone_for_every_operation() {
    let cache = MokaConfig::default().build().unwrap();
    assert_eq!(cache.incr("a", 188, None).await.unwrap(), 188);
    cache.set("b", value(3), None).await.unwrap();
    cache.clear().await.unwrap();
    assert_eq!(cache.delete_many(&["a".into()]).await.unwrap(), 0);
    assert!(!cache.delete("b").await.unwrap());
    assert_eq!(cache.incr("a", 1, None).await.unwrap(), 1);
    assert_eq!(cache.stats().await.unwrap().deletes, 0);
}

/// Issue 11, item 10: a maximal key with a maximal value under a namespace
/// could never fit the store; it is refused, not accepted and dropped.
#[tokio::test]
async fn an_entry_that_could_never_fit_is_refused_not_dropped() {
    let cache = MokaConfig::default()
        .capacity_bytes(64 * 1024)
        .namespace("a-rather-long-namespace")
        .build()
        .unwrap();
    let key = "k".repeat(cache_port::MAX_KEY_LEN);
    let limit = cache.max_value_len();
    let err = cache.set(&key, value(limit), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    let err = cache
        .set_many(vec![(key.clone(), value(limit))], None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{err}");
    assert!(cache.set_if_absent(&key, value(1), None).await.unwrap());
    // What fits is kept: the largest value the message names is accepted.
    let fits = cache
        .set(&key, value(limit), None)
        .await
        .unwrap_err()
        .to_string();
    let named: usize = fits
        .rsplit(" of ")
        .next()
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    cache.set(&key, value(named), None).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().map(|v| v.len()), Some(named));
}

/// Issue 11, item 12: `keys` states its limit: past it the call fails with
/// `TooManyKeys` instead of collecting without bound.
#[tokio::test]
async fn keys_refuses_past_its_limit() {
    let store = MokaConfig::default().build_store().unwrap();
    let cache = cache_store::CacheBuilder::new(store)
        .keys_limit(10)
        .namespace("limited")
        .unwrap()
        .build();
    for i in 0..10 {
        cache.set(&format!("k{i}"), value(1), None).await.unwrap();
    }
    assert_eq!(cache.keys("*").await.unwrap().len(), 10);
    cache.set("k10", value(1), None).await.unwrap();
    let err = cache.keys("*").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyKeys, "{err}");
    assert!(err.to_string().contains("more than 10 keys"), "{err}");
    assert_eq!(
        cache.keys("k1*").await.unwrap().len(),
        2,
        "a narrower pattern works"
    );
}

/// Issue 11, item 3: every key `keys` lists can be read back through the
/// same view. A root view over a store holding `n:` + a 4,096-byte key (a
/// longest key written under a namespace) does not list it: it is longer
/// than any key the root view can `get`.
#[tokio::test]
async fn a_root_view_does_not_list_keys_it_cannot_read() {
    let root = MokaConfig::default().build().unwrap();
    let child = root.namespaced("n").unwrap();
    let longest = "k".repeat(cache_port::MAX_KEY_LEN);
    child.set(&longest, value(1), None).await.unwrap();
    child.set("short", value(1), None).await.unwrap();
    let listed = root.keys("*").await.unwrap();
    assert_eq!(listed, vec!["n:short".to_owned()]);
    for key in &listed {
        assert!(root.get(key).await.unwrap().is_some());
    }
}

/// `namespaced(child)` nests (issue 11: pick one and test it): `a` →
/// `a:x`, whose keys are `a`'s keys under `x:`, and `a`'s clear clears it.
#[tokio::test]
async fn namespaced_views_nest() {
    let root = MokaConfig::default().build().unwrap();
    let a = root.namespaced("a").unwrap();
    let ax = a.namespaced("x").unwrap();
    assert_eq!(ax.namespace(), Some("a:x"));
    ax.set("k", value(1), None).await.unwrap();
    assert!(a.exists("x:k").await.unwrap());
    assert!(root.exists("a:x:k").await.unwrap());
    assert_eq!(a.namespaced("").unwrap_err().kind(), ErrorKind::Config);
    assert_eq!(a.namespaced(":x").unwrap_err().kind(), ErrorKind::Config);
    a.clear().await.unwrap();
    assert!(!ax.exists("k").await.unwrap());
}

/// Issue 23, item 4: `max_value_len()` said 1,044,032 bytes for a 1 MiB
/// store, and a value of that length under a namespaced 4 KiB key was
/// refused with an error that named neither the limit that applied nor by
/// how much it was missed. The error now says which limit, and its `limit`
/// is exact: that many bytes fit beside that key, one more does not.
#[tokio::test]
async fn a_value_too_large_for_its_key_says_which_limit_and_by_how_much() {
    use cache_port::CacheError;
    let cache = MokaConfig::default()
        .capacity_bytes(1024 * 1024)
        .namespace("tenant:eu")
        .build()
        .unwrap();
    let key = "k".repeat(cache_port::MAX_KEY_LEN);
    let advertised = cache.max_value_len();
    let err = cache.set(&key, value(advertised), None).await.unwrap_err();
    let CacheError::ValueTooLarge { len, limit, which } = err else {
        panic!("expected ValueTooLarge, got {err:?}");
    };
    assert_eq!(len, advertised);
    assert_eq!(which, CacheError::ENTRY_LIMIT);
    assert!(limit < advertised, "{limit} < {advertised}");
    let said = CacheError::ValueTooLarge { len, limit, which }.to_string();
    assert!(
        said.contains(&format!("{} bytes over", len - limit))
            && said.contains(&format!("of {limit} bytes"))
            && said.contains("beside this key"),
        "{said}"
    );
    // The limit is exact for this key.
    cache.set(&key, value(limit), None).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().map(|v| v.len()), Some(limit));
    let err = cache.set(&key, value(limit + 1), None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    // A value over max_value_len itself names that limit.
    let err = cache
        .set("short", value(advertised + 1), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CacheError::ValueTooLarge { which, .. } if which == CacheError::MAX_VALUE_LEN_LIMIT),
        "{err:?}"
    );
}
