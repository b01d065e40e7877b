//! `CacheStore<C>`: any `Cache` as a store, so that layers wrap it too.

use std::future::Future;
use std::sync::Arc;

use crate::{Reply, Request, Store};
use cache_port::{Cache, CacheError, Result};

/// Runs store requests through a port [`Cache`]: a `MockCache` in a unit
/// test, or an `Arc<dyn Cache>` built elsewhere, so that any layer
/// ([`FailOpen`](super::FailOpen), [`Namespaced`](super::Namespaced), …)
/// can wrap it.
///
/// Requests reach the inner cache as port calls, so it validates them again
/// and boxes its own future: use it for tests and for caches you were handed,
/// not in front of an adapter (build over the adapter's store instead).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use cache_port::{Cache, MockCache};
/// use cache_store::{layer::CacheStore, CacheBuilder};
///
/// let mut mock = MockCache::new();
/// mock.expect_max_value_len().return_const(1024usize);
/// mock.expect_exists().returning(|_| Ok(true));
/// let cache = CacheBuilder::new(CacheStore::new(mock)).build();
/// assert!(cache.exists("k").await.unwrap());
/// # });
/// ```
///
/// A cache handed in as `Arc<dyn Cache>` is a `CacheStore<dyn Cache>`, made
/// with [`shared`](CacheStore::shared).
pub struct CacheStore<C: ?Sized>(Arc<C>);

impl<C> CacheStore<C> {
    /// `cache` as a store.
    pub fn new(cache: C) -> Self {
        Self(Arc::new(cache))
    }
}

impl<C: ?Sized> CacheStore<C> {
    /// A cache shared with others (an `Arc<dyn Cache>` built elsewhere) as
    /// a store.
    pub fn shared(cache: Arc<C>) -> Self {
        Self(cache)
    }
}

impl<C: ?Sized> Clone for CacheStore<C> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<C: ?Sized> std::fmt::Debug for CacheStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CacheStore")
    }
}

/// The port's key list for a batch.
fn owned(keys: Vec<std::borrow::Cow<'_, str>>) -> Vec<String> {
    keys.into_iter().map(|k| k.into_owned()).collect()
}

impl<C: Cache + ?Sized + 'static> Store for CacheStore<C> {
    fn call(&self, request: Request<'_>) -> impl Future<Output = Result<Reply>> + Send {
        forward(&*self.0, request)
    }

    fn max_value_len(&self) -> usize {
        self.0.max_value_len()
    }

    fn scan(&self, scope: String, pattern: cache_port::Pattern) -> cache_port::KeyPages {
        scan_through(&*self.0, scope, &pattern)
    }
}

/// One store request as the matching port call. A scope becomes an escaped
/// prefix of the pattern (and is stripped from the keys listed); `clear` of
/// a scope is a `delete_pattern` of everything in it.
async fn forward<C: Cache + ?Sized>(cache: &C, request: Request<'_>) -> Result<Reply> {
    Ok(match request {
        Request::Get { key } => Reply::Value(cache.get(&key).await?),
        Request::Set { key, value, ttl } => {
            cache.set(&key, value, ttl.map(|t| t.as_duration())).await?;
            Reply::Done
        }
        Request::Delete { key } => Reply::Flag(cache.delete(&key).await?),
        Request::Exists { key } => Reply::Flag(cache.exists(&key).await?),
        Request::GetAndTouch { key, ttl } => {
            Reply::Value(cache.get_and_touch(&key, ttl.as_duration()).await?)
        }
        Request::Throttle { key, limit, cost } => {
            Reply::Decision(cache.throttle(&key, limit, cost).await?)
        }
        Request::ExistsMany { keys } => Reply::Flags(cache.exists_many(&owned(keys)).await?),
        Request::GetMany { keys } => Reply::Values(cache.get_many(&owned(keys)).await?),
        Request::SetMany { items, ttl } => {
            let items = items
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v))
                .collect();
            cache.set_many(items, ttl.map(|t| t.as_duration())).await?;
            Reply::Done
        }
        Request::DeleteMany { keys } => Reply::Count(cache.delete_many(&owned(keys)).await?),
        Request::DeletePattern { scope, pattern } => {
            Reply::Count(cache.delete_pattern(&scoped(&scope, pattern)?).await?)
        }
        Request::Keys {
            scope,
            pattern,
            limit,
        } => {
            let keys = cache.keys(&scoped(&scope, pattern)?).await?;
            if keys.len() > limit {
                return Err(CacheError::TooManyKeys { limit });
            }
            Reply::Keys(
                keys.into_iter()
                    .filter_map(|k| k.strip_prefix(&*scope).map(str::to_owned))
                    .collect(),
            )
        }
        Request::Ttl { key } => Reply::Ttl(cache.ttl(&key).await?),
        Request::Expire { key, ttl } => Reply::Flag(cache.expire(&key, ttl.as_duration()).await?),
        Request::SetIfAbsent { key, value, ttl } => Reply::Flag(
            cache
                .set_if_absent(&key, value, ttl.map(|t| t.as_duration()))
                .await?,
        ),
        Request::DeleteIfEquals { key, value } => {
            Reply::Flag(cache.delete_if_equals(&key, value).await?)
        }
        Request::Incr {
            key,
            delta,
            ttl_if_created,
        } => Reply::Int(
            cache
                .incr(&key, delta, ttl_if_created.map(|t| t.as_duration()))
                .await?,
        ),
        Request::Clear { scope } if scope.is_empty() => {
            cache.clear().await?;
            Reply::Done
        }
        Request::Clear { scope } => {
            let everything = cache_port::Pattern::new("*")?;
            cache.delete_pattern(&scoped(&scope, &everything)?).await?;
            Reply::Done
        }
        Request::Stats { .. } => Reply::Stats(Box::new(cache.stats().await?)),
        Request::Ping => Reply::Pong(cache.ping().await?),
        Request::Close => {
            cache.close().await?;
            Reply::Done
        }
    })
}

/// `keys_stream` of the port, scoped: the scope escaped into the pattern and
/// stripped from the keys listed.
fn scan_through<C: Cache + ?Sized>(
    cache: &C,
    scope: String,
    pattern: &cache_port::Pattern,
) -> cache_port::KeyPages {
    use futures::StreamExt;
    match scoped(&scope, pattern) {
        Ok(scoped) => Box::pin(cache.keys_stream(&scoped).map(move |page| {
            page.map(|keys| {
                keys.into_iter()
                    .filter_map(|k| k.strip_prefix(&*scope).map(str::to_owned))
                    .collect()
            })
        })),
        Err(error) => Box::pin(futures::stream::once(std::future::ready(Err(error)))),
    }
}

/// The port pattern for `pattern` within `scope`: the scope escaped, then
/// the pattern.
fn scoped(scope: &str, pattern: &cache_port::Pattern) -> Result<String> {
    Ok(format!(
        "{}{}",
        cache_port::escape_glob(scope),
        pattern.as_str()
    ))
}
