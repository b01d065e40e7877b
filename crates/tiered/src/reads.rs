//! The read path of `TieredStore`: a miss read from L2 with its TTL and
//! backfilled under a ticket, `get_many`, and the reads noted for the
//! refresh after invalidation (`refresh.rs`).

use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{CacheError, Result, Ttl, TtlState};
use cache_store::{Op, Reply, Request, Store, StoreKey};

use crate::coherence::{Coherence, Ticket};
use crate::store::TieredStore;

/// The longest a miss waits for another read or write of its slot before
/// reading L2 itself: a loopback round trip is a tenth of it, and a
/// frozen server does not hold a miss much longer than it would alone.
const MISS_WAIT: Duration = Duration::from_millis(20);

impl<L2: Store> TieredStore<L2> {
    /// A read: L1, else L2 (value and TTL) with a backfill.
    pub(crate) async fn read(&self, key: StoreKey<'_>) -> Result<Reply> {
        self.mark_read(&key);
        if let Some(Reply::Value(Some(value))) = self.l1(Request::Get {
            key: Cow::Borrowed(&key),
        }) {
            return Ok(Reply::Value(Some(value)));
        }
        let coherence = &self.shared.coherence;
        if coherence.serving() && coherence.slot_busy(&key) {
            // Another read (or a write) of the slot may fill L1 for us.
            coherence.wait_for_slot(&key, MISS_WAIT).await;
            if let Some(Reply::Value(Some(value))) = self.l1(Request::Get {
                key: Cow::Borrowed(&key),
            }) {
                return Ok(Reply::Value(Some(value)));
            }
        }
        // Counted in flight first, then L1 once more: a `set` that began
        // before the count may have kept the old value in L1 (this read
        // then answers it, as any hit would); one that begins after it sees
        // the count and drops its old value, which this read may outrun.
        let _reading = coherence.begin_read(&key);
        if let Some(Reply::Value(Some(value))) = self.l1(Request::Get {
            key: Cow::Borrowed(&key),
        }) {
            return Ok(Reply::Value(Some(value)));
        }
        let ticket = coherence.ticket(&key);
        self.shared.counters.l2_reads.fetch_add(1, Relaxed);
        let sent = Instant::now();
        // One command where L2 can give value and TTL together (Redis on
        // one server), else both sent together.
        if let Some(entry) = self.shared.l2.get_with_ttl(Cow::Borrowed(&key)).await? {
            return Ok(Reply::Value(entry.map(|(value, ttl)| {
                self.backfill(&key, &value, ttl, sent, ticket);
                value
            })));
        }
        let (value, ttl) = futures::join!(
            self.shared.l2.call(Request::Get {
                key: Cow::Borrowed(&key)
            }),
            self.shared.l2.call(Request::Ttl {
                key: Cow::Borrowed(&key)
            }),
        );
        if let (Ok(Reply::Value(Some(value))), Ok(Reply::Ttl(ttl))) = (&value, ttl) {
            self.backfill(&key, value, ttl, sent, ticket);
        }
        value
    }

    /// Puts an L2 value into L1 for at most what is left of its L2 TTL and
    /// the L1 maximum, unless an invalidation came in meanwhile.
    pub(crate) fn backfill(
        &self,
        key: &str,
        value: &Bytes,
        ttl: TtlState,
        sent: Instant,
        ticket: Ticket,
    ) {
        self.backfill_within(key, value, ttl, sent, ticket, self.shared.l1_max_ttl);
    }

    /// [`backfill`](Self::backfill), for at most `cap` (a refresh keeps
    /// the dropped entry's L1 deadline: `refresh.rs`).
    pub(crate) fn backfill_within(
        &self,
        key: &str,
        value: &Bytes,
        ttl: TtlState,
        sent: Instant,
        ticket: Ticket,
        cap: Duration,
    ) -> bool {
        let coherence = &self.shared.coherence;
        let cap = cap.min(self.shared.l1_max_ttl);
        let left = match ttl {
            TtlState::Persistent => cap,
            // L2 measured `left` after the read was sent: counting from the
            // send, L1's entry expires no later than L2's.
            TtlState::ExpiresIn(left) => match left.checked_sub(sent.elapsed()) {
                Some(left) => left.min(cap),
                None => return false,
            },
            _ => return false,
        };
        if left.is_zero() {
            return false;
        }
        let Ok(ttl) = Ttl::new(left) else {
            return false;
        };
        // Ttl rounds up to whole milliseconds: never past L2's expiry by
        // more than that rounding, which `left` (floored by Redis) absorbs.
        coherence.insert_if(ticket, Coherence::still_valid, || {
            self.insert(key, value.clone(), ttl)
        })
    }

    /// Notes a read of `key` for the refresh (`refresh.rs`).
    #[inline(always)]
    pub(crate) fn mark_read(&self, key: &str) {
        if let Some(marks) = &self.shared.read_marks {
            marks.mark(key);
        }
    }

    /// Puts `value` into L1 (its futures are ready); says whether it did.
    pub(crate) fn insert(&self, key: &str, value: Bytes, ttl: Ttl) -> bool {
        let inserted = futures::FutureExt::now_or_never(self.shared.l1.call(Request::Set {
            key: Cow::Borrowed(key),
            value,
            ttl: Some(ttl),
        }));
        matches!(inserted, Some(Ok(_)))
    }

    pub(crate) async fn get_many(&self, keys: Vec<StoreKey<'_>>) -> Result<Reply> {
        for key in &keys {
            self.mark_read(key);
        }
        let mut values: Vec<Option<Bytes>> = match self.l1(Request::GetMany { keys: keys.clone() })
        {
            Some(Reply::Values(values)) if values.len() == keys.len() => values,
            _ => vec![None; keys.len()],
        };
        let mut missing: Vec<usize> = (0..keys.len()).filter(|i| values[*i].is_none()).collect();
        if missing.is_empty() {
            return Ok(Reply::Values(values));
        }
        // Counted in flight, then L1 once more (as in `read`).
        let _reading: Vec<_> = missing
            .iter()
            .map(|i| self.shared.coherence.begin_read(&keys[*i]))
            .collect();
        if let Some(Reply::Values(again)) = self.l1(Request::GetMany {
            keys: missing.iter().map(|i| keys[*i].clone()).collect(),
        }) {
            for (i, value) in missing.iter().zip(again) {
                values[*i] = value;
            }
            missing.retain(|i| values[*i].is_none());
            if missing.is_empty() {
                return Ok(Reply::Values(values));
            }
        }
        let wanted: Vec<StoreKey<'_>> = missing.iter().map(|i| keys[*i].clone()).collect();
        let read = wanted.len() as u64;
        self.shared.counters.l2_reads.fetch_add(read, Relaxed);
        // Where L2 gives each value's TTL in the same command (Redis, one
        // server), what it found is backfilled as a `get`'s would be.
        let tickets: Vec<Ticket> = wanted
            .iter()
            .map(|key| self.shared.coherence.ticket(key))
            .collect();
        let sent = Instant::now();
        if let Some(found) = self.shared.l2.get_many_with_ttl(wanted.clone()).await? {
            if found.len() != missing.len() {
                return Err(CacheError::Backend {
                    message: "get_many: L2 answered another number of values".into(),
                    source: None,
                });
            }
            for ((i, ticket), entry) in missing.into_iter().zip(tickets).zip(found) {
                if let Some((value, ttl)) = entry {
                    self.backfill(&keys[i], &value, ttl, sent, ticket);
                    values[i] = Some(value);
                }
            }
            return Ok(Reply::Values(values));
        }
        let request = Request::GetMany { keys: wanted };
        match self.shared.l2.call(request).await? {
            Reply::Values(found) if found.len() == missing.len() => {
                for (i, value) in missing.into_iter().zip(found) {
                    values[i] = value;
                }
                Ok(Reply::Values(values))
            }
            other => Err(cache_store::unexpected_reply(Op::GetMany, &other)),
        }
    }
}
