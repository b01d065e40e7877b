//! A tagged `get` over a cache that answers only asynchronously (Redis)
//! reads a hinted key's entry and its tag's version at once (`hints.rs`),
//! and a hint that turns out wrong or old costs a read, never an answer.
//!
//! The cache below is moka behind a probe that offers no `get_now` (so
//! every read goes the asynchronous way, as on Redis) and counts the calls
//! that read (`get`, `get_many`) and the keys they read. A `get_many` reads
//! its keys one by one, as a Redis Cluster may (the keys on their own
//! nodes), and can run an invalidation and a rewrite between the version's
//! read and the entry's.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cache_port::{Cache, Result};
use cache_store::layer::CacheStore;
use cache_store::{CacheBuilder, Reply, Request, Store};
use cache_tags::TaggedCache;
use futures::future::BoxFuture;

/// What runs inside an entry's `get`, after the version's has answered.
type Meanwhile = Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>;

#[derive(Default)]
struct Counts {
    /// Calls that read.
    calls: AtomicUsize,
    /// Keys they read.
    keys: AtomicUsize,
}

struct Probe {
    inner: CacheStore<dyn Cache>,
    /// The same moka, for a `get_many`'s keys one by one.
    moka: Arc<dyn Cache>,
    counts: Arc<Counts>,
    /// Run once by the next `get_many` naming this key, after its other
    /// keys were read and before this one is.
    meanwhile: Arc<Mutex<Option<(String, Meanwhile)>>>,
    /// Tag versions at hand under a watch that always holds (as a tiered
    /// cache's L1 gives them).
    watch_versions: bool,
}

struct Still;

impl cache_port::Watched for Still {
    fn unchanged(&self, _: &cache_port::Stamp) -> bool {
        true
    }
}

impl Store for Probe {
    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        let counts = &self.counts;
        match request {
            Request::Get { key } => {
                counts.calls.fetch_add(1, SeqCst);
                counts.keys.fetch_add(1, SeqCst);
                self.inner.call(Request::Get { key }).await
            }
            Request::GetMany { keys } => {
                counts.calls.fetch_add(1, SeqCst);
                counts.keys.fetch_add(keys.len(), SeqCst);
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                let hooked = {
                    let mut slot = self.meanwhile.lock().unwrap();
                    match slot.take() {
                        Some((key, run)) if keys.contains(&key) => Some((key, run)),
                        other => {
                            *slot = other;
                            None
                        }
                    }
                };
                let mut values = vec![None; keys.len()];
                let (first, last): (Vec<usize>, Vec<usize>) = (0..keys.len())
                    .partition(|&i| hooked.as_ref().is_none_or(|(key, _)| *key != keys[i]));
                for i in first {
                    values[i] = self.moka.get(&keys[i]).await?;
                }
                if let Some((_, run)) = hooked {
                    run().await;
                }
                for i in last {
                    values[i] = self.moka.get(&keys[i]).await?;
                }
                Ok(Reply::Values(values))
            }
            other => self.inner.call(other).await,
        }
    }

    fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
        if !self.watch_versions || !key.starts_with("__tag:") {
            return None;
        }
        let value = self.moka.get_now(key)?.ok()??;
        let watch = cache_port::Watch::new(Arc::new(Still), cache_port::Stamp([0; 3]), None);
        Some((value, watch))
    }

    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }
}

struct Setup {
    /// The view under test, over the probe.
    view: TaggedCache,
    /// Another view over the same moka, not through the probe.
    other: TaggedCache,
    counts: Arc<Counts>,
    meanwhile: Arc<Mutex<Option<(String, Meanwhile)>>>,
}

fn setup() -> Setup {
    setup_with(false)
}

fn setup_with(watch_versions: bool) -> Setup {
    let moka: Arc<dyn Cache> = Arc::new(cache_moka::MokaConfig::default().build().unwrap());
    let counts = Arc::new(Counts::default());
    let meanwhile = Arc::new(Mutex::new(None));
    let probe = Probe {
        inner: CacheStore::shared(Arc::clone(&moka)),
        moka: Arc::clone(&moka),
        counts: Arc::clone(&counts),
        meanwhile: Arc::clone(&meanwhile),
        watch_versions,
    };
    let below: Arc<dyn Cache> = CacheBuilder::new(probe).build();
    Setup {
        view: TaggedCache::new(below),
        other: TaggedCache::new(moka),
        counts,
        meanwhile,
    }
}

impl Setup {
    /// `view.get(key)` with the number of calls that read and of keys
    /// they read.
    async fn read(&self, key: &str) -> (Option<Bytes>, usize, usize) {
        self.counts.calls.store(0, SeqCst);
        self.counts.keys.store(0, SeqCst);
        let got = self.view.get(key).await.unwrap();
        (
            got,
            self.counts.calls.load(SeqCst),
            self.counts.keys.load(SeqCst),
        )
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn a_hinted_read_asks_for_the_entry_and_its_version_at_once() {
    let s = setup();
    s.view.set("k", b("v"), None, &["t"]).await.unwrap();
    // First read: no hint yet; the entry, then its version.
    assert_eq!(s.read("k").await, (Some(b("v")), 2, 2));
    // From then on both in one call.
    assert_eq!(s.read("k").await, (Some(b("v")), 1, 2));
    assert_eq!(s.read("k").await, (Some(b("v")), 1, 2));
    // An untagged key gets no hint: one key read.
    s.view.set("u", b("u"), None, &[] as &[&str]).await.unwrap();
    assert_eq!(s.read("u").await, (Some(b("u")), 1, 1));
    assert_eq!(s.read("u").await, (Some(b("u")), 1, 1));
}

/// Where the version is at hand (kept under a watch, as on a tiered cache,
/// whose L1 hits still go the asynchronous way one read in 16 to spend
/// tokio's budget), a read of the entry alone needs no hint: none is made,
/// and the read stays a read of one key.
#[tokio::test]
async fn a_version_at_hand_makes_no_hint() {
    let s = setup_with(true);
    s.view.set("k", b("v"), None, &["t"]).await.unwrap();
    for _ in 0..3 {
        assert_eq!(s.read("k").await, (Some(b("v")), 1, 1));
    }
}

#[tokio::test]
async fn a_hint_for_another_tag_or_for_none_costs_a_read_never_an_answer() {
    let s = setup();
    s.view.set("k", b("v1"), None, &["a"]).await.unwrap();
    s.read("k").await;
    // Rewritten with another tag: the hinted version is of no use; the
    // right one is read after, and the hint follows.
    s.other.set("k", b("v2"), None, &["b"]).await.unwrap();
    assert_eq!(s.read("k").await, (Some(b("v2")), 2, 3));
    assert_eq!(s.read("k").await, (Some(b("v2")), 1, 2));
    // Invalidating the new tag hides it, hinted or not.
    s.other.delete_by_tag("b").await.unwrap();
    assert_eq!(s.read("k").await.0, None);
    // Rewritten untagged: read as is, and the hint is dropped.
    s.view.set("k", b("v3"), None, &["b"]).await.unwrap();
    s.read("k").await;
    s.other
        .set("k", b("v4"), None, &[] as &[&str])
        .await
        .unwrap();
    assert_eq!(s.read("k").await, (Some(b("v4")), 1, 2));
    assert_eq!(s.read("k").await, (Some(b("v4")), 1, 1));
}

/// The version read with the entry can be older than the entry: here the
/// version answers first, then the tag is invalidated and the entry
/// rewritten under the new version, then the entry is read. The entry does
/// not match the early version, and must not be taken for stale (removed,
/// a miss): the version is read again and the new entry is read back.
#[tokio::test]
async fn an_entry_rewritten_after_its_hinted_version_was_read_is_read_back() {
    let s = setup();
    s.view.set("k", b("old"), None, &["t"]).await.unwrap();
    s.read("k").await;
    let other = s.other.clone();
    *s.meanwhile.lock().unwrap() = Some((
        "k".into(),
        Box::new(move || {
            Box::pin(async move {
                other.delete_by_tag("t").await.unwrap();
                other.set("k", b("new"), None, &["t"]).await.unwrap();
            })
        }),
    ));
    let (got, calls, _) = s.read("k").await;
    assert_eq!(
        got,
        Some(b("new")),
        "the entry written after the invalidation"
    );
    assert_eq!(calls, 2, "the version read again");
    assert_eq!(
        s.other.get("k").await.unwrap(),
        Some(b("new")),
        "not removed"
    );
}

/// The other order: the entry answers first (the old one), then the tag
/// is invalidated, then the version is read. The old entry began before
/// the invalidation returned, so it may be hidden; it must not be shown
/// by a later read.
#[tokio::test]
async fn an_entry_invalidated_while_it_is_read_is_never_shown_after() {
    let s = setup();
    s.view.set("k", b("old"), None, &["t"]).await.unwrap();
    s.read("k").await;
    s.other.delete_by_tag("t").await.unwrap();
    assert_eq!(s.read("k").await.0, None);
    assert_eq!(s.other.get("k").await.unwrap(), None, "removed");
}
