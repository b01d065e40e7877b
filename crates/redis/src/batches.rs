//! The coalescer's batches on one server: concurrent `get`s as one `MGET`,
//! `set`s as one `MSET` (or `SET_EACH` script call), `ttl`s as one
//! `PTTL_EACH` script call, `incr`s as one `INCR_EACH` call, a tiered
//! cache's misses as one `GET_WITH_PTTL_EACH` call (`coalesce/` decides
//! when).

use std::sync::Arc;

use bytes::Bytes;
use std::time::Duration;

use cache_port::TtlState;
use fred::prelude::{
    Client, ClientLike, Error as FredError, ErrorKind as FredErrorKind, Key as FredKey,
    KeysInterface, Pool, Value,
};
use fred::types::scripts::Script;
use fred::types::CustomCommand;

use crate::coalesce::{Batch, Coalescer};
use crate::config::RedisConfig;
use crate::scripts::{GCRA_EACH, GET_WITH_PTTL_EACH, INCR_EACH, PTTL_EACH, SET_EACH};

/// The coalescers of one server's store.
pub(crate) struct Coalescing {
    pub(crate) gets: Arc<Coalescer<Gets>>,
    /// `get_many`s of a few keys (a tagged read's entry and tag version).
    pub(crate) small_get_manys: Arc<Coalescer<SmallGetManys>>,
    /// A tiered cache's misses: values with their TTLs.
    pub(crate) get_ttls: Arc<Coalescer<GetTtls>>,
    pub(crate) sets: Arc<Coalescer<Sets>>,
    pub(crate) ttls: Arc<Coalescer<Ttls>>,
    pub(crate) incrs: Arc<Coalescer<Incrs>>,
    pub(crate) throttles: Arc<Coalescer<Throttles>>,
}

impl Coalescing {
    /// One slot per pooled connection; each call bounded by the command
    /// timeout.
    pub(crate) fn new(pool: &Pool, config: &RedisConfig) -> Self {
        let (slots, timeout) = (config.pool_size, config.command_timeout);
        let sets = Sets {
            pool: pool.clone(),
            script: Script::from_lua(SET_EACH),
        };
        let ttls = Ttls {
            pool: pool.clone(),
            script: Script::from_lua(PTTL_EACH),
        };
        let get_ttls = GetTtls {
            pool: pool.clone(),
            script: Script::from_lua(GET_WITH_PTTL_EACH),
        };
        let incrs = Incrs {
            pool: pool.clone(),
            script: Script::from_lua(INCR_EACH),
        };
        let throttles = Throttles {
            pool: pool.clone(),
            script: Script::from_lua(GCRA_EACH),
        };
        Self {
            gets: Coalescer::new(Gets { pool: pool.clone() }, slots, timeout),
            small_get_manys: Coalescer::new(SmallGetManys { pool: pool.clone() }, slots, timeout),
            incrs: Coalescer::new(incrs, slots, timeout),
            throttles: Coalescer::new(throttles, slots, timeout),
            get_ttls: Coalescer::new(get_ttls, slots, timeout),
            sets: Coalescer::new(sets, slots, timeout),
            ttls: Coalescer::new(ttls, slots, timeout),
        }
    }
}

/// The most keys a `get_many` may have to be coalesced with others: a
/// tagged read asks for its entry and its tag's version as one `get_many`
/// of two, and at 64 tasks two coalesced `get`s per read cost the client
/// twice the CPU of one (`docs/PERFORMANCE.md`, tags).
pub(crate) const SMALL_GET_MANY: usize = 8;

/// Waiting small `get_many`s as one `MGET` of all their keys, each call's
/// share of the answer its own.
pub(crate) struct SmallGetManys {
    pub(crate) pool: Pool,
}

impl Batch for SmallGetManys {
    type Item = Vec<FredKey>;
    type Reply = Vec<Option<Bytes>>;
    /// Up to 512 keys per `MGET`.
    const MAX_ITEMS: usize = 64;

    async fn send(
        &self,
        calls: Vec<Vec<FredKey>>,
    ) -> std::result::Result<Vec<Vec<Option<Bytes>>>, FredError> {
        let lens: Vec<usize> = calls.iter().map(Vec::len).collect();
        let keys: Vec<FredKey> = calls.into_iter().flatten().collect();
        let wanted = keys.len();
        let values: Vec<Option<Bytes>> = self.pool.next().mget(keys).await?;
        if values.len() != wanted {
            // Never hand a call another's values.
            return Err(FredError::new(
                fred::error::ErrorKind::Protocol,
                format!("MGET of {wanted} keys answered {} values", values.len()),
            ));
        }
        let mut values = values.into_iter();
        Ok(lens
            .into_iter()
            .map(|n| values.by_ref().take(n).collect())
            .collect())
    }
}

/// Waiting `get`s as one `MGET`.
pub(crate) struct Gets {
    pub(crate) pool: Pool,
}

impl Batch for Gets {
    type Item = FredKey;
    type Reply = Option<Bytes>;
    const MAX_ITEMS: usize = 256;

    async fn send(&self, keys: Vec<FredKey>) -> std::result::Result<Vec<Option<Bytes>>, FredError> {
        self.pool.next().mget(keys).await
    }
}

/// Waiting misses of a tiered cache (value and TTL) as one
/// `GET_WITH_PTTL_EACH` call.
pub(crate) struct GetTtls {
    pub(crate) pool: Pool,
    pub(crate) script: Script,
}

impl Batch for GetTtls {
    type Item = FredKey;
    type Reply = Option<(Bytes, TtlState)>;
    const MAX_ITEMS: usize = 256;

    async fn send(&self, keys: Vec<FredKey>) -> std::result::Result<Vec<Self::Reply>, FredError> {
        values_with_ttls(&self.script, self.pool.next(), keys).await
    }
}

/// Runs `GET_WITH_PTTL_EACH` for `keys` on `client`: each key's value and
/// remaining TTL (`None` for a missing key, or one of another type).
pub(crate) async fn values_with_ttls(
    script: &Script,
    client: &Client,
    keys: Vec<FredKey>,
) -> std::result::Result<Vec<Option<(Bytes, TtlState)>>, FredError> {
    let count = keys.len();
    let no_args: Vec<Value> = Vec::new();
    let answer: Vec<Value> = script.evalsha_with_reload(client, keys, no_args).await?;
    if answer.len() != 2 * count {
        return Err(FredError::new(
            FredErrorKind::Parse,
            format!(
                "the script answered {} items for {count} keys",
                answer.len()
            ),
        ));
    }
    let mut found = Vec::with_capacity(count);
    let mut answer = answer.into_iter();
    while let (Some(value), Some(ms)) = (answer.next(), answer.next()) {
        let ttl = match ms.as_i64() {
            Some(-1) => TtlState::Persistent,
            Some(ms) if ms >= 0 => TtlState::ExpiresIn(Duration::from_millis(ms as u64)),
            _ => TtlState::Missing,
        };
        found.push(match value {
            Value::Bytes(bytes) if ttl.exists() => Some((bytes, ttl)),
            Value::String(text) if ttl.exists() => Some((text.into_inner(), ttl)),
            _ => None,
        });
    }
    Ok(found)
}

/// Waiting `ttl`s as one `PTTL_EACH` call.
pub(crate) struct Ttls {
    pub(crate) pool: Pool,
    pub(crate) script: Script,
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
pub(crate) struct Sets {
    pub(crate) pool: Pool,
    pub(crate) script: Script,
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

/// Waiting `incr`s as one `INCR_EACH` call: (key, delta, TTL in ms if the
/// call creates the counter, 0: none). Each call's own failure (not an
/// integer, an overflow) is its answer alone; the batch's failure (a
/// timeout, a lost connection) is every call's, and the front reports it
/// as `OutcomeUnknown`, as for a lone `incr`.
pub(crate) struct Incrs {
    pub(crate) pool: Pool,
    pub(crate) script: Script,
}

impl Batch for Incrs {
    type Item = (FredKey, i64, i64);
    type Reply = std::result::Result<i64, FredError>;
    const MAX_ITEMS: usize = 256;

    async fn send(
        &self,
        items: Vec<(FredKey, i64, i64)>,
    ) -> std::result::Result<Vec<Self::Reply>, FredError> {
        let count = items.len();
        let mut keys: Vec<FredKey> = Vec::with_capacity(count);
        let mut args: Vec<Value> = Vec::with_capacity(count * 2);
        for (key, delta, px) in items {
            keys.push(key);
            args.push(Value::Integer(delta));
            args.push(Value::Integer(px));
        }
        let answer: Vec<Value> = self
            .script
            .evalsha_with_reload(self.pool.next(), keys, args)
            .await?;
        if answer.len() != 2 * count {
            return Err(FredError::new(
                FredErrorKind::Parse,
                format!(
                    "INCR_EACH answered {} items for {count} calls",
                    answer.len()
                ),
            ));
        }
        let mut replies = Vec::with_capacity(count);
        let mut answer = answer.into_iter();
        while let (Some(flag), Some(value)) = (answer.next(), answer.next()) {
            replies.push(if flag.as_i64() == Some(1) {
                counter(value)
            } else {
                let message = value.as_string().unwrap_or_default();
                Err(FredError::new(FredErrorKind::Unknown, message))
            });
        }
        Ok(replies)
    }
}

/// Waiting GCRA checks as one `GCRA_EACH` call: (key, T, burst·T, cost).
/// Each answer is the check's own: its four numbers, or `NotAnInteger`
/// for a key that holds something else; the batch's failure is every
/// check's (the front reports it as `OutcomeUnknown`).
pub(crate) struct Throttles {
    pub(crate) pool: Pool,
    pub(crate) script: Script,
}

/// A GCRA check's answer: allowed, remaining, retry after (µs), reset
/// after (µs).
pub(crate) type GcraAnswer = [i64; 4];

impl Batch for Throttles {
    type Item = (FredKey, i64, i64, i64);
    type Reply = std::result::Result<GcraAnswer, FredError>;
    const MAX_ITEMS: usize = 256;

    async fn send(
        &self,
        items: Vec<(FredKey, i64, i64, i64)>,
    ) -> std::result::Result<Vec<Self::Reply>, FredError> {
        gcra_checks(&self.script, self.pool.next(), items).await
    }
}

/// GCRA checks (key, T, burst·T, cost) in one `GCRA_EACH` call on
/// `client`: each its own answer, or `NotAnInteger`'s error for a key
/// holding something else. A lone check is a call of one.
pub(crate) async fn gcra_checks(
    script: &Script,
    client: &Client,
    items: Vec<(FredKey, i64, i64, i64)>,
) -> std::result::Result<Vec<std::result::Result<GcraAnswer, FredError>>, FredError> {
    let count = items.len();
    let mut keys: Vec<FredKey> = Vec::with_capacity(count);
    let mut args: Vec<Value> = Vec::with_capacity(count * 3);
    for (key, t, tau, cost) in items {
        keys.push(key);
        args.extend([Value::Integer(t), Value::Integer(tau), Value::Integer(cost)]);
    }
    let answer: Vec<i64> = script.evalsha_with_reload(client, keys, args).await?;
    if answer.len() != 5 * count {
        return Err(FredError::new(
            FredErrorKind::Parse,
            format!(
                "GCRA_EACH answered {} numbers for {count} checks",
                answer.len()
            ),
        ));
    }
    Ok(answer
        .chunks_exact(5)
        .map(|a| match a {
            [1, allowed, remaining, retry, reset] => Ok([*allowed, *remaining, *retry, *reset]),
            _ => Err(FredError::new(
                FredErrorKind::Unknown,
                "ERR value is not an integer or out of range",
            )),
        })
        .collect())
}

/// A counter as `INCRBY` or a script answered it: an integer, or the
/// stored string (past 2^53, where Lua's doubles would round).
pub(crate) fn counter(value: Value) -> std::result::Result<i64, FredError> {
    match value {
        Value::Integer(n) => Ok(n),
        other => other
            .as_string()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                FredError::new(
                    FredErrorKind::Parse,
                    "incr: the counter does not read back as an integer",
                )
            }),
    }
}

/// `GET` answers WRONGTYPE for a key holding a hash, a list, …; `MGET` (a
/// coalesced `get`, `get_many`) answers nil. The store says the same
/// either way: such a key holds no cache value, a miss.
pub(crate) fn wrong_type_is_a_miss(
    reply: std::result::Result<Option<Bytes>, FredError>,
) -> std::result::Result<Option<Bytes>, FredError> {
    match reply {
        Err(e) if e.details().starts_with("WRONGTYPE") => Ok(None),
        other => other,
    }
}
