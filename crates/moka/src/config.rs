//! Configuration of the in-process adapter.

use cache_port::{CacheError, Namespace, Result, MAX_KEY_LEN};

use crate::entry::ENTRY_OVERHEAD;

/// The default capacity: 64 MiB, enough for a small service's hot set
/// (≈ 120k entries of 100-byte values with short keys: each is charged
/// the resident memory it costs, see `ENTRY_OVERHEAD`).
pub const DEFAULT_CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// How a [`MokaCache`](crate::MokaCache) is built.
///
/// ```
/// use cache_moka::MokaConfig;
///
/// let cache = MokaConfig::default()
///     .capacity_bytes(8 * 1024 * 1024)
///     .namespace("catalog")
///     .build()
///     .unwrap();
/// # drop(cache);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MokaConfig {
    pub(crate) capacity_bytes: u64,
    pub(crate) max_value_len: Option<usize>,
    pub(crate) namespace: Option<String>,
    pub(crate) count_evictions: bool,
}

impl Default for MokaConfig {
    fn default() -> Self {
        Self {
            capacity_bytes: DEFAULT_CAPACITY_BYTES,
            max_value_len: None,
            namespace: None,
            count_evictions: true,
        }
    }
}

impl MokaConfig {
    /// The options that differ from their defaults, as `name=value` in the
    /// URL's own spelling (`capacity=1048576`, `max_value_len=4096`); the
    /// namespace is not among them (it is shown on its own).
    pub fn changed_options(&self) -> Vec<String> {
        let mut changed = Vec::new();
        if self.capacity_bytes != DEFAULT_CAPACITY_BYTES {
            changed.push(format!("capacity={}", self.capacity_bytes));
        }
        if let Some(limit) = self.max_value_len {
            changed.push(format!("max_value_len={limit}"));
        }
        if !self.count_evictions {
            changed.push("count_evictions=false".into());
        }
        changed
    }

    /// The store's bound, in bytes of keys + values + a fixed per-entry
    /// overhead. Past it, the least recently used entries are evicted.
    pub fn capacity_bytes(mut self, bytes: u64) -> Self {
        self.capacity_bytes = bytes;
        self
    }

    /// The largest value accepted (default: the largest that fits the store).
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = Some(bytes);
        self
    }

    /// Whether `stats().evictions` counts the entries dropped for room
    /// (default: yes).
    ///
    /// Counting costs about a third of every `set`: moka tells of an
    /// eviction only through an eviction listener, and with one installed
    /// it takes a lock of its own per key on every write (an entry in a
    /// concurrent map, made and dropped each time) and calls the listener
    /// for every replaced value too. Measured (docs/PERFORMANCE.md, issue
    /// 25): 8,127 instructions per `set` with a TTL counting, 5,688 not
    /// (a default moka's `insert`: 4,876); timed, 0.53–0.67x a default
    /// moka counting, 0.93–1.27x not. With
    /// `false`, `stats().evictions` is `None` (not counted), never a
    /// made-up zero; the byte bound and LRU order are unchanged.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use cache_moka::MokaConfig;
    /// use cache_port::Cache;
    ///
    /// let cache = MokaConfig::default().count_evictions(false).build().unwrap();
    /// cache.set("k", "v".into(), None).await.unwrap();
    /// assert_eq!(cache.stats().await.unwrap().evictions, None);
    /// # });
    /// ```
    pub fn count_evictions(mut self, count: bool) -> Self {
        self.count_evictions = count;
        self
    }

    /// The namespace of the cache [`build`](Self::build) makes: its keys are
    /// stored as `namespace:key` (see `cache_port::Namespace` for the rules,
    /// checked by `build`).
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The configured namespace.
    pub fn namespace_ref(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The configured capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity_bytes
    }

    /// Builds a new store and the port over it, in the configured namespace.
    pub fn build(self) -> Result<crate::MokaCache> {
        let namespace = self.namespace.as_deref().map(Namespace::new).transpose()?;
        Ok(crate::MokaCache::over(self.build_store()?, namespace))
    }

    /// Builds a new store alone, for `cache_store::CacheBuilder` stacks of
    /// your own (the namespace is not applied: add it to the builder).
    pub fn build_store(&self) -> Result<crate::MokaStore> {
        crate::MokaStore::from_config(self)
    }

    /// The effective value limit: what was asked for, and never more than
    /// one entry with a longest key can weigh in this store.
    pub(crate) fn value_limit(&self) -> Result<usize> {
        let fits = self
            .capacity_bytes
            .saturating_sub((MAX_KEY_LEN + ENTRY_OVERHEAD) as u64)
            .min(u64::from(u32::MAX) - (MAX_KEY_LEN + ENTRY_OVERHEAD) as u64);
        if fits == 0 {
            return Err(CacheError::Config {
                message: format!(
                    "capacity of {} bytes cannot hold even one entry (at least {} bytes needed)",
                    self.capacity_bytes,
                    MAX_KEY_LEN + ENTRY_OVERHEAD + 1
                ),
            });
        }
        let fits = usize::try_from(fits).unwrap_or(usize::MAX);
        match self.max_value_len {
            Some(0) => Err(CacheError::Config {
                message: "max_value_len must be at least 1 byte".into(),
            }),
            Some(asked) if asked > fits => Err(CacheError::Config {
                message: format!(
                    "max_value_len of {asked} bytes cannot fit a store of {} bytes (at most {fits})",
                    self.capacity_bytes
                ),
            }),
            Some(asked) => Ok(asked),
            None => Ok(fits),
        }
    }
}
