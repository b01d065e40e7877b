//! Issue 26: tags over a tiered deployment. The tags' versions are ordinary
//! keys, so the tiered cache's coherence covers them: an invalidation on
//! one instance hides the tag's entries on every other instance within the
//! tiered cache's staleness bound, even where those entries and the
//! version sit in the other instance's L1. Measured as the time from
//! `delete_by_tag` returning on instance A to instance B no longer reading
//! an entry, over 10 rounds of 100 entries (then none of them), reported
//! as p50/p99/max.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::Cache;
use cache_redis_harness::RedisServer;
use cache_tags::TaggedCache;

mod common;
use common::{instance, report, wait_until_serving};

/// The tiered cache's stated staleness bound on loopback.
const BOUND: Duration = Duration::from_millis(100);
const ENTRIES: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_on_one_instance_hides_the_entries_on_every_other_within_the_bound() {
    let server = RedisServer::start();
    let url = server.url();
    let (a, b) = (instance(&url, "tg").await, instance(&url, "tg").await);
    wait_until_serving(&[Arc::clone(&a), Arc::clone(&b)]).await;
    let a_view: Arc<dyn Cache> = a.clone();
    let b_view: Arc<dyn Cache> = b.clone();
    let (on_a, on_b) = (TaggedCache::new(a_view), TaggedCache::new(b_view));
    let keys: Vec<String> = (0..ENTRIES).map(|i| format!("page:{i}")).collect();
    let mut hidden_after = Vec::new();
    let mut shown_after = Vec::new();
    for round in 0..10 {
        let value = Bytes::from(format!("round {round}"));
        let items = keys.iter().map(|k| (k.clone(), value.clone())).collect();
        on_a.set_many(items, None, &["product:7"]).await.unwrap();
        // B reads every entry until it sees this round's (its L1 then
        // holds the entries and the tag's version).
        for key in &keys {
            let deadline = Instant::now() + BOUND;
            while on_b.get(key).await.unwrap() != Some(value.clone()) {
                assert!(
                    Instant::now() < deadline,
                    "{key}: round {round} never reached B"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        on_a.delete_by_tag("product:7").await.unwrap();
        let returned = Instant::now();
        let notices_before = b.base().figures().notices_received;
        // The entries share the tag's version: once B reads one as gone,
        // it reads every one as gone.
        while on_b.get(&keys[0]).await.unwrap().is_some() {
            if returned.elapsed() >= 10 * BOUND {
                // What B knows, for a failure to say where it stuck: the
                // notices it applied since, whether L1 serves, the
                // version at hand (L1, and under a watch) and in Redis.
                let version_key = "__tag:product:7";
                let figures = b.base().figures();
                let at_hand = b.get_now(version_key);
                let watched = b.watch_now(version_key).map(|(v, w)| (v, w.holds()));
                let in_redis = server.command("GET tg:__tag:product:7");
                panic!(
                    "round {round}: B still reads an entry {:?} after the invalidation returned; \
                     notices applied since: {}, figures {figures:?}, version at hand {at_hand:?}, \
                     under a watch {watched:?}, in Redis {in_redis:?}",
                    returned.elapsed(),
                    figures.notices_received - notices_before,
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        hidden_after.push(returned.elapsed());
        let left = on_b.get_many(&keys).await.unwrap();
        assert!(left.iter().all(Option::is_none), "round {round}: {left:?}");
        // A write that began after the invalidation returned reaches B.
        let fresh = Bytes::from(format!("after {round}"));
        on_a.set("page:0", fresh.clone(), None, &["product:7"])
            .await
            .unwrap();
        let written = Instant::now();
        while on_b.get("page:0").await.unwrap() != Some(fresh.clone()) {
            assert!(
                written.elapsed() < 10 * BOUND,
                "the write after never reached B"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        shown_after.push(written.elapsed());
    }
    let hidden = report("tags: entries hidden on B", hidden_after);
    let shown = report("tags: a later write shown on B", shown_after);
    assert!(
        hidden <= BOUND,
        "an invalidated entry was read on B {hidden:?} after"
    );
    assert!(
        shown <= BOUND,
        "a later write reached B only after {shown:?}"
    );
}
