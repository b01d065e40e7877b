//! The listener: applies other instances' notices to L1, sends this
//! instance's heartbeats, and decides when L1 may serve (see
//! `coherence.rs`).

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::names;
use cache_moka::MokaStore;
use cache_port::Pattern;
use cache_store::backplane::{Backplane, BackplaneEvent, Invalidation, Notice};
use cache_store::{Request, Store};
use futures::StreamExt;

use crate::coherence::{Coherence, OwnedReading};
use crate::refresh::{ReadMarks, Refresh, Wanted};

/// Counters of the listener, read through `TieredStore::figures`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub received: AtomicU64,
    pub flushes: AtomicU64,
    pub publish_failures: AtomicU64,
    pub touches_from_l1: AtomicU64,
    /// Keys read back into L1 after an invalidation (`refresh.rs`).
    pub refreshed: AtomicU64,
    /// Keys readers read from L2 (L1 misses).
    pub l2_reads: AtomicU64,
    /// Invalidations this instance failed to publish, merged, owed to the
    /// others until a publish succeeds (sent with the next heartbeat).
    owed: std::sync::Mutex<Option<Invalidation>>,
}

/// Owed keys past this many become "drop everything": the debt stays
/// bounded through a long outage of the publisher.
const MAX_OWED_KEYS: usize = 10_000;

impl Counters {
    /// Notes an invalidation that could not be published: the other
    /// instances may hold what it invalidates, and no other signal reaches
    /// them (their own channel may be up throughout), so it is owed until
    /// a publish succeeds.
    pub fn owe(&self, what: Invalidation) {
        let mut owed = self.owed.lock().unwrap_or_else(|p| p.into_inner());
        let everything = || Invalidation::Clear {
            scope: String::new(),
        };
        *owed = Some(match (owed.take(), what) {
            (None, Invalidation::Keys(keys)) if keys.len() <= MAX_OWED_KEYS => {
                Invalidation::Keys(keys)
            }
            (Some(Invalidation::Keys(mut before)), Invalidation::Keys(keys))
                if before.len() + keys.len() <= MAX_OWED_KEYS =>
            {
                before.extend(keys);
                before.sort_unstable();
                before.dedup();
                Invalidation::Keys(before)
            }
            (None, Invalidation::Heartbeat(_)) => return,
            (Some(kept), Invalidation::Heartbeat(_)) => kept,
            // A pattern, a clear, or too many keys: drop everything.
            _ => everything(),
        });
    }

    /// What is owed, taken (put it back with [`owe`](Self::owe) if its
    /// publish fails too).
    pub fn take_owed(&self) -> Option<Invalidation> {
        self.owed.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// What the listener runs with.
pub(crate) struct Listener {
    pub l1: MokaStore,
    pub coherence: Arc<Coherence>,
    pub backplane: Arc<dyn Backplane>,
    pub heartbeat: Duration,
    pub bound: Duration,
    pub counters: Arc<Counters>,
    /// `touch_from_l1`'s deadlines: an invalidation forgets its key's.
    pub deadlines: Arc<crate::touch::Deadlines>,
    /// Where keys L1 held when another client changed them go to be read
    /// back, if read since they were put there (`None`: refresh is off).
    pub refresh: Option<(Refresh, Arc<ReadMarks>)>,
}

impl Listener {
    /// Runs until the backplane's stream ends (then L1 stops serving for
    /// good) or the task is aborted (the store was dropped).
    pub async fn run(self) {
        let mut events = self.backplane.subscribe();
        let mut ticks = tokio::time::interval(self.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut channel_up = true;
        let mut beat = 0u64;
        // When each of the last few heartbeats left: its return gives the
        // backplane's delivery lag.
        let mut sent = [(0u64, std::time::Instant::now()); 8];
        loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(BackplaneEvent::Notice(notice)) => self.on_notice(notice, &sent),
                    Some(BackplaneEvent::Down) => channel_up = false,
                    Some(BackplaneEvent::Up) => {
                        channel_up = true;
                        // Notices may have been lost while it was down,
                        // even if this instance never stopped serving.
                        self.flush();
                    }
                    // Unreadable, or an event this version does not know:
                    // what it invalidated is unknown, so drop everything.
                    Some(_) => self.flush(),
                    None => {
                        tracing::warn!("tiered cache: the backplane ended; L1 no longer serves");
                        self.coherence.stop_serving();
                        return;
                    }
                },
                _ = ticks.tick() => {
                    // First what this instance failed to publish before.
                    if let Some(owed) = self.counters.take_owed() {
                        let publish = self.backplane.publish(&Notice {
                            sender: self.coherence.id,
                            what: owed.clone(),
                        });
                        let counters = Arc::clone(&self.counters);
                        tokio::spawn(async move {
                            if publish.await.is_err() {
                                counters.publish_failures.fetch_add(1, Relaxed);
                                counters.owe(owed);
                            }
                        });
                    }
                    beat += 1;
                    sent[(beat % 8) as usize] = (beat, std::time::Instant::now());
                    let publish = self.backplane.publish(&Notice {
                        sender: self.coherence.id,
                        what: Invalidation::Heartbeat(beat),
                    });
                    let counters = Arc::clone(&self.counters);
                    tokio::spawn(async move {
                        if publish.await.is_err() {
                            counters.publish_failures.fetch_add(1, Relaxed);
                        }
                    });
                }
            }
            self.decide(channel_up);
        }
    }

    /// Serve from L1 only while the channel is up and the last own
    /// heartbeat is recent; flush on the way back.
    fn decide(&self, channel_up: bool) {
        let fresh = self.coherence.since_last_beat_ms() <= self.bound.as_millis() as u64;
        match (channel_up && fresh, self.coherence.serving()) {
            (false, true) => {
                tracing::warn!(
                    channel_up,
                    "tiered cache: backplane silent; reading from L2 only"
                );
                self.coherence.stop_serving();
            }
            (true, false) => {
                self.flush();
                self.coherence.resume_serving();
                tracing::info!("tiered cache: backplane delivering; L1 flushed and serving");
            }
            _ => {}
        }
    }

    fn on_notice(&self, notice: Notice, sent: &[(u64, std::time::Instant); 8]) {
        if notice.sender == self.coherence.id {
            if let Invalidation::Heartbeat(n) = notice.what {
                self.coherence.beat();
                if let Some((_, at)) = sent.iter().find(|(beat, _)| *beat == n) {
                    metrics::histogram!(names::BACKPLANE_LAG).record(at.elapsed().as_secs_f64());
                }
            }
            return;
        }
        self.counters.received.fetch_add(1, Relaxed);
        // Another instance's heartbeat invalidates nothing.
        if !matches!(notice.what, Invalidation::Heartbeat(_)) {
            metrics::counter!(names::INVALIDATIONS_RECEIVED).increment(1);
        }
        match notice.what {
            // With client tracking, an own `set`'s echo leaves L1 alone
            // (see `coherence.rs` for why that is safe).
            Invalidation::Keys(keys) => {
                for key in &keys {
                    self.deadlines.heard(key);
                }
                let keys: Vec<String> = keys
                    .into_iter()
                    .filter(|key| !self.coherence.take_echo(key))
                    .collect();
                // What L1 held (and was read since), and until when, asked
                // before the drop and counted as read in flight from then;
                // the refresh reads after the drop (`refresh.rs`).
                let held: Vec<Option<(Instant, OwnedReading)>> = match &self.refresh {
                    Some(_) => keys
                        .iter()
                        .map(|key| {
                            let until = self.held_until(key)?;
                            Some((until, OwnedReading::begin(&self.coherence, key)))
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let what = Invalidation::Keys(keys);
                apply(&self.l1, &self.coherence, &what);
                if let (Some((refresh, _)), Invalidation::Keys(keys)) = (&self.refresh, what) {
                    for (key, held) in keys.into_iter().zip(held) {
                        if let Some((until, reading)) = held {
                            refresh.offer(Wanted {
                                key,
                                until,
                                reading,
                            });
                        }
                    }
                }
            }
            what => {
                if !matches!(what, Invalidation::Heartbeat(_)) {
                    self.deadlines.forget_all();
                }
                apply(&self.l1, &self.coherence, &what);
            }
        }
    }

    /// When `key`'s L1 entry expires, if L1 serves and holds it, and the
    /// key was read since it was last refreshed (the mark is taken).
    fn held_until(&self, key: &str) -> Option<Instant> {
        let (_, marks) = self.refresh.as_ref()?;
        if !marks.take(key) || !self.coherence.serving() {
            return None;
        }
        self.l1.get_with_expiry(key)?.1
    }

    fn flush(&self) {
        self.deadlines.forget_all();
        self.counters.flushes.fetch_add(1, Relaxed);
        metrics::counter!(names::L1_FLUSHES).increment(1);
        self.coherence.invalidate_all();
        self.coherence.forget_echoes();
        clear_l1(&self.l1, "");
        // Again after the change (see `drop_and_spoil`).
        self.coherence.invalidate_all();
    }
}

/// Drops from L1 what `what` says changed.
///
/// Each change of L1 is bumped in the coherence counters before (so that
/// no backfill racing it lands) and after (so that no watch taken between
/// the first bump and the change, on the old value, outlives it: see
/// [`drop_and_spoil`]).
pub(crate) fn apply(l1: &MokaStore, coherence: &Coherence, what: &Invalidation) {
    match what {
        Invalidation::Keys(keys) => {
            for key in keys {
                coherence.invalidate_key(key);
                drop_and_spoil(l1, coherence, key);
            }
        }
        Invalidation::Pattern { scope, pattern } => {
            coherence.invalidate_all();
            match Pattern::new(pattern) {
                Ok(pattern) => {
                    let request = Request::DeletePattern {
                        scope: Cow::Borrowed(scope),
                        pattern: &pattern,
                    };
                    answer(l1.call(request));
                }
                // A pattern this version refuses: drop the whole scope.
                Err(_) => clear_l1(l1, scope),
            }
            coherence.invalidate_all();
        }
        Invalidation::Clear { scope } => {
            coherence.invalidate_all();
            clear_l1(l1, scope);
            coherence.invalidate_all();
        }
        Invalidation::Heartbeat(_) => {}
        // A kind this version does not know: drop everything.
        _ => {
            coherence.invalidate_all();
            clear_l1(l1, "");
            coherence.invalidate_all();
        }
    }
}

/// Drops `key` from L1 (after its slot was bumped) and bumps the slot
/// again. A reader that takes a watch (`watch_now`) between the first
/// bump and the drop reads the old value under the new count; with one
/// bump its watch would hold after the drop, for as long as no other
/// change came (CI: a tags view kept a tag's old version past the
/// invalidation of a write by another instance). A plain read in that
/// window is concurrent with the invalidation and harmless; a watch
/// carries it forward.
pub(crate) fn drop_and_spoil(l1: &MokaStore, coherence: &Coherence, key: &str) {
    drop_key(l1, key);
    coherence.invalidate_key(key);
}

/// Drops `key` from L1.
pub(crate) fn drop_key(l1: &MokaStore, key: &str) {
    answer(l1.call(Request::Delete {
        key: Cow::Borrowed(key),
    }));
}

pub(crate) fn clear_l1(l1: &MokaStore, scope: &str) {
    answer(l1.call(Request::Clear {
        scope: Cow::Borrowed(scope),
    }));
}

/// Runs an L1 call to completion: the moka store answers at once (its
/// futures are ready when made), and cannot fail on these requests.
fn answer<F: std::future::Future>(future: F) {
    let _ = futures::FutureExt::now_or_never(future);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_moka::MokaConfig;
    use cache_port::Watched;

    /// The window `drop_and_spoil` closes, step by step: the invalidation's
    /// first bump, then a watch taken as `watch_now` takes one (ticket,
    /// L1 read, check), then the rest of the invalidation.
    #[test]
    fn a_watch_taken_between_an_invalidations_bump_and_its_drop_is_spoiled() {
        let l1 = MokaConfig::default().build_store().unwrap();
        let coherence = Coherence::new(true);
        let set = l1.call(Request::Set {
            key: Cow::Borrowed("k"),
            value: bytes::Bytes::from_static(b"old"),
            ttl: None,
        });
        futures::FutureExt::now_or_never(set).unwrap().unwrap();
        coherence.invalidate_key("k");
        let ticket = coherence.ticket("k");
        let (value, _) = l1.get_with_expiry("k").unwrap();
        assert_eq!(&value[..], b"old");
        assert!(
            coherence.still_valid(ticket),
            "the window: the old value under the new count"
        );
        drop_and_spoil(&l1, &coherence, "k");
        assert!(l1.get_with_expiry("k").is_none());
        assert!(
            !coherence.unchanged(&Coherence::stamp(ticket)),
            "a watch on the old value held after the invalidation"
        );
    }
}
