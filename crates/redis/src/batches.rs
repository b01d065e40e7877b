//! The coalescer's batches on one server: concurrent `get`s as one `MGET`,
//! `set`s as one `MSET` (or `SET_EACH` script call), `ttl`s as one
//! `PTTL_EACH` script call (`coalesce/` decides when).

use std::sync::Arc;

use bytes::Bytes;
use fred::prelude::{ClientLike, Error as FredError, Key as FredKey, KeysInterface, Pool, Value};
use fred::types::scripts::Script;
use fred::types::CustomCommand;

use crate::coalesce::{Batch, Coalescer};
use crate::config::RedisConfig;
use crate::scripts::{PTTL_EACH, SET_EACH};

/// The coalescers of one server's store.
pub(crate) struct Coalescing {
    pub(crate) gets: Arc<Coalescer<Gets>>,
    pub(crate) sets: Arc<Coalescer<Sets>>,
    pub(crate) ttls: Arc<Coalescer<Ttls>>,
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
        Self {
            gets: Coalescer::new(Gets { pool: pool.clone() }, slots, timeout),
            sets: Coalescer::new(sets, slots, timeout),
            ttls: Coalescer::new(ttls, slots, timeout),
        }
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
