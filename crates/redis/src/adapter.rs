//! `RedisCache`: the port on a fred connection pool.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use cache_port::layer::Counted;
use cache_port::{
    delegate_cache, escape_glob, validate_keys, Cache, CacheError, Key, Pattern, Result, Stats,
    Ttl, TtlState,
};
use fred::prelude::{
    Builder, ClientLike, Config, Error as FredError, Expiration, Key as FredKey, KeysInterface,
    Pool, ReconnectPolicy, ServerInterface, SetOptions, Value,
};
use fred::types::scan::Scanner;
use fred::types::scripts::Script;
use fred::types::CustomCommand;
use futures::{Stream, StreamExt};

use crate::config::RedisConfig;
use crate::errors::ErrorContext;

/// `INCRBY` whose TTL applies only when it creates the counter, atomically.
/// It answers with the stored string, not INCRBY's integer: Lua numbers are
/// doubles, and a counter past 2^53 would come back rounded (found by the
/// differential test: i64::MAX came back as i64::MIN).
const INCR_WITH_TTL: &str = r"
local created = redis.call('EXISTS', KEYS[1]) == 0
redis.call('INCRBY', KEYS[1], ARGV[1])
if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])";

/// What every namespace view of one connection pool shares.
struct Shared {
    pool: Pool,
    config: RedisConfig,
    errors: ErrorContext,
    incr_script: Script,
}

/// The Redis adapter: the port on fred, for a standalone server, a Cluster
/// or a Sentinel-managed primary.
///
/// - Native commands: `GET`, `SET … PX`/`NX`, `MGET` (a pipeline of `GET`s on
///   a cluster, where keys span slots), a pipeline of `SET`s for `set_many`
///   (one round trip, not atomic across keys), `UNLINK`, `PTTL`, `PEXPIRE`,
///   `INCRBY` (a script when the counter gets a TTL on creation), `PING`.
/// - `keys`, `delete_pattern` and a namespaced `clear` walk `SCAN MATCH … COUNT`
///   one batch at a time (every primary of a cluster) and `UNLINK` each batch:
///   never `KEYS`, and memory bounded by one batch.
/// - `clear` without a namespace runs `FLUSHDB` only when the configuration
///   says `allow_flushdb`; otherwise it is refused ([`CacheError::NotAllowed`]).
/// - Stats: the port's `Counted` layer keeps the counters, per view; `entries`,
///   `bytes` and `evictions` are the server's (`DBSIZE`, `used_memory`,
///   `evicted_keys`) without a namespace, and unknown (`None`, 0) with one,
///   since counting a namespace would take a full `SCAN`.
/// - A command that times out after it was written may still run when the
///   server answers again (a timed-out `set` may land).
#[derive(Clone)]
pub struct RedisCache {
    view: Arc<Counted<RedisView>>,
}

delegate_cache!(impl[] RedisCache => |this| this.view);

/// One namespace's view of the connections: the port's logic, uncounted.
struct RedisView {
    shared: Arc<Shared>,
    /// `namespace:`, when there is one.
    prefix: Option<Arc<str>>,
    /// The prefix escaped for `SCAN MATCH`.
    scan_prefix: Arc<str>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.view.inner().shared.config.redacted_url())
            .field("namespace", &self.namespace())
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects (and authenticates) within the connect timeout; a wrong
    /// password or an unreachable server is an error here, at startup.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        config.validate()?;
        let errors = ErrorContext {
            command_timeout: config.command_timeout,
            secrets: config.secrets(),
        };
        let fred_config =
            Config::from_url(&config.server_url).map_err(|e| errors.map("connect", e))?;
        let mut builder = Builder::from_config(fred_config);
        builder
            .with_connection_config(|c| {
                c.connection_timeout = config.connect_timeout;
                c.internal_command_timeout = config.connect_timeout;
                // A command whose connection dropped fails instead of being
                // sent again after reconnecting: a retried INCRBY would count twice.
                c.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = config.command_timeout)
            .set_policy(ReconnectPolicy::new_constant(
                0,
                config.reconnect_delay.as_millis() as u32,
            ));
        let pool = builder
            .build_pool(config.pool_size)
            .map_err(|e| errors.map("connect", e))?;
        match tokio::time::timeout(config.connect_timeout, pool.init()).await {
            Ok(Ok(_connection_task)) => {}
            Ok(Err(e)) => {
                let _ = pool.quit().await;
                return Err(errors.map("connect", e));
            }
            Err(_) => {
                let _ = pool.quit().await;
                return Err(CacheError::Unavailable {
                    message: format!(
                        "could not connect to {} within {:?}",
                        config.redacted_url(),
                        config.connect_timeout
                    ),
                    source: None,
                });
            }
        }
        let prefix = config.namespace.as_deref().map(prefix_of);
        Ok(Self::view(
            Arc::new(Shared {
                pool,
                config,
                errors,
                incr_script: Script::from_lua(INCR_WITH_TTL),
            }),
            prefix,
        ))
    }

    /// Connects to `url` (see [`RedisConfig::from_url`]).
    pub async fn connect_url(url: &str) -> Result<Self> {
        Self::connect(RedisConfig::from_url(url)?).await
    }

    fn view(shared: Arc<Shared>, prefix: Option<Arc<str>>) -> Self {
        let scan_prefix = Arc::from(escape_glob(prefix.as_deref().unwrap_or("")));
        Self {
            view: Arc::new(Counted::new(RedisView {
                shared,
                prefix,
                scan_prefix,
            })),
        }
    }

    /// A view over the same connections under `namespace` (replacing this
    /// view's, not nesting in it), with counters of its own.
    pub fn namespaced(&self, namespace: &str) -> Result<Self> {
        if namespace.is_empty() {
            return Err(CacheError::Config {
                message: "the namespace is empty; leave it out for no namespace".into(),
            });
        }
        Ok(Self::view(
            Arc::clone(&self.view.inner().shared),
            Some(prefix_of(namespace)),
        ))
    }

    /// This view's namespace.
    pub fn namespace(&self) -> Option<&str> {
        self.view
            .inner()
            .prefix
            .as_deref()
            .map(|p| &p[..p.len() - 1])
    }

    /// Closes every connection. Calls made afterwards fail.
    pub async fn close(&self) {
        let _ = self.view.inner().shared.pool.quit().await;
    }
}

impl RedisView {
    fn store_key(&self, key: Key<'_>) -> String {
        match &self.prefix {
            None => key.as_str().to_owned(),
            Some(prefix) => [prefix, key.as_str()].concat(),
        }
    }

    fn store_keys(&self, keys: &[String]) -> Result<Vec<String>> {
        keys.iter()
            .map(|k| Ok(self.store_key(Key::new(k)?)))
            .collect()
    }

    fn check_value(&self, value: &Bytes) -> Result<()> {
        let limit = self.shared.config.max_value_len;
        if value.len() > limit {
            return Err(CacheError::ValueTooLarge {
                len: value.len(),
                limit,
            });
        }
        Ok(())
    }

    fn err(&self, operation: &'static str) -> impl Fn(FredError) -> CacheError + '_ {
        move |e| self.shared.errors.map(operation, e)
    }

    fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    fn clustered(&self) -> bool {
        self.pool().next().is_clustered()
    }

    /// The caller's key for a store key found by SCAN.
    fn caller_key(&self, store_key: &FredKey) -> Option<String> {
        let text = store_key.as_str()?;
        match &self.prefix {
            None => Some(text.to_owned()),
            Some(prefix) => text.strip_prefix(&**prefix).map(str::to_owned),
        }
    }

    /// SCAN pages of store keys matching `pattern` (already validated) in
    /// this namespace, from every primary. Each page holds at most about
    /// `scan_count` keys; the next one is fetched when the previous is dropped.
    fn scan_pages(
        &self,
        pattern: &str,
    ) -> impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Send {
        let matcher = format!("{}{pattern}", self.scan_prefix);
        let count = Some(self.shared.config.scan_count);
        let client = self.pool().next();
        let pages = if client.is_clustered() {
            client.scan_cluster(matcher, count, None).boxed()
        } else {
            client.scan(matcher, count, None).boxed()
        };
        pages.map(|page| page.map(|mut page| page.take_results().unwrap_or_default()))
    }

    /// The next SCAN page, within the command timeout: fred's SCAN stream
    /// does not end on a dead connection, it waits.
    async fn next_page(
        &self,
        pages: &mut (impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Unpin),
        operation: &'static str,
    ) -> Result<Option<Vec<FredKey>>> {
        let after = self.shared.config.command_timeout;
        match tokio::time::timeout(after, pages.next()).await {
            Ok(None) => Ok(None),
            Ok(Some(page)) => page.map(Some).map_err(self.err(operation)),
            Err(_) => Err(CacheError::Timeout {
                operation,
                after,
                source: None,
            }),
        }
    }

    /// `UNLINK` of one batch; per key in a pipeline on a cluster, where a
    /// batch may span slots.
    async fn unlink(&self, keys: Vec<FredKey>) -> std::result::Result<u64, FredError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let client = self.pool().next();
        if !client.is_clustered() {
            return client.unlink(keys).await;
        }
        let pipeline = client.pipeline();
        for key in keys {
            let () = pipeline.unlink(key).await?;
        }
        let counts: Vec<u64> = pipeline.all().await?;
        Ok(counts.iter().sum())
    }
}

fn prefix_of(namespace: &str) -> Arc<str> {
    Arc::from(format!("{namespace}:"))
}

fn px(ttl: Ttl) -> Expiration {
    Expiration::PX(ttl.as_millis() as i64)
}

fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

#[async_trait]
impl Cache for RedisView {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let key = self.store_key(Key::new(key)?);
        let value: Option<Bytes> = self.pool().get(key).await.map_err(self.err("get"))?;
        Ok(value)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let key = self.store_key(Key::new(key)?);
        let ttl = Ttl::from_option(ttl)?;
        self.check_value(&value)?;
        let () = self
            .pool()
            .set(key, value, ttl.map(px), None, false)
            .await
            .map_err(self.err("set"))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let key = self.store_key(Key::new(key)?);
        let removed: u64 = self.pool().unlink(key).await.map_err(self.err("delete"))?;
        Ok(removed > 0)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let key = self.store_key(Key::new(key)?);
        let n: u64 = self.pool().exists(key).await.map_err(self.err("exists"))?;
        Ok(n > 0)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let store_keys = self.store_keys(keys)?;
        if store_keys.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool().next();
        let values: Vec<Option<Bytes>> = if client.is_clustered() {
            // Keys span slots: a pipeline of GETs, one round trip per node.
            let pipeline = client.pipeline();
            for key in store_keys {
                let () = pipeline.get(key).await.map_err(self.err("get_many"))?;
            }
            pipeline.all().await.map_err(self.err("get_many"))?
        } else {
            client
                .mget(store_keys)
                .await
                .map_err(self.err("get_many"))?
        };
        if values.len() != keys.len() {
            return Err(CacheError::Backend {
                message: format!("get_many: {} values for {} keys", values.len(), keys.len()),
                source: None,
            });
        }
        Ok(values)
    }

    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
        let ttl = Ttl::from_option(ttl)?;
        for (key, value) in &items {
            Key::new(key)?;
            self.check_value(value)?;
        }
        if items.is_empty() {
            return Ok(());
        }
        let pipeline = self.pool().next().pipeline();
        for (key, value) in items {
            let key = self.store_key(Key::new(&key)?);
            let () = pipeline
                .set(key, value, ttl.map(px), None, false)
                .await
                .map_err(self.err("set_many"))?;
        }
        let _: Vec<Value> = pipeline.all().await.map_err(self.err("set_many"))?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64> {
        validate_keys(keys)?;
        let store_keys: Vec<FredKey> = self
            .store_keys(keys)?
            .into_iter()
            .map(FredKey::from)
            .collect();
        let removed = self
            .unlink(store_keys)
            .await
            .map_err(self.err("delete_many"))?;
        Ok(removed)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let pattern = Pattern::new(pattern)?;
        let mut pages = std::pin::pin!(self.scan_pages(pattern.as_str()));
        let mut removed = 0;
        while let Some(keys) = self.next_page(&mut pages, "delete_pattern").await? {
            removed += self
                .unlink(keys)
                .await
                .map_err(self.err("delete_pattern"))?;
        }
        Ok(removed)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = Pattern::new(pattern)?;
        let mut pages = std::pin::pin!(self.scan_pages(pattern.as_str()));
        let mut found = Vec::new();
        while let Some(keys) = self.next_page(&mut pages, "keys").await? {
            found.extend(keys.iter().filter_map(|k| self.caller_key(k)));
        }
        // SCAN may return a key twice (when the table is resized under it).
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    async fn ttl(&self, key: &str) -> Result<TtlState> {
        let key = self.store_key(Key::new(key)?);
        let millis: i64 = self.pool().pttl(key).await.map_err(self.err("ttl"))?;
        Ok(match millis {
            -2 => TtlState::Missing,
            -1 => TtlState::Persistent,
            ms if ms >= 0 => TtlState::ExpiresIn(Duration::from_millis(ms as u64)),
            other => {
                return Err(CacheError::Backend {
                    message: format!("ttl: PTTL answered {other}"),
                    source: None,
                })
            }
        })
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = self.store_key(Key::new(key)?);
        let ttl = Ttl::new(ttl)?;
        let set: i64 = self
            .pool()
            .pexpire(key, ttl.as_millis() as i64, None)
            .await
            .map_err(self.err("expire"))?;
        Ok(set == 1)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let key = self.store_key(Key::new(key)?);
        let ttl = Ttl::from_option(ttl)?;
        self.check_value(&value)?;
        let reply: Value = self
            .pool()
            .set(key, value, ttl.map(px), Some(SetOptions::NX), false)
            .await
            .map_err(self.err("set_if_absent"))?;
        let written = !reply.is_null();
        Ok(written)
    }

    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
        let key = self.store_key(Key::new(key)?);
        match Ttl::from_option(ttl_if_created)? {
            None => self
                .pool()
                .incr_by(key, delta)
                .await
                .map_err(self.err("incr")),
            Some(ttl) => {
                let stored: String = self
                    .shared
                    .incr_script
                    .evalsha_with_reload(
                        self.pool().next(),
                        key,
                        vec![delta, ttl.as_millis() as i64],
                    )
                    .await
                    .map_err(self.err("incr"))?;
                stored.parse().map_err(|_| CacheError::Backend {
                    message: format!("incr: the counter reads back as {stored:?}"),
                    source: None,
                })
            }
        }
    }

    async fn clear(&self) -> Result<()> {
        if self.prefix.is_some() {
            self.delete_pattern("*").await.map(drop)
        } else if self.shared.config.allow_flushdb {
            let client = self.pool().next();
            if client.is_clustered() {
                client.flushall_cluster().await.map_err(self.err("clear"))
            } else {
                let () = client
                    .custom(
                        CustomCommand::new_static("FLUSHDB", None, false),
                        Vec::<Value>::new(),
                    )
                    .await
                    .map_err(self.err("clear"))?;
                Ok(())
            }
        } else {
            Err(CacheError::NotAllowed {
                message: "clear without a namespace would empty the whole Redis database; \
                          configure a namespace, or allow_flushdb if that is what you want"
                    .into(),
            })
        }
    }

    async fn stats(&self) -> Result<Stats> {
        let mut stats = Stats::default();
        if self.prefix.is_none() && !self.clustered() {
            let client = self.pool().next();
            let entries: u64 = client.dbsize().await.map_err(self.err("stats"))?;
            let info: String = client.info(None).await.map_err(self.err("stats"))?;
            stats.entries = Some(entries);
            stats.bytes = info_field(&info, "used_memory");
            stats.evictions = info_field(&info, "evicted_keys").unwrap_or(0);
        }
        Ok(stats)
    }

    async fn ping(&self) -> Result<Duration> {
        let start = Instant::now();
        let () = self
            .pool()
            .next()
            .ping(None)
            .await
            .map_err(self.err("ping"))?;
        Ok(start.elapsed())
    }

    fn max_value_len(&self) -> usize {
        self.shared.config.max_value_len
    }
}
