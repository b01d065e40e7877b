//! Write-through and write-behind over a repository of the caller's.
//!
//! - [`WriteThrough`]: the repository first, then the cache's copy dropped:
//!   the cache is never newer than the repository (a reader that misses
//!   loads what the repository holds).
//! - [`WriteBehind`]: the cache first (readers see the write at once), the
//!   repository later: writes coalesce per key (the last value wins),
//!   flush in batches when `batch` are pending or `delay` after the oldest,
//!   retry with backoff while the repository fails, and push back on
//!   writers when `capacity` keys are pending. [`WriteBehind::shutdown`]
//!   flushes everything before it returns.
//!
//! What a crash loses: with write-behind, every write acknowledged but not
//! yet flushed (at most `capacity` keys, each its last value); a graceful
//! [`shutdown`](WriteBehind::shutdown) loses nothing. A handle dropped
//! without `shutdown` logs how many writes it leaves unflushed (never
//! silently) and flushes them from a background task if a runtime is still
//! there to run it. (A durable mode with the queue in Redis is not built
//! yet.)

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cache_port::{Cache, Result};
use tokio::sync::Notify;

/// Where the data lives: the caller's database, behind a trait.
#[async_trait]
pub trait Repository: Send + Sync + 'static {
    /// What a save fails with.
    type Error: std::fmt::Display + Send + Sync + 'static;

    /// Saves every item (key, value bytes), all or nothing. A write-behind
    /// flush retries a failed batch whole: with an all-or-nothing save each
    /// write reaches the repository once; with a save that can fail half
    /// way, at least once.
    async fn save_many(
        &self,
        items: &[(String, bytes::Bytes)],
    ) -> std::result::Result<(), Self::Error>;
}

/// Write-through: the repository, then the cache's copy dropped.
pub struct WriteThrough<R> {
    repository: Arc<R>,
    cache: Arc<dyn Cache>,
}

/// What a write-through can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WriteThroughError<E> {
    /// The repository refused the write; the cache was not touched.
    #[error("the repository failed: {0}")]
    Repository(E),
    /// The repository has the write, but the cache's copy could not be
    /// dropped: it may serve the old value until its TTL ends.
    #[error("written, but the cached copy could not be dropped: {0}")]
    Invalidation(cache_port::CacheError),
}

impl<R: Repository> WriteThrough<R> {
    /// Write-through to `repository`, keeping `cache` no newer than it.
    pub fn new(repository: Arc<R>, cache: Arc<dyn Cache>) -> Self {
        Self { repository, cache }
    }

    /// Saves `value` under `key` in the repository, then drops the cached
    /// copy.
    pub async fn write(
        &self,
        key: &str,
        value: bytes::Bytes,
    ) -> std::result::Result<(), WriteThroughError<R::Error>> {
        self.repository
            .save_many(&[(key.to_owned(), value)])
            .await
            .map_err(WriteThroughError::Repository)?;
        self.cache
            .delete(key)
            .await
            .map(drop)
            .map_err(WriteThroughError::Invalidation)
    }
}

/// How a [`WriteBehind`] flushes.
#[derive(Debug, Clone, Copy)]
pub struct WriteBehindConfig {
    /// Flush when this many keys are pending.
    pub batch: usize,
    /// Flush this long after the oldest pending write at the latest.
    pub delay: Duration,
    /// Writers wait (or `try_write` refuses) while this many keys are pending.
    pub capacity: usize,
    /// The first retry's wait; it doubles up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
}

impl Default for WriteBehindConfig {
    fn default() -> Self {
        Self {
            batch: 100,
            delay: Duration::from_millis(100),
            capacity: 10_000,
            backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
        }
    }
}

/// Pending writes: one per key, oldest first, the last value of each.
#[derive(Default)]
struct Pending {
    order: VecDeque<String>,
    values: std::collections::HashMap<String, bytes::Bytes>,
    /// When the oldest pending write came.
    since: Option<Instant>,
    /// Stops the flusher after a last flush.
    closing: bool,
}

struct Shared {
    pending: Mutex<Pending>,
    /// Wakes the flusher (a write came, or closing).
    wake: Notify,
    /// Wakes writers waiting for room.
    room: Notify,
    config: WriteBehindConfig,
    flushed: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
}

/// Write-behind: cache now, repository in batches; see the module docs.
pub struct WriteBehind {
    cache: Arc<dyn Cache>,
    shared: Arc<Shared>,
    flusher: Option<tokio::task::JoinHandle<()>>,
}

/// `try_write` found `capacity` keys pending.
#[derive(Debug, thiserror::Error)]
#[error("write-behind is full ({0} keys pending); the repository is behind")]
pub struct Full(pub usize);

/// What [`WriteBehind::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Batches saved over the handle's life.
    pub batches: u64,
    /// Failed saves retried over the handle's life.
    pub retries: u64,
}

impl WriteBehind {
    /// Write-behind to `repository` through `cache`; spawns its flusher on
    /// the current tokio runtime.
    pub fn new<R: Repository>(
        repository: Arc<R>,
        cache: Arc<dyn Cache>,
        config: WriteBehindConfig,
    ) -> Self {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Notify::new(),
            room: Notify::new(),
            config: WriteBehindConfig {
                batch: config.batch.max(1),
                capacity: config.capacity.max(1),
                ..config
            },
            flushed: 0.into(),
            retries: 0.into(),
        });
        let flusher = tokio::spawn(flush_loop(Arc::clone(&shared), repository));
        Self {
            cache,
            shared,
            flusher: Some(flusher),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Writes `value` under `key`: into the cache now, into the repository
    /// with the next flush. Waits while `capacity` keys are pending (a key
    /// already pending always has room: its value is replaced).
    pub async fn write(&self, key: &str, value: bytes::Bytes, ttl: Option<Duration>) -> Result<()> {
        loop {
            let room = self.shared.room.notified();
            if self.try_queue(key, &value) {
                break;
            }
            room.await;
        }
        self.cache.set(key, value, ttl).await
    }

    /// [`write`](Self::write), refusing with [`Full`] instead of waiting.
    pub async fn try_write(
        &self,
        key: &str,
        value: bytes::Bytes,
        ttl: Option<Duration>,
    ) -> std::result::Result<Result<()>, Full> {
        if !self.try_queue(key, &value) {
            return Err(Full(self.shared.config.capacity));
        }
        Ok(self.cache.set(key, value, ttl).await)
    }

    /// Queues the write if there is room; says whether it did.
    fn try_queue(&self, key: &str, value: &bytes::Bytes) -> bool {
        let mut pending = self.lock();
        if let Some(slot) = pending.values.get_mut(key) {
            // Coalesced: the key keeps its place, with its last value.
            *slot = value.clone();
            return true;
        }
        if pending.order.len() >= self.shared.config.capacity {
            return false;
        }
        pending.order.push_back(key.to_owned());
        pending.values.insert(key.to_owned(), value.clone());
        pending.since.get_or_insert_with(Instant::now);
        drop(pending);
        // The flusher decides whether a batch is due (full, or old enough).
        self.shared.wake.notify_one();
        true
    }

    /// Keys waiting for the repository now.
    pub fn pending(&self) -> usize {
        self.lock().order.len()
    }

    /// Flushes every pending write (retrying while the repository fails)
    /// and stops the flusher; returns once the repository has them all.
    pub async fn shutdown(mut self) -> Flushed {
        self.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(flusher) = self.flusher.take() {
            let _ = flusher.await;
        }
        Flushed {
            batches: self
                .shared
                .flushed
                .load(std::sync::atomic::Ordering::SeqCst),
            retries: self
                .shared
                .retries
                .load(std::sync::atomic::Ordering::SeqCst),
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        let Some(flusher) = self.flusher.take() else {
            return;
        };
        let left = {
            let mut pending = self.lock();
            pending.closing = true;
            pending.order.len()
        };
        self.shared.wake.notify_one();
        if left > 0 {
            tracing::error!(
                unflushed = left,
                "write-behind dropped without shutdown(): its flusher goes on flushing in the background while the runtime lives"
            );
        }
        drop(flusher); // detached: it flushes what is left, then ends
    }
}

/// Takes the oldest `batch` pending writes. One batch is in flight at a
/// time and is retried until saved, so a key's writes reach the repository
/// in the order they were made (a later write of a key in flight waits for
/// the next batch).
fn take_batch(pending: &mut Pending, batch: usize) -> Vec<(String, bytes::Bytes)> {
    let mut taken = Vec::with_capacity(batch.min(pending.order.len()));
    while taken.len() < batch {
        let Some(key) = pending.order.pop_front() else {
            break;
        };
        if let Some(value) = pending.values.remove(&key) {
            taken.push((key, value));
        }
    }
    pending.since = if pending.order.is_empty() {
        None
    } else {
        Some(Instant::now())
    };
    taken
}

async fn flush_loop<R: Repository>(shared: Arc<Shared>, repository: Arc<R>) {
    let config = shared.config;
    loop {
        // Wait until a batch is due: full, old enough, or closing.
        let batch = loop {
            let wake = shared.wake.notified();
            let wait = {
                let mut pending = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
                let full = pending.order.len() >= config.batch;
                let old = pending.since.map(|at| at.elapsed() >= config.delay);
                if pending.order.is_empty() && pending.closing {
                    return;
                }
                if full || pending.closing || old == Some(true) {
                    break take_batch(&mut pending, config.batch);
                }
                pending
                    .since
                    .map(|at| config.delay.saturating_sub(at.elapsed()))
            };
            match wait {
                Some(left) => {
                    let _ = tokio::time::timeout(left, wake).await;
                }
                None => wake.await,
            }
        };
        shared.room.notify_waiters();
        let items = batch;
        let mut backoff = config.backoff;
        loop {
            match repository.save_many(&items).await {
                Ok(()) => {
                    shared
                        .flushed
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
                Err(error) => {
                    shared
                        .retries
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tracing::warn!(%error, items = items.len(), ?backoff, "write-behind: the repository failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(config.max_backoff);
                }
            }
        }
    }
}
