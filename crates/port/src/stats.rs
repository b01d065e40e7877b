//! The `stats` snapshot.

/// A snapshot of an adapter's figures, as `stats()` returns it.
///
/// Counters (`hits` … `errors`) are exact counts of what this adapter
/// instance did since it was built. `evictions`, `entries` and `bytes`
/// describe the store and are `None` where the adapter does not know them
/// (never a made-up zero); each adapter's docs say how approximate its
/// figures are.
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
    /// Entries the store dropped to stay within its capacity, when the
    /// adapter counts them (a moka store built with
    /// `count_evictions(false)` does not; nor does Redis Cluster, whose
    /// figures are per node).
    pub evictions: Option<u64>,
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
