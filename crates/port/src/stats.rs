//! The `stats` snapshot and the counters adapters keep for it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of an adapter's figures, as `stats()` returns it.
///
/// Counters (`hits` … `errors`) are exact counts of what this adapter
/// instance did since it was built. `entries` and `bytes` describe the store
/// and are `None` where the adapter cannot know them cheaply; each adapter's
/// docs say how approximate its figures are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Keys looked up and found (`get`, each key of `get_many`).
    pub hits: u64,
    /// Keys looked up and not found.
    pub misses: u64,
    /// Entries written (`set`, each item of `set_many`, a winning `set_if_absent`).
    pub sets: u64,
    /// Keys removed by `delete`, `delete_many` and `delete_pattern`.
    pub deletes: u64,
    /// Entries the store dropped to stay within its capacity.
    pub evictions: u64,
    /// Operations that returned an error.
    pub errors: u64,
    /// Entries in the store, when the adapter can tell.
    pub entries: Option<u64>,
    /// Bytes the store holds, when the adapter can tell.
    pub bytes: Option<u64>,
}

impl Stats {
    /// `hits / (hits + misses)`, or `None` before the first lookup.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }
}

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
    pub fn track<T>(&self, result: crate::Result<T>) -> crate::Result<T> {
        if result.is_err() {
            self.errors.fetch_add(1, Relaxed);
        }
        result
    }

    /// The counters as a [`Stats`] with no store figures.
    pub fn snapshot(&self) -> Stats {
        Stats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            errors: self.errors.load(Relaxed),
            ..Stats::default()
        }
    }
}
