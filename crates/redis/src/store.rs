//! `RedisStore`: the store of the port on a fred connection pool, its
//! `Store` impl (with the cluster retry) and the `RedisCache` view.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{CacheError, KeyPages, Namespace, Pattern, Result, TtlState};
use cache_store::{Reply, Request, Store, StoreKey, View};
use fred::prelude::{ClientLike, Error as FredError, Pool};
use fred::types::scripts::Script;

use crate::batches::Coalescing;
use crate::commands::fred_key;
use crate::config::RedisConfig;
use crate::connection::{connect_in_background, fred_builder, stop, Connected, ConnectionTasks};
use crate::errors::ErrorContext;
use crate::scripts::{
    DELETE_IF_EQUALS, GCRA_EACH, GET_WITH_PTTL_EACH, INCR_WITH_TTL, SET_MANY, SLIDING_WINDOW,
};
use crate::walk_retry;

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

/// What every namespace view of one connection pool shares.
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    /// The client cluster walks use (`walk_retry.rs`).
    pub(crate) walker: walk_retry::WalkClient,
    pub(crate) config: RedisConfig,
    pub(crate) errors: ErrorContext,
    pub(crate) incr_script: Script,
    pub(crate) gcra_script: Script,
    pub(crate) window_script: Script,
    pub(crate) delete_if_equals_script: Script,
    pub(crate) set_many_script: Script,
    pub(crate) get_with_ttl_script: Script,
    pub(crate) connected: Arc<Connected>,
    /// What `close` waits for after `QUIT`.
    pub(crate) connection_tasks: ConnectionTasks,
    /// A cluster (fred knows from the configuration; it never changes).
    pub(crate) clustered: bool,
    /// Concurrent `get`s, `set`s and `ttl`s coalesced (`coalesce/`): with
    /// `coalesce` (the default), on one server only.
    pub(crate) coalescing: Option<Coalescing>,
    /// The runtime the pool's connection tasks run on, where dropping the
    /// last handle sends the pool's `QUIT` (a `Drop` cannot await).
    pub(crate) runtime: tokio::runtime::Handle,
}

/// The last handle of a store gone: its connections close and their tasks
/// end (they reconnected forever before, even after `CLIENT KILL`).
impl Drop for Shared {
    fn drop(&mut self) {
        let pool = self.pool.clone();
        drop(self.runtime.spawn(async move {
            let _ = pool.quit().await;
        }));
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
///   server, and unknown (`None`) within a namespace or on a cluster,
///   since counting them would take a full `SCAN`.
/// - With `coalesce` (on by default), on one server (not a cluster),
///   concurrent `get`s (and `get_many`s of up to 8 keys), `set`s and
///   `ttl`s that find every connection busy wait and go together as one
///   `MGET`, one `MSET` (or one script call when some carry a TTL), one
///   `PTTL_EACH` script call, each within the
///   command timeout it would have had alone (`coalesce/`). A key holding another Redis type reads as a miss,
///   batched or not.
/// - A command that times out after it was written may still run when the
///   server answers again (a timed-out `set` may land).
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.shared.config.redacted_url())
            .finish_non_exhaustive()
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
            request.op().is_idempotent() && request.op() != cache_store::Op::DeleteIfEquals;
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

    /// One `GET_WITH_PTTL_EACH` call on one server, in slices; not offered
    /// on a cluster (a script's keys must share a slot).
    #[allow(clippy::type_complexity)]
    async fn get_many_with_ttl(
        &self,
        keys: Vec<StoreKey<'_>>,
    ) -> Result<Option<Vec<Option<(Bytes, TtlState)>>>> {
        if self.clustered() || !self.shared.connected.up.load(Relaxed) {
            return Ok(None);
        }
        self.get_with_ttls(keys).await.map(Some)
    }

    /// One script call (`GET_WITH_PTTL_EACH` with one key, coalesced with
    /// others when every connection is busy); not offered on a cluster.
    async fn get_with_ttl(&self, key: StoreKey<'_>) -> Result<Option<Option<(Bytes, TtlState)>>> {
        if self.clustered() || !self.shared.connected.up.load(Relaxed) {
            return Ok(None);
        }
        self.value_with_ttl(key).await.map(Some)
    }

    fn max_value_len(&self) -> usize {
        self.shared.config.max_value_len
    }

    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        self.key_pages(scope, pattern)
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
        let connection_task = if config.lazy_connect {
            connect_in_background(pool.clone(), Arc::downgrade(&connected), &config)
        } else {
            let unanswered = || CacheError::Unavailable {
                message: format!(
                    "could not connect to {} within {:?}",
                    config.redacted_url(),
                    config.connect_timeout
                ),
                source: None,
            };
            match tokio::time::timeout(config.connect_timeout, pool.init()).await {
                Ok(Ok(connection_task)) => {
                    connected.up.store(true, Relaxed);
                    connection_task
                }
                Ok(Err(e)) => {
                    stop(pool);
                    return Err(errors.map_start("connect", e, unanswered));
                }
                Err(_) => {
                    // The configured bound is the bound: the pool is stopped
                    // in the background (its QUIT would wait a command
                    // timeout on a server that does not answer).
                    stop(pool);
                    return Err(unanswered());
                }
            }
        };
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
                gcra_script: Script::from_lua(GCRA_EACH),
                window_script: Script::from_lua(SLIDING_WINDOW),
                delete_if_equals_script: Script::from_lua(DELETE_IF_EQUALS),
                set_many_script: Script::from_lua(SET_MANY),
                get_with_ttl_script: Script::from_lua(GET_WITH_PTTL_EACH),
                connected,
                connection_tasks: ConnectionTasks::new(vec![connection_task]),
                runtime: tokio::runtime::Handle::current(),
            }),
        })
    }

    /// Closes every connection, and returns once their sockets are closed
    /// (at most a command timeout after `QUIT` is written). Calls made
    /// afterwards fail.
    pub async fn close(&self) {
        let _ = self.shared.pool.quit().await;
        self.shared
            .connection_tasks
            .ended(self.shared.config.command_timeout)
            .await;
    }

    pub(crate) fn err(&self, operation: &'static str) -> impl Fn(FredError) -> CacheError + '_ {
        move |e| self.shared.errors.map(operation, e)
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    pub(crate) fn clustered(&self) -> bool {
        self.shared.clustered
    }

    /// `Unavailable` at once while a lazily started store has never
    /// connected.
    pub(crate) fn not_connected_yet(&self) -> CacheError {
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

    pub(crate) async fn answer(&self, request: Request<'_>) -> Result<Reply> {
        Ok(match request {
            Request::Get { key } => Reply::Value(self.get(key).await?),
            Request::Set { key, value, ttl } => {
                self.set(key, value, ttl).await?;
                Reply::Done
            }
            Request::Delete { key } => Reply::Flag(self.delete(key).await?),
            Request::Exists { key } => Reply::Flag(self.exists(key).await?),
            Request::GetAndTouch { key, ttl } => Reply::Value(self.get_and_touch(key, ttl).await?),
            Request::ExistsMany { keys } => Reply::Flags(self.exists_many(keys).await?),
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
            Request::Throttle { key, limit, cost } => {
                Reply::Decision(self.throttle(key, limit, cost).await?)
            }
            Request::Clear { scope } => {
                self.clear(&scope).await?;
                Reply::Done
            }
            Request::Stats { scope } => Reply::Stats(Box::new(self.stats(&scope).await?)),
            Request::Ping => Reply::Pong(self.ping().await?),
            Request::Close => {
                self.close().await;
                Reply::Done
            }
        })
    }
}
