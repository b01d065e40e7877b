//! `RedisStore`: the store of the port on a fred connection pool.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{
    escape_glob, CacheError, KeyPages, Namespace, Pattern, Reply, Request, Result, Stats, Store,
    StoreKey, Ttl, TtlState, View,
};
use fred::prelude::ClusterInterface;
use fred::prelude::{
    Builder, ClientLike, Config, Error as FredError, Expiration, Key as FredKey, KeysInterface,
    Pool, ReconnectPolicy, ServerInterface, SetOptions, Value,
};
use fred::types::scan::Scanner;
use fred::types::scripts::Script;
use fred::types::CustomCommand;
use futures::{Stream, StreamExt};

use crate::coalesce::{Batch, Coalescer};
use crate::config::RedisConfig;
use crate::errors::ErrorContext;
use crate::migration;
use crate::walk_retry;

/// `INCRBY` whose TTL applies only when it creates the counter, atomically.
/// It answers with the stored string, not INCRBY's integer: Lua numbers are
/// doubles, and a counter past 2^53 would come back rounded (found by the
/// differential test: i64::MAX came back as i64::MIN).
const INCR_WITH_TTL: &str = r"
local created = redis.call('EXISTS', KEYS[1]) == 0
redis.call('INCRBY', KEYS[1], ARGV[1])
if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('GET', KEYS[1])";

/// `set_many` on one server (not a cluster, where keys span slots): every
/// `SET` in one command. fred sends a pipeline's commands one write each,
/// and queuing the `SET`s as separate commands costs a command future per
/// key (at 64 tasks on two cores, 0.72x the throughput of a pipeline); one
/// script is one round trip and one future. `ARGV[1]` is the TTL in ms (0:
/// none); `ARGV[i + 1]` is the value of `KEYS[i]`. Later duplicates win, in
/// order.
const SET_MANY: &str = r"
local px = tonumber(ARGV[1])
for i = 1, #KEYS do
  if px > 0 then redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', px)
  else redis.call('SET', KEYS[i], ARGV[i + 1]) end
end
return #KEYS";

/// Items per `SET_MANY` call: a script blocks the server while it runs, so
/// a huge batch goes in slices.
const SET_MANY_SLICE: usize = 1000;

/// Coalesced `set`s of which some carry a TTL (`coalesce.rs`): `ARGV[2i-1]`
/// is the TTL in ms of `KEYS[i]` (0: none), `ARGV[2i]` its value. In order,
/// so a later `set` of the same key wins, as it would alone.
const SET_EACH: &str = r"
for i = 1, #KEYS do
  local px = tonumber(ARGV[2 * i - 1])
  if px > 0 then redis.call('SET', KEYS[i], ARGV[2 * i], 'PX', px)
  else redis.call('SET', KEYS[i], ARGV[2 * i]) end
end
return #KEYS";

/// Coalesced `ttl`s (`coalesce.rs`): the `PTTL` of each of `KEYS`, in
/// order. (The tiered cache reads `GET` and `PTTL` together on every L1
/// miss: without this, half of its reads' commands went alone.)
const PTTL_EACH: &str = r"
local ttls = {}
for i = 1, #KEYS do ttls[i] = redis.call('PTTL', KEYS[i]) end
return ttls";

/// Values larger than this are `SET` alone, never coalesced: a batch stays
/// a few MiB at most (Redis closes a connection whose query passes
/// `client-query-buffer-limit`, 1 GiB by default).
const COALESCED_VALUE_MAX: usize = 16 * 1024;

/// `delete_if_equals`: compare and delete in one step, so a lock whose owner
/// was too slow (it expired and someone else took it) is not removed by the
/// old owner. (Redis 8.4's `DELEX IFEQ` does this natively; Debian's 7.0 has
/// no such command.)
const DELETE_IF_EQUALS: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

/// The Redis cache: the port over a [`RedisStore`], counted, optionally
/// namespaced. Connect one with [`RedisConfig::connect`] or [`connect_url`];
/// `namespaced` gives views over the same connections.
pub type RedisCache = View<RedisStore>;

/// Connects to `url` (see [`RedisConfig::from_url`]) and returns the port
/// over it, in the URL's `namespace` if it names one.
pub async fn connect_url(url: &str) -> Result<RedisCache> {
    RedisConfig::from_url(url)?.connect().await
}

impl RedisConfig {
    /// Connects (see [`RedisStore::connect`]) and returns the port over the
    /// store, in the configured namespace.
    pub async fn connect(&self) -> Result<RedisCache> {
        let namespace = self.namespace.as_deref().map(Namespace::new).transpose()?;
        Ok(RedisCache::over(
            RedisStore::connect(self).await?,
            namespace,
        ))
    }
}

/// `SCAN` of every primary, each to the end of its own cursor, addressed to
/// the server itself. (fred's `scan_cluster` addresses each node through
/// one of its hash slots: when that slot moves during a reshard, the
/// cursor's next page goes to another node, and the rest of the first
/// node's keys are never listed; found by `cluster_faults.rs`.)
///
/// Each page is asked for again when its answer is lost (`walk_retry.rs`).
fn cluster_scan(
    walker: walk_retry::WalkClient,
    matcher: String,
    count: u32,
    command_timeout: Duration,
) -> impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Send {
    let servers = walker
        .client()
        .1
        .cached_cluster_state()
        .map(|state| state.unique_primary_nodes())
        .unwrap_or_default();
    futures::stream::unfold((0usize, String::from("0")), move |(i, cursor)| {
        let (walker, servers, matcher) = (walker.clone(), servers.clone(), matcher.clone());
        async move {
            let server = servers.get(i)?;
            let args: Vec<Value> = vec![
                cursor.into(),
                "MATCH".into(),
                matcher.into(),
                "COUNT".into(),
                count.into(),
            ];
            let args = &args;
            let reply: std::result::Result<Value, FredError> = walker
                .step(command_timeout, move |client| async move {
                    client
                        .with_cluster_node(server)
                        .custom(CustomCommand::new_static("SCAN", None, false), args.clone())
                        .await
                })
                .await;
            Some(match reply.and_then(scan_reply) {
                Ok((next, keys)) if next == "0" => (Ok(keys), (i + 1, "0".into())),
                Ok((next, keys)) => (Ok(keys), (i, next)),
                // The stream ends after an error.
                Err(e) => (Err(e), (servers.len(), "0".into())),
            })
        }
    })
}

/// `SCAN`'s reply: the next cursor and a page of keys.
fn scan_reply(value: Value) -> std::result::Result<(String, Vec<FredKey>), FredError> {
    let bad = || FredError::new(fred::error::ErrorKind::Protocol, "unexpected SCAN reply");
    let Value::Array(mut parts) = value else {
        return Err(bad());
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let keys = parts.pop().ok_or_else(bad)?;
    let cursor = parts.pop().and_then(|c| c.as_string()).ok_or_else(bad)?;
    let Value::Array(keys) = keys else {
        return Err(bad());
    };
    let keys = keys
        .into_iter()
        .map(|k| k.as_bytes().map(FredKey::from).ok_or_else(bad))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((cursor, keys))
}

/// fred's builder configured as every connection of ours is (timeouts,
/// one attempt per command, endless reconnection), and the error context.
pub(crate) fn fred_builder(config: &RedisConfig) -> Result<(Builder, ErrorContext)> {
    config.validate()?;
    let errors = ErrorContext {
        command_timeout: config.command_timeout,
        secrets: config.secrets(),
    };
    #[allow(unused_mut)]
    let mut fred_config =
        Config::from_url(&config.server_url).map_err(|e| errors.map("connect", e))?;
    #[cfg(feature = "tls")]
    if config.is_tls() {
        if let Some(tls) = crate::tls::tls_config(&config.tls)? {
            fred_config.tls = Some(tls);
        }
    }
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
    Ok((builder, errors))
}

/// Whether the pool has connected once (always, unless `lazy_connect`).
#[derive(Default)]
struct Connected {
    up: AtomicBool,
    /// Why the last background attempt failed, scrubbed.
    last_error: std::sync::Mutex<Option<String>>,
}

/// Connects `pool` in the background until it is up or the store is gone.
fn connect_in_background(pool: Pool, connected: Weak<Connected>, config: &RedisConfig) {
    let errors = ErrorContext {
        command_timeout: config.command_timeout,
        secrets: config.secrets(),
    };
    let delay = config.reconnect_delay;
    let _connection_task = pool.connect();
    tokio::spawn(async move {
        loop {
            let outcome = pool.wait_for_connect().await;
            let Some(state) = connected.upgrade() else {
                let _ = pool.quit().await;
                return;
            };
            match outcome {
                Ok(()) => {
                    state.up.store(true, Relaxed);
                    return;
                }
                Err(e) => {
                    let message = errors.map("connect", e).to_string();
                    *state.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
                }
            }
            drop(state);
            tokio::time::sleep(delay).await;
        }
    });
}

/// Stops a pool that failed to start, without waiting for it.
fn stop(pool: Pool) {
    tokio::spawn(async move {
        let _ = pool.quit().await;
    });
}

/// What every namespace view of one connection pool shares.
struct Shared {
    pool: Pool,
    /// The client cluster walks use (`walk_retry.rs`).
    walker: walk_retry::WalkClient,
    config: RedisConfig,
    errors: ErrorContext,
    incr_script: Script,
    delete_if_equals_script: Script,
    set_many_script: Script,
    connected: Arc<Connected>,
    /// A cluster (fred knows from the configuration; it never changes).
    clustered: bool,
    /// Concurrent `get`s, `set`s and `ttl`s coalesced (`coalesce.rs`): with
    /// `coalesce` (the default), on one server only.
    coalescing: Option<Coalescing>,
}

/// The coalescers of one server's store.
struct Coalescing {
    gets: Arc<Coalescer<Gets>>,
    sets: Arc<Coalescer<Sets>>,
    ttls: Arc<Coalescer<Ttls>>,
}

impl Coalescing {
    /// One slot per pooled connection; each call bounded by the command
    /// timeout.
    fn new(pool: &Pool, config: &RedisConfig) -> Self {
        let (slots, timeout) = (config.pool_size, config.command_timeout);
        let sets = Sets {
            pool: pool.clone(),
            script: Script::from_lua(SET_EACH),
        };
        let ttls = Ttls {
            pool: pool.clone(),
            script: Script::from_lua(PTTL_EACH),
        };
        Self {
            gets: Coalescer::new(Gets { pool: pool.clone() }, slots, timeout),
            sets: Coalescer::new(sets, slots, timeout),
            ttls: Coalescer::new(ttls, slots, timeout),
        }
    }
}

/// Waiting `get`s as one `MGET`.
struct Gets {
    pool: Pool,
}

impl Batch for Gets {
    type Item = FredKey;
    type Reply = Option<Bytes>;
    const MAX_ITEMS: usize = 256;

    async fn send(&self, keys: Vec<FredKey>) -> std::result::Result<Vec<Option<Bytes>>, FredError> {
        self.pool.next().mget(keys).await
    }
}

/// Waiting `ttl`s as one `PTTL_EACH` call.
struct Ttls {
    pool: Pool,
    script: Script,
}

impl Batch for Ttls {
    type Item = FredKey;
    type Reply = i64;
    const MAX_ITEMS: usize = 256;

    async fn send(&self, keys: Vec<FredKey>) -> std::result::Result<Vec<i64>, FredError> {
        let no_args: Vec<Value> = Vec::new();
        self.script
            .evalsha_with_reload(self.pool.next(), keys, no_args)
            .await
    }
}

/// Waiting `set`s as one `MSET`, or one `SET_EACH` call when some carry a
/// TTL (in milliseconds, 0: none).
struct Sets {
    pool: Pool,
    script: Script,
}

impl Batch for Sets {
    type Item = (FredKey, Bytes, i64);
    type Reply = ();
    const MAX_ITEMS: usize = 256;

    async fn send(
        &self,
        items: Vec<(FredKey, Bytes, i64)>,
    ) -> std::result::Result<Vec<()>, FredError> {
        let count = items.len();
        let client = self.pool.next();
        if items.iter().all(|(_, _, px)| *px == 0) {
            let mut args: Vec<Value> = Vec::with_capacity(count * 2);
            for (key, value, _) in items {
                args.push(Value::Bytes(key.into_bytes()));
                args.push(Value::Bytes(value));
            }
            let () = client
                .custom(CustomCommand::new_static("MSET", None, false), args)
                .await?;
        } else {
            let mut keys: Vec<FredKey> = Vec::with_capacity(count);
            let mut args: Vec<Value> = Vec::with_capacity(count * 2);
            for (key, value, px) in items {
                keys.push(key);
                args.push(Value::Integer(px));
                args.push(Value::Bytes(value));
            }
            let _: i64 = self.script.evalsha_with_reload(client, keys, args).await?;
        }
        Ok(vec![(); count])
    }
}

/// `GET` answers WRONGTYPE for a key holding a hash, a list, …; `MGET` (a
/// coalesced `get`, `get_many`) answers nil. The store says the same
/// either way: such a key holds no cache value, a miss.
fn wrong_type_is_a_miss(
    reply: std::result::Result<Option<Bytes>, FredError>,
) -> std::result::Result<Option<Bytes>, FredError> {
    match reply {
        Err(e) if e.details().starts_with("WRONGTYPE") => Ok(None),
        other => other,
    }
}

/// The Redis store: fred's connection pool to a standalone server, a
/// Cluster or a Sentinel-managed primary. Cloning shares the connections.
///
/// - Native commands: `GET`, `SET … PX`/`NX`, `MGET` (on a cluster, where
///   keys span slots, the `GET`s queued at once so that each node gets its
///   share in one write), `set_many` as one script per 1,000 items on one
///   server and its `SET`s queued at once on a cluster (a round trip per
///   node, not per key; not atomic across keys on a cluster), `UNLINK`,
///   `PTTL`, `PEXPIRE`,
///   `INCRBY` (a script when the counter gets a TTL on creation), `PING`, and
///   a compare-and-delete script for `delete_if_equals`.
/// - `keys`, `delete_pattern` and a scoped `clear` walk `SCAN MATCH … COUNT`
///   one batch at a time (every primary of a cluster) and `UNLINK` each batch:
///   never `KEYS`, and memory bounded by one batch. The scope (a namespace's
///   prefix) is escaped before it goes into `MATCH`.
/// - `clear` of the whole database runs `FLUSHDB` only when the
///   configuration says `allow_flushdb`; otherwise it is refused
///   ([`CacheError::NotAllowed`]).
/// - Stats: `entries`, `bytes` and `evictions` are the server's (`DBSIZE`,
///   `used_memory`, `evicted_keys`) for the whole database of a standalone
///   server, and unknown (`None`, 0) within a namespace or on a cluster,
///   since counting them would take a full `SCAN`.
/// - With `coalesce` (on by default), on one server (not a cluster),
///   concurrent `get`s, `set`s and `ttl`s that find every connection busy
///   wait and go together as one `MGET`, one `MSET` (or one script call when
///   some carry a TTL), one `PTTL_EACH` script call, each within the
///   command timeout it would have had alone (`coalesce.rs`). A key holding another Redis type reads as a miss,
///   batched or not.
/// - A command that times out after it was written may still run when the
///   server answers again (a timed-out `set` may land).
#[derive(Clone)]
pub struct RedisStore {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shared.config.redacted_url())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (and authenticates) within the connect timeout; a wrong
    /// password or an unreachable server is an error here, at startup. The
    /// configured namespace is not applied to the store: it is a layer
    /// (see [`RedisConfig::connect`]).
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        let config = config.clone();
        let (builder, errors) = fred_builder(&config)?;
        let pool = builder
            .build_pool(config.pool_size)
            .map_err(|e| errors.map("connect", e))?;
        let connected = Arc::new(Connected::default());
        if config.lazy_connect {
            connect_in_background(pool.clone(), Arc::downgrade(&connected), &config);
        } else {
            match tokio::time::timeout(config.connect_timeout, pool.init()).await {
                Ok(Ok(_connection_task)) => {}
                Ok(Err(e)) => {
                    stop(pool);
                    return Err(errors.map("connect", e));
                }
                Err(_) => {
                    // The configured bound is the bound: the pool is stopped
                    // in the background (its QUIT would wait a command
                    // timeout on a server that does not answer).
                    stop(pool);
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
            connected.up.store(true, Relaxed);
        }
        let clustered = pool.next().is_clustered();
        Ok(Self {
            shared: Arc::new(Shared {
                clustered,
                coalescing: (config.coalesce && !clustered)
                    .then(|| Coalescing::new(&pool, &config)),
                walker: walk_retry::WalkClient::new(pool.clone()),
                pool,
                config,
                errors,
                incr_script: Script::from_lua(INCR_WITH_TTL),
                delete_if_equals_script: Script::from_lua(DELETE_IF_EQUALS),
                set_many_script: Script::from_lua(SET_MANY),
                connected,
            }),
        })
    }

    /// Closes every connection. Calls made afterwards fail.
    pub async fn close(&self) {
        let _ = self.shared.pool.quit().await;
    }
}

impl RedisStore {
    fn err(&self, operation: &'static str) -> impl Fn(FredError) -> CacheError + '_ {
        move |e| self.shared.errors.map(operation, e)
    }

    fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    fn clustered(&self) -> bool {
        self.shared.clustered
    }

    /// SCAN pages of keys under `scope` whose rest matches `pattern`, from
    /// every primary. Each page holds at most about `scan_count` keys; the
    /// next one is fetched when the previous is dropped.
    fn scan_pages(
        &self,
        scope: &str,
        pattern: &Pattern,
    ) -> impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Send {
        // The scope is a literal prefix: a namespace holding `*?[]\` must
        // not match its look-alikes.
        let matcher = format!("{}{}", escape_glob(scope), pattern.as_str());
        let count = self.shared.config.scan_count;
        let client = self.pool().next();
        if client.is_clustered() {
            let timeout = self.shared.config.command_timeout;
            return cluster_scan(self.shared.walker.clone(), matcher, count, timeout).boxed();
        }
        client
            .scan(matcher, Some(count), None)
            .map(|page| page.map(|mut page| page.take_results().unwrap_or_default()))
            .boxed()
    }

    /// How long the next SCAN page may take: the command timeout, and on a
    /// cluster every attempt's (`walk_retry.rs`). fred's SCAN stream does
    /// not end on a dead connection, it waits: this bounds it.
    fn page_deadline(&self) -> Duration {
        let timeout = self.shared.config.command_timeout;
        if self.clustered() {
            walk_retry::step_deadline(timeout)
        } else {
            timeout
        }
    }

    /// The next SCAN page, within [`Self::page_deadline`].
    async fn next_page(
        &self,
        pages: &mut (impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Unpin),
        operation: &'static str,
    ) -> Result<Option<Vec<FredKey>>> {
        let after = self.page_deadline();
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

    /// `UNLINK` of one batch; on a cluster, where a batch may span slots,
    /// one `UNLINK` per key, all queued at once (one write per node, as
    /// `get_many`'s `GET`s), each sent again if its answer is lost
    /// (`walk_retry.rs`).
    async fn unlink(&self, keys: Vec<FredKey>) -> std::result::Result<u64, FredError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let client = self.pool().next();
        if !client.is_clustered() {
            return client.unlink(keys).await;
        }
        let (walker, timeout) = (&self.shared.walker, self.shared.config.command_timeout);
        let unlinks = keys.iter().map(|key| {
            walker.step(timeout, move |client| async move {
                client.unlink::<u64, _>(key.clone()).await
            })
        });
        let counts = futures::future::try_join_all(unlinks).await?;
        Ok(counts.iter().sum())
    }

    /// `GET`, or a share of an `MGET` when every slot is busy
    /// (`coalesce.rs`; one server only).
    async fn get(&self, key: StoreKey<'_>) -> Result<Option<Bytes>> {
        let key = fred_key(key);
        let reply = match &self.shared.coalescing {
            None => self.pool().get(key).await,
            Some(coalescing) => coalescing.gets.call(key, |key| self.pool().get(key)).await,
        };
        wrong_type_is_a_miss(reply).map_err(self.err("get"))
    }

    /// `SET … PX`, or a share of an `MSET` (or `SET_EACH`) when every slot
    /// is busy (`coalesce.rs`; one server only, values up to
    /// `COALESCED_VALUE_MAX`).
    async fn set(&self, key: StoreKey<'_>, value: Bytes, ttl: Option<Ttl>) -> Result<()> {
        let key = fred_key(key);
        let reply = match &self.shared.coalescing {
            Some(coalescing) if value.len() <= COALESCED_VALUE_MAX => {
                let millis = ttl.map_or(0, |t| t.as_millis() as i64);
                let alone = |(key, value, _)| self.pool().set(key, value, ttl.map(px), None, false);
                coalescing.sets.call((key, value, millis), alone).await
            }
            _ => self.pool().set(key, value, ttl.map(px), None, false).await,
        };
        reply.map_err(self.err("set"))
    }

    async fn delete(&self, key: StoreKey<'_>) -> Result<bool> {
        let removed: u64 = self
            .pool()
            .unlink(fred_key(key))
            .await
            .map_err(self.err("delete"))?;
        Ok(removed > 0)
    }

    async fn exists(&self, key: StoreKey<'_>) -> Result<bool> {
        let n: u64 = self
            .pool()
            .exists(fred_key(key))
            .await
            .map_err(self.err("exists"))?;
        Ok(n > 0)
    }

    async fn get_many(&self, keys: Vec<StoreKey<'_>>) -> Result<Vec<Option<Bytes>>> {
        let client = self.pool().next();
        if client.is_clustered() {
            // Keys span slots, so no MGET. Every GET is queued with fred at
            // once: fred then writes each node's share to its socket and
            // flushes once per node. (fred's pipelines flush after every
            // command, one packet per key: tests/cluster_round_trips.rs
            // counts the read events on each node.)
            let gets = keys.into_iter().map(|key| client.get(fred_key(key)));
            futures::future::try_join_all(gets)
                .await
                .map_err(self.err("get_many"))
        } else {
            let keys: Vec<FredKey> = keys.into_iter().map(fred_key).collect();
            client.mget(keys).await.map_err(self.err("get_many"))
        }
    }

    async fn set_many(&self, items: Vec<(StoreKey<'_>, Bytes)>, ttl: Option<Ttl>) -> Result<()> {
        let client = self.pool().next();
        if !client.is_clustered() {
            let px = ttl.map_or(0, |t| t.as_millis() as i64);
            let mut items = items.into_iter().peekable();
            while items.peek().is_some() {
                let slice: Vec<_> = items.by_ref().take(SET_MANY_SLICE).collect();
                let mut args: Vec<Value> = Vec::with_capacity(slice.len() + 1);
                args.push(Value::Integer(px));
                let mut keys: Vec<FredKey> = Vec::with_capacity(slice.len());
                for (key, value) in slice {
                    keys.push(fred_key(key));
                    args.push(Value::Bytes(value));
                }
                let _: i64 = self
                    .shared
                    .set_many_script
                    .evalsha_with_reload(client, keys, args)
                    .await
                    .map_err(self.err("set_many"))?;
            }
            return Ok(());
        }
        // On a cluster every SET is queued with fred at once, so that fred
        // writes each node's share to its socket together and flushes once
        // (its pipelines flush after every command). Not atomic across keys.
        let sets = items.into_iter().map(|(key, value)| {
            client.set::<(), _, _>(fred_key(key), value, ttl.map(px), None, false)
        });
        futures::future::try_join_all(sets)
            .await
            .map_err(self.err("set_many"))?;
        Ok(())
    }

    async fn delete_pattern(
        &self,
        scope: &str,
        pattern: &Pattern,
        op: &'static str,
    ) -> Result<u64> {
        let before = self.slot_map(op).await?;
        let mut pages = std::pin::pin!(self.scan_pages(scope, pattern));
        let mut removed = 0;
        while let Some(keys) = self.next_page(&mut pages, op).await? {
            removed += self.unlink(keys).await.map_err(self.err(op))?;
        }
        let missed = self
            .missed_by_walk(before, scope, pattern, u64::MAX, op)
            .await?;
        let missed = missed.into_iter().map(FredKey::from).collect();
        removed += self.unlink(missed).await.map_err(self.err(op))?;
        Ok(removed)
    }

    /// On a cluster, every primary's account of its slots (see
    /// `migration.rs`); nothing elsewhere.
    async fn slot_map(&self, op: &'static str) -> Result<Option<migration::SlotMap>> {
        let client = self.pool().next();
        if !client.is_clustered() {
            return Ok(None);
        }
        let timeout = self.shared.config.command_timeout;
        self.shared
            .walker
            .step(timeout, |client| async move {
                migration::SlotMap::read(&client).await
            })
            .await
            .map(Some)
            .map_err(self.err(op))
    }

    /// The keys under `scope` matching `pattern` in the slots that moved
    /// (or were moving) while a walk that began with `before` ran: what the
    /// walk may have missed. Whole store keys, scope included.
    async fn missed_by_walk(
        &self,
        before: Option<migration::SlotMap>,
        scope: &str,
        pattern: &Pattern,
        limit: u64,
        op: &'static str,
    ) -> Result<Vec<String>> {
        let Some(before) = before else {
            return Ok(Vec::new());
        };
        let after = self.slot_map(op).await?.unwrap_or_default();
        let mut found = Vec::new();
        for (slot, servers) in migration::unstable_slots(&before, &after) {
            for server in servers {
                let server = &server;
                let keys = self
                    .shared
                    .walker
                    .step(
                        self.shared.config.command_timeout,
                        move |client| async move {
                            migration::keys_in_slot(&client, server, slot, limit.min(1 << 30)).await
                        },
                    )
                    .await
                    .map_err(self.err(op))?;
                found.extend(keys.into_iter().filter(|key| {
                    key.strip_prefix(scope)
                        .is_some_and(|rest| pattern.matches(rest))
                }));
            }
        }
        Ok(found)
    }

    async fn keys(&self, scope: &str, pattern: &Pattern, limit: usize) -> Result<Vec<String>> {
        let before = self.slot_map("keys").await?;
        let mut pages = std::pin::pin!(self.scan_pages(scope, pattern));
        let mut found = Vec::new();
        while let Some(keys) = self.next_page(&mut pages, "keys").await? {
            found.extend(
                keys.iter()
                    .filter_map(|k| k.as_str()?.strip_prefix(scope).map(str::to_owned)),
            );
            // SCAN may repeat a key, so a page can only overshoot: dedup
            // before deciding, and stop holding pages past the limit.
            if found.len() > limit {
                found.sort_unstable();
                found.dedup();
                if found.len() > limit {
                    return Err(CacheError::TooManyKeys { limit });
                }
            }
        }
        let missed = self
            .missed_by_walk(before, scope, pattern, limit as u64 + 1, "keys")
            .await?;
        found.extend(
            missed
                .iter()
                .filter_map(|k| k.strip_prefix(scope).map(str::to_owned)),
        );
        // SCAN may return a key twice (when the table is resized under it),
        // and a key listed again from its slot is there twice.
        found.sort_unstable();
        found.dedup();
        if found.len() > limit {
            return Err(CacheError::TooManyKeys { limit });
        }
        Ok(found)
    }

    /// `PTTL`, or a share of a `PTTL_EACH` call when every slot is busy
    /// (`coalesce.rs`; one server only).
    async fn ttl(&self, key: StoreKey<'_>) -> Result<TtlState> {
        let key = fred_key(key);
        let millis: i64 = match &self.shared.coalescing {
            None => self.pool().pttl(key).await,
            Some(coalescing) => coalescing.ttls.call(key, |key| self.pool().pttl(key)).await,
        }
        .map_err(self.err("ttl"))?;
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

    async fn expire(&self, key: StoreKey<'_>, ttl: Ttl) -> Result<bool> {
        let set: i64 = self
            .pool()
            .pexpire(fred_key(key), ttl.as_millis() as i64, None)
            .await
            .map_err(self.err("expire"))?;
        Ok(set == 1)
    }

    async fn set_if_absent(
        &self,
        key: StoreKey<'_>,
        value: Bytes,
        ttl: Option<Ttl>,
    ) -> Result<bool> {
        let reply: Value = self
            .pool()
            .set(
                fred_key(key),
                value,
                ttl.map(px),
                Some(SetOptions::NX),
                false,
            )
            .await
            .map_err(self.err("set_if_absent"))?;
        Ok(!reply.is_null())
    }

    async fn delete_if_equals(&self, key: StoreKey<'_>, value: Bytes) -> Result<bool> {
        let deleted: i64 = self
            .shared
            .delete_if_equals_script
            .evalsha_with_reload(self.pool().next(), fred_key(key), vec![value])
            .await
            .map_err(self.err("delete_if_equals"))?;
        Ok(deleted == 1)
    }

    async fn incr(&self, key: StoreKey<'_>, delta: i64, ttl: Option<Ttl>) -> Result<i64> {
        match ttl {
            None => self
                .pool()
                .incr_by(fred_key(key), delta)
                .await
                .map_err(self.err("incr")),
            Some(ttl) => {
                let stored: String = self
                    .shared
                    .incr_script
                    .evalsha_with_reload(
                        self.pool().next(),
                        fred_key(key),
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

    async fn clear(&self, scope: &str) -> Result<()> {
        if !scope.is_empty() {
            let everything = Pattern::new("*")?;
            return self
                .delete_pattern(scope, &everything, "clear")
                .await
                .map(drop);
        }
        if !self.shared.config.allow_flushdb {
            return Err(CacheError::NotAllowed {
                message: "clear without a namespace would empty the whole Redis database; \
                          configure a namespace, or allow_flushdb if that is what you want"
                    .into(),
            });
        }
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
    }

    async fn stats(&self, scope: &str) -> Result<Stats> {
        let mut stats = Stats::default();
        if scope.is_empty() && !self.clustered() {
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
}

/// A store key as fred's key, without copying an owned one.
fn fred_key(key: StoreKey<'_>) -> FredKey {
    FredKey::from(key.into_owned())
}

fn px(ttl: Ttl) -> Expiration {
    Expiration::PX(ttl.as_millis() as i64)
}

fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

impl RedisStore {
    /// `Unavailable` at once while a lazily started store has never
    /// connected.
    fn not_connected_yet(&self) -> CacheError {
        let last = self
            .shared
            .connected
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        CacheError::Unavailable {
            message: match last {
                Some(error) => format!("not connected yet (lazy_connect); last attempt: {error}"),
                None => "not connected yet (lazy_connect)".into(),
            },
            source: None,
        }
    }
}

impl Store for RedisStore {
    async fn call(&self, request: Request<'_>) -> Result<Reply> {
        if !self.shared.connected.up.load(Relaxed) {
            return Err(self.not_connected_yet());
        }
        if !self.clustered() {
            return self.answer(request).await;
        }
        // On a cluster that is moving slots, fred gives up on a command it
        // was redirected for (MOVED/ASK) once it has used its one write
        // attempt: such a command was not run, so it is sent again, within
        // the command timeout, with a short pause for the migration of its
        // slot to move on. (A batch that was partly run before the redirect
        // is run again whole: writes land once more, identical; a
        // delete_many or delete_pattern may then count fewer keys.)
        // An idempotent call that lost its connection while the client
        // rebuilt them (a failover, a resync) is sent again likewise: a
        // repeated SET, GET or DEL leaves what one leaves. Never `incr`,
        // `set_if_absent` or `delete_if_equals`.
        let idempotent =
            request.op().is_idempotent() && request.op() != cache_port::Op::DeleteIfEquals;
        let deadline = Instant::now() + self.shared.config.command_timeout;
        let mut pause = Duration::from_millis(5);
        loop {
            match self.answer(request.clone()).await {
                Err(e)
                    if (crate::errors::is_unrun_redirect(&e)
                        || (idempotent && e.kind() == cache_port::ErrorKind::Unavailable))
                        && Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn max_value_len(&self) -> usize {
        self.shared.config.max_value_len
    }

    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        self.key_pages(scope, pattern)
    }
}

impl RedisStore {
    async fn answer(&self, request: Request<'_>) -> Result<Reply> {
        Ok(match request {
            Request::Get { key } => Reply::Value(self.get(key).await?),
            Request::Set { key, value, ttl } => {
                self.set(key, value, ttl).await?;
                Reply::Done
            }
            Request::Delete { key } => Reply::Flag(self.delete(key).await?),
            Request::Exists { key } => Reply::Flag(self.exists(key).await?),
            Request::GetMany { keys } => Reply::Values(self.get_many(keys).await?),
            Request::SetMany { items, ttl } => {
                self.set_many(items, ttl).await?;
                Reply::Done
            }
            Request::DeleteMany { keys } => {
                let keys = keys.into_iter().map(fred_key).collect();
                Reply::Count(self.unlink(keys).await.map_err(self.err("delete_many"))?)
            }
            Request::DeletePattern { scope, pattern } => Reply::Count(
                self.delete_pattern(&scope, pattern, "delete_pattern")
                    .await?,
            ),
            Request::Keys {
                scope,
                pattern,
                limit,
            } => Reply::Keys(self.keys(&scope, pattern, limit).await?),
            Request::Ttl { key } => Reply::Ttl(self.ttl(key).await?),
            Request::Expire { key, ttl } => Reply::Flag(self.expire(key, ttl).await?),
            Request::SetIfAbsent { key, value, ttl } => {
                Reply::Flag(self.set_if_absent(key, value, ttl).await?)
            }
            Request::DeleteIfEquals { key, value } => {
                Reply::Flag(self.delete_if_equals(key, value).await?)
            }
            Request::Incr {
                key,
                delta,
                ttl_if_created,
            } => Reply::Int(self.incr(key, delta, ttl_if_created).await?),
            Request::Clear { scope } => {
                self.clear(&scope).await?;
                Reply::Done
            }
            Request::Stats { scope } => Reply::Stats(Box::new(self.stats(&scope).await?)),
            Request::Ping => Reply::Pong(self.ping().await?),
        })
    }

    /// `SCAN MATCH … COUNT` pages (every primary of a cluster), each within
    /// the command timeout, as they come: one page in memory at a time.
    ///
    /// On a cluster, the slots that moved during the walk are listed again
    /// as a last page (see `migration.rs`), as `keys` does.
    fn key_pages(&self, scope: String, pattern: Pattern) -> KeyPages {
        if !self.shared.connected.up.load(Relaxed) {
            return Box::pin(futures::stream::once(std::future::ready(Err(
                self.not_connected_yet()
            ))));
        }
        if !self.clustered() {
            return self.walk_pages(scope, pattern);
        }
        let store = self.clone();
        Box::pin(
            futures::stream::once(async move {
                let before = match store.slot_map("keys_stream").await {
                    Ok(before) => before,
                    Err(e) => return futures::stream::once(std::future::ready(Err(e))).boxed(),
                };
                // After an error the stream ends there: no last page.
                let failed = Arc::new(AtomicBool::new(false));
                let noted = Arc::clone(&failed);
                let walk = store
                    .walk_pages(scope.clone(), pattern.clone())
                    .inspect(move |page| {
                        if page.is_err() {
                            noted.store(true, Relaxed);
                        }
                    });
                let last = futures::stream::once(async move {
                    if failed.load(Relaxed) {
                        return None;
                    }
                    let missed = store
                        .missed_by_walk(before, &scope, &pattern, u64::MAX, "keys_stream")
                        .await;
                    Some(missed.map(|missed| {
                        missed
                            .iter()
                            .filter_map(|k| k.strip_prefix(&*scope).map(str::to_owned))
                            .collect()
                    }))
                })
                .filter_map(std::future::ready);
                walk.chain(last).boxed()
            })
            .flatten(),
        )
    }

    /// The walk of `key_pages`, without the second look at moved slots.
    fn walk_pages(&self, scope: String, pattern: Pattern) -> KeyPages {
        let pages = Box::pin(self.scan_pages(&scope, &pattern));
        let errors = self.shared.errors.clone();
        let after = self.page_deadline();
        Box::pin(futures::stream::unfold(Some(pages), move |pages| {
            let (errors, scope) = (errors.clone(), scope.clone());
            async move {
                let mut pages = pages?;
                let failed = |error| Some((Err(error), None));
                match tokio::time::timeout(after, pages.next()).await {
                    Ok(None) => None,
                    Ok(Some(Ok(keys))) => {
                        let keys = keys
                            .iter()
                            .filter_map(|k| k.as_str()?.strip_prefix(&*scope).map(str::to_owned))
                            .collect();
                        Some((Ok(keys), Some(pages)))
                    }
                    Ok(Some(Err(e))) => failed(errors.map("keys_stream", e)),
                    Err(_) => failed(CacheError::Timeout {
                        operation: "keys_stream",
                        after,
                        source: None,
                    }),
                }
            }
        }))
    }
}
