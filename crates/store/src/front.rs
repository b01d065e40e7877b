//! The front: any [`Store`] as the port, every input checked exactly once.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{FutureExt, StreamExt};

use crate::{unexpected_reply, Op, Reply, Request, Store};
use cache_port::Cache;
use cache_port::KeyPages;
use cache_port::Pattern;
use cache_port::Stats;
use cache_port::{CacheError, Result};
use cache_port::{Decision, Limit};
use cache_port::{Key, MAX_KEY_LEN};
use cache_port::{Ttl, TtlState};

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
/// use cache_port::{Cache, ErrorKind, Result};
/// use cache_store::{Front, Reply, Request, Store};
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
    /// The most keys `keys` collects.
    keys_limit: usize,
}

/// How many keys `keys` collects at most unless configured otherwise:
/// about 10 MB of short keys.
pub const DEFAULT_KEYS_LIMIT: usize = 100_000;

impl<S: Store> Front<S> {
    /// The port over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            refused: AtomicU64::new(0),
            keys_limit: DEFAULT_KEYS_LIMIT,
        }
    }

    /// Sets the most keys `keys` collects (at least 1); past it, `keys`
    /// answers [`CacheError::TooManyKeys`].
    pub fn with_keys_limit(mut self, limit: usize) -> Self {
        self.keys_limit = limit.max(1);
        self
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
                which: CacheError::MAX_VALUE_LEN_LIMIT,
            });
        }
        Ok(())
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

/// For a batch that names a key more than once: the distinct keys (in the
/// order they first appear) and, for each key given, its place among them.
/// `None` when every key is distinct, the usual case, which costs one pass
/// of Fx hashing. The store then reads each key once, so that a key named
/// twice in one `get_many` gets one answer, on every adapter (a concurrent
/// write could otherwise land between two reads of it).
fn repeats<'k>(keys: &[Cow<'k, str>]) -> Option<(Vec<Cow<'k, str>>, Vec<usize>)> {
    // A few keys (a tagged read's two): compared pairwise, no map built.
    if keys.len() <= 8
        && keys
            .iter()
            .enumerate()
            .all(|(i, key)| keys[i + 1..].iter().all(|other| other != key))
    {
        return None;
    }
    let mut place: rustc_hash::FxHashMap<&str, usize> =
        rustc_hash::FxHashMap::with_capacity_and_hasher(keys.len(), Default::default());
    let mut repeated = false;
    for key in keys {
        let next = place.len();
        repeated |= *place.entry(key).or_insert(next) != next;
    }
    if !repeated {
        return None;
    }
    let mut distinct: Vec<Cow<'k, str>> = Vec::with_capacity(place.len());
    let positions = keys
        .iter()
        .map(|key| {
            let at = place[key.as_ref()];
            if at == distinct.len() {
                distinct.push(key.clone());
            }
            at
        })
        .collect();
    Some((distinct, positions))
}

/// `keys` without repeats, and where each of the caller's keys went
/// (`None`: there were no repeats).
fn distinct(keys: Vec<Cow<'_, str>>) -> (Vec<Cow<'_, str>>, Option<Vec<usize>>) {
    match repeats(&keys) {
        Some((distinct, positions)) => (distinct, Some(positions)),
        None => (keys, None),
    }
}

/// One answer per distinct key, back in the caller's order (repeats
/// answered alike); a store that answered another number is a `Backend`
/// error.
fn spread_back<T: Clone>(
    op: Op,
    answers: Vec<T>,
    wanted: usize,
    positions: Option<Vec<usize>>,
) -> Result<Vec<T>> {
    if answers.len() != wanted {
        return Err(CacheError::Backend {
            message: format!("{op}: {} answers for {wanted} keys", answers.len()),
            source: None,
        });
    }
    Ok(match positions {
        None => answers,
        Some(positions) => positions.iter().map(|&i| answers[i].clone()).collect(),
    })
}

/// A `Flag` reply.
fn flag(reply: Reply) -> std::result::Result<bool, Reply> {
    match reply {
        Reply::Flag(f) => Ok(f),
        other => Err(other),
    }
}

/// A `Count` reply.
fn count(reply: Reply) -> std::result::Result<u64, Reply> {
    match reply {
        Reply::Count(n) => Ok(n),
        other => Err(other),
    }
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

/// The one boxed future of a port call.
type Call<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// Boxes the store's future, reading its reply as `T` (`read` hands back a
/// reply of the wrong shape, which becomes a `Backend` error). A plain `map`
/// over the store's future: the box holds the store's future and nothing of
/// the front's own.
fn boxed<'a, T, F, R>(op: Op, call: F, read: R) -> Call<'a, T>
where
    T: Send + 'a,
    F: Future<Output = Result<Reply>> + Send + 'a,
    R: FnOnce(Reply) -> std::result::Result<T, Reply> + Send + 'a,
{
    Box::pin(call.map(move |result| match result {
        Ok(reply) => read(reply).map_err(|other| unexpected_reply(op, &other)),
        Err(error) => Err(op.failed(error)),
    }))
}

/// A call refused before reaching the store.
fn refused<'a, T: Send + 'a>(error: CacheError) -> Call<'a, T> {
    Box::pin(std::future::ready(Err(error)))
}

/// A hot port method, written as `#[async_trait]` would generate it (the
/// lifetimes of `&self` and of the borrowed argument outlive the future),
/// without its `async` block.
macro_rules! port_call {
    (fn $name:ident(&$this:ident, $($arg:ident: $ty:ty),*) -> $out:ty $body:block) => {
        fn $name<'a, 'k, 'f>(&'a $this, $($arg: $ty),*) -> Call<'f, $out>
        where
            'a: 'f,
            'k: 'f,
            Self: 'f,
        $body
    };
}

/// The validated value of `$checked`, or the call answers with its error.
macro_rules! valid {
    ($front:expr, $checked:expr) => {
        match $front.valid($checked) {
            Ok(value) => value,
            Err(error) => return refused(error),
        }
    };
}

// The hot operations are written out as what `#[async_trait]` would
// generate, without its `async` block: validation runs before anything is
// boxed, and the one box holds the store's future mapped to the answer.
// The rare ones (`keys`, `delete_pattern`, `clear`, `stats`, `ping`) keep
// `async fn`.
#[async_trait]
impl<S: Store> Cache for Front<S> {
    port_call! { fn get(&self, key: &'k str) -> Option<Bytes> {
        let key = valid!(self, self::key(key));
        // At once where the store can (an in-process read, an L1 hit).
        if let Some(answer) = self.store.get_now(&key) {
            return Box::pin(std::future::ready(
                answer.map_err(|error| Op::Get.failed(error)),
            ));
        }
        // The store's `get` (the default goes through `call`).
        Box::pin(
            self.store
                .get(key)
                .map(|result| result.map_err(|error| Op::Get.failed(error))),
        )
    }}

    fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        let key = match self.valid(self::key(key)) {
            Ok(key) => key,
            Err(error) => return Some(Err(error)),
        };
        self.store
            .get_now(&key)
            .map(|answer| answer.map_err(|error| Op::Get.failed(error)))
    }

    fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
        // A key `get` would refuse: `get` reports it.
        let key = self.valid(self::key(key)).ok()?;
        self.store.watch_now(&key)
    }

    port_call! { fn set(&self, key: &'k str, value: Bytes, ttl: Option<Duration>) -> () {
        let key = valid!(self, self::key(key));
        let ttl = valid!(self, Ttl::from_option(ttl));
        valid!(self, self.check_value(&value));
        boxed(
            Op::Set,
            self.store.call(Request::Set { key, value, ttl }),
            |reply| match reply {
                Reply::Done => Ok(()),
                other => Err(other),
            },
        )
    }}

    port_call! { fn delete(&self, key: &'k str) -> bool {
        let key = valid!(self, self::key(key));
        boxed(Op::Delete, self.store.call(Request::Delete { key }), flag)
    }}

    port_call! { fn get_and_touch(&self, key: &'k str, ttl: Duration) -> Option<Bytes> {
        let key = valid!(self, self::key(key));
        let ttl = valid!(self, Ttl::new(ttl));
        boxed(
            Op::GetAndTouch,
            self.store.call(Request::GetAndTouch { key, ttl }),
            |reply| match reply {
                Reply::Value(value) => Ok(value),
                other => Err(other),
            },
        )
    }}

    port_call! { fn exists(&self, key: &'k str) -> bool {
        let key = valid!(self, self::key(key));
        boxed(Op::Exists, self.store.call(Request::Exists { key }), flag)
    }}

    port_call! { fn exists_many(&self, keys: &'k [String]) -> Vec<bool> {
        let keys = valid!(self, batch_keys(keys));
        if keys.is_empty() {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        let (keys, positions) = distinct(keys);
        let wanted = keys.len();
        let call = self.store.call(Request::ExistsMany { keys });
        Box::pin(call.map(move |result| {
            let flags = expect!(Op::ExistsMany, result?, Reply::Flags(f) => f)?;
            spread_back(Op::ExistsMany, flags, wanted, positions)
        }))
    }}

    port_call! { fn get_many(&self, keys: &'k [String]) -> Vec<Option<Bytes>> {
        let keys = valid!(self, batch_keys(keys));
        if keys.is_empty() {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        let (keys, positions) = distinct(keys);
        let wanted = keys.len();
        let call = self.store.call(Request::GetMany { keys });
        Box::pin(call.map(move |result| {
            let values = expect!(Op::GetMany, result?, Reply::Values(v) => v)?;
            spread_back(Op::GetMany, values, wanted, positions)
        }))
    }}

    fn set_many<'a, 'f>(
        &'a self,
        items: Vec<(String, Bytes)>,
        ttl: Option<Duration>,
    ) -> Call<'f, ()>
    where
        'a: 'f,
        Self: 'f,
    {
        // Validate everything before the first write: a bad item changes nothing.
        let ttl = valid!(self, Ttl::from_option(ttl));
        for (key, value) in &items {
            valid!(self, Key::new(key));
            valid!(self, self.check_value(value));
        }
        if items.is_empty() {
            return Box::pin(std::future::ready(Ok(())));
        }
        let items = items.into_iter().map(|(k, v)| (Cow::Owned(k), v)).collect();
        boxed(
            Op::SetMany,
            self.store.call(Request::SetMany { items, ttl }),
            |reply| match reply {
                Reply::Done => Ok(()),
                other => Err(other),
            },
        )
    }

    port_call! { fn delete_many(&self, keys: &'k [String]) -> u64 {
        let keys = valid!(self, batch_keys(keys));
        if keys.is_empty() {
            return Box::pin(std::future::ready(Ok(0)));
        }
        boxed(
            Op::DeleteMany,
            self.store.call(Request::DeleteMany { keys }),
            count,
        )
    }}

    port_call! { fn ttl(&self, key: &'k str) -> TtlState {
        let key = valid!(self, self::key(key));
        boxed(
            Op::Ttl,
            self.store.call(Request::Ttl { key }),
            |reply| match reply {
                Reply::Ttl(t) => Ok(t),
                other => Err(other),
            },
        )
    }}

    port_call! { fn expire(&self, key: &'k str, ttl: Duration) -> bool {
        let key = valid!(self, self::key(key));
        let ttl = valid!(self, Ttl::new(ttl));
        boxed(
            Op::Expire,
            self.store.call(Request::Expire { key, ttl }),
            flag,
        )
    }}

    port_call! { fn set_if_absent(&self, key: &'k str, value: Bytes, ttl: Option<Duration>) -> bool {
        let key = valid!(self, self::key(key));
        let ttl = valid!(self, Ttl::from_option(ttl));
        valid!(self, self.check_value(&value));
        let request = Request::SetIfAbsent { key, value, ttl };
        boxed(Op::SetIfAbsent, self.store.call(request), flag)
    }}

    port_call! { fn delete_if_equals(&self, key: &'k str, value: Bytes) -> bool {
        let key = valid!(self, self::key(key));
        let request = Request::DeleteIfEquals { key, value };
        boxed(Op::DeleteIfEquals, self.store.call(request), flag)
    }}

    port_call! { fn incr(&self, key: &'k str, delta: i64, ttl_if_created: Option<Duration>) -> i64 {
        let key = valid!(self, self::key(key));
        let ttl_if_created = valid!(self, Ttl::from_option(ttl_if_created));
        let request = Request::Incr {
            key,
            delta,
            ttl_if_created,
        };
        boxed(Op::Incr, self.store.call(request), |reply| match reply {
            Reply::Int(n) => Ok(n),
            other => Err(other),
        })
    }}

    port_call! { fn throttle(&self, key: &'k str, limit: Limit, cost: u32) -> Decision {
        let key = valid!(self, self::key(key));
        let request = Request::Throttle { key, limit, cost };
        boxed(Op::Throttle, self.store.call(request), |reply| match reply {
            Reply::Decision(decision) => Ok(decision),
            other => Err(other),
        })
    }}

    async fn delete_pattern(&self, pattern: &str) -> Result<u64> {
        let pattern = self.valid(Pattern::new(pattern))?;
        let request = Request::DeletePattern {
            scope: Cow::Borrowed(""),
            pattern: &pattern,
        };
        expect!(Op::DeletePattern, self.store.call(request).await?, Reply::Count(n) => n)
    }

    async fn keys(&self, pattern: &str) -> Result<Vec<String>> {
        let pattern = self.valid(Pattern::new(pattern))?;
        let request = Request::Keys {
            scope: Cow::Borrowed(""),
            pattern: &pattern,
            limit: self.keys_limit,
        };
        let mut keys = expect!(Op::Keys, self.store.call(request).await?, Reply::Keys(k) => k)?;
        // Every key listed must be one this view can `get`: a store key equal
        // to the namespace prefix (`ns:` lists as "") or longer than the key
        // limit is not addressable through the port, so it is not listed.
        keys.retain(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN);
        Ok(keys)
    }

    async fn clear(&self) -> Result<()> {
        let request = Request::Clear {
            scope: Cow::Borrowed(""),
        };
        expect!(Op::Clear, self.store.call(request).await?, Reply::Done => ())
    }

    async fn stats(&self) -> Result<Stats> {
        let request = Request::Stats {
            scope: Cow::Borrowed(""),
        };
        let mut stats = expect!(Op::Stats, self.store.call(request).await?, Reply::Stats(s) => *s)?;
        stats.errors += self.refused.load(Relaxed);
        Ok(stats)
    }

    async fn ping(&self) -> Result<Duration> {
        expect!(Op::Ping, self.store.call(Request::Ping).await?, Reply::Pong(d) => d)
    }

    async fn close(&self) -> Result<()> {
        expect!(Op::Close, self.store.call(Request::Close).await?, Reply::Done => ())
    }

    fn max_value_len(&self) -> usize {
        self.store.max_value_len()
    }

    fn keys_stream(&self, pattern: &str) -> KeyPages {
        let pattern = match self.valid(Pattern::new(pattern)) {
            Ok(pattern) => pattern,
            Err(error) => return Box::pin(futures::stream::once(std::future::ready(Err(error)))),
        };
        // Only keys this view can `get`, as in `keys`.
        Box::pin(self.store.scan(String::new(), pattern).map(|page| {
            page.map(|mut keys| {
                keys.retain(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN);
                keys
            })
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use cache_port::ErrorKind;

    /// Every call times out.
    struct Hanging;

    impl Store for Hanging {
        async fn call(&self, request: Request<'_>) -> Result<Reply> {
            Err(CacheError::Timeout {
                operation: request.op().name(),
                after: Duration::from_millis(1),
                source: None,
            })
        }
        fn max_value_len(&self) -> usize {
            8
        }
    }

    #[tokio::test]
    async fn a_transport_failure_of_a_non_idempotent_write_has_an_unknown_outcome() {
        let cache = Front::new(Hanging);
        let non_idempotent = [
            ("incr", cache.incr("n", 1, None).await.map(drop)),
            (
                "set_if_absent",
                cache
                    .set_if_absent("lock", Bytes::new(), None)
                    .await
                    .map(drop),
            ),
        ];
        for (op, answer) in non_idempotent {
            let err = answer.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OutcomeUnknown, "{op}");
            assert!(!err.is_retryable(), "{op}");
            let said = err.to_string();
            assert!(
                said.starts_with(&format!("{op}: the outcome is unknown")),
                "{said}"
            );
        }
        // Idempotent operations keep their retryable kind.
        for err in [
            cache.get("k").await.unwrap_err(),
            cache.set("k", Bytes::new(), None).await.unwrap_err(),
            cache.delete("k").await.unwrap_err(),
            cache.expire("k", Duration::from_secs(1)).await.unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::Timeout);
            assert!(err.is_retryable());
        }
    }
}
