//! The store side of the port: what adapters implement and layers wrap.
//!
//! Domain code sees [`Cache`](cache_port::Cache); adapters and layers see
//! [`Store`]. The difference is where validation happens: the
//! [`Front`](crate::Front) checks every caller input once (keys, TTLs,
//! patterns, value sizes) and hands the store a [`Request`] made of already
//! validated parts, so no adapter or layer checks a key again.
//!
//! A store is one generic, unboxed `call`, in the spirit of tower's
//! `Service<Request>`: a layer that cares about three operations matches
//! those three and forwards the rest in one line, and adding an operation to
//! the port adds a variant here, an arm in the front, and an arm in each
//! adapter, but touches no layer that does not care about it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

use cache_port::Pattern;
use cache_port::Stats;
use cache_port::{CacheError, ErrorKind, Result};
use cache_port::{Decision, Limit};
use cache_port::{KeyPages, Ttl, TtlState};

/// A key as the store sees it: validated by the front, and possibly longer
/// than [`MAX_KEY_LEN`](cache_port::MAX_KEY_LEN) once a namespace prefix is added.
/// Borrowed from the caller until a layer has to rewrite it.
pub type StoreKey<'a> = Cow<'a, str>;

/// One port operation with validated inputs.
///
/// `scope` (on `Keys`, `DeletePattern`, `Clear`, `Stats`) is a key prefix:
/// the operation concerns only store keys that start with it, and keys in
/// replies are given without it. The front sends the empty scope; a
/// namespace layer prepends its prefix.
///
/// Deliberately exhaustive: adding an operation is a compile error in every
/// adapter until it handles it, while layers that forward what they do not
/// care about (`other => inner.call(other)`) need no change.
#[derive(Debug, Clone)]
pub enum Request<'a> {
    /// `get`.
    Get {
        /// The key.
        key: StoreKey<'a>,
    },
    /// `get_and_touch`: the value, and its TTL set to `ttl` if present.
    GetAndTouch {
        /// The key.
        key: StoreKey<'a>,
        /// The new TTL.
        ttl: Ttl,
    },
    /// `set`.
    Set {
        /// The key.
        key: StoreKey<'a>,
        /// The value, at most the store's `max_value_len` bytes.
        value: Bytes,
        /// `None`: no expiry.
        ttl: Option<Ttl>,
    },
    /// `delete`.
    Delete {
        /// The key.
        key: StoreKey<'a>,
    },
    /// `exists`.
    Exists {
        /// The key.
        key: StoreKey<'a>,
    },
    /// `get_many`; never empty.
    GetMany {
        /// The keys, in the caller's order, duplicates kept.
        keys: Vec<StoreKey<'a>>,
    },
    /// `exists_many`; never empty, no key twice (the front removes repeats).
    ExistsMany {
        /// The keys.
        keys: Vec<StoreKey<'a>>,
    },
    /// `set_many`; never empty.
    SetMany {
        /// The items; every value at most `max_value_len` bytes.
        items: Vec<(StoreKey<'a>, Bytes)>,
        /// One TTL for every item.
        ttl: Option<Ttl>,
    },
    /// `delete_many`; never empty.
    DeleteMany {
        /// The keys.
        keys: Vec<StoreKey<'a>>,
    },
    /// `delete_pattern`: keys in `scope` whose rest matches `pattern`.
    DeletePattern {
        /// The key prefix the operation is confined to.
        scope: StoreKey<'a>,
        /// Matched against the key without the scope.
        pattern: &'a Pattern,
    },
    /// `keys`: keys in `scope` whose rest matches `pattern`, without the scope.
    Keys {
        /// The key prefix the operation is confined to.
        scope: StoreKey<'a>,
        /// Matched against the key without the scope.
        pattern: &'a Pattern,
        /// The most keys to collect: past it the store stops and answers
        /// [`CacheError::TooManyKeys`], so memory stays bounded.
        limit: usize,
    },
    /// `ttl`.
    Ttl {
        /// The key.
        key: StoreKey<'a>,
    },
    /// `expire`.
    Expire {
        /// The key.
        key: StoreKey<'a>,
        /// The new TTL.
        ttl: Ttl,
    },
    /// `set_if_absent`.
    SetIfAbsent {
        /// The key.
        key: StoreKey<'a>,
        /// The value, at most the store's `max_value_len` bytes.
        value: Bytes,
        /// `None`: no expiry.
        ttl: Option<Ttl>,
    },
    /// `delete_if_equals`: removes the key only while it holds `value`.
    DeleteIfEquals {
        /// The key.
        key: StoreKey<'a>,
        /// The value the key must hold to be removed.
        value: Bytes,
    },
    /// `incr`.
    Incr {
        /// The key.
        key: StoreKey<'a>,
        /// Added to the counter.
        delta: i64,
        /// Applies only when the counter is created.
        ttl_if_created: Option<Ttl>,
    },
    /// `throttle`: one check (`cache_port::throttle::Limit::check`).
    Throttle {
        /// The limited subject's key.
        key: StoreKey<'a>,
        /// The limit.
        limit: Limit,
        /// What this request counts for (0: a peek).
        cost: u32,
    },
    /// `clear`: every key in `scope`; the empty scope is the whole store.
    Clear {
        /// The key prefix to empty.
        scope: StoreKey<'a>,
    },
    /// `stats`: the store's own figures (evictions, entries, bytes) for
    /// `scope`; counting layers add their counters.
    Stats {
        /// The key prefix the caller's view covers.
        scope: StoreKey<'a>,
    },
    /// `ping`.
    Ping,
    /// `close`: the store's connections and tasks, for every view of it.
    Close,
}

/// What a [`Request`] answers. Each request has exactly one reply shape (see
/// the arm of the front's call for its operation); the front turns any other
/// into a `Backend` error ([`unexpected_reply`](crate::unexpected_reply)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Reply {
    /// `Get`: the value or none.
    Value(Option<Bytes>),
    /// `GetMany`: one per key.
    Values(Vec<Option<Bytes>>),
    /// `ExistsMany`: one per key.
    Flags(Vec<bool>),
    /// `Set`, `SetMany`, `Clear`, `Close`.
    Done,
    /// `Delete`, `Exists`, `Expire`, `SetIfAbsent`, `DeleteIfEquals`.
    Flag(bool),
    /// `DeleteMany`, `DeletePattern`.
    Count(u64),
    /// `Keys`: keys without the scope.
    Keys(Vec<String>),
    /// `Ttl`.
    Ttl(TtlState),
    /// `Incr`: the new value.
    Int(i64),
    /// `Throttle`: the decision.
    Decision(Decision),
    /// `Stats` (boxed: it is rare and large, and every reply is as large as
    /// its largest variant).
    Stats(Box<Stats>),
    /// `Ping`: the round trip.
    Pong(Duration),
}

/// The name of a port operation, for layers that count, log or time them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// See [`Request::Get`].
    Get,
    /// See [`Request::GetAndTouch`].
    GetAndTouch,
    /// See [`Request::Set`].
    Set,
    /// See [`Request::Delete`].
    Delete,
    /// See [`Request::Exists`].
    Exists,
    /// See [`Request::GetMany`].
    GetMany,
    /// See [`Request::ExistsMany`].
    ExistsMany,
    /// See [`Request::SetMany`].
    SetMany,
    /// See [`Request::DeleteMany`].
    DeleteMany,
    /// See [`Request::DeletePattern`].
    DeletePattern,
    /// See [`Request::Keys`].
    Keys,
    /// See [`Request::Ttl`].
    Ttl,
    /// See [`Request::Expire`].
    Expire,
    /// See [`Request::SetIfAbsent`].
    SetIfAbsent,
    /// See [`Request::DeleteIfEquals`].
    DeleteIfEquals,
    /// See [`Request::Incr`].
    Incr,
    /// See [`Request::Throttle`].
    Throttle,
    /// See [`Request::Clear`].
    Clear,
    /// See [`Request::Stats`].
    Stats,
    /// See [`Request::Close`].
    Close,
    /// See [`Request::Ping`].
    Ping,
}

impl Op {
    /// The port method's name (`"get"`, `"set_many"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::GetAndTouch => "get_and_touch",
            Op::Set => "set",
            Op::Delete => "delete",
            Op::Exists => "exists",
            Op::GetMany => "get_many",
            Op::ExistsMany => "exists_many",
            Op::SetMany => "set_many",
            Op::DeleteMany => "delete_many",
            Op::DeletePattern => "delete_pattern",
            Op::Keys => "keys",
            Op::Ttl => "ttl",
            Op::Expire => "expire",
            Op::SetIfAbsent => "set_if_absent",
            Op::DeleteIfEquals => "delete_if_equals",
            Op::Incr => "incr",
            Op::Throttle => "throttle",
            Op::Clear => "clear",
            Op::Stats => "stats",
            Op::Ping => "ping",
            Op::Close => "close",
        }
    }

    /// Whether running it twice leaves the same result as running it once.
    /// `incr` and `set_if_absent` do not: when their outcome is unknown, the
    /// front reports [`CacheError::OutcomeUnknown`], which is not retryable.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Op::Incr | Op::SetIfAbsent | Op::Throttle)
    }

    /// `error` as the failure of a call of this operation: a transport
    /// failure (timeout, lost connection) of an operation that is not
    /// idempotent becomes [`CacheError::OutcomeUnknown`]; anything else is
    /// kept.
    pub fn failed(self, error: CacheError) -> CacheError {
        let transport = matches!(error.kind(), ErrorKind::Timeout | ErrorKind::Unavailable);
        if transport && !self.is_idempotent() {
            CacheError::OutcomeUnknown {
                operation: self.name(),
                source: Box::new(error),
            }
        } else {
            error
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl<'a> Request<'a> {
    /// Which operation this is.
    pub fn op(&self) -> Op {
        match self {
            Request::Get { .. } => Op::Get,
            Request::GetAndTouch { .. } => Op::GetAndTouch,
            Request::Set { .. } => Op::Set,
            Request::Delete { .. } => Op::Delete,
            Request::Exists { .. } => Op::Exists,
            Request::GetMany { .. } => Op::GetMany,
            Request::ExistsMany { .. } => Op::ExistsMany,
            Request::SetMany { .. } => Op::SetMany,
            Request::DeleteMany { .. } => Op::DeleteMany,
            Request::DeletePattern { .. } => Op::DeletePattern,
            Request::Keys { .. } => Op::Keys,
            Request::Ttl { .. } => Op::Ttl,
            Request::Expire { .. } => Op::Expire,
            Request::SetIfAbsent { .. } => Op::SetIfAbsent,
            Request::DeleteIfEquals { .. } => Op::DeleteIfEquals,
            Request::Incr { .. } => Op::Incr,
            Request::Throttle { .. } => Op::Throttle,
            Request::Clear { .. } => Op::Clear,
            Request::Stats { .. } => Op::Stats,
            Request::Ping => Op::Ping,
            Request::Close => Op::Close,
        }
    }

    /// The same request with every key and scope passed through `f` (how
    /// a namespace layer prefixes them). It lives beside the enum so that a
    /// new operation is mapped where it is declared, and no layer that
    /// rewrites keys needs to learn about it.
    pub fn map_keys<'b>(self, mut f: impl FnMut(StoreKey<'a>) -> StoreKey<'b>) -> Request<'b>
    where
        'a: 'b,
    {
        match self {
            Request::Get { key } => Request::Get { key: f(key) },
            Request::GetAndTouch { key, ttl } => Request::GetAndTouch { key: f(key), ttl },
            Request::Set { key, value, ttl } => Request::Set {
                key: f(key),
                value,
                ttl,
            },
            Request::Delete { key } => Request::Delete { key: f(key) },
            Request::Exists { key } => Request::Exists { key: f(key) },
            Request::GetMany { keys } => Request::GetMany {
                keys: keys.into_iter().map(f).collect(),
            },
            Request::ExistsMany { keys } => Request::ExistsMany {
                keys: keys.into_iter().map(f).collect(),
            },
            Request::SetMany { items, ttl } => Request::SetMany {
                items: items.into_iter().map(|(k, v)| (f(k), v)).collect(),
                ttl,
            },
            Request::DeleteMany { keys } => Request::DeleteMany {
                keys: keys.into_iter().map(f).collect(),
            },
            Request::DeletePattern { scope, pattern } => Request::DeletePattern {
                scope: f(scope),
                pattern,
            },
            Request::Keys {
                scope,
                pattern,
                limit,
            } => Request::Keys {
                scope: f(scope),
                pattern,
                limit,
            },
            Request::Ttl { key } => Request::Ttl { key: f(key) },
            Request::Expire { key, ttl } => Request::Expire { key: f(key), ttl },
            Request::SetIfAbsent { key, value, ttl } => Request::SetIfAbsent {
                key: f(key),
                value,
                ttl,
            },
            Request::DeleteIfEquals { key, value } => {
                Request::DeleteIfEquals { key: f(key), value }
            }
            Request::Incr {
                key,
                delta,
                ttl_if_created,
            } => Request::Incr {
                key: f(key),
                delta,
                ttl_if_created,
            },
            Request::Throttle { key, limit, cost } => Request::Throttle {
                key: f(key),
                limit,
                cost,
            },
            Request::Clear { scope } => Request::Clear { scope: f(scope) },
            Request::Stats { scope } => Request::Stats { scope: f(scope) },
            Request::Ping => Request::Ping,
            Request::Close => Request::Close,
        }
    }

    /// How many keys or items it names (1 for single-key operations, 0 for
    /// pattern and admin operations).
    pub fn batch_len(&self) -> usize {
        match self {
            Request::GetMany { keys }
            | Request::ExistsMany { keys }
            | Request::DeleteMany { keys } => keys.len(),
            Request::SetMany { items, .. } => items.len(),
            Request::DeletePattern { .. }
            | Request::Keys { .. }
            | Request::Clear { .. }
            | Request::Stats { .. }
            | Request::Ping
            | Request::Close => 0,
            _ => 1,
        }
    }
}

/// A `Backend` error for a reply of the wrong shape: a bug in a layer or an
/// adapter, reported rather than panicking.
pub fn unexpected_reply(op: Op, reply: &Reply) -> CacheError {
    CacheError::Backend {
        message: format!("{op}: the store answered {reply:?}, which is not a reply to {op}"),
        source: None,
    }
}

/// A storage backend, or a layer over one, taking validated requests.
///
/// Implemented by adapters (`cache-moka`'s `MokaStore`, `cache-redis`'s
/// `RedisStore`) and by layers ([`layer`](crate::layer)); turned into the
/// port by [`Front`](crate::Front) or [`CacheBuilder`](crate::CacheBuilder).
/// `call` is generic and unboxed: a whole stack of layers is one future type,
/// boxed once, by the front.
///
/// What an implementation may rely on, because the front checked it: keys
/// are non-empty UTF-8 of at most `MAX_KEY_LEN` bytes before any prefix;
/// values are at most [`max_value_len`](Store::max_value_len) bytes; TTLs
/// and patterns passed their domain types; batches are never empty.
pub trait Store: Send + Sync + 'static {
    /// Runs one operation.
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send;

    /// Reads one key: what `call(Request::Get { key })` does, without
    /// building the request and matching its reply at every layer (the
    /// hottest call). The default goes through [`call`](Store::call), so a
    /// layer or store that leaves it alone behaves exactly as before. One
    /// that overrides it must do what its `call` does for a `Get`
    /// (`Counted`, `Namespaced`, `Either`, `Arc` and the moka store do;
    /// the conformance suite runs `get` through them on every adapter).
    fn get<'k>(&self, key: StoreKey<'k>) -> impl Future<Output = Result<Option<Bytes>>> + Send {
        use futures::FutureExt;
        self.call(Request::Get { key }).map(|result| match result? {
            Reply::Value(value) => Ok(value),
            other => Err(unexpected_reply(Op::Get, &other)),
        })
    }

    /// [`get`](Store::get) answered at once, where this store can answer
    /// without waiting: an in-process store, a tiered cache's L1 hit.
    /// `None`: it cannot now (the caller then calls `get`, which answers
    /// the same). The front tries it first: an answer at once costs no
    /// future, and a namespace's prefix no allocation (`Namespaced` builds
    /// the key in a reused buffer; a `get` owns a new `String`). The
    /// default is `None`, so a layer that leaves it alone keeps every read
    /// on its `get`; one that forwards it must do for it what its `get`
    /// does (`Counted` counts it, `Namespaced` prefixes the key).
    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        let _ = key;
        None
    }

    /// `get_now`'s value with a [`Watch`](cache_port::Watch) that holds
    /// while a `get` would still answer it (`Cache::watch_now`). The
    /// default is `None`; a layer that forwards it does for it what it
    /// does for `get_now`.
    #[inline]
    fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
        let _ = key;
        None
    }

    /// `get` with the remaining TTL of the value found, in one command,
    /// for a store that can give it (a tiered cache's miss backfills L1
    /// from it). `Ok(None)`: not offered; the default, and what a layer
    /// that does not forward it answers.
    #[allow(clippy::type_complexity)]
    fn get_with_ttl(
        &self,
        key: StoreKey<'_>,
    ) -> impl Future<Output = Result<Option<Option<(Bytes, TtlState)>>>> + Send {
        drop(key);
        std::future::ready(Ok(None))
    }

    /// `get_many` with the remaining TTL of each value found, in one
    /// command, for a store that can give it (the tiered cache backfills
    /// its L1 from it, never past L2's expiry). `Ok(None)`: not offered;
    /// the default, and what a layer that does not forward it answers.
    #[allow(clippy::type_complexity)]
    fn get_many_with_ttl(
        &self,
        keys: Vec<StoreKey<'_>>,
    ) -> impl Future<Output = Result<Option<Vec<Option<(Bytes, TtlState)>>>>> + Send {
        drop(keys);
        std::future::ready(Ok(None))
    }

    /// The largest value, in bytes, this store accepts.
    fn max_value_len(&self) -> usize;

    /// The keys under `scope` whose rest matches `pattern`, without the
    /// scope, a page at a time, holding about one page in memory (`keys`
    /// without its limit, for large key spaces). A key written or deleted
    /// during the walk may or may not be listed; a key present throughout is
    /// listed at least once (Redis `SCAN`'s guarantee: a key may repeat).
    ///
    /// Layers must forward it (with their own change to the scope, if any).
    /// The default, for stores that cannot walk their keys, is a stream of
    /// one `NotAllowed` error.
    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        let _ = (scope, pattern);
        Box::pin(futures::stream::once(std::future::ready(Err(
            CacheError::NotAllowed {
                message: "this store cannot stream its keys; use keys".into(),
            },
        ))))
    }
}

impl<S: Store> Store for std::sync::Arc<S> {
    #[inline]
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        (**self).call(request)
    }

    #[inline]
    fn get<'k>(&self, key: StoreKey<'k>) -> impl Future<Output = Result<Option<Bytes>>> + Send {
        (**self).get(key)
    }

    #[inline]
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        (**self).get_now(key)
    }

    #[inline]
    fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
        (**self).watch_now(key)
    }

    #[allow(clippy::type_complexity)]
    fn get_with_ttl(
        &self,
        key: StoreKey<'_>,
    ) -> impl Future<Output = Result<Option<Option<(Bytes, TtlState)>>>> + Send {
        (**self).get_with_ttl(key)
    }

    #[allow(clippy::type_complexity)]
    fn get_many_with_ttl(
        &self,
        keys: Vec<StoreKey<'_>>,
    ) -> impl Future<Output = Result<Option<Vec<Option<(Bytes, TtlState)>>>>> + Send {
        (**self).get_many_with_ttl(keys)
    }

    fn max_value_len(&self) -> usize {
        (**self).max_value_len()
    }

    fn scan(&self, scope: String, pattern: Pattern) -> KeyPages {
        (**self).scan(scope, pattern)
    }
}
