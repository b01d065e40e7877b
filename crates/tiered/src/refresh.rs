//! Refresh after an invalidation: a key that another client changed, and
//! that this instance's L1 held when the notice came, is read back from L2
//! in the background, many keys to one command, instead of by the next
//! reader's miss.
//!
//! Why: with several instances, every write by one costs each of the
//! others a miss on its next read of the key (measured: 20 % of reads at
//! three instances with 10 % writes over 10,000 keys), and a miss is a
//! round trip the reader waits for. multi-tier-cache and Redisson's
//! `SyncStrategy.UPDATE` ship the written value to the other L1s instead,
//! which costs no read but is not coherent (a late message overwrites a
//! newer value; a lost one is never noticed).
//!
//! Why it keeps every coherence rule: the invalidation is applied first
//! (the key is out of L1 and its slot's counters bumped), and the refresh
//! is then an ordinary read of L2 under a ticket taken after that: its
//! backfill lands only if nothing touched the slot meanwhile, exactly as a
//! reader's miss would. It is marked as a read in flight from before the
//! drop, so a reader that misses the key meanwhile waits for it
//! (`MISS_WAIT`) rather than reading too.
//!
//! What it costs, and its bounds: one key in a batched read per
//! invalidation of a key that was in L1 and was read since it was last put
//! there ([`ReadMarks`]: an instance that stopped reading a key refreshes
//! it at most once more, however often others write it); the refreshed
//! entry keeps the L1 deadline the dropped one had, so it leaves L1 when
//! the dropped one would have. The
//! queue holds at most [`QUEUE`] keys; past it, an invalidation only drops
//! (the next read misses, as without refresh). Only where L2 gives values
//! with their TTLs in one command (Redis on one server, Sentinel): on a
//! Cluster, or over an L2 without it, nothing is refreshed.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Weak;
use std::time::Instant;

use cache_store::{Store, StoreKey};
use tokio::sync::mpsc;

use crate::coherence::{OwnedReading, Ticket};
use crate::store::{Shared, TieredStore};

/// Keys waiting to be refreshed, at most.
pub(crate) const QUEUE: usize = 4_096;

/// Keys read back in one command, at most.
const BATCH: usize = 128;

/// Which keys were read since they were last refreshed: one bit per
/// hash of a key (65,536 bits, 8 KiB), set by reads, taken by the
/// listener when an invalidation comes. A key whose bit is not set is only
/// dropped. Two keys sharing a bit cost at most one refresh that was not
/// needed, or one miss a refresh would have saved: never a wrong answer.
///
/// Why not every key L1 holds: an instance holds for up to `l1_max_ttl`
/// keys it no longer reads (in the bench, idle instances after a cell on
/// three), and refreshing each of them at every write by another instance
/// cost the working instance's throughput.
pub(crate) struct ReadMarks {
    bits: Box<[AtomicU64]>,
}

impl ReadMarks {
    const WORDS: usize = 1024;

    pub fn new() -> Self {
        Self {
            bits: (0..Self::WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// The word and bit of `key`: its first and last eight bytes and its
    /// length, mixed (a hit pays a few instructions, not a hash of the
    /// whole key).
    #[inline(always)]
    fn bit(key: &str) -> (usize, u64) {
        let bytes = key.as_bytes();
        let (head, tail) = match (bytes.first_chunk::<8>(), bytes.last_chunk::<8>()) {
            (Some(head), Some(tail)) => (u64::from_le_bytes(*head), u64::from_le_bytes(*tail)),
            // Shorter than eight bytes: rare, and hashed byte by byte.
            _ => (bytes.iter().fold(0, |h, b| h << 8 | u64::from(*b)), 0),
        };
        let mixed = (head.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ tail ^ bytes.len() as u64)
            .wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let index = (mixed >> 48) as usize;
        (index >> 6, 1 << (index & 63))
    }

    /// Notes a read of `key` (a store only when the bit is not set yet:
    /// the word stays shared between cores on hot keys).
    #[inline(always)]
    pub fn mark(&self, key: &str) {
        let (word, bit) = Self::bit(key);
        if self.bits[word].load(Relaxed) & bit == 0 {
            self.bits[word].fetch_or(bit, Relaxed);
        }
    }

    /// Whether `key` was read since the last `take`; clears the mark.
    pub fn take(&self, key: &str) -> bool {
        let (word, bit) = Self::bit(key);
        self.bits[word].fetch_and(!bit, Relaxed) & bit != 0
    }
}

/// A key to read back, and when its dropped L1 entry would have expired.
pub(crate) struct Wanted {
    pub key: String,
    pub until: Instant,
    /// Counted as a read in flight from before the invalidation's drop, so
    /// that a reader missing the key meanwhile waits for the refresh; held
    /// for its drop, when the refresh ends.
    #[allow(dead_code)]
    pub reading: OwnedReading,
}

/// The listener's end: offers keys, never waits.
pub(crate) struct Refresh {
    queue: mpsc::Sender<Wanted>,
}

impl Refresh {
    /// A queue, and the end the refresher reads.
    pub fn new() -> (Self, mpsc::Receiver<Wanted>) {
        let (queue, wanted) = mpsc::channel(QUEUE);
        (Self { queue }, wanted)
    }

    /// Queues `wanted` unless the queue is full (the key then stays out of
    /// L1 until a reader misses it, as it would without refresh).
    pub fn offer(&self, wanted: Wanted) {
        let _ = self.queue.try_send(wanted);
    }
}

/// Reads back what is queued, a batch at a time, until the queue's sender
/// (the listener) is gone or the store is dropped.
pub(crate) async fn run<L2: Store>(store: Weak<Shared<L2>>, mut wanted: mpsc::Receiver<Wanted>) {
    let mut batch = Vec::with_capacity(BATCH);
    while wanted.recv_many(&mut batch, BATCH).await > 0 {
        let Some(shared) = store.upgrade() else {
            return;
        };
        TieredStore { shared }.refresh(&mut batch).await;
        batch.clear();
    }
}

impl<L2: Store> TieredStore<L2> {
    /// Reads `batch`'s keys from L2 in one command and backfills what it
    /// finds, each under a ticket taken now and for no longer than its
    /// dropped entry had left.
    async fn refresh(&self, batch: &mut Vec<Wanted>) {
        let coherence = &self.shared.coherence;
        if !coherence.serving() {
            return;
        }
        batch.sort_unstable_by(|a, b| a.key.cmp(&b.key).then(a.until.cmp(&b.until)));
        batch.dedup_by(|later, first| later.key == first.key);
        let now = Instant::now();
        batch.retain(|w| w.until > now);
        if batch.is_empty() {
            return;
        }
        let tickets: Vec<Ticket> = batch.iter().map(|w| coherence.ticket(&w.key)).collect();
        let keys: Vec<StoreKey<'_>> = batch.iter().map(|w| StoreKey::from(&w.key[..])).collect();
        let sent = Instant::now();
        // Not offered, or failed: the keys stay out, and the next read of
        // each misses as it would have without refresh.
        let Ok(Some(found)) = self.shared.l2.get_many_with_ttl(keys).await else {
            return;
        };
        if found.len() != batch.len() {
            return;
        }
        let mut refreshed = 0;
        for ((wanted, ticket), entry) in batch.iter().zip(tickets).zip(found) {
            if let Some((value, ttl)) = entry {
                let cap = wanted.until.saturating_duration_since(sent);
                self.backfill_within(&wanted.key, &value, ttl, sent, ticket, cap);
                refreshed += 1;
            }
        }
        self.shared.counters.refreshed.fetch_add(refreshed, Relaxed);
    }
}
