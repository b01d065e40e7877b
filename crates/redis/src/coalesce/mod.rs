//! Concurrent single-key calls to one server sent as one command: `get`s as
//! one `MGET`, `set`s as one `MSET` (or one script call when some carry a
//! TTL), `ttl`s as one script call of `PTTL`s, `incr`s as one script call
//! of `INCRBY`s (each call's own failure its own answer).
//!
//! Why: on a loaded machine the client's CPU per command decides the
//! throughput, and fred spends more of it per command than redis-rs does
//! (docs/PERFORMANCE.md, "The hot path"). One command for many calls pays
//! fred's per-command cost, its timer, and the server's per-command cost
//! once.
//!
//! How, without making a lone call wait:
//! - A store has a few **slots** (the pool size). A call that finds one free
//!   takes it and sends its own command at once, on its own task, as
//!   before: at low concurrency nothing changes.
//! - A call that finds every slot taken **waits** in a list. When a slot's
//!   command answers, the slot is handed to the whole list, sent as one
//!   batch by a spawned task, and each waiting call gets its own answer.
//! - **Bounded latency**: a batch must answer by its oldest call's arrival
//!   plus the command timeout, so no call waits longer than the timeout it
//!   would have had alone (the fault tests' bound is unchanged).
//! - A slot is freed when its holder's future completes or is dropped, so
//!   it waits for its holder to be polled after the answer came, and
//!   nothing else should wait for that: the **first call of a list waits at
//!   most `MAX_WAIT` (1 ms)** for a slot, then sends the list itself, slot
//!   or not (one timer per list, not per call;
//!   `a_list_waits_for_a_slot_at_most_max_wait` took 2.5 s without it).
//! - **A list is sent by the next call to arrive** once it is full
//!   (`Batch::MAX_ITEMS`) or its first call has waited `MAX_WAIT`. Both
//!   triggers above need a task to be polled again (a slot's holder, the
//!   first call's timer), and under a flood of runnable tasks a wake-up
//!   waits behind all of them: the conformance suite over the tiered cache,
//!   with ten thousand gets spawned at once by one behaviour, measured lists
//!   of 8,000–9,800 calls sent 400–800 ms after their first call came, and
//!   timing behaviours of other tests failed in 5 of 5 runs. An arrival
//!   needs no wake-up: with it, the longest wait measured was 83 ms and 9
//!   of 9 runs passed (`a_list_older_than_max_wait_is_sent_by_the_next_arrival`).
//! - A batch runs as a task of its own (so that a call dropped while its
//!   batch is in flight takes no other call's answer with it).
//! - A future polled once and then neither polled nor dropped (leaked) would
//!   hold its slot: a **watchdog** task (one per store, ticking four times
//!   per command timeout) takes back slots held for about two timeouts, and
//!   sends a list that has waited a whole tick (when its first call was
//!   dropped before its 1 ms were up).
//!
//! Clusters do not coalesce: keys span slots there, and the store queues
//! their commands with fred at once instead (`get_many`, `set_many`).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use fred::error::{Error as FredError, ErrorKind as FredKind};
use tokio::sync::oneshot;

/// One kind of call that can be sent many at a time.
pub(crate) trait Batch: Send + Sync + 'static {
    /// One call's input.
    type Item: Send + 'static;
    /// One call's answer.
    type Reply: Send + 'static;
    /// Calls per command at most (a larger list goes as several commands,
    /// at once).
    const MAX_ITEMS: usize;
    /// Sends `items` as one command; the replies in the items' order.
    fn send(
        &self,
        items: Vec<Self::Item>,
    ) -> impl Future<Output = Result<Vec<Self::Reply>, FredError>> + Send;
}

type Answer<R> = Result<R, FredError>;

/// How long the first call of a waiting list waits for a slot before it
/// sends the list itself.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(1);

struct Waiting<I, R> {
    item: I,
    answer: oneshot::Sender<Answer<R>>,
}

/// A taken slot: which ticket holds it, and the watchdog's tick it was
/// taken in.
#[derive(Clone, Copy)]
struct Held {
    ticket: u64,
    since_tick: u64,
}

struct Lanes<I, R> {
    slots: Vec<Option<Held>>,
    next_ticket: u64,
    /// The watchdog's tick count.
    tick: u64,
    waiting: Vec<Waiting<I, R>>,
    /// When the first of `waiting` arrived: its deadline is the batch's.
    oldest: Option<Instant>,
    /// Lists sent so far: the first call of a list knows from it whether
    /// its list has gone.
    sent: u64,
}

impl<I, R> Lanes<I, R> {
    fn hold(&mut self, index: usize) -> u64 {
        self.next_ticket += 1;
        self.slots[index] = Some(Held {
            ticket: self.next_ticket,
            since_tick: self.tick,
        });
        self.next_ticket
    }
}

/// Coalesces calls of one kind (see the module's docs).
pub(crate) struct Coalescer<B: Batch> {
    batch: B,
    lanes: Mutex<Lanes<B::Item, B::Reply>>,
    timeout: Duration,
    /// Where batches run when the releasing code runs outside a runtime.
    runtime: tokio::runtime::Handle,
}

/// What a call does: send its own command, or wait for its batch's answer.
pub(crate) enum Turn<B: Batch> {
    /// Send it yourself; the slot is free again when `Slot` drops.
    Direct(Slot<B>, B::Item),
    /// Another call's completion sends it in a batch.
    Queued(Queued<B>),
}

/// A waiting call's answer to come.
pub(crate) struct Queued<B: Batch> {
    answered: oneshot::Receiver<Answer<B::Reply>>,
    /// The first call of a list: its coalescer and the list's number, to
    /// send the list itself after `MAX_WAIT`.
    first: Option<(Arc<Coalescer<B>>, u64)>,
}

impl<B: Batch> Queued<B> {
    /// The call's answer, when its batch answers.
    pub(crate) async fn answer(self) -> Answer<B::Reply> {
        let mut answered = self.answered;
        if let Some((owner, list)) = self.first {
            match tokio::time::timeout(MAX_WAIT, &mut answered).await {
                Ok(answer) => return Self::read(answer),
                Err(_) => owner.send_if_waiting(list),
            }
        }
        Self::read(answered.await)
    }

    fn read(answer: Result<Answer<B::Reply>, oneshot::error::RecvError>) -> Answer<B::Reply> {
        answer.unwrap_or_else(|_| {
            Err(FredError::new(
                FredKind::Canceled,
                "the batch holding this call was dropped (its runtime is shutting down)",
            ))
        })
    }
}

/// A taken slot; dropping it frees the slot or hands it to the waiting list.
pub(crate) struct Slot<B: Batch> {
    owner: Arc<Coalescer<B>>,
    index: usize,
    ticket: u64,
}

impl<B: Batch> Drop for Slot<B> {
    fn drop(&mut self) {
        self.owner.release(self.index, self.ticket);
    }
}

impl<B: Batch> Coalescer<B> {
    /// A coalescer with `slots` commands in flight before calls wait, each
    /// call bounded by `timeout`; starts its watchdog on the current
    /// runtime (call it inside one).
    pub(crate) fn new(batch: B, slots: usize, timeout: Duration) -> Arc<Self> {
        let this = Arc::new(Self {
            batch,
            lanes: Mutex::new(Lanes {
                slots: vec![None; slots.max(1)],
                next_ticket: 0,
                tick: 0,
                waiting: Vec::new(),
                oldest: None,
                sent: 0,
            }),
            timeout,
            runtime: tokio::runtime::Handle::current(),
        });
        let tick = (timeout / 4).max(Duration::from_millis(5));
        tokio::spawn(watchdog(Arc::downgrade(&this), tick));
        this
    }

    fn lanes(&self) -> MutexGuard<'_, Lanes<B::Item, B::Reply>> {
        // The lock guards plain bookkeeping: a panic cannot leave it half
        // updated in a way that matters more than a stuck call would.
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a free slot for `item`, or puts it on the waiting list.
    pub(crate) fn enter(self: &Arc<Self>, item: B::Item) -> Turn<B> {
        let mut lanes = self.lanes();
        if let Some(index) = lanes.slots.iter().position(Option::is_none) {
            let slot = self.take(&mut lanes, index);
            drop(lanes);
            return Turn::Direct(slot, item);
        }
        let (answer, answered) = oneshot::channel();
        let first = lanes.waiting.is_empty().then(|| {
            lanes.oldest = Some(Instant::now());
            (Arc::clone(self), lanes.sent)
        });
        lanes.waiting.push(Waiting { item, answer });
        let due = first.is_none()
            && (lanes.waiting.len() >= B::MAX_ITEMS
                || lanes
                    .oldest
                    .is_some_and(|oldest| oldest.elapsed() >= MAX_WAIT));
        if due {
            self.dispatch(lanes, None);
        }
        Turn::Queued(Queued { answered, first })
    }

    /// One call: sent `alone` when it gets a slot (which is free again
    /// when `alone`'s future completes or is dropped), else its share of a
    /// batch.
    pub(crate) async fn call<F, Fut>(self: &Arc<Self>, item: B::Item, alone: F) -> Answer<B::Reply>
    where
        F: FnOnce(B::Item) -> Fut,
        Fut: Future<Output = Answer<B::Reply>>,
    {
        match self.enter(item) {
            Turn::Direct(_slot, item) => alone(item).await,
            Turn::Queued(queued) => queued.answer().await,
        }
    }

    /// Sends list number `list` now, slot or not, unless it has gone.
    fn send_if_waiting(self: &Arc<Self>, list: u64) {
        let lanes = self.lanes();
        if lanes.sent == list && !lanes.waiting.is_empty() {
            self.dispatch(lanes, None);
        }
    }

    fn release(self: &Arc<Self>, index: usize, ticket: u64) {
        let mut lanes = self.lanes();
        if lanes.slots[index].map(|held| held.ticket) != Some(ticket) {
            return; // taken back by the watchdog
        }
        if lanes.waiting.is_empty() {
            lanes.slots[index] = None;
            return;
        }
        let slot = self.take(&mut lanes, index);
        self.dispatch(lanes, Some(slot));
    }

    /// Marks slot `index` taken, under a new ticket.
    fn take(self: &Arc<Self>, lanes: &mut Lanes<B::Item, B::Reply>, index: usize) -> Slot<B> {
        let ticket = lanes.hold(index);
        Slot {
            owner: Arc::clone(self),
            index,
            ticket,
        }
    }

    /// Sends the waiting list (holding `slot`, if any) from a task of its own.
    fn dispatch(
        self: &Arc<Self>,
        mut lanes: MutexGuard<'_, Lanes<B::Item, B::Reply>>,
        slot: Option<Slot<B>>,
    ) {
        let waiting = std::mem::take(&mut lanes.waiting);
        let oldest = lanes.oldest.take().unwrap_or_else(Instant::now);
        lanes.sent += 1;
        drop(lanes);
        let this = Arc::clone(self);
        let run = async move {
            let _slot = slot;
            this.run(waiting, oldest + this.timeout).await;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(here) => drop(here.spawn(run)),
            Err(_) => drop(self.runtime.spawn(run)),
        }
    }

    async fn run(&self, waiting: Vec<Waiting<B::Item, B::Reply>>, deadline: Instant) {
        let mut waiting = waiting.into_iter();
        let chunks = std::iter::from_fn(|| {
            let chunk: Vec<_> = waiting.by_ref().take(B::MAX_ITEMS).collect();
            (!chunk.is_empty()).then_some(chunk)
        });
        futures::future::join_all(chunks.map(|chunk| self.run_one(chunk, deadline))).await;
    }

    async fn run_one(&self, chunk: Vec<Waiting<B::Item, B::Reply>>, deadline: Instant) {
        let (items, answers): (Vec<_>, Vec<_>) =
            chunk.into_iter().map(|w| (w.item, w.answer)).unzip();
        let expected = answers.len();
        let replies = match deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => {
                match tokio::time::timeout(left, self.batch.send(items)).await {
                    Ok(replies) => replies,
                    Err(_) => Err(timed_out()),
                }
            }
            _ => Err(timed_out()),
        };
        match replies {
            Ok(replies) if replies.len() == expected => {
                for (answer, reply) in answers.into_iter().zip(replies) {
                    let _ = answer.send(Ok(reply));
                }
            }
            Ok(replies) => {
                let error = FredError::new(
                    FredKind::Protocol,
                    format!("a batch of {expected} calls got {} answers", replies.len()),
                );
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }

    /// One watchdog tick: slots held for 8 ticks (two command timeouts)
    /// are taken back, and a list that has waited a tick is sent.
    fn tick(self: &Arc<Self>, tick: Duration) {
        let mut lanes = self.lanes();
        lanes.tick += 1;
        let now = lanes.tick;
        for slot in lanes.slots.iter_mut() {
            if slot.is_some_and(|held| now - held.since_tick >= 8) {
                *slot = None;
            }
        }
        let stale = lanes.oldest.is_some_and(|oldest| oldest.elapsed() >= tick);
        if lanes.waiting.is_empty() {
            return;
        }
        if let Some(index) = lanes.slots.iter().position(Option::is_none) {
            let slot = self.take(&mut lanes, index);
            self.dispatch(lanes, Some(slot));
        } else if stale {
            self.dispatch(lanes, None);
        }
    }
}

fn timed_out() -> FredError {
    FredError::new(
        FredKind::Timeout,
        "the batch did not answer within the command timeout",
    )
}

async fn watchdog<B: Batch>(coalescer: Weak<Coalescer<B>>, tick: Duration) {
    let mut ticks = tokio::time::interval(tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(coalescer) = coalescer.upgrade() else {
            return;
        };
        coalescer.tick(tick);
    }
}

#[cfg(test)]
mod tests;
