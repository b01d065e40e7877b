//! The coalescer against a fake batch: who sends, when, and what each call
//! gets back.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Echoes each item times ten, after `delay`; records each batch's size.
struct Echo {
    delay: Duration,
    batches: Mutex<Vec<usize>>,
    fail: bool,
    calls: AtomicUsize,
}

impl Echo {
    fn new(delay: Duration) -> Self {
        Self {
            delay,
            batches: Mutex::new(Vec::new()),
            fail: false,
            calls: AtomicUsize::new(0),
        }
    }
}

impl Batch for Echo {
    type Item = u64;
    type Reply = u64;
    const MAX_ITEMS: usize = 4;
    fn send(&self, items: Vec<u64>) -> impl Future<Output = Answer<Vec<u64>>> + Send {
        self.calls.fetch_add(1, Relaxed);
        self.batches.lock().unwrap().push(items.len());
        let (delay, fail) = (self.delay, self.fail);
        async move {
            tokio::time::sleep(delay).await;
            if fail {
                return Err(FredError::new(FredKind::IO, "connection reset"));
            }
            Ok(items.into_iter().map(|i| i * 10).collect())
        }
    }
}

/// A call as the store makes it: its own command when it has a slot.
async fn call(c: &Arc<Coalescer<Echo>>, item: u64) -> Answer<u64> {
    let delay = c.batch.delay;
    c.call(item, |item| async move {
        tokio::time::sleep(delay).await;
        Ok(item * 10)
    })
    .await
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_lone_call_sends_its_own_command_and_a_crowd_shares_batches() {
    runtime().block_on(async {
        let c = Coalescer::new(
            Echo::new(Duration::from_millis(20)),
            2,
            Duration::from_secs(5),
        );
        // One at a time: never a batch.
        for i in 0..5 {
            assert_eq!(call(&c, i).await.unwrap(), i * 10);
        }
        assert_eq!(c.batch.calls.load(Relaxed), 0);
        // 30 at once over 2 slots: 2 go direct, 28 wait and go in
        // batches of at most 4, each getting its own answer.
        let calls = (0..30u64).map(|i| {
            let c = Arc::clone(&c);
            async move { (i, call(&c, i).await.unwrap()) }
        });
        for (i, got) in futures::future::join_all(calls).await {
            assert_eq!(got, i * 10, "call {i} got another call's answer");
        }
        let batches = c.batch.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 28, "{batches:?}");
        assert!(batches.iter().all(|&n| (1..=4).contains(&n)), "{batches:?}");
        // Every slot is free again, once the batch tasks (which answer
        // their calls before they let go of their slot) have ended.
        let freed = async {
            while !c.lanes().slots.iter().all(Option::is_none) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), freed)
            .await
            .expect("a slot stayed taken after every call was answered");
    });
}

#[test]
fn a_batch_error_reaches_every_waiting_call() {
    runtime().block_on(async {
        let mut echo = Echo::new(Duration::from_millis(20));
        echo.fail = true;
        let c = Coalescer::new(echo, 1, Duration::from_secs(5));
        let calls = (0..6u64).map(|i| {
            let c = Arc::clone(&c);
            async move { call(&c, i).await }
        });
        let answers = futures::future::join_all(calls).await;
        // The first went direct (it succeeds in this fake); the five
        // batched calls share the batch's error.
        assert_eq!(answers.iter().filter(|a| a.is_err()).count(), 5);
        assert!(answers.iter().flatten().all(|&answer| answer == 0));
    });
}

#[test]
fn a_waiting_call_answers_within_the_timeout_when_the_batch_hangs() {
    runtime().block_on(async {
        let timeout = Duration::from_millis(500);
        let c = Coalescer::new(Echo::new(Duration::from_secs(60)), 1, timeout);
        let started = Instant::now();
        // The direct call hangs (its own command would time out in the
        // store); the others wait for its slot, then their batch hangs.
        let direct = c.enter(0);
        let queued = (1..4u64).map(|i| {
            let c = Arc::clone(&c);
            async move { call(&c, i).await }
        });
        let answers = futures::future::join_all(queued).await;
        let took = started.elapsed();
        for answer in answers {
            let error = answer.unwrap_err();
            assert_eq!(error.kind(), &FredKind::Timeout, "{error:?}");
        }
        // Sent by its first call after `MAX_WAIT`, then bounded by the
        // oldest call's deadline: about 500 ms, never 2 timeouts.
        assert!(took >= timeout, "answered after {took:?}");
        assert!(took < timeout * 2, "answered after {took:?}");
        drop(direct);
    });
}

#[test]
fn a_leaked_slot_is_taken_back_and_calls_keep_flowing() {
    runtime().block_on(async {
        let timeout = Duration::from_millis(100);
        let c = Coalescer::new(Echo::new(Duration::from_millis(1)), 1, timeout);
        // A future polled once and forgotten: its slot is never dropped.
        let Turn::Direct(slot, _) = c.enter(0) else {
            panic!("the first call has a slot");
        };
        std::mem::forget(slot);
        // Waiting calls are still answered (the watchdog sends them),
        // and after two timeouts the slot is free again.
        assert_eq!(call(&c, 7).await.unwrap(), 70);
        let started = Instant::now();
        let taken_back = async {
            while !c.lanes().slots.iter().all(Option::is_none) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), taken_back)
            .await
            .expect("the leaked slot was never taken back");
        // Not before it had been held for about two timeouts.
        assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
        let Turn::Direct(..) = c.enter(1) else {
            panic!("the slot was not taken back");
        };
    });
}

#[test]
fn a_list_waits_for_a_slot_at_most_max_wait() {
    runtime().block_on(async {
        // A 10 s timeout: the watchdog ticks every 2.5 s, far slower
        // than the first call's own bound.
        let c = Coalescer::new(
            Echo::new(Duration::from_millis(1)),
            1,
            Duration::from_secs(10),
        );
        // The slot's holder is not being polled (its thread is busy).
        let held = c.enter(0);
        let started = Instant::now();
        let calls = (1..5u64).map(|i| {
            let c = Arc::clone(&c);
            async move { call(&c, i).await.unwrap() }
        });
        assert_eq!(futures::future::join_all(calls).await, vec![10, 20, 30, 40]);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "answered after {took:?}");
        assert_eq!(*c.batch.batches.lock().unwrap(), vec![4]);
        drop(held);
    });
}

/// A coalescer whose watchdog is far slower than the bounds asserted:
/// a 10 s timeout, a tick every 2.5 s.
fn slow_watchdog() -> Arc<Coalescer<Echo>> {
    Coalescer::new(
        Echo::new(Duration::from_millis(1)),
        1,
        Duration::from_secs(10),
    )
}

fn queued(turn: Turn<Echo>) -> Queued<Echo> {
    match turn {
        Turn::Queued(queued) => queued,
        Turn::Direct(..) => panic!("the slot is taken: the call should wait"),
    }
}

#[test]
fn a_list_older_than_max_wait_is_sent_by_the_next_arrival() {
    runtime().block_on(async {
        let c = slow_watchdog();
        let held = c.enter(0);
        // The list's first call is not polled again (its task waits
        // behind a flood of others): its own timer cannot send the list.
        let first = queued(c.enter(1));
        tokio::time::sleep(MAX_WAIT * 2).await;
        let next = queued(c.enter(2));
        let answer = tokio::time::timeout(Duration::from_millis(500), next.answer())
            .await
            .expect("the list waited for a slot or the watchdog");
        assert_eq!(answer.unwrap(), 20);
        assert_eq!(first.answered.await.unwrap().unwrap(), 10);
        assert_eq!(*c.batch.batches.lock().unwrap(), vec![2]);
        drop(held);
    });
}

#[test]
fn a_full_list_is_sent_at_once() {
    runtime().block_on(async {
        let c = slow_watchdog();
        let held = c.enter(0);
        // Echo's MAX_ITEMS is 4: the fourth call fills the list.
        let mut calls: Vec<_> = (1..=4u64).map(|i| queued(c.enter(i))).collect();
        let last = calls.pop().unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(500), last.answer())
            .await
            .expect("a full list waited");
        assert_eq!(answer.unwrap(), 40);
        assert_eq!(*c.batch.batches.lock().unwrap(), vec![4]);
        drop((held, calls));
    });
}

#[test]
fn when_the_first_waiting_call_is_dropped_the_watchdog_sends_the_rest() {
    runtime().block_on(async {
        let timeout = Duration::from_millis(100);
        let c = Coalescer::new(Echo::new(Duration::from_millis(1)), 1, timeout);
        let held = c.enter(0);
        let Turn::Queued(first) = c.enter(1) else {
            panic!("the slot is taken");
        };
        let Turn::Queued(second) = c.enter(2) else {
            panic!("the slot is taken");
        };
        // The first call's future is dropped before its 1 ms are up.
        drop(first);
        let answer = tokio::time::timeout(Duration::from_secs(5), second.answer())
            .await
            .expect("the watchdog never sent the list");
        assert_eq!(answer.unwrap(), 20);
        drop(held);
    });
}

#[test]
fn a_dropped_waiting_call_does_not_disturb_the_others() {
    runtime().block_on(async {
        let c = Coalescer::new(
            Echo::new(Duration::from_millis(20)),
            1,
            Duration::from_secs(5),
        );
        let direct = c.enter(0);
        let Turn::Queued(dropped) = c.enter(1) else {
            panic!("the slot is taken");
        };
        let Turn::Queued(kept) = c.enter(2) else {
            panic!("the slot is taken");
        };
        drop(dropped);
        drop(direct);
        assert_eq!(kept.answer().await.unwrap(), 20);
    });
}
