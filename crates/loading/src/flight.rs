//! The flight: of concurrent callers that miss a key, one loads and the
//! others wait for its answer; the flight leaves the map when it lands, or
//! when its last caller gives up.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cache_port::typed::envelope::{self, Opened};
use cache_port::typed::Codec;
use futures::future::{BoxFuture, FutureExt, Shared};
use tracing::Instrument;

use crate::answer::{Failure, Outcome};
use crate::fail_safe::far_future;
use crate::loader::Inner;
use crate::lock::{self, Taken};
use crate::observe;
use crate::options::LoadOptions;
use crate::Loader;

/// A flight in the air, shared by every caller waiting for it.
pub(crate) type Flight<E> = Shared<BoxFuture<'static, Outcome<E>>>;

impl<E: Send + Sync + 'static> Loader<E> {
    /// The flight for `key`: the one in the air, or a new one. A new flight
    /// with a soft timeout is detached (spawned), so that it lands and
    /// updates the cache after its callers were answered from stale.
    pub(crate) fn flight<T, C, F, Fut>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &C,
        load: F,
        found: fn(&T) -> bool,
    ) -> (Flight<E>, Option<F>)
    where
        T: Send + 'static,
        C: Codec<T> + Clone,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(flight) = flights.get(key) {
            return (flight.clone(), Some(load));
        }
        // (A flight nobody waits for any more was grounded by its last
        // caller's `Grounder`, so this key has none.)
        let (inner, owned_key, codec) = (Arc::clone(&self.inner), key.to_owned(), codec.clone());
        let flight = landing(&self.inner, key, async move {
            fly(inner, owned_key, options, codec, load, found).await
        });
        flights.insert(key.to_owned(), flight.clone());
        if options.soft_timeout.is_some() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let detached = flight.clone();
                runtime.spawn(async move {
                    let _ = detached.await;
                });
            }
        }
        (flight, None)
    }
}

/// `stored`, opened and decoded with `codec`; `None` if either fails (a miss).
pub(crate) fn open_as<T>(codec: &impl Codec<T>, stored: &Bytes) -> Option<(Opened, T)> {
    let opened = envelope::open(stored)?;
    let value = codec.decode(&opened.payload).ok()?;
    Some((opened, value))
}

/// The flight of `key` that answers with `outcome` and then leaves the map:
/// the next miss starts a new flight (after this one's write-back, so it
/// finds the value in the cache).
pub(crate) fn landing<E: Send + Sync + 'static>(
    inner: &Arc<Inner<E>>,
    key: &str,
    outcome: impl Future<Output = Outcome<E>> + Send + 'static,
) -> Flight<E> {
    let (inner, key) = (Arc::clone(inner), key.to_owned());
    // The flight's spans (its cache calls, the load) belong to the caller
    // that started it, whichever caller ends up polling it.
    let outcome = outcome.in_current_span();
    async move {
        let outcome = outcome.await;
        inner
            .flights
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        outcome
    }
    .boxed()
    .shared()
}

/// Removes the flight of `key` when nobody waits for it any more (only the
/// map still holds it), dropping, and so cancelling, its load.
pub(crate) struct Grounder<'a, E> {
    pub(crate) inner: &'a Inner<E>,
    pub(crate) key: &'a str,
}

impl<E> Drop for Grounder<'_, E> {
    fn drop(&mut self) {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        let abandoned = flights
            .get(self.key)
            .is_some_and(|flight| flight.strong_count() == Some(1));
        let grounded = if abandoned {
            flights.remove(self.key)
        } else {
            None
        };
        // The load is dropped (cancelled) outside the lock.
        drop(flights);
        drop(grounded);
    }
}

/// One flight: look again (an earlier flight may just have landed), take the
/// stampede lock if asked, load (within the hard timeout), store, answer
/// with the encoded value.
pub(crate) async fn fly<T, C, E, F, Fut>(
    inner: Arc<Inner<E>>,
    key: String,
    options: LoadOptions,
    codec: C,
    load: F,
    found: fn(&T) -> bool,
) -> Outcome<E>
where
    C: Codec<T>,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let cache_failed = |e| Failure::Cache(Arc::new(e));
    let cache = &inner.cache;
    // A stored value ends the flight if it is fresh and not due for an
    // eager refresh (a refresh flight must not settle for what it refreshes).
    let usable = |stored: &Bytes| -> Option<Bytes> {
        let (opened, _) = open_as(&codec, stored)?;
        let now = SystemTime::now();
        let due = options
            .eager_refresh
            .is_some_and(|f| opened.refresh_due(now, f));
        (opened.is_fresh(now) && !due).then_some(opened.payload)
    };
    if let Some(stored) = cache.get(&key).await.map_err(cache_failed)? {
        if let Some(payload) = usable(&stored) {
            return Ok(Some(payload));
        }
    }
    let guard = match options.stampede_lock {
        None => None,
        Some(lock) => match lock::take(cache, &key, lock, |s| usable(s).is_some())
            .await
            .map_err(cache_failed)?
        {
            Taken::Found(stored) => return Ok(usable(&stored)),
            Taken::GaveUp => None,
            Taken::Owner(guard) => {
                // The previous owner may have stored the value between our
                // look and our lock.
                if let Some(payload) = cache
                    .get(&key)
                    .await
                    .map_err(cache_failed)?
                    .and_then(|s| usable(&s))
                {
                    guard.release().await;
                    return Ok(Some(payload));
                }
                Some(guard)
            }
        },
    };
    let value = observe::call_loader(options.hard_timeout, load).await?;
    let bytes = codec.encode(&value).map_err(cache_failed)?;
    store(&inner, &key, &bytes, options, found(&value)).await;
    if let Some(guard) = guard {
        guard.release().await;
    }
    Ok(Some(bytes))
}

/// Writes a loaded value back (sealed when the options read the envelope)
/// and remembers it for fail-safe. A failed write is logged, not returned:
/// the caller still gets the value.
async fn store<E>(inner: &Inner<E>, key: &str, bytes: &Bytes, options: LoadOptions, found: bool) {
    let now = SystemTime::now();
    let (fresh_for, kept_for) = if found {
        let fresh_for = options.jittered_ttl();
        (fresh_for, options.kept_for(fresh_for))
    } else {
        match options.negative_ttl {
            // "Not found": remembered only for the negative TTL, if any.
            Some(ttl) => (Some(ttl), Some(ttl)),
            None => return,
        }
    };
    let stored = if options.sealed() {
        envelope::seal(bytes, now, fresh_for)
    } else {
        bytes.clone()
    };
    if let Err(error) = inner.cache.set(key, stored, kept_for).await {
        cache_port::typed::write_back_failed(&error);
    }
    if let Some(fail_safe) = options.fail_safe {
        let until = fresh_for.map_or(far_future(), |f| now + f + fail_safe.max_stale);
        inner.memory.remember(key, bytes, until);
        inner.memory.wake(key);
    }
}
