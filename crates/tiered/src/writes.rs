//! The write path of `TieredStore`: a `set` that keeps its key hot, the
//! other writes' drops, and telling the other instances.

use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{Result, Ttl};
use cache_store::backplane::{Invalidation, Notice};
use cache_store::{Reply, Request, Store, StoreKey};

use crate::coherence::{Coherence, Ticket};
use crate::listener;
use crate::names;
use crate::store::TieredStore;

/// The longest a `set` waits for the one before it of its slot (see
/// `Coherence::own_set_turn`): a loopback round trip is a tenth of it.
const SET_TURN_WAIT: Duration = Duration::from_millis(20);

impl<L2: Store> TieredStore<L2> {
    /// A `set`: L2 first; then, if nothing touched the key's slot
    /// meanwhile, the value into this instance's L1 (so a hot key stays
    /// hot), and the other instances told (see `coherence.rs`).
    pub(crate) async fn set(
        &self,
        key: StoreKey<'_>,
        value: Bytes,
        ttl: Option<Ttl>,
    ) -> Result<Reply> {
        let coherence = &self.shared.coherence;
        let _turn = coherence.own_set_turn(&key, SET_TURN_WAIT).await;
        let sent = Instant::now();
        // Disarmed once L2 acknowledged: a write that failed, or whose
        // caller gave up, expects no echo.
        let echo = Echo::expect(coherence, &key);
        // The old value, if L1 has it, answers reads while the write is in
        // flight (they are concurrent with it), unless an L2 read of the
        // slot is in flight: that read may return the new value, and a
        // later read must not answer the old one (`tests/linearizable.rs`
        // caught it when the old value stayed regardless). A read that
        // starts later counts itself before it looks at L1 once more, and
        // while this write is in flight no backfill lands: so once a read
        // may have seen the new value, the old one is gone from L1.
        let writing = coherence.begin_write(&key);
        // After begin_write: a touch's deadline recorded later sees the
        // spoiled ticket and forgets it (`touch.rs`).
        self.shared.deadlines.forget(&key);
        if coherence.slot_reading(&key) {
            listener::drop_key(&self.shared.l1, &key);
        }
        let ticket = coherence.write_ticket(&key);
        let reply = self
            .shared
            .l2
            .call(Request::Set {
                key: Cow::Borrowed(&key),
                value: value.clone(),
                ttl,
            })
            .await;
        if reply.is_ok() {
            echo.arrives();
            if !self.write_through(&key, value, ttl, sent, ticket) {
                // Not replaced: the old value must not outlive the write.
                coherence.invalidate_key(&key);
                listener::drop_key(&self.shared.l1, &key);
            }
            drop(writing);
            self.tell(Invalidation::Keys(vec![key.into_owned()])).await;
        } else {
            drop((echo, writing));
            // It may have landed.
            self.invalidate(vec![key.into_owned()]).await;
        }
        reply
    }

    /// Puts a value just written to L2 into L1 for at most its TTL (from
    /// before the write was sent, so L1 never outlives L2) and the L1
    /// maximum, unless anything touched the key's slot since the write
    /// began; says whether it did.
    fn write_through(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Ttl>,
        sent: Instant,
        ticket: Ticket,
    ) -> bool {
        let left = match ttl {
            None => self.shared.l1_max_ttl,
            // Less a millisecond: L1's TTL rounds up to whole ones.
            Some(ttl) => match ttl
                .as_duration()
                .checked_sub(sent.elapsed() + Duration::from_millis(1))
            {
                Some(left) => left.min(self.shared.l1_max_ttl),
                None => return false,
            },
        };
        let Ok(ttl) = Ttl::new(left) else {
            return false;
        };
        self.shared
            .coherence
            .insert_if(ticket, Coherence::may_write_through, || {
                self.insert(key, value, ttl)
            })
    }

    /// The writes of `keys` in flight: their backfills refused and the keys
    /// out of L1 until the guards drop (`Coherence::begin_write`).
    pub(crate) fn begin_writes<'s>(
        &'s self,
        keys: &[String],
    ) -> Vec<crate::coherence::Writing<'s>> {
        keys.iter()
            .map(|key| {
                let writing = self.shared.coherence.begin_write(key);
                self.shared.deadlines.forget(key);
                listener::drop_key(&self.shared.l1, key);
                writing
            })
            .collect()
    }

    /// Drops `keys` from L1 and tells the other instances.
    pub(crate) async fn invalidate(&self, keys: Vec<String>) {
        for key in &keys {
            self.shared.coherence.invalidate_key(key);
            listener::drop_key(&self.shared.l1, key);
        }
        self.tell(Invalidation::Keys(keys)).await;
    }

    /// Applies `what` to L1 and tells the other instances.
    pub(crate) async fn invalidate_many(&self, what: Invalidation) {
        self.shared.deadlines.forget_all();
        listener::apply(&self.shared.l1, &self.shared.coherence, &what);
        self.tell(what).await;
    }

    async fn tell(&self, what: Invalidation) {
        if let Some(backplane) = &self.shared.backplane {
            // Client tracking: Redis itself tells every instance, this one
            // included, of the keys the write changed.
            if backplane.sees_every_write() {
                return;
            }
            let notice = Notice {
                sender: self.shared.coherence.id,
                what,
            };
            match backplane.publish(&notice).await {
                Ok(()) => metrics::counter!(names::INVALIDATIONS_SENT).increment(1),
                Err(error) => {
                    self.shared.counters.publish_failures.fetch_add(1, Relaxed);
                    // Owed: published with the next heartbeat that can be.
                    self.shared.counters.owe(notice.what);
                    // One line per 10 s: during an outage every write fails to publish.
                    if let Some(held_back) = self.shared.publish_log.admit() {
                        tracing::warn!(%error, failures_held_back = held_back, "tiered cache: invalidation not published; sent again with the next heartbeat that can be (one line per 10 s)");
                    }
                }
            }
        }
    }
}

/// An own write's echo expected until [`arrives`](Echo::arrives) says the
/// write landed; dropped before, it takes the expectation back.
struct Echo<'a> {
    coherence: &'a Coherence,
    key: &'a str,
    armed: bool,
}

impl<'a> Echo<'a> {
    fn expect(coherence: &'a Coherence, key: &'a str) -> Self {
        coherence.expect_echo(key);
        Self {
            coherence,
            key,
            armed: true,
        }
    }

    fn arrives(mut self) {
        self.armed = false;
    }
}

impl Drop for Echo<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.coherence.echo_not_coming(self.key);
        }
    }
}

/// Whether a write's reply says nothing changed (so nobody need be told).
pub(crate) fn changed_nothing(reply: &Result<Reply>) -> bool {
    match reply {
        Ok(Reply::Decision(decision)) => !decision.allowed,
        other => matches!(other, Ok(Reply::Flag(false)) | Ok(Reply::Count(0))),
    }
}
