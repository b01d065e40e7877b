//! The tagged view as a cache port: a `Loader` over it writes each entry
//! with the tags a rule derives from the loaded value (in a background
//! refresh too), and an invalidated entry is missing to every operation.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_loading::{LoadOptions, Loader};
use cache_port::{Cache, TtlState};
use cache_tags::{by_value, TaggedCache};

fn moka() -> Arc<dyn Cache> {
    Arc::new(cache_moka::MokaConfig::default().build().unwrap())
}

/// A listing page: the ids of the products it shows.
type Page = Vec<u64>;

fn tagged_by_products(cache: Arc<dyn Cache>) -> TaggedCache {
    TaggedCache::new(cache).tag_with(by_value(|_key: &str, page: &Page| {
        page.iter().map(|id| format!("product:{id}")).collect()
    }))
}

#[tokio::test]
async fn a_loader_over_the_view_tags_what_it_loads_from_the_value() {
    let view = tagged_by_products(moka());
    let loader: Loader<std::io::Error> = Loader::new(Arc::new(view.clone()));
    let loads = Arc::new(AtomicU64::new(0));
    let load = |page: Page| {
        let loads = Arc::clone(&loads);
        move || async move {
            loads.fetch_add(1, SeqCst);
            Ok::<_, std::io::Error>(page)
        }
    };
    let ttl = Some(Duration::from_secs(300));
    let first: Page = loader
        .get_or_load("page:1", ttl, load(vec![7, 9]))
        .await
        .unwrap();
    let other: Page = loader
        .get_or_load("page:2", ttl, load(vec![8]))
        .await
        .unwrap();
    assert_eq!((first, other, loads.load(SeqCst)), (vec![7, 9], vec![8], 2));
    // Hits: no load.
    let _: Page = loader
        .get_or_load("page:1", ttl, load(vec![0]))
        .await
        .unwrap();
    assert_eq!(loads.load(SeqCst), 2);

    // Product 9 changed: the page that shows it is loaded again, the other not.
    view.delete_by_tag("product:9").await.unwrap();
    let again: Page = loader
        .get_or_load("page:1", ttl, load(vec![7, 9, 10]))
        .await
        .unwrap();
    let still: Page = loader
        .get_or_load("page:2", ttl, load(vec![0]))
        .await
        .unwrap();
    assert_eq!(
        (again, still, loads.load(SeqCst)),
        (vec![7, 9, 10], vec![8], 3)
    );
    // The reload was tagged from its new value.
    view.delete_by_tag("product:10").await.unwrap();
    assert_eq!(view.get("page:1").await.unwrap(), None);
}

#[tokio::test]
async fn an_eager_refresh_writes_with_the_tags_of_the_refreshed_value() {
    let view = tagged_by_products(moka());
    let loader: Loader<std::io::Error> = Loader::new(Arc::new(view.clone()));
    let options = LoadOptions::ttl(Duration::from_millis(400)).eager_refresh(0.1);
    let _: Page = loader
        .get_or_load_with("page", options, || async { Ok(vec![1]) })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    // Past a tenth of its TTL: this read answers and refreshes in the
    // background, with a value that shows product 2.
    let _: Page = loader
        .get_or_load_with("page", options, || async { Ok(vec![2]) })
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let page: Option<Page> = view
            .get("page")
            .await
            .unwrap()
            .map(|b| cache_port::typed::decode(&b).unwrap());
        if page == Some(vec![2]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never landed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The refreshed entry carries product 2's tag (a task-local would have
    // been lost in the background task).
    view.delete_by_tag("product:2").await.unwrap();
    assert_eq!(view.get("page").await.unwrap(), None);
}

#[tokio::test]
async fn an_invalidated_entry_is_missing_to_every_operation_of_the_port() {
    let view = TaggedCache::new(moka());
    let port: &dyn Cache = &view;
    let write = || async {
        view.set(
            "k",
            Bytes::from_static(b"5"),
            Some(Duration::from_secs(60)),
            &["t"],
        )
        .await
        .unwrap();
        view.delete_by_tag("t").await.unwrap();
    };
    write().await;
    assert!(!port.exists("k").await.unwrap());
    write().await;
    assert_eq!(port.ttl("k").await.unwrap(), TtlState::Missing);
    write().await;
    assert!(!port.expire("k", Duration::from_secs(5)).await.unwrap());
    write().await;
    assert!(!port
        .delete_if_equals("k", Bytes::from_static(b"5"))
        .await
        .unwrap());
    write().await;
    assert!(port
        .set_if_absent("k", Bytes::from_static(b"new"), None)
        .await
        .unwrap());
    assert_eq!(
        port.get("k").await.unwrap(),
        Some(Bytes::from_static(b"new"))
    );
    write().await;
    assert_eq!(
        port.incr("k", 2, None).await.unwrap(),
        2,
        "a counter from zero"
    );
    // A live tagged entry: compare-and-delete compares the value, not the header.
    view.set("live", Bytes::from_static(b"v"), None, &["u"])
        .await
        .unwrap();
    assert!(!port
        .delete_if_equals("live", Bytes::from_static(b"w"))
        .await
        .unwrap());
    assert!(port
        .delete_if_equals("live", Bytes::from_static(b"v"))
        .await
        .unwrap());
    assert!(!port.exists("live").await.unwrap());
}

/// `Cache::get_now` on the view answers as `get` wherever it answers: at
/// hand over moka for plain values, untagged and one-tag entries that are
/// fresh; never for a stale entry (left to `get`, which removes it) or one
/// with several tags; a bad key is refused as by `get`.
#[tokio::test]
async fn get_now_answers_as_get_wherever_it_answers() {
    let view = TaggedCache::new(moka());
    let cache: &dyn Cache = &view;
    let ttl = None;
    view.cache()
        .set("plain", Bytes::from_static(b"p"), ttl)
        .await
        .unwrap();
    view.set("untagged", Bytes::from_static(b"u"), ttl, &[] as &[&str])
        .await
        .unwrap();
    view.set("one", Bytes::from_static(b"1"), ttl, &["a"])
        .await
        .unwrap();
    view.set("two", Bytes::from_static(b"2"), ttl, &["a", "b"])
        .await
        .unwrap();
    view.set("stale", Bytes::from_static(b"s"), ttl, &["c"])
        .await
        .unwrap();
    view.delete_by_tag("c").await.unwrap();
    for (key, at_hand) in [
        ("plain", true),
        ("untagged", true),
        ("one", true),
        ("missing", true),
        ("two", false),
        ("stale", false),
    ] {
        let now = cache.get_now(key);
        assert_eq!(now.is_some(), at_hand, "{key}");
        let got = cache.get(key).await.unwrap();
        if let Some(now) = now {
            assert_eq!(now.unwrap(), got, "{key}");
        }
    }
    assert_eq!(cache.get("two").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(cache.get("stale").await.unwrap(), None);
    assert_eq!(view.cache().get("stale").await.unwrap(), None, "removed");
    let refused = cache.get_now("").expect("refused at once").unwrap_err();
    assert_eq!(refused.kind(), cache.get("").await.unwrap_err().kind());
}

/// The port's docs: a `MockCache` under the tagged view answers through
/// its mocked `get` (its `get_now` is not mocked: "not at hand").
#[tokio::test]
async fn a_mock_under_the_view_answers_through_get() {
    let mut mock = cache_port::MockCache::new();
    mock.expect_get()
        .returning(|_| Ok(Some(Bytes::from_static(b"plain"))));
    let view = TaggedCache::new(Arc::new(mock));
    assert_eq!(view.get("k").await.unwrap().as_deref(), Some(&b"plain"[..]));
}
