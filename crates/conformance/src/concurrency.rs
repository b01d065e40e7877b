//! Concurrent calls on one key behave as some serial order of them.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use crate::Ctx;

const TASKS: usize = 64;

pub async fn concurrent_incr_loses_nothing(cx: Ctx) {
    let per_task = 20;
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let cache = Arc::clone(&cx.cache);
            tokio::spawn(async move {
                for _ in 0..per_task {
                    cache.incr("counter", 1, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let want = (TASKS * per_task) as i64;
    assert_eq!(cx.cache.incr("counter", 0, None).await.unwrap(), want);
}

pub async fn exactly_one_set_if_absent_wins(cx: Ctx) {
    for round in 0..5 {
        let key = format!("lock:{round}");
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let cache = Arc::clone(&cx.cache);
                let key = key.clone();
                tokio::spawn(async move {
                    cache
                        .set_if_absent(&key, Bytes::from(i.to_string()), None)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            if t.await.unwrap() {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let stored = cx.cache.get(&key).await.unwrap().unwrap();
        assert_eq!(
            stored,
            Bytes::from(winners[0].to_string()),
            "the winner's value is stored"
        );
    }
}

pub async fn concurrent_sets_leave_one_of_the_values(cx: Ctx) {
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let cache = Arc::clone(&cx.cache);
            tokio::spawn(async move {
                cache
                    .set("k", Bytes::from(i.to_string()), None)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let written: BTreeSet<Bytes> = (0..TASKS).map(|i| Bytes::from(i.to_string())).collect();
    let stored = cx.cache.get("k").await.unwrap().expect("some value");
    assert!(
        written.contains(&stored),
        "stored {stored:?} was never written"
    );
}

/// The outcome of many tasks writing one key must be explainable by some
/// serial order of their calls. A `set` racing `incr`s splits the increments
/// into those before it (counting from the old value) and those after it
/// (counting from the value it set), each run contiguous; a `delete` racing
/// them restarts the count from zero. `set_if_absent` on a key that always
/// exists never wins; `expire` on it always finds it.
pub async fn mixed_writes_on_one_key_are_serialisable(cx: Ctx) {
    const BASE: i64 = 4_000_000_000_000;
    const INCRERS: usize = 15;
    const PER_TASK: usize = 20;
    for round in 0..3 {
        let key = format!("mixed:{round}");
        cx.cache.set(&key, Bytes::from("0"), None).await.unwrap();
        let mut incrs = Vec::new();
        for _ in 0..INCRERS {
            let (cache, key) = (Arc::clone(&cx.cache), key.clone());
            incrs.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..PER_TASK {
                    seen.push(cache.incr(&key, 1, None).await.unwrap());
                }
                seen
            }));
        }
        let setter = {
            let (cache, key) = (Arc::clone(&cx.cache), key.clone());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                cache
                    .set(&key, Bytes::from(BASE.to_string()), None)
                    .await
                    .unwrap();
                cache.incr(&key, 1, None).await.unwrap()
            })
        };
        let others = {
            let (cache, key) = (Arc::clone(&cx.cache), key.clone());
            tokio::spawn(async move {
                let mut wrong = Vec::new();
                for _ in 0..PER_TASK {
                    if cache
                        .set_if_absent(&key, Bytes::from("x"), None)
                        .await
                        .unwrap()
                    {
                        wrong.push("set_if_absent won over an existing key");
                    }
                    let long = std::time::Duration::from_secs(3600);
                    if !cache.expire(&key, long).await.unwrap() {
                        wrong.push("expire did not find an existing key");
                    }
                }
                wrong
            })
        };
        let mut results = Vec::new();
        for task in incrs {
            results.extend(task.await.unwrap());
        }
        let own = setter.await.unwrap();
        assert!(
            own > BASE,
            "round {round}: the setter's own incr gave {own}, below the {BASE} it had just set"
        );
        results.push(own);
        assert_eq!(others.await.unwrap(), Vec::<&str>::new(), "round {round}");
        let (mut high, mut low): (Vec<i64>, Vec<i64>) =
            results.into_iter().partition(|r| *r > BASE);
        low.sort_unstable();
        high.sort_unstable();
        let low_want: Vec<i64> = (1..=low.len() as i64).collect();
        let high_want: Vec<i64> = (BASE + 1..=BASE + high.len() as i64).collect();
        assert_eq!(
            low, low_want,
            "round {round}: increments before the set are not a serial run"
        );
        assert_eq!(
            high, high_want,
            "round {round}: increments after the set are not a serial run"
        );
        let stored = cx.cache.get(&key).await.unwrap().expect("the counter");
        assert_eq!(
            stored,
            Bytes::from((BASE + high.len() as i64).to_string()),
            "round {round}"
        );
    }
    // A delete racing increments restarts the count: the increments are a
    // run from 1 before it and a run from 1 after it.
    let key = "mixed:delete";
    let mut incrs = Vec::new();
    for _ in 0..INCRERS {
        let cache = Arc::clone(&cx.cache);
        incrs.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..PER_TASK {
                seen.push(cache.incr(key, 1, None).await.unwrap());
            }
            seen
        }));
    }
    let deleter = {
        let cache = Arc::clone(&cx.cache);
        tokio::spawn(async move {
            tokio::task::yield_now().await;
            cache.delete(key).await.unwrap()
        })
    };
    let mut results = Vec::new();
    for task in incrs {
        results.extend(task.await.unwrap());
    }
    let deleted = deleter.await.unwrap();
    let after = match cx.cache.get(key).await.unwrap() {
        Some(v) => std::str::from_utf8(&v).unwrap().parse::<i64>().unwrap(),
        None => 0,
    };
    results.sort_unstable();
    let total = results.len() as i64;
    let mut want: Vec<i64> = (1..=after).chain(1..=total - after).collect();
    want.sort_unstable();
    assert_eq!(
        results, want,
        "increments around a delete are not two serial runs (deleted: {deleted})"
    );
    assert_eq!(
        deleted,
        after < total,
        "delete found the counter exactly when some increments came before it"
    );
}

/// A lock taken with `set_if_absent` and a token and released with
/// `delete_if_equals` excludes: 64 tasks each take it 5 times, and no two
/// ever hold it at once.
pub async fn a_token_lock_excludes(cx: Ctx) {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    let holders = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let (cache, holders, overlaps) = (
                Arc::clone(&cx.cache),
                Arc::clone(&holders),
                Arc::clone(&overlaps),
            );
            tokio::spawn(async move {
                let ttl = Some(std::time::Duration::from_secs(30));
                for round in 0..5 {
                    let token = Bytes::from(format!("{i}:{round}"));
                    while !cache
                        .set_if_absent("lock", token.clone(), ttl)
                        .await
                        .unwrap()
                    {
                        tokio::task::yield_now().await;
                    }
                    if holders.fetch_add(1, SeqCst) != 0 {
                        overlaps.fetch_add(1, SeqCst);
                    }
                    tokio::task::yield_now().await;
                    holders.fetch_sub(1, SeqCst);
                    assert!(cache.delete_if_equals("lock", token).await.unwrap());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(overlaps.load(SeqCst), 0);
    assert!(!cx.cache.exists("lock").await.unwrap());
}

/// docs/CONTRACT.md, "Batches": under concurrent writers, `get_many` reads
/// each key atomically at some instant within the call, so every answer is
/// a value its key held then (never one overwritten before the call began,
/// never one written after it returned), and a key named twice in one call
/// gets one answer. (Across different keys it is one snapshot only on one
/// Redis server or within one Cluster hash slot.) Issue 23, item 2: through
/// the port, `get_many([k, k])` once returned two different values.
pub async fn get_many_reads_each_key_once_within_the_call(cx: Ctx) {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    const KEYS: [&str; 2] = ["gm:a", "gm:b"];
    const WRITES: u64 = 300;
    // Per key: the last version whose set returned, and the last one begun.
    let acked: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let begun: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    for key in KEYS {
        cx.cache.set(key, Bytes::from("0"), None).await.unwrap();
    }
    let writers: Vec<_> = (0..KEYS.len())
        .map(|k| {
            let (cache, acked, begun) = (
                Arc::clone(&cx.cache),
                Arc::clone(&acked),
                Arc::clone(&begun),
            );
            tokio::spawn(async move {
                for version in 1..=WRITES {
                    begun[k].store(version, SeqCst);
                    let value = Bytes::from(version.to_string());
                    cache.set(KEYS[k], value, None).await.unwrap();
                    acked[k].store(version, SeqCst);
                    // In process a set never waits: let the readers in.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (cache, acked, begun) = (
                Arc::clone(&cx.cache),
                Arc::clone(&acked),
                Arc::clone(&begun),
            );
            tokio::spawn(async move {
                let names: Vec<String> = ["gm:a", "gm:b", "gm:a", "gm:b", "gm:a"]
                    .iter()
                    .map(|k| (*k).to_owned())
                    .collect();
                let mut reads = 0u64;
                while acked[0].load(SeqCst) < WRITES || acked[1].load(SeqCst) < WRITES {
                    let low = [acked[0].load(SeqCst), acked[1].load(SeqCst)];
                    let values = cache.get_many(&names).await.unwrap();
                    let high = [begun[0].load(SeqCst), begun[1].load(SeqCst)];
                    let versions: Vec<u64> = values
                        .iter()
                        .map(|v| std::str::from_utf8(v.as_ref().unwrap()).unwrap().parse().unwrap())
                        .collect();
                    for (name, version) in names.iter().zip(&versions) {
                        let k = KEYS.iter().position(|key| key == name).unwrap();
                        assert!(
                            (low[k]..=high[k]).contains(version),
                            "{name} read as version {version}, outside {}..={} (acknowledged before the call .. begun before it returned)",
                            low[k],
                            high[k]
                        );
                    }
                    assert_eq!(versions[0], versions[2], "a key named twice got two answers: {versions:?}");
                    assert_eq!(versions[2], versions[4], "a key named twice got two answers: {versions:?}");
                    assert_eq!(versions[1], versions[3], "a key named twice got two answers: {versions:?}");
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let mut reads = 0;
    for reader in readers {
        reads += reader.await.unwrap();
    }
    assert!(
        reads >= 10,
        "only {reads} get_many calls ran while the writers wrote"
    );
}
