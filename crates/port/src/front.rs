//! The front: any [`Store`] as the port, every input checked exactly once.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{CacheError, Result};
use crate::key::{Key, MAX_KEY_LEN};
use crate::pattern::Pattern;
use crate::stats::Stats;
use crate::store::{unexpected_reply, Op, Reply, Request, Store};
use crate::ttl::{Ttl, TtlState};
use crate::Cache;

/// Turns a store (an adapter, or layers over one) into the port.
///
/// The front is the one place that validates what callers pass (keys with
/// [`Key`], TTLs with [`Ttl`], patterns with [`Pattern`], values against the
/// store's [`max_value_len`](Store::max_value_len)) and the one place that
/// boxes a future: through `Arc<dyn Cache>`, a call costs one allocation for
/// its future, whatever the number of layers below. A bad input is a typed
/// error and reaches no store. Empty batches answer without a round trip.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use cache_port::{Cache, ErrorKind, Front, Reply, Request, Result, Store};
///
/// /// A store that holds nothing: every key is missing.
/// struct Empty;
/// impl Store for Empty {
///     async fn call(&self, request: Request<'_>) -> Result<Reply> {
///         Ok(match request {
///             Request::Get { .. } => Reply::Value(None),
///             _ => Reply::Done,
///         })
///     }
///     fn max_value_len(&self) -> usize { 16 }
/// }
///
/// let cache: Arc<dyn Cache> = Arc::new(Front::new(Empty));
/// assert_eq!(cache.get("k").await.unwrap(), None);
/// assert_eq!(cache.get("").await.unwrap_err().kind(), ErrorKind::InvalidKey);
/// # });
/// ```
#[derive(Debug, Default)]
pub struct Front<S> {
    store: S,
    /// Calls refused for bad input: they reach no store, but `stats()`
    /// counts them as errors, as it counts every failed call.
    refused: AtomicU64,
}

impl<S: Store> Front<S> {
    /// The port over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            refused: AtomicU64::new(0),
        }
    }

    /// The store behind the front.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    fn check_value(&self, value: &Bytes) -> Result<()> {
        let limit = self.store.max_value_len();
        if value.len() > limit {
            return Err(CacheError::ValueTooLarge {
                len: value.len(),
                limit,
            });
        }
        Ok(())
    }

    async fn run(&self, request: Request<'_>) -> Result<Reply> {
        self.store.call(request).await
    }

    /// A validation's result; a refusal is counted (see `refused`).
    fn valid<T>(&self, checked: Result<T>) -> Result<T> {
        if checked.is_err() {
            self.refused.fetch_add(1, Relaxed);
        }
        checked
    }
}

/// Borrows every key of a batch after validating all of them, so that a
/// batch with one bad key changes nothing.
fn batch_keys(keys: &[String]) -> Result<Vec<Cow<'_, str>>> {
    keys.iter()
        .map(|k| Key::new(k).map(|k| Cow::Borrowed(k.as_str())))
        .collect()
}

fn key(key: &str) -> Result<Cow<'_, str>> {
    Key::new(key).map(|k| Cow::Borrowed(k.as_str()))
}

macro_rules! expect {
    ($op:expr, $reply:expr, $pattern:pat => $value:expr) => {
        match $reply {
            $pattern => Ok($value),
            other => Err(unexpected_reply($op, &other)),
        }
    };
}

#[async_trait]
impl<S: Store> Cache for Front<S> {
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let request = Request::Get {
            key: self.valid(self::key(key))?,
        };
        expect!(Op::Get, self.run(request).await?, Reply::Value(v) => v)
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()> {
        let key = self.valid(self::key(key))?;
        let ttl = self.valid(Ttl::from_option(ttl))?;
        self.valid(self.check_value(&value))?;
        let reply = self.run(Request::Set { key, value, ttl }).await?;
        expect!(Op::Set, reply, Reply::Done => ())
    }

    async fn delete(&self, key: &str) -> Result<bool> {
        let request = Request::Delete {
            key: self.valid(self::key(key))?,
        };
        expect!(Op::Delete, self.run(request).await?, Reply::Flag(f) => f)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let request = Request::Exists {
            key: self.valid(self::key(key))?,
        };
        expect!(Op::Exists, self.run(request).await?, Reply::Flag(f) => f)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let keys = self.valid(batch_keys(keys))?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = keys.len();
        let values = expect!(Op::GetMany, self.run(Request::GetMany { keys }).await?,
            Reply::Values(v) => v)?;
        if values.len() != wanted {
            return Err(CacheError::Backend {
                message: format!("get_many: {} values for {wanted} keys", values.len()),
                source: None,
            });
        }
        Ok(values)
    }

    async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()> {
        // Validate everything before the first write: a bad item changes nothing.
        let ttl = self.valid(Ttl::from_option(ttl))?;
        for (key, value) in &items {
            self.valid(Key::new(key))?;
            self.valid(self.check_value(value))?;
        }
        if items.is_empty() {
            return Ok(());
        }
        let items = items.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect();
        let reply = self.run(Request::SetMany { items, ttl }).await?;
        expect!(Op::SetMany, reply, Reply::Done => ())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<u64> {
        let keys = self.valid(batch_keys(keys))?;
        if keys.is_empty() {
            return Ok(0);
        }
        let reply = self.run(Request::DeleteMany { keys }).await?;
        expect!(Op::DeleteMany, reply, Reply::Count(n) => n)
    }

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let pattern = self.valid(Pattern::new(pattern))?;
        let request = Request::DeletePattern {
            scope: Cow::Borrowed(""),
            pattern: &pattern,
        };
        expect!(Op::DeletePattern, self.run(request).await?, Reply::Count(n) => n)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = self.valid(Pattern::new(pattern))?;
        let request = Request::Keys {
            scope: Cow::Borrowed(""),
            pattern: &pattern,
        };
        let mut keys = expect!(Op::Keys, self.run(request).await?, Reply::Keys(k) => k)?;
        // Every key listed must be one this view can `get`: a store key equal
        // to the namespace prefix (`ns:` lists as "") or longer than the key
        // limit is not addressable through the port, so it is not listed.
        keys.retain(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN);
        Ok(keys)
    }

    async fn ttl(&self, key: &str) -> Result<TtlState> {
        let request = Request::Ttl {
            key: self.valid(self::key(key))?,
        };
        expect!(Op::Ttl, self.run(request).await?, Reply::Ttl(t) => t)
    }

    async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let key = self.valid(self::key(key))?;
        let ttl = self.valid(Ttl::new(ttl))?;
        let reply = self.run(Request::Expire { key, ttl }).await?;
        expect!(Op::Expire, reply, Reply::Flag(f) => f)
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        let key = self.valid(self::key(key))?;
        let ttl = self.valid(Ttl::from_option(ttl))?;
        self.valid(self.check_value(&value))?;
        let reply = self.run(Request::SetIfAbsent { key, value, ttl }).await?;
        expect!(Op::SetIfAbsent, reply, Reply::Flag(f) => f)
    }

    async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64> {
        let key = self.valid(self::key(key))?;
        let ttl_if_created = self.valid(Ttl::from_option(ttl_if_created))?;
        let request = Request::Incr {
            key,
            delta,
            ttl_if_created,
        };
        expect!(Op::Incr, self.run(request).await?, Reply::Int(n) => n)
    }

    async fn clear(&self) -> Result<()> {
        let request = Request::Clear {
            scope: Cow::Borrowed(""),
        };
        expect!(Op::Clear, self.run(request).await?, Reply::Done => ())
    }

    async fn stats(&self) -> Result<Stats> {
        let request = Request::Stats {
            scope: Cow::Borrowed(""),
        };
        let mut stats = expect!(Op::Stats, self.run(request).await?, Reply::Stats(s) => s)?;
        stats.errors += self.refused.load(Relaxed);
        Ok(stats)
    }

    async fn ping(&self) -> Result<Duration> {
        expect!(Op::Ping, self.run(Request::Ping).await?, Reply::Pong(d) => d)
    }

    fn max_value_len(&self) -> usize {
        self.store.max_value_len()
    }
}
