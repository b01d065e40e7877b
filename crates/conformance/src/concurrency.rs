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
