//! Batch loading: one `get_many`, one loader call with only the missing
//! keys, one `set_many`, single-flighted per key with the one-key calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use cache_port::typed::{envelope, Codec, MsgPack};
use cache_port::Cache;
use futures::future::FutureExt;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::answer::{Failure, LoadError};
use crate::flight::{landing, open_as, Flight, Grounder};
use crate::observe;
use crate::options::LoadOptions;
use crate::Loader;

impl<E: Send + Sync + 'static> Loader<E> {
    /// Batch cache-aside: the values of `keys` (in order, duplicates kept,
    /// `None` where the loader has none), read with one `get_many`; the
    /// loader is called once, with exactly the keys that missed and are not
    /// already being loaded by another caller, and what it returns is stored
    /// with one `set_many` (one TTL draw for the batch: keys loaded in one
    /// batch share their jitter). Keys another caller is loading are waited
    /// for, as with [`get_or_load`](Self::get_or_load); callers of those keys
    /// wait for this batch likewise. A value past its expiry counts as
    /// missing: a batch does not serve stale values, time out, refresh
    /// eagerly, take the stampede lock or cache "not found".
    pub async fn get_or_load_many<T, F, Fut>(
        &self,
        keys: &[String],
        options: LoadOptions,
        load: F,
    ) -> Result<Vec<Option<T>>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        self.get_or_load_many_as(keys, options, &MsgPack, load)
            .await
    }

    /// [`get_or_load_many`](Self::get_or_load_many) with a codec of the
    /// caller's choosing (see [`get_or_load_as`](Self::get_or_load_as)).
    pub async fn get_or_load_many_as<T, C, F, Fut>(
        &self,
        keys: &[String],
        options: LoadOptions,
        codec: &C,
        load: F,
    ) -> Result<Vec<Option<T>>, LoadError<E>>
    where
        T: Send + 'static,
        C: Codec<T> + Clone,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        let cache_error = |e| LoadError::Cache(Arc::new(e));
        options.check().map_err(cache_error)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let cached = self.inner.cache.get_many(keys).await.map_err(cache_error)?;
        let now = SystemTime::now();
        let mut values: Vec<Option<T>> = cached
            .iter()
            .map(|stored| {
                let (opened, value) = open_as(codec, stored.as_ref()?)?;
                opened.is_fresh(now).then_some(value)
            })
            .collect();
        let mut missing: Vec<&str> = keys
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.as_str())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return Ok(values);
        }
        let _last_ones_out: Vec<Grounder<'_, E>> = missing
            .iter()
            .map(|key| Grounder {
                inner: &self.inner,
                key,
            })
            .collect();
        let flights = self.batch_flights(&missing, options, codec, load);
        let landed = futures::future::join_all(
            flights
                .into_iter()
                .map(|(key, flight)| async move { (key, flight.await) }),
        )
        .await;
        let mut found: HashMap<&str, Bytes> = HashMap::new();
        for (key, outcome) in landed {
            match outcome {
                Ok(Some(bytes)) => {
                    found.insert(key, bytes);
                }
                Ok(None) => {}
                Err(failure) => return Err(failure.into_error()),
            }
        }
        for (key, value) in keys.iter().zip(values.iter_mut()) {
            if value.is_none() {
                if let Some(bytes) = found.get(key.as_str()) {
                    *value = Some(codec.decode(bytes).map_err(cache_error)?);
                }
            }
        }
        Ok(values)
    }

    /// The flights of `keys`: those in the air joined, one new batch flight
    /// for the rest, registered under each of its keys.
    fn batch_flights<'k, T, C, F, Fut>(
        &self,
        keys: &[&'k str],
        options: LoadOptions,
        codec: &C,
        load: F,
    ) -> Vec<(&'k str, Flight<E>)>
    where
        T: Send + 'static,
        C: Codec<T> + Clone,
        F: FnOnce(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<HashMap<String, T>, E>> + Send + 'static,
    {
        let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
        let mut joined = Vec::with_capacity(keys.len());
        let mut fresh: Vec<&'k str> = Vec::new();
        for key in keys {
            match flights.get(*key) {
                Some(flight) => joined.push((*key, flight.clone())),
                None => fresh.push(key),
            }
        }
        if fresh.is_empty() {
            return joined;
        }
        let cache = Arc::clone(&self.inner.cache);
        let owned: Vec<String> = fresh.iter().map(|k| (*k).to_owned()).collect();
        let codec = codec.clone();
        let batch = async move { fly_batch(&*cache, owned, options, &codec, load).await }
            .boxed()
            .shared();
        for key in fresh {
            let (batch, owned_key) = (batch.clone(), key.to_owned());
            let flight = landing(&self.inner, key, async move {
                batch.await.map(|found| found.get(&owned_key).cloned())
            });
            flights.insert(key.to_owned(), flight.clone());
            joined.push((key, flight));
        }
        joined
    }
}

/// One batch flight: load the keys, store what came back in one
/// `set_many`, answer with each key's encoded value.
async fn fly_batch<T, E, F, Fut>(
    cache: &dyn Cache,
    keys: Vec<String>,
    options: LoadOptions,
    codec: &impl Codec<T>,
    load: F,
) -> Result<HashMap<String, Bytes>, Failure<E>>
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = Result<HashMap<String, T>, E>>,
{
    let loaded = observe::call_loader(None, || load(keys)).await?;
    let mut found = HashMap::with_capacity(loaded.len());
    for (key, value) in loaded {
        let bytes = codec
            .encode(&value)
            .map_err(|e| Failure::Cache(Arc::new(e)))?;
        found.insert(key, bytes);
    }
    if !found.is_empty() {
        let (now, fresh_for) = (SystemTime::now(), options.jittered_ttl());
        let items = found
            .iter()
            .map(|(k, v)| {
                let stored = if options.sealed() {
                    envelope::seal(v, now, fresh_for)
                } else {
                    v.clone()
                };
                (k.clone(), stored)
            })
            .collect();
        if let Err(error) = cache.set_many(items, options.kept_for(fresh_for)).await {
            cache_port::typed::write_back_failed(&error);
        }
    }
    Ok(found)
}
