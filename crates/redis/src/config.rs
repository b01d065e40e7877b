//! Configuration of the Redis adapter, from a URL plus options.

use std::fmt;
use std::time::Duration;

use cache_port::{CacheError, Result};
use url::Url;

/// Redis's own limit on a bulk string (`proto-max-bulk-len`): 512 MiB.
pub const REDIS_MAX_VALUE_LEN: usize = 512 * 1024 * 1024;

/// The URL schemes of Redis deployments, the one list every parser uses.
pub const REDIS_SCHEMES: &[&str] = &[
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
];

/// The longest command or connect timeout accepted: longer is no timeout
/// in practice, and a caller would wait that long on a paused server.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Query parameters fred reads itself (cluster nodes, sentinel).
const FRED_PARAMS: &[&str] = &[
    "node",
    "sentinelServiceName",
    "sentinelUsername",
    "sentinelPassword",
];

/// How a [`RedisCache`](crate::RedisCache) connects and behaves.
///
/// Built from a URL (`redis://`, `rediss://`, `redis-cluster://`,
/// `redis-sentinel://`, with user, password and database as fred reads them)
/// plus options, given as builder calls or as query parameters of the URL:
///
/// | parameter | default | meaning |
/// |---|---|---|
/// | `namespace` | none | prefix of every key (`ns:`); without it `clear` needs `allow_flushdb` |
/// | `pool_size` | 4 | connections |
/// | `connect_timeout_ms` | 5000 | to connect (and authenticate) at startup |
/// | `command_timeout_ms` | 1000 | per command: a paused or unreachable server fails calls in this time |
/// | `reconnect_delay_ms` | 200 | between reconnection attempts, which never stop |
/// | `max_value_len` | 512 MiB | largest value accepted |
/// | `scan_count` | 1000 | `COUNT` of each `SCAN` batch |
/// | `allow_flushdb` | false | let `clear` without a namespace run `FLUSHDB` |
/// | `coalesce` | true | on one server, concurrent `get`s, `set`s and `ttl`s that find every connection busy go together as one `MGET` / `MSET` / `PTTL` script call, each within its own command timeout (more throughput at high concurrency; `false` sends every call alone; docs/SEMANTICS.md) |
/// | `lazy_connect` | false | start without waiting for Redis: connect in the background; until the first connection, calls fail at once with `Unavailable` |
/// | `tls_ca_file` | the system's roots | `rediss://` only: a PEM file of the CA certificates to trust instead |
/// | `tls_cert_file`, `tls_key_file` | none | `rediss://` only: a PEM client certificate (chain) and its key, for servers that require one (mutual TLS) |
///
/// fred's own defaults (no command timeout, no reconnection) are not kept:
/// with them a paused server blocks callers forever and a restarted one is
/// never reconnected.
///
/// The URL forms (each parsed here; the tests connect with every one of
/// them to real processes):
///
/// ```
/// use cache_redis::RedisConfig;
///
/// for url in [
///     "redis://127.0.0.1:6379/0",                                   // one server, database 0
///     "redis://app:s3cret@cache.internal:6379/2?namespace=shop",    // ACL user and password
///     "rediss://cache.internal:6380?tls_ca_file=/etc/ssl/cache-ca.pem", // TLS, a private CA
///     "rediss://cache.internal:6380?tls_ca_file=/etc/ssl/ca.pem&tls_cert_file=/etc/ssl/me.pem&tls_key_file=/etc/ssl/me-key.pem", // mutual TLS
///     "redis-cluster://10.0.0.1:7000?node=10.0.0.2:7000&node=10.0.0.3:7000", // Redis Cluster
///     "redis-sentinel://10.0.0.1:26379/0?sentinelServiceName=mymaster&node=10.0.0.2:26379", // Sentinel
/// ] {
/// #   if url.starts_with("rediss") && !cfg!(feature = "tls") { continue; }
///     RedisConfig::from_url(url).unwrap();
/// }
/// // TLS options need a rediss:// URL.
/// assert!(RedisConfig::from_url("redis://h?tls_ca_file=/ca.pem").is_err());
/// ```
///
/// `Debug` never shows the password:
///
/// ```
/// let config = cache_redis::RedisConfig::from_url("redis://app:s3cret@127.0.0.1:6379/2?namespace=shop").unwrap();
/// let shown = format!("{config:?}");
/// assert!(!shown.contains("s3cret") && shown.contains("shop"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The URL for fred, without our own query parameters.
    pub(crate) server_url: String,
    pub(crate) namespace: Option<String>,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) reconnect_delay: Duration,
    pub(crate) max_value_len: usize,
    pub(crate) scan_count: u32,
    pub(crate) allow_flushdb: bool,
    pub(crate) lazy_connect: bool,
    pub(crate) coalesce: bool,
    pub(crate) tls: TlsFiles,
}

/// The PEM files of a `rediss://` connection (paths, not secrets: the key
/// stays in its file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) ca: Option<std::path::PathBuf>,
    pub(crate) cert: Option<std::path::PathBuf>,
    pub(crate) key: Option<std::path::PathBuf>,
}

impl TlsFiles {
    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

impl RedisConfig {
    /// Reads a URL and its query parameters (see the table above).
    pub fn from_url(url: &str) -> Result<Self> {
        // No message here repeats the URL: it may hold a password. The URL
        // parser lowercases the scheme, so `REDIS://` is `redis://` here as
        // in every other parser of this workspace.
        let mut parsed = Url::parse(url).map_err(|e| {
            config_error(format!(
                "invalid Redis URL ({e}); expected redis://[user[:password]@]host[:port][/db]"
            ))
        })?;
        if !REDIS_SCHEMES.contains(&parsed.scheme()) {
            return Err(config_error(format!(
                "unsupported scheme for Redis; expected one of {}",
                REDIS_SCHEMES.join(", ")
            )));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(config_error(
                "a Redis URL needs a host: redis://[user[:password]@]host[:port][/db]".into(),
            ));
        }
        match parsed.path().trim_start_matches('/') {
            "" => {}
            db if db.parse::<u16>().is_ok() => {}
            _ => {
                return Err(config_error(
                    "the database in a Redis URL is a number (redis://host:6379/2)".into(),
                ))
            }
        }
        if parsed.scheme().starts_with("rediss") && !cfg!(feature = "tls") {
            return Err(config_error(
                "rediss:// needs TLS: build cache-redis with its `tls` feature".into(),
            ));
        }
        let mut config = Self::with_defaults(String::new());
        let mut passthrough: Vec<(String, String)> = Vec::new();
        for (name, value) in parsed.query_pairs() {
            let (name, value) = (name.into_owned(), value.into_owned());
            match name.as_str() {
                "namespace" => config.namespace = Some(value),
                "pool_size" => config.pool_size = parse_number(&name, &value)?,
                "connect_timeout_ms" => {
                    config.connect_timeout = Duration::from_millis(parse_number(&name, &value)?)
                }
                "command_timeout_ms" => {
                    config.command_timeout = Duration::from_millis(parse_number(&name, &value)?)
                }
                "reconnect_delay_ms" => {
                    config.reconnect_delay = Duration::from_millis(parse_number(&name, &value)?)
                }
                "max_value_len" => config.max_value_len = parse_number(&name, &value)?,
                "scan_count" => config.scan_count = parse_number(&name, &value)?,
                "allow_flushdb" => config.allow_flushdb = parse_flag(&name, &value)?,
                "lazy_connect" => config.lazy_connect = parse_flag(&name, &value)?,
                "coalesce" => config.coalesce = parse_flag(&name, &value)?,
                "tls_ca_file" => config.tls.ca = Some(value.into()),
                "tls_cert_file" => config.tls.cert = Some(value.into()),
                "tls_key_file" => config.tls.key = Some(value.into()),
                known if FRED_PARAMS.contains(&known) => passthrough.push((name, value)),
                unknown => {
                    return Err(config_error(format!(
                        "unknown Redis URL parameter {}",
                        cache_store::shown_parameter_name(unknown)
                    )))
                }
            }
        }
        if passthrough.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(passthrough);
        }
        config.server_url = parsed.into();
        config.validate()?;
        Ok(config)
    }

    fn with_defaults(server_url: String) -> Self {
        Self {
            server_url,
            namespace: None,
            pool_size: 4,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(1),
            reconnect_delay: Duration::from_millis(200),
            max_value_len: REDIS_MAX_VALUE_LEN,
            scan_count: 1000,
            allow_flushdb: false,
            lazy_connect: false,
            coalesce: true,
            tls: TlsFiles::default(),
        }
    }

    /// Keys are stored as `namespace:key`; nothing outside it is touched.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The number of connections.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Time allowed to connect and authenticate at startup.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for each command.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Delay between reconnection attempts (they never stop).
    pub fn reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// The largest value accepted (at most Redis's 512 MiB).
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// `COUNT` for each `SCAN` batch of `keys`, `delete_pattern` and `clear`.
    pub fn scan_count(mut self, count: u32) -> Self {
        self.scan_count = count;
        self
    }

    /// Lets `clear` without a namespace empty the whole database (`FLUSHDB`).
    pub fn allow_flushdb(mut self, allow: bool) -> Self {
        self.allow_flushdb = allow;
        self
    }

    /// Starts without waiting for Redis: the connection is made in the
    /// background (and retried every `reconnect_delay`), and until it is up
    /// every call fails at once with `Unavailable`. For services that must
    /// start while Redis is down; with `fail_open` their reads are misses
    /// meanwhile.
    pub fn lazy_connect(mut self, lazy: bool) -> Self {
        self.lazy_connect = lazy;
        self
    }

    /// On one server (not a cluster), lets concurrent `get`s, `set`s and
    /// `ttl`s that find every pooled connection busy wait and go together as
    /// one `MGET`, one `MSET` (or one script call when some carry a TTL), one
    /// script call of `PTTL`s, each within its command timeout. On by
    /// default: at 64 tasks it is what makes the
    /// store faster than raw fred and redis-rs (docs/PERFORMANCE.md, "The
    /// hot path"); a waiting call's batch goes when a connection frees, when
    /// the batch is full, or 1 ms after its first call came
    /// (docs/SEMANTICS.md, "Batches and concurrency"). `false` sends every
    /// call alone.
    ///
    /// A Redis user restricted by ACL must be allowed `MGET`, `MSET` and
    /// `EVALSHA`, and the commands the scripts run (`SET`, `PSETEX`, `GET`,
    /// `PTTL`, `EXISTS`, `INCRBY`, `PEXPIRE`; as `get_many`, `set_many` and `incr` with a TTL already
    /// need), or batched calls fail with the server's `NOPERM` under load
    /// while lone ones succeed. And an ACL that limits keys (`~app:*`)
    /// refuses a whole batch when one of its keys is outside the pattern:
    /// a call within it can then fail for another call's key. Give such a
    /// user `coalesce=false`.
    pub fn coalesce(mut self, on: bool) -> Self {
        self.coalesce = on;
        self
    }

    /// `rediss://` only: trust the CA certificates in this PEM file instead
    /// of the system's roots.
    pub fn tls_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls.ca = Some(path.into());
        self
    }

    /// `rediss://` only: present this client certificate (a PEM chain) and
    /// key (a PEM file) to servers that require one (`tls-auth-clients yes`).
    pub fn tls_client_cert(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls.cert = Some(cert.into());
        self.tls.key = Some(key.into());
        self
    }

    /// Whether the URL names a Redis Cluster (`redis-cluster://`,
    /// `rediss-cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.server_url.contains("-cluster://")
    }

    /// Whether the URL asks for TLS (`rediss://`, `rediss-cluster://`, …).
    pub fn is_tls(&self) -> bool {
        self.server_url.starts_with("rediss")
    }

    /// The configured namespace.
    pub fn namespace_ref(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.namespace.as_deref() == Some("") {
            return Err(config_error(
                "the namespace is empty; leave it out for no namespace".into(),
            ));
        }
        if self.pool_size == 0 || self.pool_size > 256 {
            return Err(config_error("pool_size must be 1 to 256".into()));
        }
        for (name, timeout) in [
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
        ] {
            if timeout.is_zero() || timeout > MAX_TIMEOUT {
                return Err(config_error(format!(
                    "{name} must be 1 ms to 1 hour (zero would mean none)"
                )));
            }
        }
        if self.reconnect_delay.is_zero() || self.reconnect_delay > Duration::from_secs(60) {
            return Err(config_error("reconnect_delay must be 1 ms to 60 s".into()));
        }
        if self.max_value_len == 0 || self.max_value_len > REDIS_MAX_VALUE_LEN {
            return Err(config_error(format!(
                "max_value_len must be 1 to {REDIS_MAX_VALUE_LEN} bytes"
            )));
        }
        if self.scan_count == 0 || self.scan_count > 1_000_000 {
            return Err(config_error("scan_count must be 1 to 1000000".into()));
        }
        if self.tls.any() && !self.is_tls() {
            return Err(config_error(
                "tls_ca_file, tls_cert_file and tls_key_file need a rediss:// URL".into(),
            ));
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(config_error(
                "a client certificate needs both tls_cert_file and tls_key_file".into(),
            ));
        }
        Ok(())
    }

    /// The passwords in the URL, to scrub from any message.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let Ok(url) = Url::parse(&self.server_url) else {
            return Vec::new();
        };
        let mut secrets: Vec<String> = url.password().map(str::to_owned).into_iter().collect();
        secrets.extend(
            url.query_pairs()
                .filter(|(k, _)| cache_store::is_secret_parameter(k))
                .map(|(_, v)| v.into_owned()),
        );
        // Percent-decoded forms too: that is what a server would echo.
        let decoded: Vec<String> = secrets
            .iter()
            .filter_map(|s| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            })
            .collect();
        secrets.extend(decoded);
        secrets.retain(|s| !s.is_empty());
        secrets
    }

    /// The URL with passwords replaced, for logs and `Debug`.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.server_url)
    }
}

impl RedisConfig {
    /// The options that differ from their defaults, as `name=value` in the
    /// URL's own spelling (`pool_size=8`, `command_timeout_ms=500`,
    /// `coalesce=false`), in a fixed order: what a person needs to read a
    /// configuration, beside [`redacted_url`](Self::redacted_url). The
    /// namespace is not among them (it is shown on its own).
    pub fn changed_options(&self) -> Vec<String> {
        let defaults = Self::with_defaults(String::new());
        let ms = |d: Duration| d.as_millis().to_string();
        let mut changed = Vec::new();
        let mut note = |name: &str, differs: bool, value: String| {
            if differs {
                changed.push(format!("{name}={value}"));
            }
        };
        note(
            "pool_size",
            self.pool_size != defaults.pool_size,
            self.pool_size.to_string(),
        );
        note(
            "connect_timeout_ms",
            self.connect_timeout != defaults.connect_timeout,
            ms(self.connect_timeout),
        );
        note(
            "command_timeout_ms",
            self.command_timeout != defaults.command_timeout,
            ms(self.command_timeout),
        );
        note(
            "reconnect_delay_ms",
            self.reconnect_delay != defaults.reconnect_delay,
            ms(self.reconnect_delay),
        );
        note(
            "max_value_len",
            self.max_value_len != defaults.max_value_len,
            self.max_value_len.to_string(),
        );
        note(
            "scan_count",
            self.scan_count != defaults.scan_count,
            self.scan_count.to_string(),
        );
        note("allow_flushdb", self.allow_flushdb, "true".into());
        note("lazy_connect", self.lazy_connect, "true".into());
        note("coalesce", !self.coalesce, "false".into());
        for (name, file) in [
            ("tls_ca_file", &self.tls.ca),
            ("tls_cert_file", &self.tls.cert),
            ("tls_key_file", &self.tls.key),
        ] {
            if let Some(path) = file {
                note(name, true, path.display().to_string());
            }
        }
        changed
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.redacted_url())
            .field("namespace", &self.namespace)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("reconnect_delay", &self.reconnect_delay)
            .field("max_value_len", &self.max_value_len)
            .field("scan_count", &self.scan_count)
            .field("allow_flushdb", &self.allow_flushdb)
            .field("lazy_connect", &self.lazy_connect)
            .field("coalesce", &self.coalesce)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `url` with its userinfo and every secret-named query parameter replaced
/// by `***`: the port's one redactor, [`cache_store::redact_url`].
pub fn redact_url(url: &str) -> String {
    cache_store::redact_url(url)
}

fn parse_flag(name: &str, value: &str) -> Result<bool> {
    value
        .parse()
        .map_err(|_| config_error(format!("{name} must be true or false")))
}

fn parse_number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| config_error(format!("{name} must be a whole number in its range")))
}

fn config_error(message: String) -> CacheError {
    CacheError::Config { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_leaves_fred_the_rest() {
        let c = RedisConfig::from_url(
            "redis://u:p%40ss@127.0.0.1:7000/3?namespace=a%3Ab&pool_size=2&command_timeout_ms=250&allow_flushdb=true&coalesce=false",
        )
        .unwrap();
        assert!(!c.coalesce);
        assert!(RedisConfig::from_url("redis://h").unwrap().coalesce);
        assert_eq!(c.namespace.as_deref(), Some("a:b"));
        assert_eq!(c.pool_size, 2);
        assert_eq!(c.command_timeout, Duration::from_millis(250));
        assert!(c.allow_flushdb);
        assert_eq!(c.server_url, "redis://u:p%40ss@127.0.0.1:7000/3");
        assert!(c.secrets().contains(&"p@ss".to_owned()));
        let cluster =
            RedisConfig::from_url("redis-cluster://127.0.0.1:1?node=127.0.0.1:2&namespace=x")
                .unwrap();
        assert_eq!(
            cluster.server_url,
            "redis-cluster://127.0.0.1:1?node=127.0.0.1%3A2"
        );
    }

    #[test]
    fn refuses_bad_input() {
        for bad in [
            "http://localhost",
            "not a url",
            "redis://localhost?pool_size=0",
            "redis://localhost?pool_size=x",
            "redis://localhost?command_timeout_ms=0",
            "redis://localhost?namespace=",
            "redis://localhost?mystery=1",
            "redis://localhost?allow_flushdb=yes",
            "redis://localhost?max_value_len=0",
        ] {
            let err = RedisConfig::from_url(bad).unwrap_err();
            assert_eq!(err.kind(), cache_port::ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn debug_and_redaction_hide_passwords() {
        let c = RedisConfig::from_url(
            "redis-sentinel://u:hunter2@h:26379/0?sentinelServiceName=m&sentinelPassword=sekret",
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("sekret"),
            "{shown}"
        );
        assert!(c.secrets().contains(&"sekret".to_owned()));
    }
}
