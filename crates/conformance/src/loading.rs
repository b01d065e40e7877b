//! Single-flight loading (issue 12, item 1) on every adapter: of
//! concurrent callers that miss a key, one loads.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache_loading::{LoadError, LoadOptions, Loader};

use crate::Ctx;

fn loader(cx: &Ctx) -> Loader<std::io::Error> {
    Loader::new(Arc::clone(&cx.cache))
}

/// 500 callers of one cold key, the loader taking 50 ms: one loader call,
/// 500 answers (the port's plain `get_or_load` made 500 calls).
pub async fn five_hundred_callers_of_a_cold_key_make_one_loader_call(cx: Ctx) {
    let loader = loader(&cx);
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (loader, calls) = (loader.clone(), Arc::clone(&calls));
            tokio::spawn(async move {
                loader
                    .get_or_load("hot", Some(Duration::from_secs(60)), move || async move {
                        calls.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(vec![1u32, 2, 3])
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), vec![1, 2, 3]);
    }
    assert_eq!(calls.load(SeqCst), 1);
    // The value was stored once, with its TTL.
    assert!(loader
        .cache()
        .ttl("hot")
        .await
        .unwrap()
        .remaining()
        .is_some());
}

/// A failing loader fails every waiter with the same error, once; the next
/// miss tries again (no failure is cached).
pub async fn a_failed_load_is_shared_and_not_remembered(cx: Ctx) {
    let loader = loader(&cx);
    let calls = Arc::new(AtomicUsize::new(0));
    let attempt = |loader: Loader<std::io::Error>, calls: Arc<AtomicUsize>| async move {
        loader
            .get_or_load("flaky", None, move || async move {
                let n = calls.fetch_add(1, SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                if n == 0 {
                    Err(std::io::Error::other("database down"))
                } else {
                    Ok("fresh".to_owned())
                }
            })
            .await
    };
    let first: Vec<_> =
        futures::future::join_all((0..50).map(|_| attempt(loader.clone(), Arc::clone(&calls))))
            .await;
    assert_eq!(calls.load(SeqCst), 1);
    for answer in &first {
        match answer {
            Err(LoadError::Load(e)) => assert_eq!(e.to_string(), "database down"),
            other => panic!("expected the loader's error, got {other:?}"),
        }
    }
    assert_eq!(
        attempt(loader.clone(), Arc::clone(&calls)).await.unwrap(),
        "fresh"
    );
    assert_eq!(calls.load(SeqCst), 2);
}

/// Flights of different keys never wait for each other: a load stuck on
/// one key leaves another key's load free to finish.
pub async fn a_slow_key_does_not_hold_up_another(cx: Ctx) {
    let loader = loader(&cx);
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let loader = loader.clone();
        tokio::spawn(async move {
            loader
                .get_or_load("slow", None, move || async move {
                    let _ = wait.await;
                    Ok(1u8)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fast = tokio::time::timeout(
        Duration::from_secs(2),
        loader.get_or_load("fast", None, || async { Ok(2u8) }),
    )
    .await
    .expect("the fast key waited for the slow one");
    assert_eq!(fast.unwrap(), 2);
    release.send(()).unwrap();
    assert_eq!(slow.await.unwrap().unwrap(), 1);
}

/// Callers that give up (their futures dropped) leave no stuck flight: the
/// next caller loads.
pub async fn an_abandoned_flight_does_not_wedge_the_key(cx: Ctx) {
    let loader = loader(&cx);
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        loader.get_or_load("k", None, || async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(0u8)
        }),
    )
    .await;
    assert!(gave_up.is_err());
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        loader.get_or_load("k", None, || async { Ok(7u8) }),
    )
    .await
    .expect("the key stayed wedged by the abandoned flight");
    assert_eq!(answer.unwrap(), 7);
}

/// TTL jitter (issue 12, item 6): 10,000 keys loaded together with a TTL of
/// 600 s and a jitter of 100 s expire spread evenly over 600–700 s after
/// they were stored.
///
/// Each key's expiry is taken as an instant (when its `ttl` answered, plus
/// what was left), counted from when the loads began. The keys were stored
/// over the L seconds the loads took, so the expiries are the jitter's
/// uniform 0–100 s smeared by up to L: flat from L to 100 s. Each 10 s
/// bucket between L and 100 s must hold 10 % of the keys (within 2 points);
/// on this machine L is 1–3 s, so nine buckets are checked.
pub async fn ttl_jitter_spreads_expiries(cx: Ctx) {
    const KEYS: usize = 10_000;
    let (ttl, jitter) = (Duration::from_secs(600), Duration::from_secs(100));
    let options = LoadOptions::ttl(ttl).jitter(jitter);
    let loader = loader(&cx);
    let began = std::time::Instant::now();
    let loads = (0..KEYS).map(|i| {
        let loader = loader.clone();
        async move {
            loader
                .get_or_load_with(&format!("j:{i}"), options, || async { Ok(1u8) })
                .await
                .unwrap()
        }
    });
    futures::future::join_all(loads).await;
    let took = began.elapsed();
    let first_flat = (took.as_secs_f64() / 10.0).ceil().max(1.0) as usize;
    assert!(
        first_flat <= 5,
        "10,000 loads took {took:?}: too slow to judge"
    );
    let expiries = futures::future::join_all((0..KEYS).map(|i| {
        let cache = Arc::clone(&cx.cache);
        async move {
            let left = cache
                .ttl(&format!("j:{i}"))
                .await
                .unwrap()
                .remaining()
                .unwrap();
            // Seconds past `began + ttl` at which the key expires.
            (began.elapsed() + left).as_secs_f64() - ttl.as_secs_f64()
        }
    }))
    .await;
    let (min, max) = expiries
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), s| (lo.min(*s), hi.max(*s)));
    let limit = jitter.as_secs_f64() + took.as_secs_f64() + 1.0;
    assert!(
        min >= -0.01 && max <= limit,
        "expiries {min:.2}–{max:.2} s past the TTL, outside 0–{limit:.1} s"
    );
    let mut per_bucket = [0usize; 11];
    for e in &expiries {
        per_bucket[((e / 10.0) as usize).min(10)] += 1;
    }
    let share = |n: usize| n as f64 / KEYS as f64;
    for (i, n) in per_bucket.iter().enumerate().take(10).skip(first_flat) {
        assert!(
            (0.08..=0.12).contains(&share(*n)),
            "{}–{} s past the TTL holds {:.1} % of the keys: {per_bucket:?} (loads took {took:?})",
            i * 10,
            i * 10 + 10,
            share(*n) * 100.0
        );
    }
}

/// Negative caching (issue 12, item 8): "not found" is remembered for the
/// negative TTL, and only then; without one, every miss loads again.
pub async fn not_found_is_remembered_only_for_the_negative_ttl(cx: Ctx) {
    let loader = loader(&cx);
    let calls = Arc::new(AtomicUsize::new(0));
    let lookup = |options: LoadOptions, key: &'static str| {
        let (loader, calls) = (loader.clone(), Arc::clone(&calls));
        async move {
            loader
                .get_or_load_optional(key, options, move || async move {
                    calls.fetch_add(1, SeqCst);
                    Ok::<Option<String>, std::io::Error>(None)
                })
                .await
                .unwrap()
        }
    };
    let remembered =
        LoadOptions::ttl(Duration::from_secs(60)).negative_ttl(Duration::from_millis(300));
    assert_eq!(lookup(remembered, "ghost").await, None);
    assert_eq!(lookup(remembered, "ghost").await, None);
    assert_eq!(
        calls.load(SeqCst),
        1,
        "the second lookup was answered from the cache"
    );
    crate::util::sleep_ms(400).await;
    assert_eq!(lookup(remembered, "ghost").await, None);
    assert_eq!(
        calls.load(SeqCst),
        2,
        "after the negative TTL the loader runs again"
    );

    let forgotten = LoadOptions::ttl(Duration::from_secs(60));
    assert_eq!(lookup(forgotten, "phantom").await, None);
    assert_eq!(lookup(forgotten, "phantom").await, None);
    assert_eq!(
        calls.load(SeqCst),
        4,
        "without a negative TTL every miss loads"
    );
    assert!(!cx.cache.exists("phantom").await.unwrap());
}

/// Counts the port calls that reach the adapter.
#[derive(Clone, Default)]
struct Calls(Arc<std::sync::Mutex<std::collections::HashMap<&'static str, usize>>>);

/// A store over the behaviour's adapter that counts what goes through it.
struct Counting {
    inner: cache_store::layer::CacheStore<dyn cache_port::Cache>,
    calls: Calls,
}

impl cache_store::Store for Counting {
    async fn call(
        &self,
        request: cache_store::Request<'_>,
    ) -> cache_port::Result<cache_store::Reply> {
        *self
            .calls
            .0
            .lock()
            .unwrap()
            .entry(request.op().name())
            .or_default() += 1;
        self.inner.call(request).await
    }
    fn max_value_len(&self) -> usize {
        self.inner.max_value_len()
    }
}

/// Batch loading (issue 12, item 7): 100 keys with 10 missing take one
/// `get_many`, one loader call with exactly the 10, and one `set_many`; a
/// caller of one of the 10 meanwhile waits for the batch instead of loading.
pub async fn get_or_load_many_reads_once_loads_once_writes_once(cx: Ctx) {
    let keys: Vec<String> = (0..100).map(|i| format!("m:{i:03}")).collect();
    let present: Vec<(String, bytes::Bytes)> = keys
        .iter()
        .filter(|k| !k.ends_with('7'))
        .map(|k| {
            (
                k.clone(),
                cache_port::typed::encode(&format!("cached {k}")).unwrap(),
            )
        })
        .collect();
    cx.cache.set_many(present, None).await.unwrap();
    let calls = Calls::default();
    let counted = cache_store::CacheBuilder::new(Counting {
        inner: cache_store::layer::CacheStore::shared(Arc::clone(&cx.cache)),
        calls: calls.clone(),
    })
    .build();
    let loader: Loader<std::io::Error> = Loader::new(counted);
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let batch = {
        let (loader, keys, asked) = (loader.clone(), keys.clone(), Arc::clone(&asked));
        tokio::spawn(async move {
            loader
                .get_or_load_many(
                    &keys,
                    LoadOptions::ttl(Duration::from_secs(60)),
                    move |missing| async move {
                        asked.lock().unwrap().extend(missing.iter().cloned());
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok(missing
                            .into_iter()
                            .map(|k| (k.clone(), format!("loaded {k}")))
                            .collect())
                    },
                )
                .await
                .unwrap()
        })
    };
    // The single caller comes once the batch's loader runs (its flights are
    // registered by then), not after a fixed sleep: on a loaded machine the
    // batch's read can take longer than any sleep chosen here (seen on a
    // cluster in a parallel run).
    let waiting = Instant::now();
    while asked.lock().unwrap().is_empty() {
        assert!(
            waiting.elapsed() < Duration::from_secs(10),
            "the batch never called its loader"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let single: String = loader
        .get_or_load("m:017", None, || async { panic!("m:017 was loaded twice") })
        .await
        .unwrap();
    assert_eq!(single, "loaded m:017");
    let values = batch.await.unwrap();
    let mut asked = asked.lock().unwrap().clone();
    asked.sort();
    let want: Vec<String> = keys.iter().filter(|k| k.ends_with('7')).cloned().collect();
    assert_eq!(
        asked, want,
        "the loader gets exactly the missing keys, once"
    );
    for (key, value) in keys.iter().zip(&values) {
        let want = if key.ends_with('7') {
            format!("loaded {key}")
        } else {
            format!("cached {key}")
        };
        assert_eq!(value.as_deref(), Some(want.as_str()), "{key}");
    }
    let calls = calls.0.lock().unwrap().clone();
    // The single caller's own read (one get, a miss) is the only other call.
    assert_eq!(calls.get("get_many"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("set_many"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("set"), None, "{calls:?}");
    assert_eq!(calls.get("get"), Some(&1), "{calls:?}");
    for key in &want {
        assert!(cx.cache.exists(key).await.unwrap(), "{key} was not stored");
    }
}
