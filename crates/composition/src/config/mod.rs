//! Which adapter to build, read from a URL or the environment.

use std::fmt;

use cache_moka::MokaConfig;
use cache_port::{Namespace, Result};
#[cfg(feature = "redis")]
use cache_redis::RedisConfig;
use url::Url;

use self::parse::{config_error, memory_from_url, redis_from_url, take_common_options};

/// The environment variable [`CacheConfig::from_env`] reads.
pub const CACHE_URL_VAR: &str = "CACHE_URL";

/// The cache to build: an adapter and the layers over it.
///
/// | URL | adapter |
/// |---|---|
/// | (nothing), `memory://`, `moka://` | embedded moka; query: `capacity`, `max_value_len` (sizes such as `64MiB`), `count_evictions` (`true`; `false` makes a `set` about a third cheaper and `stats().evictions` unknown) |
/// | `redis://…`, `rediss://…`, `redis-cluster://…`, `redis-sentinel://…` | Redis (feature `redis`); query options as in `cache_redis::RedisConfig` |
///
/// Options every URL takes, read here once for every adapter:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `namespace` | none | keys under `namespace:` (see `cache_port::Namespace`) |
/// | `fail_open` | `false` | an outage reads as a counted, logged miss (`cache_store::layer::FailOpen`) |
/// | `keys_limit` | 100000 | the most keys `keys` collects; past it, `TooManyKeys` |
/// | `metrics` | `false` | every operation timed and counted through the `metrics` facade (`cache_observe::Metered`) |
/// | `tracing` | `false` | one `tracing` span per operation, failures logged once per 10 s (`cache_observe::Traced`) |
/// | `trace_keys` | `hidden` | how keys show in spans at `TRACE`: `hidden`, `hashed`, or `truncated:N` (the first N bytes) |
///
/// Redis URLs also take the tiered cache's options (an in-process L1 over
/// Redis, kept coherent by Redis itself; see `cache_tiered`):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `l1` | none (no L1) | L1's capacity (`64MiB`); setting it turns the tiered cache on |
/// | `l1_max_ttl_ms` | 60000 | the longest an entry stays in L1 |
/// | `l1_refresh` | `true` | a key L1 held is read back (in batches) when another instance or client writes it, instead of by the next reader's miss (`TieredConfig::refresh_after_invalidation`) |
/// | `coherence` | `tracking` (`pubsub` on a cluster) | how L1s learn of writes: `tracking` (Redis client tracking: every write Redis sees, whoever made it, expiries set by others, evictions, `FLUSHDB`) or `pubsub` (only the tiered caches' own writes, published on a channel) |
/// | `backplane_channel` | `cache-tiered:invalidations` | the pub/sub channel the instances share (implies `coherence=pubsub`) |
///
/// Why `tracking` is the default: it is the only one that sees writes the
/// tiered caches did not make, and it costs a write nothing (no `PUBLISH`).
/// Choose `pubsub` where the server refuses `CLIENT TRACKING` (some managed
/// Redis services); a Redis Cluster uses it until tracking is supported
/// there.
///
/// ```
/// use cache_composition::CacheConfig;
///
/// let config = CacheConfig::from_url("memory://?capacity=8MiB&namespace=shop&fail_open=true").unwrap();
/// assert_eq!(config.adapter(), "memory");
/// assert_eq!(config.namespace(), Some("shop"));
/// assert!(config.fail_open());
/// assert!(CacheConfig::from_url("memcached://localhost").is_err());
/// assert!(CacheConfig::from_url("memory://?namespace=shop:").is_err()); // an empty segment
/// ```
#[derive(Clone, PartialEq)]
pub struct CacheConfig {
    adapter: AdapterConfig,
    namespace: Option<Namespace>,
    fail_open: bool,
    keys_limit: usize,
    tier: Option<TierConfig>,
    observe: Observe,
}

/// Which observability layers are on (`metrics`, `tracing`, `trace_keys`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observe {
    /// The metrics layer.
    pub metrics: bool,
    /// The tracing layer.
    pub tracing: bool,
    /// How keys show in spans at `TRACE`.
    pub trace_keys: cache_observe::KeyField,
}

/// The in-process tier over Redis: `l1`, `l1_max_ttl_ms`, `backplane_channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierConfig {
    /// L1's capacity in bytes.
    pub l1_bytes: u64,
    /// The longest an entry stays in L1.
    pub l1_max_ttl: std::time::Duration,
    /// The pub/sub channel of the backplane (with [`TierCoherence::PubSub`]).
    pub channel: String,
    /// How L1s learn of writes; `None`: tracking, except on a Redis Cluster.
    pub coherence: Option<TierCoherence>,
    /// Whether a key L1 held is read back when another client writes it
    /// (`l1_refresh`, default true).
    pub refresh: bool,
}

/// How the tiered cache's L1s learn of writes (`coherence=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TierCoherence {
    /// Redis client tracking (`cache_redis::RedisTracking`): every write
    /// Redis sees.
    Tracking,
    /// Redis pub/sub (`cache_redis::RedisBackplane`): the tiered caches'
    /// own writes only.
    PubSub,
}

impl TierConfig {
    /// The coherence used over `redis`: as configured, else tracking,
    /// except on a Redis Cluster (pub/sub there).
    #[cfg(feature = "redis")]
    pub fn coherence_over(&self, redis: &RedisConfig) -> TierCoherence {
        self.coherence.unwrap_or(if redis.is_cluster() {
            TierCoherence::PubSub
        } else {
            TierCoherence::Tracking
        })
    }
}

impl Default for CacheConfig {
    /// The embedded default: moka, no namespace, no fail-open.
    fn default() -> Self {
        Self::new(AdapterConfig::default())
    }
}

/// The adapter [`CacheConfig`] names, with its own settings.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum AdapterConfig {
    /// The embedded in-process adapter.
    Memory(MokaConfig),
    /// The Redis adapter.
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

impl Default for AdapterConfig {
    /// The embedded default: moka with its default capacity.
    fn default() -> Self {
        AdapterConfig::Memory(MokaConfig::default())
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CacheConfig");
        match &self.adapter {
            AdapterConfig::Memory(c) => s.field("memory", c),
            // RedisConfig's Debug redacts passwords.
            #[cfg(feature = "redis")]
            AdapterConfig::Redis(c) => s.field("redis", c),
        };
        s.field("namespace", &self.namespace)
            .field("fail_open", &self.fail_open)
            .field("keys_limit", &self.keys_limit)
            .field("tier", &self.tier)
            .field("observe", &self.observe)
            .finish()
    }
}

/// How a person reads a configuration: the adapter, the URL with its
/// secrets redacted, the namespace, and only the options that differ from
/// their defaults, e.g. `redis at redis://***@cache:6379/0, namespace shop,
/// with an in-process L1 of 67108864 bytes (options: coalesce=false,
/// fail_open=true)`. `cachectl` prints it first.
impl fmt::Display for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut options = match &self.adapter {
            AdapterConfig::Memory(c) => {
                f.write_str("memory (in-process)")?;
                c.changed_options()
            }
            #[cfg(feature = "redis")]
            AdapterConfig::Redis(c) => {
                write!(f, "redis at {}", c.redacted_url())?;
                c.changed_options()
            }
        };
        if let Some(namespace) = &self.namespace {
            write!(f, ", namespace {}", namespace.as_str())?;
        }
        if let Some(tier) = &self.tier {
            write!(f, ", with an in-process L1 of {} bytes", tier.l1_bytes)?;
            if tier.l1_max_ttl != std::time::Duration::from_secs(60) {
                options.push(format!("l1_max_ttl_ms={}", tier.l1_max_ttl.as_millis()));
            }
            match tier.coherence {
                Some(TierCoherence::Tracking) => options.push("coherence=tracking".into()),
                Some(TierCoherence::PubSub) => options.push("coherence=pubsub".into()),
                None => {}
            }
            if !tier.refresh {
                options.push("l1_refresh=false".into());
            }
            if tier.channel != "cache-tiered:invalidations" {
                options.push(format!("backplane_channel={}", tier.channel));
            }
        }
        if self.fail_open {
            options.push("fail_open=true".into());
        }
        if self.keys_limit != cache_store::DEFAULT_KEYS_LIMIT {
            options.push(format!("keys_limit={}", self.keys_limit));
        }
        if self.observe.metrics {
            options.push("metrics=true".into());
        }
        if self.observe.tracing {
            options.push("tracing=true".into());
        }
        if self.observe.trace_keys != cache_observe::KeyField::default() {
            options.push(match self.observe.trace_keys {
                cache_observe::KeyField::Hashed => "trace_keys=hashed".to_owned(),
                cache_observe::KeyField::Truncated(n) => format!("trace_keys=truncated:{n}"),
                _ => "trace_keys=hidden".to_owned(),
            });
        }
        if !options.is_empty() {
            write!(f, " (options: {})", options.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for AdapterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdapterConfig::Memory(c) => f.debug_tuple("Memory").field(c).finish(),
            #[cfg(feature = "redis")]
            AdapterConfig::Redis(c) => f.debug_tuple("Redis").field(c).finish(),
        }
    }
}

impl CacheConfig {
    /// Reads a cache URL (see the table above).
    pub fn from_url(url: &str) -> Result<Self> {
        // The parser's messages never repeat the URL, which may hold a password.
        let mut parsed = Url::parse(url).map_err(|e| {
            config_error(format!(
                "invalid cache URL ({e}): expected memory://, moka:// or redis://…"
            ))
        })?;
        let common = take_common_options(&mut parsed)?;
        if common.tier.is_some() && !parsed.scheme().starts_with("redis") {
            return Err(config_error(format!(
                "l1 (the tiered cache) goes over Redis; {}:// is in-process already",
                parsed.scheme()
            )));
        }
        let adapter = match parsed.scheme() {
            "memory" | "moka" => AdapterConfig::Memory(memory_from_url(&parsed)?),
            // The Redis adapter checks the exact scheme against its one list.
            s if s.starts_with("redis") => redis_from_url(parsed.as_str())?,
            other => {
                return Err(config_error(format!(
                    "unknown cache scheme {other:?}: expected memory://, moka://, redis://, rediss://, redis-cluster:// or redis-sentinel://"
                )))
            }
        };
        Ok(Self {
            adapter,
            namespace: common.namespace,
            fail_open: common.fail_open,
            keys_limit: common.keys_limit,
            tier: common.tier,
            observe: common.observe,
        })
    }

    /// Reads `CACHE_URL`; unset or empty means the embedded default.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        match lookup(CACHE_URL_VAR) {
            Some(url) if !url.trim().is_empty() => Self::from_url(url.trim()),
            _ => Ok(Self::default()),
        }
    }

    /// The embedded default over `adapter`, with no namespace and no layers.
    pub fn new(adapter: AdapterConfig) -> Self {
        Self {
            adapter,
            namespace: None,
            fail_open: false,
            keys_limit: cache_store::DEFAULT_KEYS_LIMIT,
            tier: None,
            observe: Observe::default(),
        }
    }

    /// Puts the cache under `namespace`.
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self> {
        self.namespace = Some(Namespace::new(namespace)?);
        Ok(self)
    }

    /// Sets `namespace` unless one is configured already.
    pub fn default_namespace(mut self, namespace: &str) -> Result<Self> {
        if self.namespace.is_none() {
            self.namespace = Some(Namespace::new(namespace)?);
        }
        Ok(self)
    }

    /// Whether reads fail open (an outage reads as a counted, logged miss).
    pub fn with_fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// Turns the metrics and tracing layers on or off.
    pub fn with_observe(mut self, observe: Observe) -> Self {
        self.observe = observe;
        self
    }

    /// Which observability layers are on.
    pub fn observe(&self) -> Observe {
        self.observe
    }

    /// `"memory"` or `"redis"`.
    pub fn adapter(&self) -> &'static str {
        match &self.adapter {
            AdapterConfig::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            AdapterConfig::Redis(_) => "redis",
        }
    }

    /// The adapter's own settings.
    pub fn adapter_config(&self) -> &AdapterConfig {
        &self.adapter
    }

    /// The configured namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_ref().map(Namespace::as_str)
    }

    pub(crate) fn namespace_ref(&self) -> Option<&Namespace> {
        self.namespace.as_ref()
    }

    /// Whether reads fail open.
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// The most keys `keys` collects.
    pub fn keys_limit(&self) -> usize {
        self.keys_limit
    }

    /// The in-process tier over Redis, if `l1` was given.
    pub fn tier(&self) -> Option<&TierConfig> {
        self.tier.as_ref()
    }
}

mod parse;
#[cfg(test)]
mod tests;
