//! The publisher: sends this instance's notices over a backplane that
//! carries only what is published (pub/sub), in batches, off the write's
//! path.
//!
//! A write hands its notice over and returns; the task publishes what has
//! gathered meanwhile as one message (every key of the waiting notices in
//! one `Keys` notice, patterns and clears after it), each batch at once,
//! without waiting for the one before (a serial publisher held notices
//! behind `PUBLISH`es timing out during a freeze, and other instances read
//! values 530 ms stale after it: `tests/coherence.rs`). Every notice only
//! drops keys, so merging and reordering them changes nothing a receiver
//! does. Before, each write awaited its own `PUBLISH`: one more round trip
//! per write. The notice is sent no sooner than before a write returned,
//! and delivery was never awaited, so the bound on staleness is the same
//! in kind (measured: `tests/coherence.rs`).
//!
//! Nothing handed over is lost by a close (it flushes first) or by
//! dropping the store (the task drains the channel, then ends).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use cache_port::report::LogThrottle;
use cache_store::backplane::{Backplane, Invalidation, Notice};
use tokio::sync::{mpsc, oneshot};

use crate::listener::Counters;
use crate::names;

/// Notices waiting beyond this make a write wait for room.
const QUEUE: usize = 4096;
/// The most notices merged into one message.
const BATCH: usize = 256;

enum Outgoing {
    Notice(Invalidation),
    /// Acknowledged once everything handed over before it is published.
    Flush(oneshot::Sender<()>),
}

/// The handle writes hand their notices to.
pub(crate) struct Publisher {
    sender: mpsc::Sender<Outgoing>,
}

impl Publisher {
    /// Starts the task (inside a tokio runtime).
    pub(crate) fn spawn(backplane: Arc<dyn Backplane>, id: u64, counters: Arc<Counters>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(backplane, id, counters, receiver));
        Self { sender }
    }

    /// Hands `what` over (waits only while the queue is full).
    pub(crate) async fn tell(&self, what: Invalidation) {
        let _ = self.sender.send(Outgoing::Notice(what)).await;
    }

    /// Returns once everything handed over so far is published (or failed).
    pub(crate) async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.sender.send(Outgoing::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }
}

async fn run(
    backplane: Arc<dyn Backplane>,
    sender: u64,
    counters: Arc<Counters>,
    mut receiver: mpsc::Receiver<Outgoing>,
) {
    let log = Arc::new(LogThrottle::default());
    // Publishes in flight: each batch goes at once, so that one slow or
    // failing `PUBLISH` (a server frozen for seconds) holds up no later one.
    let mut sending = tokio::task::JoinSet::new();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    break;
                }
            }
            Some(_) = sending.join_next(), if !sending.is_empty() => continue,
        }
        let (mut keys, mut merged) = (Vec::new(), 0u64);
        let mut notices = Vec::new();
        let mut flushed = Vec::new();
        for item in batch.drain(..) {
            match item {
                Outgoing::Notice(Invalidation::Keys(some)) => {
                    keys.extend(some);
                    merged += 1;
                }
                Outgoing::Notice(what) => notices.push((what, 1)),
                Outgoing::Flush(done) => flushed.push(done),
            }
        }
        if merged > 0 {
            notices.insert(0, (Invalidation::Keys(keys), merged));
        }
        for (what, count) in notices {
            let publish = backplane.publish(&Notice { sender, what });
            let (counters, log) = (Arc::clone(&counters), Arc::clone(&log));
            sending.spawn(async move {
                match publish.await {
                    Ok(()) => metrics::counter!(names::INVALIDATIONS_SENT).increment(count),
                    Err(error) => {
                        counters.publish_failures.fetch_add(1, Relaxed);
                        // One line per 10 s: during an outage every batch fails.
                        if let Some(held_back) = log.admit() {
                            tracing::warn!(%error, failures_held_back = held_back, "tiered cache: invalidation not published; other instances flush when their backplane reports the loss (one line per 10 s)");
                        }
                    }
                }
            });
        }
        if !flushed.is_empty() {
            // Everything handed over before the flush is in `sending`.
            while sending.join_next().await.is_some() {}
            for done in flushed {
                let _ = done.send(());
            }
        }
    }
    // The store is gone: what was handed over still goes out.
    while sending.join_next().await.is_some() {}
}
