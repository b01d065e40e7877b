//! Which adapter to build, read from a URL or the environment.

use std::fmt;

use cache_moka::MokaConfig;
use cache_port::{CacheError, Namespace, Result};
#[cfg(feature = "redis")]
use cache_redis::RedisConfig;
use url::Url;

/// The environment variable [`CacheConfig::from_env`] reads.
pub const CACHE_URL_VAR: &str = "CACHE_URL";

/// The cache to build: an adapter and the layers over it.
///
/// | URL | adapter |
/// |---|---|
/// | (nothing), `memory://`, `moka://` | embedded moka; query: `capacity`, `max_value_len` (sizes such as `64MiB`) |
/// | `redis://…`, `rediss://…`, `redis-cluster://…`, `redis-sentinel://…` | Redis (feature `redis`); query options as in `cache_redis::RedisConfig` |
///
/// Options every URL takes, read here once for every adapter:
///
/// | option | default | meaning |
/// |---|---|---|
/// | `namespace` | none | keys under `namespace:` (see `cache_port::Namespace`) |
/// | `fail_open` | `false` | an outage reads as a counted, logged miss (`cache_port::layer::FailOpen`) |
/// | `keys_limit` | 100000 | the most keys `keys` collects; past it, `TooManyKeys` |
/// | `metrics` | `false` | every operation timed and counted through the `metrics` facade (`cache_port::layer::Metered`) |
/// | `tracing` | `false` | one `tracing` span per operation, failures logged once per 10 s (`cache_port::layer::Traced`) |
/// | `trace_keys` | `hidden` | how keys show in spans at `TRACE`: `hidden`, `hashed`, or `truncated:N` (the first N bytes) |
///
/// Redis URLs also take the tiered cache's options (an in-process L1 over
/// Redis, kept coherent across instances by Redis pub/sub; see
/// `cache_tiered`):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `l1` | none (no L1) | L1's capacity (`64MiB`); setting it turns the tiered cache on |
/// | `l1_max_ttl_ms` | 60000 | the longest an entry stays in L1 |
/// | `backplane_channel` | `cache-tiered:invalidations` | the pub/sub channel the instances share |
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
    pub trace_keys: cache_port::observe::KeyField,
}

/// The in-process tier over Redis: `l1`, `l1_max_ttl_ms`, `backplane_channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierConfig {
    /// L1's capacity in bytes.
    pub l1_bytes: u64,
    /// The longest an entry stays in L1.
    pub l1_max_ttl: std::time::Duration,
    /// The pub/sub channel of the backplane.
    pub channel: String,
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
            keys_limit: cache_port::DEFAULT_KEYS_LIMIT,
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

/// The options every URL takes.
struct CommonOptions {
    namespace: Option<Namespace>,
    fail_open: bool,
    keys_limit: usize,
    tier: Option<TierConfig>,
    observe: Observe,
}

/// Removes `namespace`, `fail_open` and `keys_limit` from the query, for
/// every adapter.
fn take_common_options(url: &mut Url) -> Result<CommonOptions> {
    let mut options = CommonOptions {
        namespace: None,
        fail_open: false,
        keys_limit: cache_port::DEFAULT_KEYS_LIMIT,
        tier: None,
        observe: Observe::default(),
    };
    let (mut l1, mut l1_max_ttl, mut channel) = (None, None, None);
    let mut rest: Vec<(String, String)> = Vec::new();
    for (name, value) in url.query_pairs() {
        match name.as_ref() {
            "namespace" => options.namespace = Some(Namespace::new(&value)?),
            "fail_open" => options.fail_open = parse_flag(&name, &value)?,
            "metrics" => options.observe.metrics = parse_flag(&name, &value)?,
            "tracing" => options.observe.tracing = parse_flag(&name, &value)?,
            "trace_keys" => options.observe.trace_keys = parse_key_field(&value)?,
            "keys_limit" => {
                options.keys_limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=100_000_000).contains(n))
                    .ok_or_else(|| {
                        config_error(format!("keys_limit must be 1 to 100000000, not {value:?}"))
                    })?
            }
            "l1" => l1 = Some(parse_size(&name, &value)?),
            "l1_max_ttl_ms" => {
                l1_max_ttl = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|ms| (1..=86_400_000).contains(ms))
                        .map(std::time::Duration::from_millis)
                        .ok_or_else(|| {
                            config_error(format!(
                                "l1_max_ttl_ms must be 1 to 86400000, not {value:?}"
                            ))
                        })?,
                )
            }
            "backplane_channel" if !value.is_empty() => channel = Some(value.into_owned()),
            "backplane_channel" => {
                return Err(config_error("backplane_channel must not be empty".into()))
            }
            _ => rest.push((name.into_owned(), value.into_owned())),
        }
    }
    options.tier = match l1 {
        Some(l1_bytes) => Some(TierConfig {
            l1_bytes,
            l1_max_ttl: l1_max_ttl.unwrap_or(std::time::Duration::from_secs(60)),
            channel: channel.unwrap_or_else(|| "cache-tiered:invalidations".into()),
        }),
        None if l1_max_ttl.is_some() || channel.is_some() => {
            return Err(config_error(
                "l1_max_ttl_ms and backplane_channel need l1 (the L1 capacity, e.g. l1=64MiB)"
                    .into(),
            ))
        }
        None => None,
    };
    if rest.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(rest);
    }
    Ok(options)
}

fn parse_flag(name: &str, value: &str) -> Result<bool> {
    value
        .parse()
        .map_err(|_| config_error(format!("{name} must be true or false, not {value:?}")))
}

/// `hidden`, `hashed` or `truncated:N`.
fn parse_key_field(value: &str) -> Result<cache_port::observe::KeyField> {
    use cache_port::observe::KeyField;
    let bad = || {
        config_error(format!(
            "trace_keys must be hidden, hashed or truncated:N (N from 1 to 256), not {value:?}"
        ))
    };
    match value {
        "hidden" => Ok(KeyField::Hidden),
        "hashed" => Ok(KeyField::Hashed),
        other => {
            let n: usize = other
                .strip_prefix("truncated:")
                .and_then(|n| n.parse().ok())
                .filter(|n| (1..=256).contains(n))
                .ok_or_else(bad)?;
            Ok(KeyField::Truncated(n))
        }
    }
}

fn memory_from_url(parsed: &Url) -> Result<MokaConfig> {
    if parsed.host_str().is_some_and(|h| !h.is_empty()) || !matches!(parsed.path(), "" | "/") {
        return Err(config_error(format!(
            "{}:// takes no host or path, only options: {}://?capacity=64MiB&namespace=app",
            parsed.scheme(),
            parsed.scheme()
        )));
    }
    let mut config = MokaConfig::default();
    for (name, value) in parsed.query_pairs() {
        config = match name.as_ref() {
            "capacity" | "capacity_bytes" => config.capacity_bytes(parse_size(&name, &value)?),
            "max_value_len" => config.max_value_len(
                usize::try_from(parse_size(&name, &value)?)
                    .map_err(|_| config_error(format!("{name} is too large")))?,
            ),
            other => {
                return Err(config_error(format!(
                "unknown option {} for {}://; known: capacity, max_value_len, namespace, fail_open, keys_limit, metrics, tracing, trace_keys",
                cache_port::shown_parameter_name(other),
                parsed.scheme()
            )))
            }
        };
    }
    Ok(config)
}

#[cfg(feature = "redis")]
fn redis_from_url(url: &str) -> Result<AdapterConfig> {
    RedisConfig::from_url(url).map(AdapterConfig::Redis)
}

#[cfg(not(feature = "redis"))]
fn redis_from_url(_url: &str) -> Result<AdapterConfig> {
    Err(config_error(
        "this build has no Redis adapter: enable the `redis` feature of cache-composition".into(),
    ))
}

/// `1048576`, `64KiB`, `64MiB`, `1GiB`, `10MB` (decimal), `512B`.
fn parse_size(name: &str, value: &str) -> Result<u64> {
    let value = value.trim();
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let multiplier: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(config_error(format!(
                "{name}: unknown size unit {other:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            )))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| {
            config_error(format!(
                "{name} must be a size such as 64MiB, not {value:?}"
            ))
        })
}

fn config_error(message: String) -> CacheError {
    CacheError::Config { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observability_options_turn_the_layers_on_and_refuse_bad_values() {
        use cache_port::observe::KeyField;
        let config =
            CacheConfig::from_url("memory://?metrics=true&tracing=true&trace_keys=truncated:8")
                .unwrap();
        assert_eq!(
            config.observe(),
            Observe {
                metrics: true,
                tracing: true,
                trace_keys: KeyField::Truncated(8)
            }
        );
        assert_eq!(
            CacheConfig::from_url("memory://").unwrap().observe(),
            Observe::default()
        );
        let hashed = CacheConfig::from_url("memory://?trace_keys=hashed").unwrap();
        assert_eq!(hashed.observe().trace_keys, KeyField::Hashed);
        for bad in [
            "memory://?metrics=yes",
            "memory://?tracing=1",
            "memory://?trace_keys=plain",
            "memory://?trace_keys=truncated:0",
            "memory://?trace_keys=truncated:99999",
        ] {
            let error = CacheConfig::from_url(bad).unwrap_err();
            assert_eq!(error.kind(), cache_port::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("c", "1024").unwrap(), 1024);
        assert_eq!(parse_size("c", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("c", "10MB").unwrap(), 10_000_000);
        assert!(parse_size("c", "10 parsecs").is_err());
        assert!(parse_size("c", "MiB").is_err());
        assert!(parse_size("c", "99999999999999GiB").is_err());
    }
}

#[cfg(all(test, not(feature = "redis")))]
mod without_redis {
    use super::*;

    #[test]
    fn a_redis_url_is_a_clear_error_when_the_feature_is_off() {
        let err = CacheConfig::from_url("redis://127.0.0.1:6379").unwrap_err();
        assert_eq!(err.kind(), cache_port::ErrorKind::Config);
        assert!(err.to_string().contains("`redis` feature"), "{err}");
    }
}
