//! `TieredConfig`: how a tiered store is built.

use std::sync::Arc;
use std::time::Duration;

use cache_moka::MokaConfig;
use cache_port::{CacheError, Namespace, Result};
use cache_store::backplane::Backplane;
use cache_store::Store;

use crate::{TieredCache, TieredStore};

/// The settings of a tiered store.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use cache_moka::MokaConfig;
/// use cache_port::Cache;
/// use cache_tiered::TieredConfig;
///
/// // L2 would be a RedisStore in production; a second moka store here.
/// let l2 = MokaConfig::default().build_store().unwrap();
/// let cache = TieredConfig::default()
///     .l1(MokaConfig::default().capacity_bytes(64 << 20))
///     .l1_max_ttl(Duration::from_secs(30))
///     .build(l2, None)
///     .unwrap();
/// cache.set("k", "v".into(), None).await.unwrap();
/// assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..])); // from L2, now in L1
/// assert_eq!(cache.get("k").await.unwrap().as_deref(), Some(&b"v"[..])); // from L1
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct TieredConfig {
    l1: MokaConfig,
    l1_max_ttl: Duration,
    heartbeat: Duration,
    heartbeat_bound: Duration,
    namespace: Option<String>,
    touch_slack: Option<Duration>,
    refresh: bool,
}

impl Default for TieredConfig {
    fn default() -> Self {
        Self {
            l1: MokaConfig::default(),
            // Bounds how long an entry lives in L1 if every invalidation
            // path failed silently at once: a backstop, not the mechanism.
            l1_max_ttl: Duration::from_secs(60),
            heartbeat: Duration::from_millis(200),
            heartbeat_bound: Duration::from_millis(1000),
            namespace: None,
            // Exact by default: every touch extends L2 before it returns.
            touch_slack: None,
            // On: a key another instance wrote is read back in a batch
            // instead of by the next reader's miss (`refresh.rs` for the
            // figures and bounds).
            refresh: true,
        }
    }
}

impl TieredConfig {
    /// L1's settings (capacity in bytes; its value limit and namespace are
    /// not used: values are limited by L2, keys namespaced above the tiers;
    /// nor is `count_evictions`: L1's evictions are reported nowhere, so L1
    /// is built without moka's eviction listener and the per-key lock moka
    /// takes on every write when one is installed).
    pub fn l1(mut self, l1: MokaConfig) -> Self {
        self.l1 = l1;
        self
    }

    /// The longest an entry stays in L1 (default 60 s), whatever its L2 TTL.
    pub fn l1_max_ttl(mut self, ttl: Duration) -> Self {
        self.l1_max_ttl = ttl;
        self
    }

    /// How often an instance sends itself a heartbeat over the backplane
    /// (default 200 ms), and how long without one it still lets L1 serve
    /// (default 1 s): the bound on how long a silently broken backplane
    /// can leave L1 stale.
    pub fn heartbeat(mut self, every: Duration, bound: Duration) -> Self {
        self.heartbeat = every;
        self.heartbeat_bound = bound;
        self
    }

    /// Serves `get_and_touch` (a sliding session's read) from L1 when L2's
    /// expiry is known to be at least `ttl − slack` away, writing to L2
    /// only then (default: off, every touch a `GETEX` on L2). After a
    /// touch returns a value, the key's L2 expiry is at least `ttl −
    /// slack` after the call began (a client the tiered cache does not
    /// hear from, which shortens the TTL, excepted); see docs/recipes/SESSIONS.md.
    pub fn touch_from_l1(mut self, slack: Duration) -> Self {
        self.touch_slack = Some(slack);
        self
    }

    /// Whether a key that L1 held, and that was read since it was last put
    /// there, is read back from L2 in the background (in batches, many
    /// keys to one command) when another client's write invalidates it,
    /// instead of by the next reader's miss (default: on; only with a
    /// backplane).
    ///
    /// Coherence does not change: the key is out of L1 first, and the read
    /// back lands only if nothing touched the key meanwhile, as a miss's
    /// would. The cost is one key in a batched L2 read per invalidation of
    /// such a key; a key this instance stopped reading is refreshed at
    /// most once, and a refreshed entry keeps the L1 deadline the dropped
    /// one had. Needs an L2
    /// that gives values with their TTLs in one command (Redis on one
    /// server or Sentinel); elsewhere (a Cluster) it does nothing.
    pub fn refresh_after_invalidation(mut self, on: bool) -> Self {
        self.refresh = on;
        self
    }

    /// The namespace of the cache [`build`](Self::build) makes.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A tiered store over `l2`, kept coherent with other instances through
    /// `backplane` (`None`: a single instance). Must run inside a tokio
    /// runtime when there is a backplane (the listener is spawned).
    pub fn build_store<L2: Store>(
        &self,
        l2: L2,
        backplane: Option<Arc<dyn Backplane>>,
    ) -> Result<TieredStore<L2>> {
        if self.l1_max_ttl.is_zero()
            || self.heartbeat.is_zero()
            || self.heartbeat_bound < self.heartbeat
        {
            return Err(CacheError::Config {
                message: format!(
                    "tiered: l1_max_ttl ({:?}) and heartbeat ({:?}) must be above zero, and the heartbeat bound ({:?}) at least the heartbeat",
                    self.l1_max_ttl, self.heartbeat, self.heartbeat_bound
                ),
            });
        }
        if backplane.is_some() && tokio::runtime::Handle::try_current().is_err() {
            return Err(CacheError::Config {
                message: "tiered: a backplane needs a tokio runtime to listen on".into(),
            });
        }
        let l1 = self.l1.clone().count_evictions(false).build_store()?;
        Ok(TieredStore::new(
            l1,
            l2,
            self.l1_max_ttl,
            backplane.map(|b| (b, self.heartbeat, self.heartbeat_bound)),
            self.touch_slack,
            self.refresh,
        ))
    }

    /// The port over a tiered store, in the configured namespace.
    pub fn build<L2: Store>(
        &self,
        l2: L2,
        backplane: Option<Arc<dyn Backplane>>,
    ) -> Result<TieredCache<L2>> {
        let namespace = self.namespace.as_deref().map(Namespace::new).transpose()?;
        Ok(TieredCache::over(
            self.build_store(l2, backplane)?,
            namespace,
        ))
    }
}
