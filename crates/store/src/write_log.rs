//! The write log: a durable queue of writes, shared by the instances of a
//! service, flushed by one of them at a time.
//!
//! It is the port under `cache-recipes`' durable write-behind: a write is
//! acknowledged once [`WriteLog::append`] returned, and from then on it
//! survives the death of the process that made it. One instance at a time
//! holds the flusher's lease ([`WriteLog::lead`]) and reads the log
//! ([`WriteLog::read`]): first the writes it (or a flusher before it that
//! died) read and never acknowledged, then new ones, oldest first; it
//! acknowledges each write once the repository has it
//! ([`WriteLog::ack`]), which removes it. `cache-redis` implements it on a
//! Redis Stream with a consumer group.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use cache_port::Result;

/// One logged write, as the flusher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedWrite {
    /// Its position in the log (opaque; ascending in log order).
    pub id: String,
    /// The key written.
    pub key: String,
    /// The value written.
    pub value: Bytes,
}

/// What [`WriteLog::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Appended {
    /// The write is in the log: durable, acknowledged.
    Logged,
    /// The log holds `capacity` unflushed writes already: nothing was
    /// written.
    Full,
}

/// What [`WriteLog::read`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Read {
    /// This instance does not hold the lease (another flusher does, or it
    /// ran out): it must not save anything it read before.
    NotLeading,
    /// Up to the asked number of writes, oldest first: those read before
    /// and never acknowledged first. Empty: nothing to flush.
    Writes(Vec<LoggedWrite>),
}

/// A durable log of writes; see the module docs.
pub trait WriteLog: Send + Sync + 'static {
    /// Appends `key` = `value` unless `capacity` writes are unflushed;
    /// durable once it returns `Logged`. An error is an unknown outcome:
    /// the write may or may not be in the log.
    fn append(&self, key: &str, value: Bytes, capacity: u64) -> BoxFuture<'_, Result<Appended>>;

    /// Takes the flusher's lease for `lease`, or extends it if this
    /// instance holds it; false while another instance holds it.
    fn lead(&self, lease: Duration) -> BoxFuture<'_, Result<bool>>;

    /// The next writes to flush, at most `max`, while this instance leads.
    fn read(&self, max: usize) -> BoxFuture<'_, Result<Read>>;

    /// Removes writes the repository has (by their ids).
    fn ack(&self, ids: Vec<String>) -> BoxFuture<'_, Result<()>>;

    /// Gives the lease up if this instance holds it.
    fn release(&self) -> BoxFuture<'_, Result<()>>;

    /// Writes in the log not yet acknowledged (read or not).
    fn unflushed(&self) -> BoxFuture<'_, Result<u64>>;
}

/// A write log within one process (tests, examples, a single instance
/// that wants the flusher's semantics without durability): the writes die
/// with the process. Clones share the log; each clone is an instance of
/// its own (its own lease token), as separate connections to Redis are.
#[derive(Clone)]
pub struct LocalWriteLog {
    shared: std::sync::Arc<std::sync::Mutex<LocalLog>>,
    token: u64,
}

#[derive(Default)]
struct LocalLog {
    next_id: u64,
    /// Unflushed writes, in log order: (id, key, value, read yet).
    writes: std::collections::VecDeque<(u64, String, Bytes, bool)>,
    /// The lease: its holder's token and when it runs out.
    lease: Option<(u64, std::time::Instant)>,
    tokens: u64,
}

impl std::fmt::Debug for LocalWriteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalWriteLog").finish_non_exhaustive()
    }
}

impl Default for LocalWriteLog {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalWriteLog {
    /// An empty log.
    pub fn new() -> Self {
        Self {
            shared: std::sync::Arc::default(),
            token: 1,
        }
    }

    /// Another instance on the same log (a lease token of its own).
    pub fn instance(&self) -> Self {
        let token = {
            let mut log = self.lock();
            log.tokens += 1;
            log.tokens + 1
        };
        Self {
            shared: std::sync::Arc::clone(&self.shared),
            token,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalLog> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn leads(&self, log: &LocalLog) -> bool {
        matches!(log.lease, Some((holder, until)) if holder == self.token && until > std::time::Instant::now())
    }
}

impl WriteLog for LocalWriteLog {
    fn append(&self, key: &str, value: Bytes, capacity: u64) -> BoxFuture<'_, Result<Appended>> {
        let mut log = self.lock();
        let appended = if log.writes.len() as u64 >= capacity {
            Appended::Full
        } else {
            log.next_id += 1;
            let id = log.next_id;
            log.writes.push_back((id, key.to_owned(), value, false));
            Appended::Logged
        };
        Box::pin(std::future::ready(Ok(appended)))
    }

    fn lead(&self, lease: Duration) -> BoxFuture<'_, Result<bool>> {
        let mut log = self.lock();
        let now = std::time::Instant::now();
        let free = match log.lease {
            None => true,
            Some((holder, until)) => holder == self.token || until <= now,
        };
        if free {
            log.lease = Some((self.token, now + lease));
        }
        Box::pin(std::future::ready(Ok(free)))
    }

    fn read(&self, max: usize) -> BoxFuture<'_, Result<Read>> {
        let mut log = self.lock();
        let read = if !self.leads(&log) {
            Read::NotLeading
        } else {
            // What was read and never acknowledged first (a dead flusher's),
            // then new writes: as the Redis Stream's consumer group does.
            let pending = log.writes.iter().any(|w| w.3);
            let writes = log
                .writes
                .iter_mut()
                .filter(|w| w.3 == pending)
                .take(max.max(1))
                .map(|w| {
                    w.3 = true;
                    LoggedWrite {
                        id: w.0.to_string(),
                        key: w.1.clone(),
                        value: w.2.clone(),
                    }
                })
                .collect();
            Read::Writes(writes)
        };
        Box::pin(std::future::ready(Ok(read)))
    }

    fn ack(&self, ids: Vec<String>) -> BoxFuture<'_, Result<()>> {
        let mut log = self.lock();
        let ids: std::collections::HashSet<String> = ids.into_iter().collect();
        log.writes.retain(|w| !ids.contains(&w.0.to_string()));
        Box::pin(std::future::ready(Ok(())))
    }

    fn release(&self) -> BoxFuture<'_, Result<()>> {
        let mut log = self.lock();
        if matches!(log.lease, Some((holder, _)) if holder == self.token) {
            log.lease = None;
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn unflushed(&self) -> BoxFuture<'_, Result<u64>> {
        let unflushed = self.lock().writes.len() as u64;
        Box::pin(std::future::ready(Ok(unflushed)))
    }
}
