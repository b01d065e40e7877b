//! Durable write-behind: the queue of writes in a write log
//! (`cache_store::write_log`; on Redis, a Stream with a consumer group), so
//! a process that dies loses nothing it acknowledged, and another instance
//! flushes what it left.
//!
//! - A write is logged first, then put in the cache; it is acknowledged
//!   (`write` returns `Ok`) once both are done. A write the log refused or
//!   may not have taken is an error before the cache is touched.
//! - Every instance appends to the one log; one at a time flushes it, the
//!   holder of the flusher's lease. It reads the oldest writes (first those
//!   a flusher before it read and never acknowledged), coalesces them per
//!   key (the last value wins, each key where it first came), saves them
//!   with the repository, retrying with backoff, and acknowledges them,
//!   which removes them from the log. It extends its lease while it
//!   saves. When it dies, its lease runs out and another instance takes
//!   over, the unacknowledged writes first: writes of one key reach the
//!   repository in log order.
//! - What a crash costs: nothing acknowledged is lost. A batch the dead
//!   flusher saved but did not acknowledge is saved again by the next one
//!   (the same values, in the same order): saves must be idempotent
//!   (upserts). Without a crash, each write is saved exactly once.
//! - The lease is the only fence between flushers: a flusher cut off from
//!   the log for longer than the lease while its save still runs can race
//!   the next flusher's. Keep saves shorter than the lease (5 s by default).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use cache_port::{Cache, CacheError};
use cache_store::write_log::{Appended, LoggedWrite, Read, WriteLog};
use tokio::sync::Notify;

use crate::write_behind::Repository;

/// How a [`DurableWriteBehind`] flushes.
#[derive(Debug, Clone, Copy)]
pub struct DurableConfig {
    /// The most writes one save carries (before coalescing).
    pub batch: usize,
    /// How often the flusher looks for new writes: a write reaches the
    /// repository about this long after it was logged, at most.
    pub delay: Duration,
    /// Writers wait (or `try_write` refuses) while the log holds this many
    /// unflushed writes, whichever instance made them.
    pub capacity: u64,
    /// The flusher's lease: how long after a flusher died another takes
    /// over.
    pub lease: Duration,
    /// The first retry's wait; it doubles up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
}

impl Default for DurableConfig {
    fn default() -> Self {
        Self {
            // The most one read takes (`cache_redis::MAX_WRITES_PER_READ`):
            // a batch costs the flusher two round trips whatever its size,
            // and with batches of 100 it fell half a million writes behind
            // 64 writers on one server (the write_behind bench).
            batch: 1_000,
            delay: Duration::from_millis(100),
            capacity: 100_000,
            lease: Duration::from_secs(5),
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// What a durable write can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DurableWriteError {
    /// The log did not take the write, or may not have (`OutcomeUnknown`):
    /// the cache was not touched.
    #[error("the write log did not take the write: {0}")]
    NotLogged(CacheError),
    /// The log has `capacity` unflushed writes (`try_write` only).
    #[error("the write log is full ({0} unflushed writes); the repository is behind")]
    Full(u64),
    /// The write is logged and will reach the repository, but the cache
    /// could not take it: the cache may serve the old value until then.
    #[error("logged, but the cache did not take the write: {0}")]
    NotCached(CacheError),
}

/// What the flusher did over the handle's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DurableFlushed {
    /// Saves that succeeded.
    pub batches: u64,
    /// Logged writes acknowledged after a save (before coalescing).
    pub writes: u64,
    /// Failed saves retried.
    pub retries: u64,
}

struct Shared {
    config: DurableConfig,
    closing: AtomicBool,
    wake: Notify,
    batches: AtomicU64,
    writes: AtomicU64,
    retries: AtomicU64,
}

impl Shared {
    fn flushed(&self) -> DurableFlushed {
        DurableFlushed {
            batches: self.batches.load(SeqCst),
            writes: self.writes.load(SeqCst),
            retries: self.retries.load(SeqCst),
        }
    }

    /// Sleeps `wait`, or less if woken (closing).
    async fn pause(&self, wait: Duration) {
        let woken = self.wake.notified();
        if self.closing.load(SeqCst) {
            return;
        }
        let _ = tokio::time::timeout(wait, woken).await;
    }
}

/// Write-behind whose queue is a durable log; see the module docs.
pub struct DurableWriteBehind {
    cache: Arc<dyn Cache>,
    log: Arc<dyn WriteLog>,
    shared: Arc<Shared>,
    flusher: Option<tokio::task::JoinHandle<()>>,
}

impl DurableWriteBehind {
    /// Durable write-behind to `repository` through `cache`, its queue in
    /// `log`; spawns its flusher on the current tokio runtime (it flushes
    /// while this instance holds the lease).
    pub fn new<R: Repository>(
        repository: Arc<R>,
        cache: Arc<dyn Cache>,
        log: Arc<dyn WriteLog>,
        config: DurableConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            config: DurableConfig {
                batch: config.batch.max(1),
                capacity: config.capacity.max(1),
                ..config
            },
            closing: AtomicBool::new(false),
            wake: Notify::new(),
            batches: 0.into(),
            writes: 0.into(),
            retries: 0.into(),
        });
        let flusher = tokio::spawn(flush_loop(
            Arc::clone(&shared),
            Arc::clone(&log),
            repository,
        ));
        Self {
            cache,
            log,
            shared,
            flusher: Some(flusher),
        }
    }

    /// Writes `value` under `key`: into the log (durable), then into the
    /// cache; the repository gets it from whichever instance flushes.
    /// Waits while the log is full.
    pub async fn write(
        &self,
        key: &str,
        value: bytes::Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), DurableWriteError> {
        loop {
            match self.try_write(key, value.clone(), ttl).await {
                Err(DurableWriteError::Full(_)) => {
                    tokio::time::sleep(self.shared.config.delay).await;
                }
                other => return other,
            }
        }
    }

    /// [`write`](Self::write), refusing with
    /// [`Full`](DurableWriteError::Full) instead of waiting.
    pub async fn try_write(
        &self,
        key: &str,
        value: bytes::Bytes,
        ttl: Option<Duration>,
    ) -> Result<(), DurableWriteError> {
        let capacity = self.shared.config.capacity;
        match self.log.append(key, value.clone(), capacity).await {
            Ok(Appended::Logged) => {}
            Ok(_) => return Err(DurableWriteError::Full(capacity)),
            Err(error) => return Err(DurableWriteError::NotLogged(error)),
        }
        self.cache
            .set(key, value, ttl)
            .await
            .map_err(DurableWriteError::NotCached)
    }

    /// Writes in the log not yet in the repository (every instance's).
    pub async fn unflushed(&self) -> cache_port::Result<u64> {
        self.log.unflushed().await
    }

    /// What this instance's flusher did so far.
    pub fn flushed(&self) -> DurableFlushed {
        self.shared.flushed()
    }

    /// Stops the flusher. If this instance leads (or can take the lease),
    /// it first flushes every write in the log and gives the lease up;
    /// otherwise the writes stay in the log for the instance that leads.
    pub async fn shutdown(mut self) -> DurableFlushed {
        self.shared.closing.store(true, SeqCst);
        self.shared.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.await;
        }
        self.shared.flushed()
    }
}

impl Drop for DurableWriteBehind {
    fn drop(&mut self) {
        // Nothing is lost: the writes are in the log, and the lease runs
        // out for another instance (or the next start) to take over.
        if let Some(flusher) = self.flusher.take() {
            flusher.abort();
        }
    }
}

/// Coalesces writes per key: the last value, at the key's first place.
fn coalesce(writes: &[LoggedWrite]) -> Vec<(String, bytes::Bytes)> {
    let mut at: std::collections::HashMap<&str, usize> =
        std::collections::HashMap::with_capacity(writes.len());
    let mut items: Vec<(String, bytes::Bytes)> = Vec::with_capacity(writes.len());
    for write in writes {
        match at.get(write.key.as_str()) {
            Some(&i) => items[i].1 = write.value.clone(),
            None => {
                at.insert(write.key.as_str(), items.len());
                items.push((write.key.clone(), write.value.clone()));
            }
        }
    }
    items
}

async fn flush_loop<R: Repository>(
    shared: Arc<Shared>,
    log: Arc<dyn WriteLog>,
    repository: Arc<R>,
) {
    let config = shared.config;
    loop {
        let closing = shared.closing.load(SeqCst);
        match log.lead(config.lease).await {
            Ok(true) => {}
            Ok(false) if closing => return,
            Ok(false) => {
                shared.pause(config.delay.max(config.lease / 4)).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "durable write-behind: the log did not answer; retrying");
                if closing {
                    return;
                }
                shared.pause(config.backoff).await;
                continue;
            }
        }
        match flush_all(&shared, &*log, &*repository).await {
            Ok(()) if closing => {
                if let Err(error) = log.release().await {
                    tracing::warn!(%error, "durable write-behind: could not give the lease up; it runs out");
                }
                return;
            }
            Ok(()) => {}
            Err(error) => {
                tracing::warn!(%error, "durable write-behind: the log failed; retrying");
                shared.pause(config.backoff).await;
                continue;
            }
        }
        if !shared.closing.load(SeqCst) {
            shared.pause(config.delay).await;
        }
    }
}

/// Flushes batches while the log has writes and this instance leads.
async fn flush_all<R: Repository>(
    shared: &Shared,
    log: &dyn WriteLog,
    repository: &R,
) -> cache_port::Result<()> {
    let config = shared.config;
    loop {
        let writes = match log.read(config.batch).await? {
            Read::Writes(writes) if !writes.is_empty() => writes,
            _ => return Ok(()),
        };
        let items = coalesce(&writes);
        if !save(shared, log, repository, &items).await {
            return Ok(()); // the lease was lost: the next flusher re-reads them
        }
        let ids: Vec<String> = writes.into_iter().map(|w| w.id).collect();
        let count = ids.len() as u64;
        // Saved: acknowledged until it holds (a save not acknowledged would
        // be saved again by the next read).
        let mut backoff = config.backoff;
        while let Err(error) = log.ack(ids.clone()).await {
            tracing::warn!(%error, "durable write-behind: could not acknowledge a saved batch; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(config.max_backoff);
        }
        shared.batches.fetch_add(1, SeqCst);
        shared.writes.fetch_add(count, SeqCst);
    }
}

/// Saves `items`, retrying with backoff, extending the lease meanwhile;
/// false if the lease was lost (then nothing more is tried).
async fn save<R: Repository>(
    shared: &Shared,
    log: &dyn WriteLog,
    repository: &R,
    items: &[(String, bytes::Bytes)],
) -> bool {
    let config = shared.config;
    let mut backoff = config.backoff;
    loop {
        let saving = repository.save_many(items);
        tokio::pin!(saving);
        let saved = loop {
            tokio::select! {
                saved = &mut saving => break saved,
                () = tokio::time::sleep(config.lease / 3) => {
                    if let Ok(false) = log.lead(config.lease).await {
                        tracing::error!("durable write-behind: lost the lease during a save; the next flusher saves this batch again");
                    }
                }
            }
        };
        match saved {
            Ok(()) => return true,
            Err(error) => {
                shared.retries.fetch_add(1, SeqCst);
                tracing::warn!(%error, items = items.len(), ?backoff, "durable write-behind: the repository failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(config.max_backoff);
                // Lost to another flusher: it saves this batch (still
                // pending) itself. An unanswered log: retry, still leading.
                if let Ok(false) = log.lead(config.lease).await {
                    return false;
                }
            }
        }
    }
}
