//! `RedisWriteLog`: the write log (`cache_store::write_log`) on a Redis
//! Stream with a consumer group.
//!
//! Two keys, one hash slot (so it runs on Redis Cluster): the stream
//! `{name}:writes` and the flusher's lease `{name}:flusher`. Every step is
//! one script, so no crash between two commands leaves the log half
//! changed:
//! - append: `XLEN` against the capacity, then `XADD` (fields `k`, `v`);
//! - lead: the lease is a string holding the leader's random token, taken
//!   with `SET NX PX` or extended by its holder (`PEXPIRE`);
//! - read: refused unless the caller holds the lease; then `XREADGROUP`
//!   from `0` (what a flusher read and never acknowledged: a dead one's
//!   writes), and only when there is none from `>` (new writes). Every
//!   flusher reads as the group's one consumer, `flusher`: the lease makes
//!   them one at a time, so the pending list is exactly the writes in
//!   flight, handed on to whoever leads next;
//! - ack: `XACK` and `XDEL` at once (the stream holds unflushed writes
//!   only: `XLEN` is the backlog).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_port::{CacheError, Result};
use cache_store::write_log::{Appended, LoggedWrite, Read, WriteLog};
use fred::prelude::{Client, ClientLike, Value};
use fred::types::scripts::Script;
use futures::future::BoxFuture;

use crate::config::RedisConfig;
use crate::connection::fred_builder;
use crate::errors::ErrorContext;

const APPEND: &str = r"
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', 'k', ARGV[2], 'v', ARGV[3])
return 1";

const LEAD: &str = r"
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0";

/// Answers `{0}` when the caller does not lead, else `{1, id, key, value,
/// id, key, value, ...}`.
const READ: &str = r"
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0} end
redis.pcall('XGROUP', 'CREATE', KEYS[1], 'flushers', '0', 'MKSTREAM')
local out = {1}
local gone = {}
local function take(answer)
  if not answer then return end
  for _, entry in ipairs(answer[1][2]) do
    local fields = entry[2]
    if fields and fields[1] == 'k' and fields[3] == 'v' then
      out[#out + 1] = entry[1]
      out[#out + 1] = fields[2]
      out[#out + 1] = fields[4]
    else
      gone[#gone + 1] = entry[1]
    end
  end
end
take(redis.call('XREADGROUP', 'GROUP', 'flushers', 'flusher', 'COUNT', ARGV[2], 'STREAMS', KEYS[1], '0'))
if #out == 1 then
  take(redis.call('XREADGROUP', 'GROUP', 'flushers', 'flusher', 'COUNT', ARGV[2], 'STREAMS', KEYS[1], '>'))
end
if #gone > 0 then redis.call('XACK', KEYS[1], 'flushers', unpack(gone)) end
return out";

const ACK: &str = r"
redis.call('XACK', KEYS[1], 'flushers', unpack(ARGV))
redis.call('XDEL', KEYS[1], unpack(ARGV))
return 1";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1";

const UNFLUSHED: &str = "return redis.call('XLEN', KEYS[1])";

/// The most writes one read or ack may name (Lua's `unpack` has a limit).
pub const MAX_WRITES_PER_READ: usize = 1_000;

/// A write log on a Redis Stream; see the module docs. Build it with
/// [`RedisWriteLog::connect`] and hand it to `cache-recipes`'
/// `DurableWriteBehind`.
pub struct RedisWriteLog {
    client: Client,
    errors: ErrorContext,
    stream: String,
    lease: String,
    /// This instance's lease token (random).
    token: String,
    scripts: Scripts,
}

struct Scripts {
    append: Script,
    lead: Script,
    read: Script,
    ack: Script,
    release: Script,
    unflushed: Script,
}

impl std::fmt::Debug for RedisWriteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisWriteLog")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisWriteLog {
    fn drop(&mut self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let client = self.client.clone();
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

impl RedisWriteLog {
    /// Connects to the server of `config` (its namespace prefixes the
    /// keys) for the log called `name`, within the connect timeout. `name`
    /// is the log's hash tag: it may not be empty or hold `{` or `}`.
    pub async fn connect(config: &RedisConfig, name: &str) -> Result<Arc<Self>> {
        if name.is_empty() || name.contains(['{', '}']) {
            return Err(CacheError::InvalidKey {
                reason: format!("a write log's name may not be empty or hold braces: {name:?}"),
            });
        }
        let (builder, errors) = fred_builder(config)?;
        let client = builder.build().map_err(|e| errors.map("connect", e))?;
        let timeout = config.connect_timeout;
        let unanswered = || CacheError::Unavailable {
            message: format!(
                "write log: could not connect to {} within {timeout:?}",
                config.redacted_url()
            ),
            source: None,
        };
        match tokio::time::timeout(timeout, client.init()).await {
            Ok(Ok(_task)) => {}
            Ok(Err(e)) => return Err(errors.map_start("connect", e, unanswered)),
            Err(_) => return Err(unanswered()),
        }
        let prefix = config.namespace_ref().unwrap_or("");
        Ok(Arc::new(Self {
            client,
            errors,
            stream: format!("{prefix}{{{name}}}:writes"),
            lease: format!("{prefix}{{{name}}}:flusher"),
            token: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            scripts: Scripts {
                append: Script::from_lua(APPEND),
                lead: Script::from_lua(LEAD),
                read: Script::from_lua(READ),
                ack: Script::from_lua(ACK),
                release: Script::from_lua(RELEASE),
                unflushed: Script::from_lua(UNFLUSHED),
            },
        }))
    }

    /// The stream's key (for inspection: `XLEN`, `XPENDING`).
    pub fn stream_key(&self) -> &str {
        &self.stream
    }

    async fn run<T: fred::types::FromValue>(
        &self,
        operation: &'static str,
        script: &Script,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<T> {
        script
            .evalsha_with_reload(&self.client, keys, args)
            .await
            .map_err(|e| self.errors.map(operation, e))
    }
}

/// An append cut off by a timeout or a lost connection may have been
/// logged: say so, as the store does for a non-idempotent write.
fn unknown_outcome(error: CacheError) -> CacheError {
    match error {
        CacheError::Timeout { .. } | CacheError::Unavailable { .. } => CacheError::OutcomeUnknown {
            operation: "write log append",
            source: Box::new(error),
        },
        other => other,
    }
}

fn parse_read(answer: Vec<Value>) -> Result<Read> {
    let malformed = || CacheError::Backend {
        message: "write log: the read script answered an unexpected shape".into(),
        source: None,
    };
    let mut answer = answer.into_iter();
    match answer.next().and_then(|v| v.as_i64()) {
        Some(0) => return Ok(Read::NotLeading),
        Some(1) => {}
        _ => return Err(malformed()),
    }
    let rest: Vec<Value> = answer.collect();
    if rest.len() % 3 != 0 {
        return Err(malformed());
    }
    let mut writes = Vec::with_capacity(rest.len() / 3);
    let mut rest = rest.into_iter();
    while let (Some(id), Some(key), Some(value)) = (rest.next(), rest.next(), rest.next()) {
        let id = id.into_string().ok_or_else(malformed)?;
        let key = key.into_string().ok_or_else(malformed)?;
        let value = value.into_bytes().ok_or_else(malformed)?;
        writes.push(LoggedWrite { id, key, value });
    }
    Ok(Read::Writes(writes))
}

impl WriteLog for RedisWriteLog {
    fn append(&self, key: &str, value: Bytes, capacity: u64) -> BoxFuture<'_, Result<Appended>> {
        let args = vec![
            Value::Integer(i64::try_from(capacity).unwrap_or(i64::MAX)),
            Value::String(key.into()),
            Value::Bytes(value),
        ];
        Box::pin(async move {
            let logged: i64 = self
                .run(
                    "write log append",
                    &self.scripts.append,
                    vec![self.stream.clone()],
                    args,
                )
                .await
                .map_err(unknown_outcome)?;
            Ok(if logged == 1 {
                Appended::Logged
            } else {
                Appended::Full
            })
        })
    }

    fn lead(&self, lease: Duration) -> BoxFuture<'_, Result<bool>> {
        let ms = i64::try_from(lease.as_millis().max(1)).unwrap_or(i64::MAX);
        Box::pin(async move {
            let leads: i64 = self
                .run(
                    "write log lead",
                    &self.scripts.lead,
                    vec![self.lease.clone()],
                    vec![Value::String(self.token.clone().into()), Value::Integer(ms)],
                )
                .await?;
            Ok(leads == 1)
        })
    }

    fn read(&self, max: usize) -> BoxFuture<'_, Result<Read>> {
        let count = max.clamp(1, MAX_WRITES_PER_READ) as i64;
        Box::pin(async move {
            let answer: Vec<Value> = self
                .run(
                    "write log read",
                    &self.scripts.read,
                    vec![self.stream.clone(), self.lease.clone()],
                    vec![
                        Value::String(self.token.clone().into()),
                        Value::Integer(count),
                    ],
                )
                .await?;
            parse_read(answer)
        })
    }

    fn ack(&self, ids: Vec<String>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            for chunk in ids.chunks(MAX_WRITES_PER_READ) {
                let args = chunk.iter().map(|id| Value::String(id.clone().into()));
                let _: i64 = self
                    .run(
                        "write log ack",
                        &self.scripts.ack,
                        vec![self.stream.clone()],
                        args.collect(),
                    )
                    .await?;
            }
            Ok(())
        })
    }

    fn release(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let _: i64 = self
                .run(
                    "write log release",
                    &self.scripts.release,
                    vec![self.lease.clone()],
                    vec![Value::String(self.token.clone().into())],
                )
                .await?;
            Ok(())
        })
    }

    fn unflushed(&self) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let len: i64 = self
                .run(
                    "write log length",
                    &self.scripts.unflushed,
                    vec![self.stream.clone()],
                    vec![],
                )
                .await?;
            Ok(u64::try_from(len).unwrap_or(0))
        })
    }
}
