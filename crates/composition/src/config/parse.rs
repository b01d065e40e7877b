//! Reading a cache URL: the options every adapter takes, `memory://`'s
//! own, and the values they hold (flags, sizes, key fields).

use cache_moka::MokaConfig;
use cache_port::{CacheError, Namespace, Result};
#[cfg(feature = "redis")]
use cache_redis::RedisConfig;
use url::Url;

use super::{AdapterConfig, Observe, TierCoherence, TierConfig};

/// The options every URL takes.
pub(super) struct CommonOptions {
    pub(super) namespace: Option<Namespace>,
    pub(super) fail_open: bool,
    pub(super) keys_limit: usize,
    pub(super) tier: Option<TierConfig>,
    pub(super) observe: Observe,
}

/// Removes `namespace`, `fail_open` and `keys_limit` from the query, for
/// every adapter.
pub(super) fn take_common_options(url: &mut Url) -> Result<CommonOptions> {
    let mut options = CommonOptions {
        namespace: None,
        fail_open: false,
        keys_limit: cache_store::DEFAULT_KEYS_LIMIT,
        tier: None,
        observe: Observe::default(),
    };
    let (mut l1, mut l1_max_ttl, mut channel, mut coherence) = (None, None, None, None);
    let mut refresh = None;
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
                        config_error("keys_limit must be a whole number from 1 to 100000000".into())
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
                            config_error(
                                "l1_max_ttl_ms must be a whole number from 1 to 86400000".into(),
                            )
                        })?,
                )
            }
            "l1_refresh" => refresh = Some(parse_flag(&name, &value)?),
            "coherence" => {
                coherence = Some(match value.as_ref() {
                    "tracking" => TierCoherence::Tracking,
                    "pubsub" => TierCoherence::PubSub,
                    _ => return Err(config_error("coherence must be tracking or pubsub".into())),
                })
            }
            "backplane_channel" if !value.is_empty() => channel = Some(value.into_owned()),
            "backplane_channel" => {
                return Err(config_error("backplane_channel must not be empty".into()))
            }
            _ => rest.push((name.into_owned(), value.into_owned())),
        }
    }
    // A channel is pub/sub's: naming one chooses it.
    if channel.is_some() {
        match coherence {
            Some(TierCoherence::Tracking) => {
                return Err(config_error(
                    "backplane_channel is for coherence=pubsub; tracking has no channel".into(),
                ))
            }
            _ => coherence = Some(TierCoherence::PubSub),
        }
    }
    options.tier = match l1 {
        Some(l1_bytes) => Some(TierConfig {
            l1_bytes,
            l1_max_ttl: l1_max_ttl.unwrap_or(std::time::Duration::from_secs(60)),
            channel: channel.unwrap_or_else(|| "cache-tiered:invalidations".into()),
            coherence,
            refresh: refresh.unwrap_or(true),
        }),
        None if l1_max_ttl.is_some() || coherence.is_some() || refresh.is_some() => {
            return Err(config_error(
                "l1_max_ttl_ms, l1_refresh, coherence and backplane_channel need l1 (the L1 capacity, e.g. l1=64MiB)"
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

pub(super) fn parse_flag(name: &str, value: &str) -> Result<bool> {
    value
        .parse()
        .map_err(|_| config_error(format!("{name} must be true or false")))
}

/// `hidden`, `hashed` or `truncated:N`.
pub(super) fn parse_key_field(value: &str) -> Result<cache_observe::KeyField> {
    use cache_observe::KeyField;
    let bad = || {
        config_error("trace_keys must be hidden, hashed or truncated:N (N from 1 to 256)".into())
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

pub(super) fn memory_from_url(parsed: &Url) -> Result<MokaConfig> {
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
            "count_evictions" => config.count_evictions(parse_flag(&name, &value)?),
            other => {
                return Err(config_error(format!(
                "unknown option {} for {}://; known: capacity, max_value_len, count_evictions, namespace, fail_open, keys_limit, metrics, tracing, trace_keys",
                cache_store::shown_parameter_name(other),
                parsed.scheme()
            )))
            }
        };
    }
    Ok(config)
}

#[cfg(feature = "redis")]
pub(super) fn redis_from_url(url: &str) -> Result<AdapterConfig> {
    RedisConfig::from_url(url).map(AdapterConfig::Redis)
}

#[cfg(not(feature = "redis"))]
pub(super) fn redis_from_url(_url: &str) -> Result<AdapterConfig> {
    Err(config_error(
        "this build has no Redis adapter: enable the `redis` feature of cache-composition".into(),
    ))
}

/// `1048576`, `64KiB`, `64MiB`, `1GiB`, `10MB` (decimal), `512B`.
pub(super) fn parse_size(name: &str, value: &str) -> Result<u64> {
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
        _ => {
            return Err(config_error(format!(
                "{name} must be a size such as 64MiB, in B, KiB, MiB, GiB, KB, MB or GB"
            )))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| config_error(format!("{name} must be a size such as 64MiB")))
}

pub(super) fn config_error(message: String) -> CacheError {
    CacheError::Config { message }
}
