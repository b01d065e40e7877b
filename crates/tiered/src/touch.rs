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
//! shortened its TTL meanwhile. A deadline is forgotten at every
//! invalidation of its key this instance hears of (every write of it
//! through this instance; with client tracking, every write by anyone),
//! except the touch's own `GETEX`'s: with client tracking Redis tells this
//! instance of its own `GETEX` too, and one invalidation per `GETEX` in
//! flight or unheard is taken as that echo (the first one after the
//! `GETEX` was sent is its own or an earlier write's, which ran before the
//! `GETEX` set the TTL; a later one finds no echo expected). A touch
//! records its deadline only if nothing was forgotten in the key's slot
//! since its `GETEX` was sent. L1's copy is dropped by every invalidation,
//! the echo included: the next touch reads L2 (value and TTL) and fills
//! L1 again. Deadlines are bounded in number: when there are too many, the
//! passed ones go, then all (a forgotten deadline costs an extension, never
//! the bound).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cache_port::{Result, Ttl, TtlState};
use cache_store::{Reply, Request, Store, StoreKey};

use crate::coherence::{self, Coherence};
use crate::store::TieredStore;

/// The most deadlines kept before passed ones are pruned.
const MAX_DEADLINES: usize = 100_000;

/// This instance's own L2 extensions: key → the earliest L2 expiry.
pub(crate) struct Deadlines {
    inner: Mutex<Inner>,
    /// Bumped when a deadline of the slot is forgotten (the slots of
    /// `Coherence::slot`).
    generations: Box<[AtomicU64]>,
    /// Client tracking: Redis tells this instance of its own `GETEX`s.
    echoes: bool,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, Instant>,
    /// `GETEX`s sent whose invalidation has not come (tracking only).
    echoes: HashMap<String, u32>,
}

impl Deadlines {
    pub(crate) fn new(echoes: bool) -> Self {
        Self {
            inner: Mutex::default(),
            generations: (0..coherence::SLOTS).map(|_| AtomicU64::new(0)).collect(),
            echoes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key's generation counter: spread over the same slots as the
    /// invalidation tickets.
    fn generation(&self, key: &str) -> &AtomicU64 {
        &self.generations[Coherence::slot(key)]
    }

    /// Whether L2's expiry of `key` is known to be `at_least` away.
    fn fresh(&self, key: &str, at_least: Duration) -> bool {
        let now = Instant::now();
        self.lock()
            .by_key
            .get(key)
            .is_some_and(|deadline| *deadline > now && *deadline - now >= at_least)
    }

    /// Before a `GETEX` of `key` is sent: its generation now, and (with
    /// tracking) its echo expected.
    fn sending(&self, key: &str) -> u64 {
        if self.echoes {
            *self.lock().echoes.entry(key.to_owned()).or_insert(0) += 1;
        }
        self.generation(key).load(SeqCst)
    }

    /// A `GETEX` that changed nothing (the key was absent) or failed: no
    /// echo is counted on (one that comes forgets the deadline).
    fn no_echo(&self, key: &str) {
        if self.echoes {
            let mut inner = self.lock();
            if let Some(n) = inner.echoes.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    inner.echoes.remove(key);
                }
            }
        }
        self.forget(key);
    }

    /// The `GETEX` sent at `generation` extended `key` to `deadline`:
    /// recorded unless a deadline of the slot was forgotten since.
    fn extended(&self, key: &str, deadline: Instant, generation: u64) {
        {
            let mut inner = self.lock();
            if inner.by_key.len() >= MAX_DEADLINES {
                let now = Instant::now();
                inner.by_key.retain(|_, deadline| *deadline > now);
                if inner.by_key.len() >= MAX_DEADLINES {
                    inner.by_key.clear();
                }
            }
            inner.by_key.insert(key.to_owned(), deadline);
        }
        // Recorded, then checked: a forget that came in between sees the
        // record, or bumped the generation before this check.
        if self.generation(key).load(SeqCst) != generation {
            self.lock().by_key.remove(key);
        }
    }

    /// An invalidation of `key` heard from the backplane: a `GETEX`'s echo
    /// if one is expected, else the deadline goes.
    pub(crate) fn heard(&self, key: &str) {
        if self.echoes {
            let mut inner = self.lock();
            if let Some(n) = inner.echoes.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    inner.echoes.remove(key);
                }
                return;
            }
        }
        self.forget(key);
    }

    /// A write of `key` through this instance: its deadline is unknown.
    pub(crate) fn forget(&self, key: &str) {
        self.generation(key).fetch_add(1, SeqCst);
        self.lock().by_key.remove(key);
    }

    /// A write of many keys (a pattern, a clear), or notices that may have
    /// been lost: every deadline and expected echo goes.
    pub(crate) fn forget_all(&self) {
        for generation in self.generations.iter() {
            generation.fetch_add(1, SeqCst);
        }
        let mut inner = self.lock();
        inner.by_key.clear();
        inner.echoes.clear();
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
        self.extend(&key, ttl).await
    }

    /// The touch as a `GETEX` on L2; its answer is backfilled into L1 for
    /// at most `ttl` from the send (with client tracking, the `GETEX`'s
    /// own invalidation then drops it: the next touch reads L2).
    async fn extend(&self, key: &str, ttl: Ttl) -> Result<Reply> {
        let shared = &self.shared;
        let coherence = &shared.coherence;
        let _reading = coherence.begin_read(key);
        let ticket = coherence.ticket(key);
        let sent = Instant::now();
        let generation = shared.deadlines.sending(key);
        let reply = shared
            .l2
            .call(Request::GetAndTouch {
                key: Cow::Borrowed(key),
                ttl,
            })
            .await;
        match &reply {
            Ok(Reply::Value(Some(value))) => {
                shared
                    .deadlines
                    .extended(key, sent + ttl.as_duration(), generation);
                self.backfill(
                    key,
                    value,
                    TtlState::ExpiresIn(ttl.as_duration()),
                    sent,
                    ticket,
                );
            }
            _ => shared.deadlines.no_echo(key),
        }
        reply
    }
}
