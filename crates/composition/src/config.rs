//! Which adapter to build, read from a URL or the environment.

use std::fmt;

use cache_moka::MokaConfig;
use cache_port::{CacheError, Result};
#[cfg(feature = "redis")]
use cache_redis::RedisConfig;
use url::Url;

/// The environment variable [`CacheConfig::from_env`] reads.
pub const CACHE_URL_VAR: &str = "CACHE_URL";

/// The adapter to build, and its settings.
///
/// | URL | adapter |
/// |---|---|
/// | (nothing), `memory://`, `moka://` | embedded moka; query: `capacity`, `max_value_len` (sizes such as `64MiB`), `namespace` |
/// | `redis://…`, `rediss://…`, `redis-cluster://…`, `redis-sentinel://…` | Redis (feature `redis`); query options as in `cache_redis::RedisConfig` |
///
/// ```
/// use cache_composition::CacheConfig;
///
/// let config = CacheConfig::from_url("memory://?capacity=8MiB&namespace=shop").unwrap();
/// assert_eq!(config.adapter(), "memory");
/// assert!(CacheConfig::from_url("memcached://localhost").is_err());
/// ```
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub enum CacheConfig {
    /// The embedded in-process adapter.
    Memory(MokaConfig),
    /// The Redis adapter.
    #[cfg(feature = "redis")]
    Redis(RedisConfig),
}

impl Default for CacheConfig {
    /// The embedded default: moka with its default capacity, no namespace.
    fn default() -> Self {
        CacheConfig::Memory(MokaConfig::default())
    }
}

impl fmt::Debug for CacheConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheConfig::Memory(c) => f.debug_tuple("Memory").field(c).finish(),
            // RedisConfig's Debug redacts passwords.
            #[cfg(feature = "redis")]
            CacheConfig::Redis(c) => f.debug_tuple("Redis").field(c).finish(),
        }
    }
}

impl CacheConfig {
    /// Reads a cache URL (see the table above).
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        match scheme {
            "memory" | "moka" => memory_from_url(url).map(CacheConfig::Memory),
            "redis" | "rediss" | "redis-cluster" | "rediss-cluster" | "redis-sentinel" | "rediss-sentinel" => {
                redis_from_url(url)
            }
            "" => Err(config_error(format!(
                "{:?} is not a cache URL: expected memory://, moka:// or redis://…",
                cache_redact(url)
            ))),
            other => Err(config_error(format!(
                "unknown cache scheme {other:?}: expected memory://, moka://, redis://, rediss://, redis-cluster:// or redis-sentinel://"
            ))),
        }
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

    /// Sets `namespace` unless one is configured already.
    pub fn default_namespace(self, namespace: &str) -> Self {
        match self {
            CacheConfig::Memory(c) if c.namespace_ref().is_none() => {
                CacheConfig::Memory(c.namespace(namespace))
            }
            #[cfg(feature = "redis")]
            CacheConfig::Redis(c) if c.namespace_ref().is_none() => {
                CacheConfig::Redis(c.namespace(namespace))
            }
            other => other,
        }
    }

    /// `"memory"` or `"redis"`.
    pub fn adapter(&self) -> &'static str {
        match self {
            CacheConfig::Memory(_) => "memory",
            #[cfg(feature = "redis")]
            CacheConfig::Redis(_) => "redis",
        }
    }
}

fn memory_from_url(url: &str) -> Result<MokaConfig> {
    let parsed = Url::parse(url).map_err(|e| config_error(format!("invalid cache URL: {e}")))?;
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
            "namespace" => config.namespace(value.into_owned()),
            other => {
                return Err(config_error(format!(
                    "unknown option {other:?} for {}://; known: capacity, max_value_len, namespace",
                    parsed.scheme()
                )))
            }
        };
    }
    Ok(config)
}

#[cfg(feature = "redis")]
fn redis_from_url(url: &str) -> Result<CacheConfig> {
    RedisConfig::from_url(url).map(CacheConfig::Redis)
}

#[cfg(not(feature = "redis"))]
fn redis_from_url(_url: &str) -> Result<CacheConfig> {
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

/// A URL safe to show: no password.
fn cache_redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.into()
        }
        Ok(u) => u.into(),
        Err(_) => "<not a URL>".into(),
    }
}

fn config_error(message: String) -> CacheError {
    CacheError::Config { message }
}

#[cfg(test)]
mod tests {
    use super::*;

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
