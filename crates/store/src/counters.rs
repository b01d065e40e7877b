//! The lock-free counters adapters and the `Counted` layer keep for `stats()`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use cache_port::Stats;

/// Lock-free counters behind [`Stats`], for adapters to share.
#[derive(Debug, Default)]
pub struct StatsCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    deletes: AtomicU64,
    errors: AtomicU64,
}

impl StatsCounters {
    /// Counts one lookup.
    pub fn lookup(&self, hit: bool) {
        if hit { &self.hits } else { &self.misses }.fetch_add(1, Relaxed);
    }

    /// Counts `found` hits and `missed` misses.
    pub fn lookups(&self, found: u64, missed: u64) {
        self.hits.fetch_add(found, Relaxed);
        self.misses.fetch_add(missed, Relaxed);
    }

    /// Counts `n` writes.
    pub fn sets(&self, n: u64) {
        self.sets.fetch_add(n, Relaxed);
    }

    /// Counts `n` removed keys.
    pub fn deletes(&self, n: u64) {
        self.deletes.fetch_add(n, Relaxed);
    }

    /// Counts an error when `result` is one, and hands it back.
    pub fn track<T>(&self, result: cache_port::Result<T>) -> cache_port::Result<T> {
        if result.is_err() {
            self.errors.fetch_add(1, Relaxed);
        }
        result
    }

    /// The counters as a [`Stats`] with no store figures.
    pub fn snapshot(&self) -> Stats {
        let mut stats = Stats::default();
        stats.hits = self.hits.load(Relaxed);
        stats.misses = self.misses.load(Relaxed);
        stats.sets = self.sets.load(Relaxed);
        stats.deletes = self.deletes.load(Relaxed);
        stats.errors = self.errors.load(Relaxed);
        stats
    }
}
