//! Tags (`cache_tags::TaggedCache` over the adapter): one write
//! invalidates every entry of a tag, and the rules of docs/CONTRACT.md
//! ("Tags") hold against the real-time order of calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_port::ErrorKind;
use cache_tags::TaggedCache;

use crate::Ctx;

fn b(text: &str) -> Bytes {
    Bytes::copy_from_slice(text.as_bytes())
}

const NO_TAGS: &[&str] = &[];

pub async fn delete_by_tag_hides_every_entry_of_the_tag_and_spares_the_rest(cx: Ctx) {
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    tagged.set("a", b("A"), None, &["t1"]).await.unwrap();
    tagged.set("b", b("B"), None, &["t1", "t2"]).await.unwrap();
    tagged.set("c", b("C"), None, &["t2"]).await.unwrap();
    tagged.set("d", b("D"), None, NO_TAGS).await.unwrap();
    let keys: Vec<String> = ["a", "b", "c", "d", "missing"].map(String::from).to_vec();
    let all = vec![Some(b("A")), Some(b("B")), Some(b("C")), Some(b("D")), None];
    assert_eq!(tagged.get_many(&keys).await.unwrap(), all);

    tagged.delete_by_tag("t1").await.unwrap();
    assert_eq!(tagged.get("a").await.unwrap(), None);
    assert_eq!(tagged.get("b").await.unwrap(), None);
    assert_eq!(tagged.get("c").await.unwrap(), Some(b("C")));
    assert_eq!(
        tagged.get_many(&keys).await.unwrap(),
        vec![None, None, Some(b("C")), Some(b("D")), None]
    );
    // A write after the invalidation returned is read back.
    tagged.set("a", b("A2"), None, &["t1"]).await.unwrap();
    assert_eq!(tagged.get("a").await.unwrap(), Some(b("A2")));
    // Several tags in one write.
    tagged.delete_by_tags(&["t1", "t2"]).await.unwrap();
    for key in ["a", "c"] {
        assert_eq!(tagged.get(key).await.unwrap(), None, "{key}");
    }
    assert_eq!(tagged.get("d").await.unwrap(), Some(b("D")));
}

pub async fn an_invalidated_entry_is_removed_when_read(cx: Ctx) {
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    tagged
        .set("page", b("v"), None, &["product:7"])
        .await
        .unwrap();
    tagged.delete_by_tag("product:7").await.unwrap();
    assert!(cx.cache.exists("page").await.unwrap(), "removed lazily");
    assert_eq!(tagged.get("page").await.unwrap(), None);
    assert!(
        !cx.cache.exists("page").await.unwrap(),
        "a stale read removes it"
    );
}

pub async fn untagged_values_are_stored_as_given_and_every_value_round_trips(cx: Ctx) {
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    tagged
        .set("plain", b("as given"), None, NO_TAGS)
        .await
        .unwrap();
    assert_eq!(cx.cache.get("plain").await.unwrap(), Some(b("as given")));
    // Values that look like envelopes (0xC1 first) read back as written.
    for (i, value) in [&b"\xC1"[..], b"\xC1T", b"\xC1T\x01\x00", b"\xC1\x01", b""]
        .into_iter()
        .enumerate()
    {
        let value = Bytes::copy_from_slice(value);
        for tags in [NO_TAGS, &["t"][..]] {
            let key = format!("odd{i}:{}", tags.len());
            tagged.set(&key, value.clone(), None, tags).await.unwrap();
            assert_eq!(
                tagged.get(&key).await.unwrap(),
                Some(value.clone()),
                "{key}"
            );
        }
    }
    // And values written by plain `set` (no envelope) read as they are.
    cx.cache.set("raw", b("raw"), None).await.unwrap();
    assert_eq!(tagged.get("raw").await.unwrap(), Some(b("raw")));
}

pub async fn a_lost_version_hides_its_entries_never_shows_them_stale(cx: Ctx) {
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    tagged.set("k", b("v"), None, &["t"]).await.unwrap();
    assert!(tagged.tag_version("t").await.unwrap().is_some());
    // The version key is lost (evicted, flushed, deleted by hand).
    assert!(cx.cache.delete("__tag:t").await.unwrap());
    assert_eq!(tagged.tag_version("t").await.unwrap(), None);
    assert_eq!(tagged.get("k").await.unwrap(), None);
    // A new write creates a new version and is read back.
    tagged.set("k", b("v2"), None, &["t"]).await.unwrap();
    assert_eq!(tagged.get("k").await.unwrap(), Some(b("v2")));
}

pub async fn a_malformed_header_is_a_codec_error(cx: Ctx) {
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    for (i, raw) in [
        &b"\xC1T"[..],
        b"\xC1T\x01\x02",
        b"\xC1T\x09\x00",
        b"\xC1T\x01\x01\0\0\0\0\0\0\0\x01\x05ab",
        // One tag whose name is not UTF-8 (read by a path that checks the
        // name only when its version is not kept).
        b"\xC1T\x01\x01\0\0\0\0\0\0\0\x01\x02\xFF\xFEv",
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("bad{i}");
        cx.cache
            .set(&key, Bytes::copy_from_slice(raw), None)
            .await
            .unwrap();
        let err = tagged.get(&key).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Codec, "{key}: {err}");
    }
}

pub async fn bad_tags_are_refused_and_write_nothing(cx: Ctx) {
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    let long = "t".repeat(cache_tags::MAX_TAG_LEN + 1);
    let many: Vec<String> = (0..=cache_tags::MAX_TAGS_PER_ENTRY)
        .map(|i| format!("t{i}"))
        .collect();
    for tags in [vec![String::new()], vec![long.clone()], many] {
        let err = tagged.set("k", b("v"), None, &tags).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidKey, "{err}");
        assert!(!cx.cache.exists("k").await.unwrap());
    }
    let err = tagged.delete_by_tag("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
    let err = tagged.delete_by_tags(&[long]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidKey);
}

/// The rules against the real-time order (issue 26's race test): 64 tasks
/// write tagged entries while two others invalidate the tag, three times
/// each; every call's start and end are stamped from one sequence.
/// Afterwards an entry whose write ended before some invalidation started
/// is never read, and one whose write started after the last invalidation
/// ended is always read; both kinds must have been seen (the counts are
/// printed with `--nocapture`).
pub async fn invalidations_race_writers_by_the_rules(cx: Ctx) {
    const WRITERS: usize = 64;
    const INVALIDATORS: usize = 2;
    const ROUNDS: usize = 3;
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    let stamps = Arc::new(AtomicU64::new(0));
    // The stamp of the latest write begun.
    let latest = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (tagged, stamps, stop) = (tagged.clone(), Arc::clone(&stamps), Arc::clone(&stop));
            let latest_start = Arc::clone(&latest);
            tokio::spawn(async move {
                let mut writes = Vec::new();
                let mut i = 0;
                // Bounded: until told to stop, or 500 writes.
                while !stop.load(SeqCst) && i < 500 {
                    let key = format!("w{w}:{i}");
                    let start = stamps.fetch_add(1, SeqCst);
                    latest_start.fetch_max(start, SeqCst);
                    tagged.set(&key, b(&key), None, &["hot"]).await.unwrap();
                    let end = stamps.fetch_add(1, SeqCst);
                    writes.push((key, start, end));
                    i += 1;
                    tokio::task::yield_now().await;
                }
                writes
            })
        })
        .collect();
    let invalidators: Vec<_> = (0..INVALIDATORS)
        .map(|_| {
            let (tagged, stamps) = (tagged.clone(), Arc::clone(&stamps));
            tokio::spawn(async move {
                let mut spans = Vec::new();
                for _ in 0..ROUNDS {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    let start = stamps.fetch_add(1, SeqCst);
                    tagged.delete_by_tag("hot").await.unwrap();
                    spans.push((start, stamps.fetch_add(1, SeqCst)));
                }
                spans
            })
        })
        .collect();
    let mut invalidations = Vec::new();
    for invalidator in invalidators {
        invalidations.extend(invalidator.await.unwrap());
    }
    // Writes begun after the last invalidation returned are what the
    // "shown" side checks: wait for some (a fixed 20 ms saw none once on a
    // busy machine, every writer still in a write begun before), bounded.
    let last_end = invalidations.iter().map(|(_, end)| *end).max().unwrap();
    let waiting = std::time::Instant::now();
    while latest.load(SeqCst) <= last_end + WRITERS as u64
        && waiting.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, SeqCst);
    let mut writes = Vec::new();
    for writer in writers {
        writes.extend(writer.await.unwrap());
    }
    let (mut hidden, mut shown) = (0, 0);
    for chunk in writes.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|(k, _, _)| k.clone()).collect();
        let read = tagged.get_many(&keys).await.unwrap();
        for ((key, start, end), got) in chunk.iter().zip(read) {
            if invalidations.iter().any(|(inv_start, _)| end < inv_start) {
                assert_eq!(got, None, "{key} was written before an invalidation began");
                hidden += 1;
            } else if *start > last_end {
                assert_eq!(
                    got,
                    Some(b(key)),
                    "{key} was written after the last one returned"
                );
                shown += 1;
            }
        }
    }
    eprintln!(
        "tags race: {} writes, {} invalidations; {hidden} reads checked hidden, {shown} checked shown",
        writes.len(),
        invalidations.len()
    );
    assert!(
        hidden > 0 && shown > 0,
        "the run proved nothing: {hidden} writes before, {shown} after the invalidations"
    );
}

/// Readers on the one-key path (`get`, which keeps tag versions under a
/// watch where the cache gives one: the tiered cache's L1) while the tag
/// is invalidated and its entries rewritten, three rounds (one more entry,
/// `once`, is written in round 0 only): a `get` that began after
/// invalidation `r` returned never answers a value written before it
/// (round < `r`). Every call is stamped from one sequence; the
/// number of reads checked is printed with `--nocapture`.
pub async fn one_key_reads_never_see_an_entry_after_its_invalidation(cx: Ctx) {
    const READERS: usize = 8;
    const KEYS: usize = 16;
    const ROUNDS: u64 = 3;
    let tagged = TaggedCache::new(Arc::clone(&cx.cache));
    let mut keys: Vec<String> = (0..KEYS).map(|i| format!("r{i}")).collect();
    keys.push("once".into());
    let keys = Arc::new(keys);
    let write_round = |round: u64| {
        let (tagged, keys) = (tagged.clone(), Arc::clone(&keys));
        async move {
            let rewritten = if round == 0 { KEYS + 1 } else { KEYS };
            for key in &keys[..rewritten] {
                let value = b(&format!("{round}"));
                tagged.set(key, value, None, &["read-hot"]).await.unwrap();
            }
        }
    };
    write_round(0).await;
    let stamps = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (tagged, keys) = (tagged.clone(), Arc::clone(&keys));
            let (stamps, stop) = (Arc::clone(&stamps), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut reads = Vec::new();
                // Bounded: until told to stop, or 20,000 reads.
                let mut i = r;
                while !stop.load(SeqCst) && reads.len() < 20_000 {
                    let start = stamps.fetch_add(1, SeqCst);
                    let got = tagged.get(&keys[i % keys.len()]).await.unwrap();
                    let round = got.map(|v| String::from_utf8_lossy(&v).parse::<u64>().unwrap());
                    reads.push((start, round));
                    i += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    // Invalidation `r` returned at `ended[r - 1]`; round `r` is written after.
    let mut ended = Vec::new();
    for round in 1..=ROUNDS {
        tokio::time::sleep(Duration::from_millis(20)).await;
        tagged.delete_by_tag("read-hot").await.unwrap();
        ended.push(stamps.fetch_add(1, SeqCst));
        write_round(round).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.store(true, SeqCst);
    let (mut checked, mut found) = (0, 0);
    for reader in readers {
        for (start, round) in reader.await.unwrap() {
            // The invalidations that had returned when this read began.
            let returned = ended.iter().filter(|end| **end < start).count() as u64;
            if returned == 0 {
                continue;
            }
            checked += 1;
            if let Some(round) = round {
                found += 1;
                assert!(
                    round >= returned,
                    "a get begun after invalidation {returned} returned read round {round}'s entry"
                );
            }
        }
    }
    eprintln!("tags one-key reads: {checked} checked, {found} of them found an entry");
    assert!(
        checked > 0 && found > 0,
        "the run proved nothing: {checked} reads checked, {found} found"
    );
}
