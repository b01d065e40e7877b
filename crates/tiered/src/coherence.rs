//! Coherence: when the in-process tier (L1) may answer, and how a backfill
//! racing an invalidation is kept out of it.
//!
//! The rules:
//! - **A backfill never outlives an invalidation.** Before reading L2 a
//!   reader takes a [`Ticket`] (the invalidation counters of its key's slot
//!   and of the whole cache); it checks the ticket and inserts into L1 with
//!   the slot held, and every change of the counters is made with the
//!   slots it concerns held. An invalidation bumps the counter first and
//!   drops the key second, so either the reader sees the bump or the drop
//!   removes its insert. (Checking, inserting, then checking again and
//!   taking the insert back left a window in which a read could answer
//!   the insert: `tests/linearizable.rs` caught it once writes put their
//!   values into L1.) The placeholder the Redis client-side caching guide
//!   asks for, without a placeholder. An invalidation bumps again after
//!   the drop: a watch (`watch_now`) taken between the first bump and the
//!   drop read the old value under the new count, and must not hold after
//!   it (`listener::drop_and_spoil`).
//! - **No backfill lands while a write of its slot is in flight.** A
//!   write takes its keys' slots (counting it in flight and bumping them)
//!   before it writes L2, and bumps them again when it is done. A reader
//!   that fetched the old value from L2 before the write could otherwise
//!   put it into L1 after the write reached L2, and a later read would
//!   answer the old value after another had answered the new one: not
//!   linearizable (`tests/linearizable.rs`). Deletes and the other writes
//!   drop their keys from L1 when they begin. A `set` keeps the old value
//!   in L1 while it is in flight (reads then are concurrent with it) unless
//!   an L2 read of the slot is in flight when it begins; a read counts
//!   itself in flight before it looks at L1 the second time and goes to L2.
//!   So once a read may have seen the new value from L2, the old one is
//!   out of L1, and it never comes back (no backfill lands meanwhile).
//! - **A write keeps its key hot, and never over a newer value.** A `set`
//!   puts its value into its own L1 after L2 acknowledged it, if nothing
//!   touched the key's slot since the write began (no invalidation, no
//!   other write of the slot in flight): checked against a ticket taken
//!   right after the write began, as a backfill is. With client tracking,
//!   Redis tells this instance of its own write too (the echo); an
//!   invalidation of a key with an own `set` in flight is taken as that
//!   echo and leaves L1 alone. That is safe because Redis sends
//!   invalidations on one connection in the order it ran the writes: the
//!   first invalidation after the write was sent is the write's own or an
//!   earlier write's, both older than the value the write puts in; a later
//!   one finds no echo expected and drops the key. A write that fails
//!   expects no echo (one that comes anyway drops the key).
//! - **L1 answers only while the backplane provably delivers.** The
//!   backplane reports `Down`/`Up`, and each instance sends itself a
//!   heartbeat: L1 serves only while the channel is up and the instance's
//!   own last heartbeat came back within the bound. From the moment either
//!   fails, reads go to L2 (and nothing is backfilled); when both hold
//!   again, L1 is flushed before it answers again, since notices may have
//!   been lost in between.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::Instant;

/// How many counters keys are spread over.
pub(crate) const SLOTS: usize = 1024;

/// The invalidation counters a reader saw before it read L2.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket {
    slot: usize,
    slot_count: u64,
    global: u64,
}

/// Shared between the store and its listener task.
pub(crate) struct Coherence {
    /// This instance's id on the backplane.
    pub id: u64,
    slots: Box<[AtomicU64]>,
    /// Per slot: held while its counters change and while an insert into
    /// L1 is checked and made, so that no change falls between an
    /// insert's check and the insert itself.
    locks: Box<[Mutex<()>]>,
    /// Writes in flight per slot: while one is, no backfill of the slot lands.
    writing: Box<[AtomicU64]>,
    /// L2 reads in flight per slot (a miss's `GET` + `PTTL`).
    reading: Box<[AtomicU64]>,
    /// Per slot: woken when a read or write of it ends.
    ends: Box<[tokio::sync::Notify]>,
    /// Per slot: the turn of this instance's `set`s (`own_set_turn`).
    turns: Box<[tokio::sync::Mutex<()>]>,
    /// Writes of many keys in flight (`delete_pattern`, `clear`): while one
    /// is, no backfill lands at all.
    writing_all: AtomicU64,
    global: AtomicU64,
    serving: AtomicBool,
    /// Own `set`s whose echo has not arrived, per key (client tracking
    /// only: `None` for a backplane that carries only what is published).
    echoes: Option<Mutex<HashMap<String, u32>>>,
    /// Milliseconds since `epoch` of the last own heartbeat received.
    last_beat_ms: AtomicU64,
    epoch: Instant,
}

impl Coherence {
    /// `serving` from the start (no backplane: one instance), or only once
    /// the backplane has proved itself.
    #[cfg(test)]
    pub fn new(serving: bool) -> Self {
        Self::with_echoes(serving, false)
    }

    /// [`new`](Self::new), counting the echoes of own writes when the
    /// backplane sees every write (client tracking).
    pub fn with_echoes(serving: bool, echoes: bool) -> Self {
        Self {
            echoes: echoes.then(Mutex::default),
            id: fastrand::u64(..),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            locks: (0..SLOTS).map(|_| Mutex::new(())).collect(),
            writing: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            reading: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            ends: (0..SLOTS).map(|_| tokio::sync::Notify::new()).collect(),
            turns: (0..SLOTS).map(|_| tokio::sync::Mutex::new(())).collect(),
            writing_all: AtomicU64::new(0),
            global: AtomicU64::new(0),
            serving: AtomicBool::new(serving),
            last_beat_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn slot(key: &str) -> usize {
        // FNV-1a: cheap, and only spreads keys over counters.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        (hash % SLOTS as u64) as usize
    }

    /// Whether L1 may answer now.
    #[inline]
    pub fn serving(&self) -> bool {
        self.serving.load(SeqCst)
    }

    /// Taken before reading L2 for a backfill.
    pub fn ticket(&self, key: &str) -> Ticket {
        let slot = Self::slot(key);
        Ticket {
            slot,
            slot_count: self.slots[slot].load(SeqCst),
            global: self.global.load(SeqCst),
        }
    }

    /// The ticket as a watch's stamp (`cache_port::Watch`).
    pub fn stamp(ticket: Ticket) -> cache_port::Stamp {
        cache_port::Stamp([ticket.slot as u64, ticket.slot_count, ticket.global])
    }

    /// Whether nothing that could concern the ticket's key was invalidated
    /// since it was taken, and L1 still serves.
    pub fn still_valid(&self, ticket: Ticket) -> bool {
        self.serving()
            && self.slots[ticket.slot].load(SeqCst) == ticket.slot_count
            && self.writing[ticket.slot].load(SeqCst) == 0
            && self.writing_all.load(SeqCst) == 0
            && self.global.load(SeqCst) == ticket.global
    }

    /// Called before `key` is written to L2 (and dropped from L1): spoils
    /// every ticket of its slot, and refuses backfills of the slot until the
    /// returned guard is dropped, after the write, which spoils them again.
    pub fn begin_write(&self, key: &str) -> Writing<'_> {
        let slot = Self::slot(key);
        let _held = lock(&self.locks[slot]);
        self.writing[slot].fetch_add(1, SeqCst);
        self.slots[slot].fetch_add(1, SeqCst);
        Writing {
            coherence: self,
            slot,
        }
    }

    /// Called before `key` is dropped from L1.
    pub fn invalidate_key(&self, key: &str) {
        let slot = Self::slot(key);
        let _held = lock(&self.locks[slot]);
        self.slots[slot].fetch_add(1, SeqCst);
    }

    /// Called before many keys (a pattern, a scope, everything) are dropped.
    pub fn invalidate_all(&self) {
        self.with_every_slot(|| {
            self.global.fetch_add(1, SeqCst);
        });
    }

    /// Runs `change` with every slot held: a change of everything is never
    /// between an insert's check and the insert. Rare (patterns, clears,
    /// flushes), and the locks are taken in one order.
    fn with_every_slot(&self, change: impl FnOnce()) {
        let _held: Vec<_> = self.locks.iter().map(lock).collect();
        change();
    }

    /// Inserts into L1 (`insert` says whether it did) only if `valid` holds
    /// for `ticket`, checked with the slot held: either a change of the
    /// slot came before the check, or the insert came before the change
    /// (and the change's drop removes it).
    pub fn insert_if(
        &self,
        ticket: Ticket,
        valid: impl FnOnce(&Self, Ticket) -> bool,
        insert: impl FnOnce() -> bool,
    ) -> bool {
        let _held = lock(&self.locks[ticket.slot]);
        valid(self, ticket) && insert()
    }

    /// L1 stops answering (and backfills stop landing).
    pub fn stop_serving(&self) {
        self.with_every_slot(|| {
            self.serving.store(false, SeqCst);
            self.global.fetch_add(1, SeqCst);
        });
    }

    /// L1 answers again; call only after flushing it.
    pub fn resume_serving(&self) {
        self.with_every_slot(|| {
            self.global.fetch_add(1, SeqCst);
            self.serving.store(true, SeqCst);
        });
    }

    /// Notes an own heartbeat.
    pub fn beat(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_beat_ms.store(now.max(1), SeqCst);
    }

    /// Milliseconds since the last own heartbeat (`u64::MAX`: none yet).
    pub fn since_last_beat_ms(&self) -> u64 {
        match self.last_beat_ms.load(SeqCst) {
            0 => u64::MAX,
            at => (self.epoch.elapsed().as_millis() as u64).saturating_sub(at),
        }
    }
}

/// A watch on an L1 hit holds while a backfill taken at its read would
/// still be allowed to land: no invalidation of its slot or of everything,
/// no write of its slot in flight, and L1 serving. Every change of L1 a
/// write, an invalidation or a flush makes comes after its bump here.
impl cache_port::Watched for Coherence {
    #[inline]
    fn unchanged(&self, stamp: &cache_port::Stamp) -> bool {
        let [slot, slot_count, global] = stamp.0;
        let Some(slot) = usize::try_from(slot).ok().filter(|s| *s < SLOTS) else {
            return false;
        };
        self.still_valid(Ticket {
            slot,
            slot_count,
            global,
        })
    }
}

impl Coherence {
    /// [`begin_write`](Self::begin_write) for a write of many keys (a
    /// pattern, a scope): no backfill lands anywhere until the guard drops.
    pub fn begin_write_all(&self) -> WritingAll<'_> {
        self.with_every_slot(|| {
            self.writing_all.fetch_add(1, SeqCst);
            self.global.fetch_add(1, SeqCst);
        });
        WritingAll { coherence: self }
    }
}

/// Write-through and echoes (see the module's documentation).
impl Coherence {
    /// The ticket of a write of `key` that began (its guard is held): the
    /// slot as the write's own start left it.
    pub fn write_ticket(&self, key: &str) -> Ticket {
        self.ticket(key)
    }

    /// Whether a write holding `ticket` may put its value into L1: nothing
    /// touched the slot since, and it is the slot's only write in flight.
    pub fn may_write_through(&self, ticket: Ticket) -> bool {
        self.serving()
            && self.slots[ticket.slot].load(SeqCst) == ticket.slot_count
            && self.writing[ticket.slot].load(SeqCst) == 1
            && self.writing_all.load(SeqCst) == 0
            && self.global.load(SeqCst) == ticket.global
    }

    /// Called before an own `set` of `key` is sent: its echo will come.
    pub fn expect_echo(&self, key: &str) {
        if let Some(echoes) = &self.echoes {
            *lock(echoes).entry(key.to_owned()).or_insert(0) += 1;
        }
    }

    /// Called when an own `set` failed: its echo is no longer expected.
    pub fn echo_not_coming(&self, key: &str) {
        if let Some(echoes) = &self.echoes {
            Self::take(&mut lock(echoes), key);
        }
    }

    /// Whether an invalidation of `key` is taken as an own write's echo.
    pub fn take_echo(&self, key: &str) -> bool {
        match &self.echoes {
            Some(echoes) => Self::take(&mut lock(echoes), key),
            None => false,
        }
    }

    /// Forgets every expected echo (L1 is being flushed: echoes may have
    /// been lost; one that comes later drops its key).
    pub fn forget_echoes(&self) {
        if let Some(echoes) = &self.echoes {
            lock(echoes).clear();
        }
    }

    fn take(echoes: &mut HashMap<String, u32>, key: &str) -> bool {
        match echoes.get_mut(key) {
            Some(1) => {
                echoes.remove(key);
                true
            }
            Some(n) => {
                *n -= 1;
                true
            }
            None => false,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A write of many keys in flight (see [`Coherence::begin_write_all`]).
pub(crate) struct WritingAll<'a> {
    coherence: &'a Coherence,
}

impl Drop for WritingAll<'_> {
    fn drop(&mut self) {
        let coherence = self.coherence;
        coherence.with_every_slot(|| {
            coherence.global.fetch_add(1, SeqCst);
            coherence.writing_all.fetch_sub(1, SeqCst);
        });
    }
}

/// A write in flight (see [`Coherence::begin_write`]); ends when dropped,
/// so a write whose caller gave up does not hold its slot.
pub(crate) struct Writing<'a> {
    coherence: &'a Coherence,
    slot: usize,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        {
            let _held = lock(&self.coherence.locks[self.slot]);
            self.coherence.slots[self.slot].fetch_add(1, SeqCst);
            self.coherence.writing[self.slot].fetch_sub(1, SeqCst);
        }
        self.coherence.ends[self.slot].notify_waiters();
    }
}

/// Misses wait for each other (a single flight per slot, as a hint): a
/// miss of a key whose slot has an L2 read or a write in flight waits for
/// it to end (at most `MISS_WAIT`) and looks at L1 again before reading L2
/// itself. What it then finds in L1 is whatever the coherence rules let
/// in, so the wait changes only how many reads reach L2: a hot key
/// invalidated under many readers costs one read, not one per reader.
impl Coherence {
    /// Whether an L2 read or a write of `key`'s slot is in flight.
    fn busy(&self, slot: usize) -> bool {
        self.reading[slot].load(SeqCst) > 0 || self.writing[slot].load(SeqCst) > 0
    }

    /// Waits until what is in flight on `key`'s slot ends, or `cap`.
    pub async fn wait_for_slot(&self, key: &str, cap: std::time::Duration) {
        let slot = Self::slot(key);
        let ended = self.ends[slot].notified();
        tokio::pin!(ended);
        ended.as_mut().enable();
        if self.busy(slot) {
            let _ = tokio::time::timeout(cap, ended).await;
        }
    }

    /// Waits (at most `cap`) until no other `set` of `key`'s slot by this
    /// instance is in flight, and holds the turn until the guard drops.
    /// Two own `set`s of one key in flight at once went on different
    /// connections, so which one Redis kept is not known here and neither
    /// may put its value into L1 (42 % of the sets of hot keys in the
    /// bench): taken in turn, each knows it is the last. Past `cap` the
    /// `set` goes on without its turn, as before (`None`).
    pub async fn own_set_turn(
        &self,
        key: &str,
        cap: std::time::Duration,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        let turn = &self.turns[Self::slot(key)];
        if let Ok(held) = turn.try_lock() {
            return Some(held);
        }
        tokio::time::timeout(cap, turn.lock()).await.ok()
    }

    /// Whether an L2 read of `key`'s slot is in flight.
    pub fn slot_reading(&self, key: &str) -> bool {
        self.reading[Self::slot(key)].load(SeqCst) > 0
    }

    /// Whether a miss of `key` should wait (see [`wait_for_slot`](Self::wait_for_slot)).
    pub fn slot_busy(&self, key: &str) -> bool {
        self.busy(Self::slot(key))
    }

    /// An L2 read of `key` in flight, until the guard drops.
    pub fn begin_read(&self, key: &str) -> Reading<'_> {
        let slot = Self::slot(key);
        self.reading[slot].fetch_add(1, SeqCst);
        Reading {
            coherence: self,
            slot,
        }
    }
}

/// An L2 read in flight that outlives the borrow of its coherence: a
/// refresh's, counted from the invalidation that queues it (`refresh.rs`).
pub(crate) struct OwnedReading {
    coherence: std::sync::Arc<Coherence>,
    slot: usize,
}

impl OwnedReading {
    /// [`Coherence::begin_read`], holding the coherence.
    pub fn begin(coherence: &std::sync::Arc<Coherence>, key: &str) -> Self {
        let slot = Coherence::slot(key);
        coherence.reading[slot].fetch_add(1, SeqCst);
        Self {
            coherence: std::sync::Arc::clone(coherence),
            slot,
        }
    }
}

impl Drop for OwnedReading {
    fn drop(&mut self) {
        self.coherence.reading[self.slot].fetch_sub(1, SeqCst);
        self.coherence.ends[self.slot].notify_waiters();
    }
}

/// An L2 read in flight (see [`Coherence::begin_read`]).
pub(crate) struct Reading<'a> {
    coherence: &'a Coherence,
    slot: usize,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.coherence.reading[self.slot].fetch_sub(1, SeqCst);
        self.coherence.ends[self.slot].notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_is_spoiled_by_its_key_everything_or_a_stop() {
        let c = Coherence::new(true);
        let t = c.ticket("k");
        assert!(c.still_valid(t));
        c.invalidate_key("k");
        assert!(!c.still_valid(t));
        let t = c.ticket("k");
        c.invalidate_all();
        assert!(!c.still_valid(t));
        let t = c.ticket("k");
        c.stop_serving();
        assert!(!c.still_valid(t));
        c.resume_serving();
        assert!(
            !c.still_valid(t),
            "a ticket from before a stop stays spoiled"
        );
        assert!(c.still_valid(c.ticket("k")));
    }

    #[test]
    fn no_backfill_lands_while_a_write_of_its_slot_is_in_flight() {
        let c = Coherence::new(true);
        let before = c.ticket("k");
        let writing = c.begin_write("k");
        assert!(!c.still_valid(before), "a ticket from before the write");
        let during = c.ticket("k");
        assert!(!c.still_valid(during), "a ticket taken during the write");
        drop(writing);
        assert!(!c.still_valid(during), "the write's end spoils it too");
        assert!(
            c.still_valid(c.ticket("k")),
            "after the write, backfills land"
        );
        // A write whose caller gave up (its guard dropped) frees the slot.
        drop(c.begin_write("k"));
        assert!(c.still_valid(c.ticket("k")));
        // A write of many keys holds every slot.
        let all = c.begin_write_all();
        assert!(!c.still_valid(c.ticket("other")));
        drop(all);
        assert!(c.still_valid(c.ticket("other")));
    }

    #[test]
    fn a_write_puts_its_value_in_only_when_nothing_touched_its_slot() {
        let c = Coherence::new(true);
        let writing = c.begin_write("k");
        let ticket = c.write_ticket("k");
        assert!(c.may_write_through(ticket));
        c.invalidate_key("k");
        assert!(!c.may_write_through(ticket), "an invalidation came in");
        drop(writing);
        let writing = c.begin_write("k");
        let ticket = c.write_ticket("k");
        let other = c.begin_write("k");
        assert!(!c.may_write_through(ticket), "another write of the slot");
        drop((other, writing));
    }

    #[test]
    fn echoes_are_counted_per_key_and_forgotten_at_a_flush() {
        let c = Coherence::with_echoes(true, true);
        assert!(!c.take_echo("k"), "no write, no echo");
        c.expect_echo("k");
        c.expect_echo("k");
        assert!(!c.take_echo("j"), "another key is no echo");
        assert!(c.take_echo("k"));
        c.echo_not_coming("k");
        assert!(!c.take_echo("k"), "a failed write expects none");
        c.expect_echo("k");
        c.forget_echoes();
        assert!(!c.take_echo("k"));
        let plain = Coherence::new(true);
        plain.expect_echo("k");
        assert!(!plain.take_echo("k"), "no echoes without tracking");
    }

    #[test]
    fn heartbeats_are_timed() {
        let c = Coherence::new(false);
        assert_eq!(c.since_last_beat_ms(), u64::MAX);
        c.beat();
        assert!(c.since_last_beat_ms() < 1000);
    }
}
