//! `get_and_touch` served from L1 within a stated bound
//! (`TieredConfig::touch_from_l1`).
//!
//! A sliding session is read on every request and extended by each read;
//! sent to L2 every time (`GETEX`), no read of it is served from L1, and
//! with client tracking every extension is a write Redis tells every
//! instance about, dropping their copies. With a slack `s`, a touch with
//! TTL `t` writes to L2 only when L2's expiry may be less than `t − s`
//! away:
//! - this instance remembers the deadline of its own last extension of the
//!   key (measured from before the `GETEX` was sent, so L2's expiry is at
//!   least that); while it is `t − s` or more away, the touch is a read:
//!   from L1 when L1 holds the key (no round trip), else from L2 with the
//!   key's remaining TTL (a read, which Redis tells nobody about), and if
//!   that TTL is under `t − s`, an extension after all;
//! - otherwise the touch is a `GETEX` on L2, as without the option, and
//!   its value is backfilled into L1 for at most `t` from the send.
//!
//! The bound: after a touch returns a value, the key's L2 expiry is at
//! least `t − s` after the call began, unless a client this instance does
//! not hear from (over a pub/sub backplane, anything but a tiered cache)
//! shortened its TTL meanwhile. A write of the key through this instance
//! forgets the deadline; a write by another drops L1's copy (the backplane),
//! and the read that follows checks L2's TTL. Deadlines are bounded in
//! number: when there are too many, the passed ones go, then all (a
//! forgotten deadline costs an extension, never the bound).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cache_port::{Result, Ttl, TtlState};
use cache_store::{Reply, Request, Store, StoreKey};

use crate::store::TieredStore;

/// The most deadlines kept before passed ones are pruned.
const MAX_DEADLINES: usize = 100_000;

/// This instance's own L2 extensions: key → the earliest L2 expiry.
#[derive(Default)]
pub(crate) struct Deadlines {
    by_key: Mutex<HashMap<String, Instant>>,
}

impl Deadlines {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.by_key.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether L2's expiry of `key` is known to be `at_least` away.
    fn fresh(&self, key: &str, at_least: Duration) -> bool {
        let now = Instant::now();
        self.lock()
            .get(key)
            .is_some_and(|deadline| *deadline > now && *deadline - now >= at_least)
    }

    fn extended(&self, key: &str, deadline: Instant) {
        let mut by_key = self.lock();
        if by_key.len() >= MAX_DEADLINES {
            let now = Instant::now();
            by_key.retain(|_, deadline| *deadline > now);
            if by_key.len() >= MAX_DEADLINES {
                by_key.clear();
            }
        }
        by_key.insert(key.to_owned(), deadline);
    }

    /// A write of `key` through this instance: its deadline is unknown.
    pub(crate) fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// A write of many keys (a pattern, a clear): every deadline goes.
    pub(crate) fn forget_all(&self) {
        self.lock().clear();
    }
}

impl<L2: Store> TieredStore<L2> {
    /// `get_and_touch` with the slack `slack`; see the module docs.
    pub(crate) async fn touch(
        &self,
        key: StoreKey<'_>,
        ttl: Ttl,
        slack: Duration,
    ) -> Result<Reply> {
        let wanted = ttl.as_duration().saturating_sub(slack);
        let shared = &self.shared;
        if shared.coherence.serving() && shared.deadlines.fresh(&key, wanted) {
            if let Some(Reply::Value(Some(value))) = self.l1(Request::Get {
                key: Cow::Borrowed(&key),
            }) {
                shared.counters.touches_from_l1.fetch_add(1, Relaxed);
                return Ok(Reply::Value(Some(value)));
            }
            // L1 lacks it: L2's value and TTL, a read Redis tells nobody of.
            let coherence = &shared.coherence;
            let _reading = coherence.begin_read(&key);
            let ticket = coherence.ticket(&key);
            let sent = Instant::now();
            match shared.l2.get_with_ttl(Cow::Borrowed(&key)).await? {
                Some(None) => return Ok(Reply::Value(None)),
                Some(Some((value, TtlState::ExpiresIn(left))))
                    if left.saturating_sub(sent.elapsed()) >= wanted =>
                {
                    self.backfill(&key, &value, TtlState::ExpiresIn(left), sent, ticket);
                    return Ok(Reply::Value(Some(value)));
                }
                // Shorter than the bound (another client set it), no TTL
                // (a touch gives it one), or L2 cannot say: extend.
                _ => {}
            }
        }
        let coherence = &shared.coherence;
        let _reading = coherence.begin_read(&key);
        let ticket = coherence.ticket(&key);
        let sent = Instant::now();
        let reply = shared
            .l2
            .call(Request::GetAndTouch {
                key: Cow::Borrowed(&key),
                ttl,
            })
            .await?;
        match &reply {
            Reply::Value(Some(value)) => {
                shared.deadlines.extended(&key, sent + ttl.as_duration());
                self.backfill(
                    &key,
                    value,
                    TtlState::ExpiresIn(ttl.as_duration()),
                    sent,
                    ticket,
                );
            }
            _ => shared.deadlines.forget(&key),
        }
        Ok(reply)
    }
}
