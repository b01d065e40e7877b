//! The port: one object-safe async trait.

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;

use crate::error::Result;
use crate::stats::Stats;
use crate::throttle::{Decision, Limit};
use crate::ttl::TtlState;

/// A key-value cache, whatever it stores in.
///
/// Domain code depends on `Arc<dyn Cache>` and nothing else; an adapter
/// (in-process, Redis, …) is chosen at startup. Every adapter keeps the
/// contract in `docs/CONTRACT.md`, proven by the shared conformance suite:
/// keys are validated by [`Key`](crate::Key), TTLs by [`Ttl`](crate::Ttl),
/// patterns by [`Pattern`](crate::Pattern), and a bad input is a typed error
/// that changes nothing. A backend failure is an error, never a miss
/// (unless the caller wraps the adapter in the fail-open layer,
/// `cache_store::layer::FailOpen`).
///
/// TTLs are `Option<Duration>`: `None` means the entry never expires (a
/// bounded in-process store may still evict it).
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value of `key`, or `None` when it is missing or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// [`get`](Self::get)'s answer when the cache has it at hand without
    /// waiting (an in-process read, a tiered cache's L1 hit), so that a
    /// layer on a hot path (tags) skips the boxed future; `None`: not at
    /// hand, call `get`. An answer here is the one `get` would give, with
    /// the same validation, counting and errors. The default: `None`.
    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        let _ = key;
        None
    }

    /// A value [`get_now`](Self::get_now) would answer, with a [`Watch`](crate::Watch)
    /// that holds while a read would still answer it, for a layer that
    /// reads one key on every call (the tags view keeps its tags'
    /// versions so). `None`: no value at hand, a key `get` would refuse,
    /// or not offered (the default; the tiered cache offers it for an L1
    /// hit). Counted as a `get` hit.
    fn watch_now(&self, key: &str) -> Option<(Bytes, crate::Watch)> {
        let _ = key;
        None
    }

    /// Stores `value` under `key`, replacing both the value and the TTL
    /// (Redis `SET` without `KEEPTTL`).
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()>;

    /// Removes `key`; says whether it existed.
    async fn delete(&self, key: &str) -> Result<bool>;

    /// Whether `key` exists.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// One optional value per key, in the order given, duplicates kept.
    /// Empty input gives empty output without a round trip.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>>;

    /// Whether each of `keys` exists, in the order given, duplicates kept:
    /// one round trip where the backend allows, and no value moved. Empty
    /// input gives empty output without a round trip. The default asks
    /// [`exists`](Cache::exists) once per key; every adapter built on the
    /// store side answers in one call.
    async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>> {
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            found.push(self.exists(key).await?);
        }
        Ok(found)
    }

    /// Stores every item with the same TTL, in one round trip where the
    /// backend allows. Every key and value is validated first, so a batch with
    /// one bad item changes nothing; the writes themselves are not atomic
    /// across keys (a concurrent reader may see some of them before others).
    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()>;

    /// Removes every key given; says how many existed.
    async fn delete_many(&self, keys: &[String]) -> Result<u64>;

    /// Removes every key matching the Redis glob `pattern`; says how many.
    async fn delete_pattern(&self, pattern: &str) -> Result<u64>;

    /// Every key matching the Redis glob `pattern`, in no particular order.
    async fn keys(&self, pattern: &str) -> Result<Vec<String>>;

    /// Whether `key` is missing, persistent, or expires after how long.
    async fn ttl(&self, key: &str) -> Result<TtlState>;

    /// The value of `key`, and, if there is one, its TTL set to `ttl` from
    /// now, in one step (Redis `GETEX … PX`): how a read keeps a session
    /// alive. A missing key stays missing. On a tiered cache it reads L2
    /// (the authority, whose TTL it extends), never L1 alone. The default
    /// reads, then expires (two steps); every adapter built on the store
    /// side answers in one.
    async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Bytes>> {
        let value = self.get(key).await?;
        if value.is_some() {
            self.expire(key, ttl).await?;
        }
        Ok(value)
    }

    /// Gives an existing `key` a new TTL; says whether the key existed.
    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;

    /// Stores `value` only when `key` does not exist (Redis `SET NX`); says
    /// whether it was written. Of concurrent callers exactly one wins.
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool>;

    /// Removes `key` only while it holds exactly `value`, in one atomic step
    /// (a script on Redis); says whether it did. This is how the owner of a
    /// lock taken with [`set_if_absent`](Cache::set_if_absent) and a random
    /// token releases it without removing a lock that expired and was taken
    /// by someone else meanwhile.
    async fn delete_if_equals(&self, key: &str, value: Bytes) -> Result<bool>;

    /// Adds `delta` to the decimal integer stored at `key` (a missing key
    /// counts as 0) and returns the new value, as Redis `INCRBY` does. The
    /// TTL applies only when this call creates the counter; an existing
    /// counter keeps its own.
    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64>;

    /// Counts a request of `cost` against `limit` for the subject `key`, in
    /// one atomic step (GCRA or an exact sliding window, see
    /// [`throttle`](crate::throttle)): the decision, and the subject's state
    /// moved on if allowed. On Redis one
    /// script with the server's clock (`TIME`), so processes with skewed
    /// clocks agree; in process, under the key's lock with this machine's
    /// clock. A cost of 0 peeks without counting. Not idempotent: a check
    /// cut off is `OutcomeUnknown`. The default refuses with `NotAllowed`;
    /// every adapter built on the store side answers.
    async fn throttle(&self, key: &str, limit: Limit, cost: u32) -> Result<Decision> {
        let _ = (key, limit, cost);
        Err(crate::CacheError::NotAllowed {
            message: "this cache does not implement throttle".into(),
        })
    }

    /// Removes every key in this adapter's namespace and nothing else.
    async fn clear(&self) -> Result<()>;

    /// A snapshot of this adapter's figures.
    async fn stats(&self) -> Result<Stats>;

    /// Round-trip time to the backend, or why it cannot be reached.
    async fn ping(&self) -> Result<Duration>;

    /// Closes the backend connections and stops the background tasks of
    /// the store under this cache, and returns once they are gone. Every
    /// handle and namespaced view of the same store is closed with it; their
    /// calls afterwards fail with `Unavailable` (an in-process store has
    /// nothing to close and goes on answering). Dropping the last handle
    /// does the same without waiting; call this to wait for it (a
    /// configuration reload, a test that counts connections).
    async fn close(&self) -> Result<()>;

    /// The largest value, in bytes, this adapter accepts under the
    /// shortest key. A value over it is refused before any store sees it.
    ///
    /// On a bounded in-process store (`memory://`), key and value share one
    /// entry's charge against the capacity, so a long key, or one made
    /// longer by a namespace, leaves room for less: such a value is refused
    /// with [`ValueTooLarge`](crate::CacheError::ValueTooLarge) whose
    /// `which` is [`ENTRY_LIMIT`](crate::CacheError::ENTRY_LIMIT) and whose
    /// `limit` is what fits beside that key. On Redis the limit does not
    /// depend on the key.
    fn max_value_len(&self) -> usize;

    /// Every key matching the Redis glob `pattern`, a page at a time, in
    /// bounded memory: the streaming form of [`keys`](Cache::keys) for key
    /// spaces past its limit. A key present throughout the walk is listed at
    /// least once, and may be listed twice (Redis `SCAN`'s guarantee); keys
    /// written or deleted meanwhile may or may not be. A bad pattern is the
    /// stream's one item, an `InvalidPattern` error.
    fn keys_stream(&self, pattern: &str) -> KeyPages;
}

/// Pages of keys, as [`Cache::keys_stream`] gives them (and a store's `scan`
/// on the store side): owned, so a caller can hold it across awaits and
/// tasks. The same type as `futures::stream::BoxStream<'static, _>`.
pub type KeyPages = Pin<Box<dyn Stream<Item = Result<Vec<String>>> + Send>>;
