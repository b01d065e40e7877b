//! `TieredStore`: an in-process L1 (moka) over an L2 store, L2 the authority.

use std::borrow::Cow;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_moka::MokaStore;
use cache_port::report::LogThrottle;
use cache_port::{KeyPages, Pattern, Result};
use cache_store::backplane::{Backplane, Invalidation};
use cache_store::{Op, Reply, Request, Store, StoreKey};

use crate::coherence::Coherence;
use crate::listener::{self, Counters, Listener};
use crate::refresh::{ReadMarks, Refresh};
use crate::writes::changed_nothing;

/// An in-process L1 over an L2 (any store; Redis in production).
///
/// - **Reads**: an L1 hit answers; a miss reads the value and its remaining
///   TTL from L2 (one command where L2 offers it, else two sent together)
///   and backfills L1 with the lesser of that TTL (measured from when the read was sent, so L1 never
///   outlives L2) and the configured L1 maximum. `get_many` answers L1 hits
///   and reads every miss from L2 in one call, with their TTLs where L2
///   gives them in the same command (Redis on one server), and then
///   backfills them too.
///   `exists` answers `true` from an L1 hit. `ttl`, `keys` and `stats` go
///   to L2.
/// - **Writes** (`set`, `set_many`, `delete*`, `expire`, `set_if_absent`,
///   `incr`, `delete_if_equals`, `clear`) go to L2 first; the keys are out
///   of L1 while the write is in flight, and the other instances are told
///   (by Redis itself with client tracking, else through the backplane). A
///   `set` then puts its value into its own L1 unless anything touched the
///   key meanwhile (so a concurrent writer's later value is never
///   overwritten by an older one); other writes leave the keys out. A write
///   that fails still drops and tells: it may have landed.
///   Atomic operations never answer from L1.
/// - **Coherence** (see `coherence.rs`): L1 answers only while the backplane
///   delivers, proved by a heartbeat; when it may have lost a notice, L1 is
///   flushed before it answers again.
pub struct TieredStore<L2> {
    pub(crate) shared: Arc<Shared<L2>>,
}

impl<L2> Clone for TieredStore<L2> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// What the handles of one tiered store share.
pub(crate) struct Shared<L2> {
    pub(crate) l1: MokaStore,
    pub(crate) l2: L2,
    pub(crate) l1_max_ttl: Duration,
    pub(crate) coherence: Arc<Coherence>,
    pub(crate) backplane: Option<Arc<dyn Backplane>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) publish_log: LogThrottle,
    /// `touch_from_l1`'s slack (`None`: every touch goes to L2).
    pub(crate) touch_slack: Option<Duration>,
    /// This instance's own L2 extensions (`touch.rs`).
    pub(crate) deadlines: Arc<crate::touch::Deadlines>,
    /// The listener task, taken by `close` (or aborted when dropped).
    listener: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Reads noted for the refresh (`None`: refresh is off).
    pub(crate) read_marks: Option<Arc<ReadMarks>>,
    /// The refresher task (`refresh.rs`), aborted by `close` or when dropped.
    refresher: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl<L2> Shared<L2> {
    fn take_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.listener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn stop_refresher(&self) {
        let refresher = self
            .refresher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(refresher) = refresher {
            refresher.abort();
        }
    }
}

impl<L2> Drop for Shared<L2> {
    fn drop(&mut self) {
        if let Some(listener) = self.take_listener() {
            listener.abort();
        }
        self.stop_refresher();
    }
}

/// Figures of a tiered store's coherence machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct TieredFigures {
    /// Notices from other instances applied to L1.
    pub notices_received: u64,
    /// Times L1 was flushed because notices may have been lost.
    pub flushes: u64,
    /// Notices (heartbeats included) that could not be published.
    pub publish_failures: u64,
    /// Whether L1 answers now.
    pub l1_serving: bool,
    /// `get_and_touch` calls answered from L1 with no L2 command
    /// (`TieredConfig::touch_from_l1`).
    pub touches_from_l1: u64,
    /// Keys read back into L1 after another client's write invalidated
    /// them (`TieredConfig::refresh_after_invalidation`).
    pub refreshed: u64,
    /// Keys a reader read from L2 because L1 did not hold them (`get`,
    /// `get_many`; refreshes are counted apart).
    pub l2_reads: u64,
}

impl<L2: Store> TieredStore<L2> {
    /// A tiered store; see [`TieredConfig`](crate::TieredConfig).
    pub(crate) fn new(
        l1: MokaStore,
        l2: L2,
        l1_max_ttl: Duration,
        backplane: Option<(Arc<dyn Backplane>, Duration, Duration)>,
        touch_slack: Option<Duration>,
        refresh: bool,
    ) -> Self {
        let echoes = backplane
            .as_ref()
            .is_some_and(|(b, _, _)| b.sees_every_write());
        let coherence = Arc::new(Coherence::with_echoes(backplane.is_none(), echoes));
        let counters = Arc::new(Counters::default());
        let deadlines = Arc::new(crate::touch::Deadlines::new(echoes));
        // Nothing to refresh without other instances (no backplane).
        let (refresh, wanted) = match backplane.is_some() && refresh {
            true => {
                let (refresh, wanted) = Refresh::new();
                (Some((refresh, Arc::new(ReadMarks::new()))), Some(wanted))
            }
            false => (None, None),
        };
        let read_marks = refresh.as_ref().map(|(_, marks)| Arc::clone(marks));
        let listener = backplane.as_ref().map(|(backplane, heartbeat, bound)| {
            tokio::spawn(
                Listener {
                    l1: l1.clone(),
                    coherence: Arc::clone(&coherence),
                    backplane: Arc::clone(backplane),
                    heartbeat: *heartbeat,
                    bound: *bound,
                    counters: Arc::clone(&counters),
                    deadlines: Arc::clone(&deadlines),
                    refresh,
                }
                .run(),
            )
        });
        Self {
            shared: Arc::new_cyclic(|shared| Shared {
                l1,
                l2,
                l1_max_ttl,
                coherence,
                backplane: backplane.map(|(b, _, _)| b),
                counters,
                publish_log: LogThrottle::default(),
                touch_slack,
                deadlines,
                listener: std::sync::Mutex::new(listener),
                read_marks,
                refresher: std::sync::Mutex::new(
                    wanted.map(|wanted| tokio::spawn(crate::refresh::run(shared.clone(), wanted))),
                ),
            }),
        }
    }

    /// The L2 store.
    pub fn l2(&self) -> &L2 {
        &self.shared.l2
    }

    /// The coherence figures.
    pub fn figures(&self) -> TieredFigures {
        let c = &self.shared.counters;
        TieredFigures {
            notices_received: c.received.load(Relaxed),
            flushes: c.flushes.load(Relaxed),
            publish_failures: c.publish_failures.load(Relaxed),
            l1_serving: self.shared.coherence.serving(),
            touches_from_l1: c.touches_from_l1.load(Relaxed),
            refreshed: c.refreshed.load(Relaxed),
            l2_reads: c.l2_reads.load(Relaxed),
        }
    }

    /// L1's answer to `request`, if L1 serves (its futures are ready).
    pub(crate) fn l1(&self, request: Request<'_>) -> Option<Reply> {
        if !self.shared.coherence.serving() {
            return None;
        }
        futures::FutureExt::now_or_never(self.shared.l1.call(request))?.ok()
    }
}

impl<L2: Store> Store for TieredStore<L2> {
    /// The hottest call after `get_now`: an L1 hit answers from a future
    /// the size of its reply, ready unless the task's cooperative budget
    /// is spent (`GetFuture`). A miss goes on in a future boxed apart:
    /// left inline, the L2 read's futures (several KB on Redis) would be
    /// part of every call's future, moved into the front's box on every
    /// L1 hit too.
    fn get<'k>(&self, key: StoreKey<'k>) -> impl Future<Output = Result<Option<Bytes>>> + Send {
        let hit = if self.shared.coherence.serving() {
            futures::FutureExt::now_or_never(self.shared.l1.get(Cow::Borrowed(&*key)))
        } else {
            None
        };
        match hit {
            Some(Ok(Some(value))) => {
                self.mark_read(&key);
                GetFuture::Hit(Some(value))
            }
            _ => GetFuture::Miss(Box::pin(async move {
                match self.read(key).await? {
                    Reply::Value(value) => Ok(value),
                    other => Err(cache_store::unexpected_reply(Op::Get, &other)),
                }
            })),
        }
    }

    /// An L1 hit while L1 serves, as `get` answers it; a miss, and one
    /// read in `HITS_PER_UNIT`, go through `get`.
    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        if !self.shared.coherence.serving() || budget_due() {
            return None;
        }
        let value = self.shared.l1.get_now(key)?.ok()??;
        self.mark_read(key);
        Some(Ok(Some(value)))
    }

    /// An L1 hit, watched by the coherence counters (`Coherence`'s
    /// `Watched`): the ticket is taken before L1 is read, so any
    /// invalidation, write or flush after the read spoils it; and the
    /// watch ends when the L1 entry would have expired.
    fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
        let coherence = &self.shared.coherence;
        if !coherence.serving() {
            return None;
        }
        let ticket = coherence.ticket(key);
        let (value, until) = self.shared.l1.get_with_expiry(key)?;
        if !coherence.still_valid(ticket) {
            return None;
        }
        self.mark_read(key);
        let source: Arc<dyn cache_port::Watched> = coherence.clone();
        let watch = cache_port::Watch::new(source, Coherence::stamp(ticket), until);
        Some((value, watch))
    }

    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        let l2 = &self.shared.l2;
        match request {
            Request::Get { key } => self.read(key).await,
            Request::GetMany { keys } => self.get_many(keys).await,
            Request::Exists { key } => {
                if let Some(Reply::Value(Some(_))) = self.l1(Request::Get {
                    key: Cow::Borrowed(&key),
                }) {
                    return Ok(Reply::Flag(true));
                }
                l2.call(Request::Exists { key }).await
            }
            // Never from L1 alone: a key L1 lacks may be in L2, and one
            // answer per key from the authority costs one round trip.
            request @ Request::ExistsMany { .. } => l2.call(request).await,
            Request::GetAndTouch { key, ttl } if self.shared.touch_slack.is_some() => {
                let slack = self.shared.touch_slack.unwrap_or_default();
                self.touch(key, ttl, slack).await
            }
            // The authority's TTL is what it extends: L2, never L1 alone.
            // The value does not change, so L1 keeps what it holds (its
            // entries never outlive L2's).
            request @ (Request::Ttl { .. }
            | Request::GetAndTouch { .. }
            | Request::Keys { .. }
            | Request::Stats { .. }
            | Request::Ping) => l2.call(request).await,
            Request::SetMany { items, ttl } => {
                let keys: Vec<String> = items.iter().map(|(k, _)| k.to_string()).collect();
                let _writing = self.begin_writes(&keys);
                let reply = l2.call(Request::SetMany { items, ttl }).await;
                self.invalidate(keys).await;
                reply
            }
            Request::DeleteMany { keys } => {
                let owned: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                let _writing = self.begin_writes(&owned);
                let reply = l2.call(Request::DeleteMany { keys }).await;
                if !changed_nothing(&reply) {
                    self.invalidate(owned).await;
                }
                reply
            }
            Request::DeletePattern { scope, pattern } => {
                let what = Invalidation::Pattern {
                    scope: scope.to_string(),
                    pattern: pattern.as_str().to_owned(),
                };
                let _writing = self.shared.coherence.begin_write_all();
                listener::apply(&self.shared.l1, &self.shared.coherence, &what);
                let reply = l2.call(Request::DeletePattern { scope, pattern }).await;
                if !changed_nothing(&reply) {
                    self.invalidate_many(what).await;
                }
                reply
            }
            // L1 stops serving (and is emptied) for good, the listener
            // ends, then the backplane and L2 close.
            Request::Close => {
                if let Some(listener) = self.shared.take_listener() {
                    listener.abort();
                    let _ = listener.await;
                }
                self.shared.stop_refresher();
                self.shared.coherence.stop_serving();
                listener::clear_l1(&self.shared.l1, "");
                if let Some(backplane) = &self.shared.backplane {
                    backplane.close().await;
                }
                l2.call(Request::Close).await
            }
            Request::Clear { scope } => {
                let what = Invalidation::Clear {
                    scope: scope.to_string(),
                };
                let _writing = self.shared.coherence.begin_write_all();
                listener::apply(&self.shared.l1, &self.shared.coherence, &what);
                let reply = l2.call(Request::Clear { scope }).await;
                self.invalidate_many(what).await;
                reply
            }
            Request::Set { key, value, ttl } => self.set(key, value, ttl).await,
            // Other one-key writes: L2, then drop and tell (unless nothing
            // changed).
            request => {
                let key = match &request {
                    Request::Set { key, .. }
                    | Request::Delete { key }
                    | Request::Expire { key, .. }
                    | Request::SetIfAbsent { key, .. }
                    | Request::Incr { key, .. }
                    | Request::Throttle { key, .. }
                    | Request::DeleteIfEquals { key, .. } => key.to_string(),
                    // Every other request was matched above; a new one
                    // goes to L2 and drops all of L1 to be safe.
                    _ => {
                        let reply = l2.call(request).await;
                        self.invalidate_many(Invalidation::Clear {
                            scope: String::new(),
                        })
                        .await;
                        return reply;
                    }
                };
                let keys = vec![key];
                let _writing = self.begin_writes(&keys);
                let reply = l2.call(request).await;
                if !changed_nothing(&reply) {
                    self.invalidate(keys).await;
                }
                reply
            }
        }
    }

    fn max_value_len(&self) -> usize {
        self.shared.l2.max_value_len()
    }

    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        self.shared.l2.scan(scope, pattern)
    }
}

/// `TieredStore::get`'s future: an L1 hit, or a miss going on in a future
/// boxed apart. Written by hand rather than as `Either` of an `async`
/// block: fewer instructions on a hit (callgrind).
enum GetFuture<Miss> {
    /// An L1 hit (`None` once answered). It spends a unit of tokio's
    /// cooperative budget, as a ready channel does: a task looping over
    /// hits yields now and then, so the connections' tasks on its worker
    /// (an L2 read, the invalidations) are not starved into timeouts
    /// (`a_loop_of_l1_hits_does_not_starve_a_read_from_redis`).
    Hit(Option<Bytes>),
    Miss(std::pin::Pin<Box<Miss>>),
}

impl<Miss: Future<Output = Result<Option<Bytes>>>> Future for GetFuture<Miss> {
    type Output = Result<Option<Bytes>>;

    #[inline(always)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            GetFuture::Hit(value) => {
                let budget = std::task::ready!(tokio::task::coop::poll_proceed(cx));
                budget.made_progress();
                std::task::Poll::Ready(Ok(value.take()))
            }
            GetFuture::Miss(miss) => miss.as_mut().poll(cx),
        }
    }
}

/// How many L1 hits answered at once (`get_now`) go by before one goes
/// through `get` and spends a unit of the task's cooperative budget (128
/// a poll): a task looping over hits yields every ~2,000 of them, about
/// half a millisecond. Not every hit: tokio's budget is a thread-local
/// with a destructor, and spending it cost ~45 instructions a hit
/// (callgrind), where this counter is a plain thread-local.
const HITS_PER_UNIT: u8 = 16;

thread_local! {
    /// Reads answered at once on this thread since one went through `get`.
    static AT_ONCE: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// Whether this read goes through `get` to spend budget.
#[inline]
fn budget_due() -> bool {
    AT_ONCE.with(|count| {
        let now = count.get() + 1;
        count.set(now % HITS_PER_UNIT);
        now == HITS_PER_UNIT
    })
}
