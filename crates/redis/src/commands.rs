//! One method per port operation on a key or a batch: the native command
//! (or script) each sends, and how its reply maps onto the port.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::{CacheError, Decision, Limit, Pattern, Result, Stats, Ttl, TtlState};
use cache_store::StoreKey;
use fred::error::Error as FredError;
use fred::prelude::{
    ClientLike, Expiration, Key as FredKey, KeysInterface, ServerInterface, SetOptions, Value,
};
use fred::types::CustomCommand;

use crate::batches::{
    counter, gcra_checks, values_with_ttls, wrong_type_is_a_miss, GcraAnswer, SMALL_GET_MANY,
};
use crate::scripts::{COALESCED_VALUE_MAX, SET_MANY_SLICE};
use crate::store::RedisStore;

/// `keys` as fred's keys, and their positions grouped by hash slot (in the
/// order each slot first appears).
fn by_slot(keys: Vec<StoreKey<'_>>) -> (Vec<Vec<usize>>, Vec<FredKey>) {
    let keys: Vec<FredKey> = keys.into_iter().map(fred_key).collect();
    let mut slots: Vec<Vec<usize>> = Vec::new();
    let mut slot_of: std::collections::HashMap<u16, usize> = std::collections::HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let group = *slot_of.entry(slot).or_insert_with(|| {
            slots.push(Vec::new());
            slots.len() - 1
        });
        slots[group].push(i);
    }
    (slots, keys)
}

/// A store key as fred's key, without copying an owned one.
pub(crate) fn fred_key(key: StoreKey<'_>) -> FredKey {
    FredKey::from(key.into_owned())
}

pub(crate) fn px(ttl: Ttl) -> Expiration {
    Expiration::PX(ttl.as_millis() as i64)
}

pub(crate) fn info_field(info: &str, name: &str) -> Option<u64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

impl RedisStore {
    /// `GET`, or a share of an `MGET` when every slot is busy
    /// (`coalesce/`; one server only).
    pub(crate) async fn get(&self, key: StoreKey<'_>) -> Result<Option<Bytes>> {
        let key = fred_key(key);
        let reply = match &self.shared.coalescing {
            None => self.pool().get(key).await,
            Some(coalescing) => coalescing.gets.call(key, |key| self.pool().get(key)).await,
        };
        wrong_type_is_a_miss(reply).map_err(self.err("get"))
    }

    /// `GETEX key PX ms` (Redis 6.2+): one command, routed by its key on a
    /// cluster (fred 10.1 has no `getex`, hence a custom command).
    pub(crate) async fn get_and_touch(&self, key: StoreKey<'_>, ttl: Ttl) -> Result<Option<Bytes>> {
        let getex = CustomCommand::new_static("GETEX", fred::types::ClusterHash::FirstKey, false);
        let args: Vec<Value> = vec![
            Value::Bytes(Bytes::copy_from_slice(key.as_bytes())),
            Value::from_static_str("PX"),
            Value::Integer(ttl.as_millis() as i64),
        ];
        let reply = self.pool().next().custom(getex, args).await;
        wrong_type_is_a_miss(reply).map_err(self.err("get_and_touch"))
    }

    /// `SET … PX`, or a share of an `MSET` (or `SET_EACH`) when every slot
    /// is busy (`coalesce/`; one server only, values up to
    /// `COALESCED_VALUE_MAX`).
    pub(crate) async fn set(
        &self,
        key: StoreKey<'_>,
        value: Bytes,
        ttl: Option<Ttl>,
    ) -> Result<()> {
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

    pub(crate) async fn delete(&self, key: StoreKey<'_>) -> Result<bool> {
        let removed: u64 = self
            .pool()
            .unlink(fred_key(key))
            .await
            .map_err(self.err("delete"))?;
        Ok(removed > 0)
    }

    pub(crate) async fn exists(&self, key: StoreKey<'_>) -> Result<bool> {
        let n: u64 = self
            .pool()
            .exists(fred_key(key))
            .await
            .map_err(self.err("exists"))?;
        Ok(n > 0)
    }

    /// One `EXISTS` per key, all queued with fred at once on one
    /// connection (on a cluster, each to its node): one round trip of
    /// waiting, no value moved. `EXISTS k1 k2` would answer only a count.
    pub(crate) async fn exists_many(&self, keys: Vec<StoreKey<'_>>) -> Result<Vec<bool>> {
        let client = self.pool().next();
        let checks = keys
            .into_iter()
            .map(|key| client.exists::<u64, _>(fred_key(key)));
        let found = futures::future::try_join_all(checks)
            .await
            .map_err(self.err("exists_many"))?;
        Ok(found.into_iter().map(|n| n > 0).collect())
    }

    pub(crate) async fn get_many(&self, keys: Vec<StoreKey<'_>>) -> Result<Vec<Option<Bytes>>> {
        let client = self.pool().next();
        if client.is_clustered() {
            // One MGET per hash slot: the keys of one slot are read as one
            // snapshot (as on one server), and a batch within one slot is one
            // command. Every MGET is queued with fred at once: fred then
            // writes each node's share to its socket and flushes once per
            // node (fred's pipelines flush after every command;
            // tests/cluster_round_trips.rs counts the read events and the
            // commands on each node).
            let (slots, keys) = by_slot(keys);
            let mgets = slots.iter().map(|slot| {
                let keys: Vec<FredKey> = slot.iter().map(|&i| keys[i].clone()).collect();
                client.mget::<Vec<Option<Bytes>>, _>(keys)
            });
            let answers = futures::future::try_join_all(mgets)
                .await
                .map_err(self.err("get_many"))?;
            let mut values = vec![None; keys.len()];
            for (slot, answer) in slots.iter().zip(answers) {
                for (&i, value) in slot.iter().zip(answer) {
                    values[i] = value;
                }
            }
            Ok(values)
        } else {
            let keys: Vec<FredKey> = keys.into_iter().map(fred_key).collect();
            let reply = match &self.shared.coalescing {
                Some(coalescing) if keys.len() <= SMALL_GET_MANY => {
                    coalescing
                        .small_get_manys
                        .call(keys, |keys| client.mget(keys))
                        .await
                }
                _ => client.mget(keys).await,
            };
            reply.map_err(self.err("get_many"))
        }
    }

    /// Values and remaining TTLs (`GET_WITH_PTTL_EACH`), on one server.
    pub(crate) async fn get_with_ttls(
        &self,
        keys: Vec<StoreKey<'_>>,
    ) -> Result<Vec<Option<(Bytes, TtlState)>>> {
        let mut found = Vec::with_capacity(keys.len());
        let mut keys = keys.into_iter().peekable();
        while keys.peek().is_some() {
            let slice: Vec<FredKey> = keys.by_ref().take(SET_MANY_SLICE).map(fred_key).collect();
            let entries =
                values_with_ttls(&self.shared.get_with_ttl_script, self.pool().next(), slice)
                    .await
                    .map_err(self.err("get_many"))?;
            found.extend(entries);
        }
        Ok(found)
    }

    /// `GET` and `PTTL` of one key as one command, or a share of one
    /// `GET_WITH_PTTL_EACH` call when every slot is busy (`coalesce/`;
    /// one server only): a tiered cache's miss.
    pub(crate) async fn value_with_ttl(
        &self,
        key: StoreKey<'_>,
    ) -> Result<Option<(Bytes, TtlState)>> {
        let script = &self.shared.get_with_ttl_script;
        let alone = |key: FredKey| async move {
            let mut entries = values_with_ttls(script, self.pool().next(), vec![key]).await?;
            Ok(entries.pop().flatten())
        };
        match &self.shared.coalescing {
            None => alone(fred_key(key)).await,
            Some(coalescing) => coalescing.get_ttls.call(fred_key(key), alone).await,
        }
        .map_err(self.err("get"))
    }

    pub(crate) async fn set_many(
        &self,
        items: Vec<(StoreKey<'_>, Bytes)>,
        ttl: Option<Ttl>,
    ) -> Result<()> {
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

    /// `PTTL`, or a share of a `PTTL_EACH` call when every slot is busy
    /// (`coalesce/`; one server only).
    pub(crate) async fn ttl(&self, key: StoreKey<'_>) -> Result<TtlState> {
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

    pub(crate) async fn expire(&self, key: StoreKey<'_>, ttl: Ttl) -> Result<bool> {
        let set: i64 = self
            .pool()
            .pexpire(fred_key(key), ttl.as_millis() as i64, None)
            .await
            .map_err(self.err("expire"))?;
        Ok(set == 1)
    }

    pub(crate) async fn set_if_absent(
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

    pub(crate) async fn delete_if_equals(&self, key: StoreKey<'_>, value: Bytes) -> Result<bool> {
        let deleted: i64 = self
            .shared
            .delete_if_equals_script
            .evalsha_with_reload(self.pool().next(), fred_key(key), vec![value])
            .await
            .map_err(self.err("delete_if_equals"))?;
        Ok(deleted == 1)
    }

    /// `INCRBY`, or `INCR_WITH_TTL` with a TTL, or a share of one
    /// `INCR_EACH` call when every slot is busy (`coalesce/`; one server
    /// only).
    pub(crate) async fn incr(
        &self,
        key: StoreKey<'_>,
        delta: i64,
        ttl: Option<Ttl>,
    ) -> Result<i64> {
        let px = ttl.map_or(0, |t| t.as_millis() as i64);
        let alone = |(key, delta, px): (FredKey, i64, i64)| async move {
            Ok(if px == 0 {
                self.pool().incr_by(key, delta).await
            } else {
                let script = &self.shared.incr_script;
                script
                    .evalsha_with_reload(self.pool().next(), key, vec![delta, px])
                    .await
                    .and_then(counter)
            })
        };
        let item = (fred_key(key), delta, px);
        let answer = match &self.shared.coalescing {
            None => alone(item).await,
            Some(coalescing) => coalescing.incrs.call(item, alone).await,
        };
        answer.and_then(|own| own).map_err(self.err("incr"))
    }

    /// One check: the `GCRA_EACH` (of one, or shared) or `SLIDING_WINDOW`
    /// script, with the server's clock.
    pub(crate) async fn throttle(
        &self,
        key: StoreKey<'_>,
        limit: Limit,
        cost: u32,
    ) -> Result<Decision> {
        let window = match limit {
            Limit::Gcra(quota) => {
                let item = (
                    fred_key(key),
                    quota.interval_micros() as i64,
                    quota.tolerance_micros() as i64,
                    i64::from(cost),
                );
                let alone = |item| self.gcra_alone(item);
                let answer = match &self.shared.coalescing {
                    // Concurrent checks share one script call when every
                    // connection is busy (`coalesce/`), as `incr`s do.
                    Some(coalescing) => coalescing.throttles.call(item, alone).await,
                    None => alone(item).await,
                };
                let answer = answer.and_then(|own| own).map_err(self.err("throttle"))?;
                return Ok(decision(limit, answer));
            }
            Limit::Window(window) => window,
        };
        let args = vec![
            window.window_micros() as i64,
            i64::from(window.limit()),
            i64::from(cost),
        ];
        let answer: Vec<i64> = self
            .shared
            .window_script
            .evalsha_with_reload(self.pool().next(), fred_key(key), args)
            .await
            .map_err(self.err("throttle"))?;
        let Ok(answer) = <[i64; 4]>::try_from(answer) else {
            return Err(CacheError::Backend {
                message: "throttle: the script answered other than 4 numbers".into(),
                source: None,
            });
        };
        Ok(decision(limit, answer))
    }

    /// One GCRA check alone: a `GCRA_EACH` call of one.
    async fn gcra_alone(
        &self,
        item: (FredKey, i64, i64, i64),
    ) -> std::result::Result<std::result::Result<GcraAnswer, FredError>, FredError> {
        let mut answers =
            gcra_checks(&self.shared.gcra_script, self.pool().next(), vec![item]).await?;
        answers.pop().ok_or_else(|| {
            FredError::new(fred::error::ErrorKind::Parse, "GCRA_EACH answered nothing")
        })
    }

    pub(crate) async fn clear(&self, scope: &str) -> Result<()> {
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

    pub(crate) async fn stats(&self, scope: &str) -> Result<Stats> {
        let mut stats = Stats::default();
        if scope.is_empty() && !self.clustered() {
            let client = self.pool().next();
            let entries: u64 = client.dbsize().await.map_err(self.err("stats"))?;
            let info: String = client.info(None).await.map_err(self.err("stats"))?;
            stats.entries = Some(entries);
            stats.bytes = info_field(&info, "used_memory");
            stats.evictions = info_field(&info, "evicted_keys");
        }
        Ok(stats)
    }

    pub(crate) async fn ping(&self) -> Result<Duration> {
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

/// A decision from a script's four numbers: allowed, remaining, retry
/// after and reset after (µs).
fn decision(limit: Limit, [allowed, remaining, retry_after, reset_after]: [i64; 4]) -> Decision {
    let micros = |n: i64| Duration::from_micros(n.max(0) as u64);
    Decision {
        allowed: allowed == 1,
        limit: limit.max_burst(),
        remaining: u32::try_from(remaining.max(0)).unwrap_or(u32::MAX),
        retry_after: micros(retry_after),
        reset_after: micros(reset_after),
    }
}
