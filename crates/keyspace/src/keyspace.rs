//! [`Keyspace`]: one entity's typed handle over any cache.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use cache_loading::{LoadError, LoadOptions, Loaded, Loader};
use cache_port::typed::{decode_failed, envelope, Codec, MsgPack};
use cache_port::{Cache, CacheError, Result};

use crate::codecs::Named;
use crate::frame::{Framed, Framing};
use crate::key::{KeyPart, KeyRule};

/// The loader error type a keyspace's loader has unless built with another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One entity's typed handle: ids of type `K` to values of type `V`, stored
/// under one [`KeyRule`] with one codec `C` (MessagePack unless chosen).
///
/// A stored value that does not decode (another struct, another codec, a
/// retired schema version, a corrupt frame) is a miss that is counted and
/// logged without its key ([`cache_port::typed::decode_failures`]), never an
/// error to the caller: `get_or_load` loads it again and overwrites it.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::time::Duration;
/// use cache_keyspace::Keyspace;
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Product { name: String, cents: u64 }
///
/// let cache: std::sync::Arc<dyn cache_port::Cache> =
///     std::sync::Arc::new(cache_moka::MokaConfig::default().build().unwrap()); // any adapter
/// let products = Keyspace::<u64, Product>::builder(cache, "shop:product")
///     .ttl(Duration::from_secs(300))
///     .build()
///     .unwrap();
///
/// products.set(&7, &Product { name: "lamp".into(), cents: 1999 }).await.unwrap();
/// assert_eq!(products.get(&7).await.unwrap().unwrap().cents, 1999);
/// assert_eq!(products.key(&7).unwrap(), "shop:product:7");
///
/// let loaded = products
///     .get_or_load(&8, || async { Ok(Product { name: "desk".into(), cents: 9900 }) })
///     .await
///     .unwrap();
/// assert_eq!(loaded.name, "desk");
/// assert_eq!(products.exists_many(&[7, 8, 9]).await.unwrap(), [true, true, false]);
/// # });
/// ```
pub struct Keyspace<K: ?Sized, V, C = MsgPack, E = BoxError> {
    cache: Arc<dyn Cache>,
    loader: Loader<E>,
    rule: KeyRule,
    codec: Framed<C>,
    options: LoadOptions,
    types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V, C: Clone, E> Clone for Keyspace<K, V, C, E> {
    fn clone(&self) -> Self {
        Self {
            cache: Arc::clone(&self.cache),
            loader: self.loader.clone(),
            rule: self.rule.clone(),
            codec: self.codec.clone(),
            options: self.options,
            types: PhantomData,
        }
    }
}

impl<K: ?Sized, V, C: std::fmt::Debug, E> std::fmt::Debug for Keyspace<K, V, C, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyspace")
            .field("name", &self.rule.name())
            .field("codec", self.codec.codec())
            .field("framing", &self.codec.framing())
            .field("ttl", &self.options.ttl)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Keyspace`]; see [`Keyspace::builder`].
#[must_use]
pub struct KeyspaceBuilder<K: ?Sized, V, C = MsgPack, E = BoxError> {
    loader: Loader<E>,
    name: String,
    key_version: Option<u32>,
    codec: C,
    framing: Framing,
    options: LoadOptions,
    types: PhantomData<fn(&K) -> V>,
}

impl<K: ?Sized, V> Keyspace<K, V> {
    /// A builder for the keyspace `name` over `cache` (with a loader of its
    /// own; see [`on_loader`](Self::on_loader) to share one).
    pub fn builder(cache: Arc<dyn Cache>, name: &str) -> KeyspaceBuilder<K, V> {
        Self::on_loader(Loader::new(cache), name)
    }
}

impl<K: ?Sized, V, E: Send + Sync + 'static> Keyspace<K, V, MsgPack, E> {
    /// A builder for the keyspace `name` over `loader`'s cache, loading
    /// through `loader` (its single-flight, fail-safe memory and defaults
    /// shared with every other user of it).
    pub fn on_loader(loader: Loader<E>, name: &str) -> KeyspaceBuilder<K, V, MsgPack, E> {
        let options = loader.defaults();
        KeyspaceBuilder {
            loader,
            name: name.to_owned(),
            key_version: None,
            codec: MsgPack,
            framing: Framing::default(),
            options,
            types: PhantomData,
        }
    }
}

impl<K: ?Sized, V, C, E: Send + Sync + 'static> KeyspaceBuilder<K, V, C, E> {
    /// Stores values with `codec` instead of MessagePack.
    pub fn codec<D>(self, codec: D) -> KeyspaceBuilder<K, V, D, E> {
        KeyspaceBuilder {
            loader: self.loader,
            name: self.name,
            key_version: self.key_version,
            codec,
            framing: self.framing,
            options: self.options,
            types: PhantomData,
        }
    }

    /// The TTL of every value written (default: the loader's default TTL,
    /// none unless set).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.options.ttl = Some(ttl);
        self
    }

    /// The options `get_or_load` uses (fail-safe, timeouts, jitter,
    /// eager refresh); their TTL is the keyspace's TTL.
    pub fn load_options(mut self, options: LoadOptions) -> Self {
        self.options = options;
        self
    }

    /// Writes schema version `version` into every value (a header of 9
    /// bytes); values of older versions stay readable (added fields take
    /// their `#[serde(default)]`) unless [`oldest_readable`](Self::oldest_readable)
    /// retires them.
    pub fn schema(mut self, version: u32) -> Self {
        self.framing.schema = version;
        self
    }

    /// Values of a schema version older than `version` are misses (counted,
    /// then loaded again): a version bump that drops old entries on purpose.
    /// Values written without a version count as version 0.
    pub fn oldest_readable(mut self, version: u32) -> Self {
        self.framing.oldest_readable = version;
        self
    }

    /// Compresses (lz4) every value whose encoded form is longer than
    /// `bytes`, when that saves space. Default: never.
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.framing.compress_above = Some(bytes);
        self
    }

    /// The most bytes a compressed value may claim to expand to (default
    /// [`DEFAULT_MAX_DECODED_LEN`](crate::DEFAULT_MAX_DECODED_LEN)); a value
    /// claiming more is refused before any allocation.
    pub fn max_decoded_len(mut self, bytes: usize) -> Self {
        self.framing.max_decoded_len = bytes;
        self
    }

    /// Keys carry version `version` (`{name}:v{version}:{id}`): a bump
    /// leaves every key of the old version behind at once.
    pub fn key_version(mut self, version: u32) -> Self {
        self.key_version = Some(version);
        self
    }

    /// The keyspace; a name that is not a valid namespace, or options that
    /// are not valid (a TTL out of range) is a typed error.
    pub fn build(self) -> Result<Keyspace<K, V, C, E>> {
        let mut rule = KeyRule::new(&self.name)?;
        if let Some(version) = self.key_version {
            rule = rule.versioned(version);
        }
        if let Some(ttl) = self.options.ttl {
            cache_port::Ttl::new(ttl)?;
        }
        if self.framing.oldest_readable > self.framing.schema {
            return Err(CacheError::Config {
                message: format!(
                    "keyspace {}: oldest readable schema {} is newer than the schema written, {}",
                    self.name, self.framing.oldest_readable, self.framing.schema
                ),
            });
        }
        Ok(Keyspace {
            cache: Arc::clone(self.loader.cache()),
            loader: self.loader,
            rule,
            codec: Framed::new(self.codec, self.framing),
            options: self.options,
            types: PhantomData,
        })
    }
}

impl<K, V, C, E> Keyspace<K, V, C, E>
where
    K: KeyPart + ?Sized,
    V: Send + 'static,
    C: Codec<V> + Named + Clone,
    E: Send + Sync + 'static,
{
    /// The key of `id` (an `InvalidKey` error if it is too long).
    pub fn key(&self, id: &K) -> Result<String> {
        self.rule.key(id)
    }

    /// The key rule (name, key version, pattern, query keys).
    pub fn rule(&self) -> &KeyRule {
        &self.rule
    }

    /// The cache underneath.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The codec with its framing, as stored: for a loader call of one's
    /// own (`Loader::get_or_load_as`).
    pub fn codec(&self) -> &Framed<C> {
        &self.codec
    }

    /// `stored` decoded; a value that does not decode is counted, logged
    /// without its key, and read as a miss.
    fn open(&self, key: &str, stored: &[u8]) -> Option<V> {
        // A loader stores its values in an envelope; look through it.
        match self.codec.decode(envelope::payload(stored)) {
            Ok(value) => Some(value),
            Err(error) => {
                decode_failed(key, &error);
                None
            }
        }
    }

    /// The value of `id`, or `None` when missing, expired or undecodable.
    pub async fn get(&self, id: &K) -> Result<Option<V>> {
        let key = self.key(id)?;
        Ok(match self.cache.get(&key).await? {
            Some(stored) => self.open(&key, &stored),
            None => None,
        })
    }

    /// Stores `value` under `id` with the keyspace's TTL.
    pub async fn set(&self, id: &K, value: &V) -> Result<()> {
        self.set_with_ttl(id, value, self.options.ttl).await
    }

    /// Stores `value` under `id` with `ttl` (`None`: no expiry).
    pub async fn set_with_ttl(&self, id: &K, value: &V, ttl: Option<Duration>) -> Result<()> {
        let key = self.key(id)?;
        let stored = self.codec.encode(value)?;
        self.cache.set(&key, stored, ttl).await
    }

    /// Removes `id`; says whether it existed.
    pub async fn delete(&self, id: &K) -> Result<bool> {
        self.cache.delete(&self.key(id)?).await
    }

    /// Whether `id` exists (without moving its value).
    pub async fn exists(&self, id: &K) -> Result<bool> {
        self.cache.exists(&self.key(id)?).await
    }

    /// The keys of `ids`, every one checked before any is used.
    fn keys<I: std::borrow::Borrow<K>>(&self, ids: &[I]) -> Result<Vec<String>> {
        ids.iter().map(|id| self.key(id.borrow())).collect()
    }

    /// The values of `ids`, in order, with one `get_many`.
    pub async fn get_many<I: std::borrow::Borrow<K>>(&self, ids: &[I]) -> Result<Vec<Option<V>>> {
        let keys = self.keys(ids)?;
        let stored = self.cache.get_many(&keys).await?;
        Ok(keys
            .iter()
            .zip(stored)
            .map(|(key, stored)| self.open(key, stored.as_deref()?))
            .collect())
    }

    /// Whether each of `ids` exists, in order, in one round trip and
    /// without moving any value (the port's `exists_many`).
    pub async fn exists_many<I: std::borrow::Borrow<K>>(&self, ids: &[I]) -> Result<Vec<bool>> {
        let keys = self.keys(ids)?;
        self.cache.exists_many(&keys).await
    }

    /// Stores every item with the keyspace's TTL, with one `set_many`; a bad
    /// id or a value that does not encode changes nothing.
    pub async fn set_many<'a, I>(&self, items: impl IntoIterator<Item = (I, &'a V)>) -> Result<()>
    where
        I: std::borrow::Borrow<K>,
        V: 'a,
    {
        let items = items
            .into_iter()
            .map(|(id, value)| Ok((self.key(id.borrow())?, self.codec.encode(value)?)))
            .collect::<Result<Vec<_>>>()?;
        self.cache.set_many(items, self.options.ttl).await
    }

    /// Removes every key of this keyspace (a `delete_pattern` of
    /// [`KeyRule::pattern`]: a walk of the store, O(keys in it); tags are the
    /// O(1) way to drop a group). Says how many.
    pub async fn delete_all(&self) -> Result<u64> {
        self.cache.delete_pattern(&self.rule.pattern()).await
    }

    /// The cached value of `id`, or else `load()`'s, stored with the
    /// keyspace's codec and TTL, through the loader: single-flight,
    /// fail-safe, timeouts and jitter as its options say.
    pub async fn get_or_load<F, Fut>(&self, id: &K, load: F) -> Result<V, LoadError<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        Ok(self.get_or_load_entry(id, self.options, load).await?.value)
    }

    /// [`get_or_load`](Self::get_or_load) with `options` for this call,
    /// saying where the value came from.
    pub async fn get_or_load_entry<F, Fut>(
        &self,
        id: &K,
        options: LoadOptions,
        load: F,
    ) -> Result<Loaded<V>, LoadError<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<V, E>> + Send + 'static,
    {
        let key = self.key(id).map_err(|e| LoadError::Cache(Arc::new(e)))?;
        self.loader
            .get_or_load_as(&key, options, &self.codec, load)
            .await
    }
}

impl<K, V, C, E> Keyspace<K, Option<V>, C, E>
where
    K: KeyPart + ?Sized,
    V: Send + 'static,
    C: Codec<Option<V>> + Named + Clone,
    E: Send + Sync + 'static,
{
    /// Cache-aside for a loader that can answer "not found" (`None`), in a
    /// keyspace of `Option<V>`: a found value is stored with the keyspace's
    /// TTL, "not found" for the options' `negative_ttl` if any (and not at
    /// all otherwise), so that an id that does not exist stops reaching the
    /// database.
    pub async fn get_or_load_optional<F, Fut>(
        &self,
        id: &K,
        load: F,
    ) -> Result<Option<V>, LoadError<E>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<V>, E>> + Send + 'static,
    {
        let key = self.key(id).map_err(|e| LoadError::Cache(Arc::new(e)))?;
        self.loader
            .get_or_load_optional_as(&key, self.options, &self.codec, load)
            .await
    }
}
