//! The tagged view over a cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_port::{Cache, Result};

use crate::as_cache::TagRule;
use crate::envelope::{self, Opened, Version};
use crate::hints::TagHints;
use crate::memo::VersionMemo;
use crate::one_key::AtHand;
use crate::tag::{self, Tag, TagKeys};

/// Tags over any cache: entries written with tags, and every entry of a tag
/// invalidated with one write (see the crate's docs for the rules).
#[derive(Clone)]
pub struct TaggedCache {
    pub(crate) cache: Arc<dyn Cache>,
    pub(crate) keys: TagKeys,
    /// Tags for entries written through the `Cache` port (`tag_with`).
    pub(crate) rule: Option<TagRule>,
    /// Tag versions read under a watch (`Cache::watch_now`), shared by
    /// clones of the view.
    pub(crate) memo: Arc<VersionMemo>,
    /// The tag each key's entry carried when last read from the cache
    /// below (not from memory), shared by clones of the view.
    pub(crate) hints: Arc<TagHints>,
}

impl std::fmt::Debug for TaggedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaggedCache")
            .field("tag_prefix", &self.keys.prefix())
            .field("rule", &self.rule.is_some())
            .finish_non_exhaustive()
    }
}

/// What is stored for `value` with its tags' versions: the value as given
/// when it has none (and does not start like a tagged entry), else sealed.
fn stored_form(versions: &[(Tag, Version)], value: Bytes) -> Bytes {
    if versions.is_empty() && !envelope::needs_wrapping(&value) {
        value
    } else {
        envelope::seal(versions, &value)
    }
}

/// A version no invalidation wrote: fresh and random, so that no entry
/// recorded it (one chance in 2^64 per comparison).
fn fresh_version() -> Version {
    fastrand::u64(..)
}

fn encode_version(version: Version) -> Bytes {
    Bytes::from(format!("{version:016x}"))
}

/// A stored version; `None` for anything else (then no entry matches it).
/// Sixteen hex digits read by hand: on every read of a tagged entry, and
/// `from_utf8` + `from_str_radix` took 285 instructions of a 4,400
/// instruction L1 hit (callgrind).
pub(crate) fn decode_version(stored: &[u8]) -> Option<Version> {
    let digits: &[u8; 16] = stored.try_into().ok()?;
    let mut version: Version = 0;
    for &digit in digits {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => return None,
        };
        version = version << 4 | Version::from(value);
    }
    Some(version)
}

impl TaggedCache {
    /// A tagged view over `cache`, tag versions under
    /// [`TagKeys::DEFAULT_PREFIX`]. Build one and clone it where it is
    /// needed: clones share the tag versions the view keeps (a view holds
    /// 256 slots for them, about 2 KiB).
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        Self {
            cache,
            keys: TagKeys::default(),
            rule: None,
            memo: Arc::default(),
            hints: Arc::default(),
        }
    }

    /// A tagged view over `cache` with tag versions under `keys`.
    pub fn with_tag_keys(cache: Arc<dyn Cache>, keys: TagKeys) -> Self {
        Self {
            cache,
            keys,
            rule: None,
            memo: Arc::default(),
            hints: Arc::default(),
        }
    }

    /// The cache underneath.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// Writes `value` under `key` with `tags` (none: stored as given, and
    /// read back with no extra read). The versions the tags have now are
    /// stored with it: one `get_many` before the write.
    pub async fn set<S: AsRef<str>>(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
        tags: &[S],
    ) -> Result<()> {
        let tags = tag::validate(tags)?;
        let stored = self.sealed(&tags, value).await?;
        self.cache.set(key, stored, ttl).await
    }

    /// Writes every item with `tags`, as one `set_many` after one
    /// `get_many` of the tags' versions.
    pub async fn set_many<S: AsRef<str>>(
        &self,
        items: Vec<(String, Bytes)>,
        ttl: Option<Duration>,
        tags: &[S],
    ) -> Result<()> {
        let tags: Vec<String> = tags.iter().map(|t| t.as_ref().to_owned()).collect();
        let items = items
            .into_iter()
            .map(|(key, value)| (key, value, tags.clone()))
            .collect();
        self.set_many_tagged(items, ttl).await
    }

    /// Writes every item with its own tags: one read of every tag's
    /// version, one `set_many`.
    pub(crate) async fn set_many_tagged(
        &self,
        items: Vec<(String, Bytes, Vec<String>)>,
        ttl: Option<Duration>,
    ) -> Result<()> {
        let mut checked = Vec::with_capacity(items.len());
        let mut every: Vec<Tag> = Vec::new();
        for (key, value, tags) in items {
            let tags = tag::validate(&tags)?;
            for tag in &tags {
                if !every.contains(tag) {
                    every.push(tag.clone());
                }
            }
            checked.push((key, value, tags));
        }
        let versions: HashMap<Tag, Version> = if every.is_empty() {
            HashMap::new()
        } else {
            self.versions_for_write(&every).await?.into_iter().collect()
        };
        let items = checked
            .into_iter()
            .map(|(key, value, tags)| {
                let own: Vec<(Tag, Version)> = tags
                    .into_iter()
                    .map(|tag| {
                        let version = versions[&tag];
                        (tag, version)
                    })
                    .collect();
                (key, stored_form(&own, value))
            })
            .collect();
        self.cache.set_many(items, ttl).await
    }

    /// What is stored for `value` with `tags`: the value as given when it
    /// has none (and does not look like a header), else sealed with the
    /// tags' versions now.
    pub(crate) async fn sealed(&self, tags: &[Tag], value: Bytes) -> Result<Bytes> {
        let versions = if tags.is_empty() {
            Vec::new()
        } else {
            self.versions_for_write(tags).await?
        };
        Ok(stored_form(&versions, value))
    }

    /// The value under `key`, unless a tag of it was invalidated after it
    /// was written (then it is removed, and this is a miss). A tagged entry
    /// costs one more read, of its tags' versions.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        // At once where everything is at hand (moka, an L1 hit with the
        // tag's version kept): no boxed future.
        match self.at_hand(key) {
            AtHand::Answer(answer) => answer,
            AtHand::Entry(raw) => self.resolve_one(key, Some(raw), None, false).await,
            AtHand::Stale(raw) => {
                // Removed unless rewritten meanwhile. A failure here
                // changes no answer.
                let _ = self.cache.delete_if_equals(key, raw).await;
                Ok(None)
            }
            AtHand::Nothing => {
                // A `get` (on Redis, concurrent `get`s share one `MGET`
                // when every connection is busy), with the version of the
                // tag the entry carried last time (`hints.rs`).
                let (stored, early) = self.read_with_hint(key).await?;
                self.resolve_one(key, stored, early, true).await
            }
        }
    }

    /// [`get`](Self::get), and the entry's TTL set to `ttl` from now in the
    /// same step (`Cache::get_and_touch`): a session read that keeps it
    /// alive. An entry found stale is removed, as by `get`.
    pub async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Bytes>> {
        let stored = vec![self.cache.get_and_touch(key, ttl).await?];
        let keys = [key.to_owned()];
        Ok(self.resolve(&keys, stored).await?.pop().flatten())
    }

    /// The values under `keys`, each as [`get`](Self::get) would answer:
    /// one `get_many` of the entries, then one `get_many` of every tag
    /// they name.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>> {
        let stored = self.cache.get_many(keys).await?;
        self.resolve(keys, stored).await
    }

    /// The answers for `keys` from what is stored under them: each entry's
    /// tags checked against their versions now, in one read.
    pub(crate) async fn resolve(
        &self,
        keys: &[String],
        stored: Vec<Option<Bytes>>,
    ) -> Result<Vec<Option<Bytes>>> {
        let mut opened: Vec<Option<(Bytes, Option<Opened>)>> = Vec::with_capacity(stored.len());
        let mut tags: Vec<Tag> = Vec::new();
        for raw in stored {
            opened.push(match raw {
                None => None,
                Some(raw) => {
                    let entry = envelope::open(&raw)?;
                    if let Some(entry) = &entry {
                        for (tag, _) in &entry.tags {
                            if !tags.contains(tag) {
                                tags.push(tag.clone());
                            }
                        }
                    }
                    Some((raw, entry))
                }
            });
        }
        let current = self.current_versions(&tags).await?;
        let mut values = Vec::with_capacity(opened.len());
        for (key, entry) in keys.iter().zip(opened) {
            values.push(match entry {
                None => None,
                Some((raw, None)) => Some(raw),
                Some((raw, Some(entry))) => {
                    let fresh = entry
                        .tags
                        .iter()
                        .all(|(tag, version)| current.get(tag) == Some(&Some(*version)));
                    if fresh {
                        Some(entry.value)
                    } else {
                        // Stale: removed unless rewritten meanwhile. A
                        // failure here changes no answer.
                        let _ = self.cache.delete_if_equals(key, raw).await;
                        None
                    }
                }
            });
        }
        Ok(values)
    }

    /// Deletes `key`.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        self.cache.delete(key).await
    }

    /// Invalidates every entry tagged `tag`, whatever their number: one
    /// write of a new version. When it returns, no entry written before it
    /// is read again.
    pub async fn delete_by_tag(&self, tag: &str) -> Result<()> {
        self.delete_by_tags(&[tag]).await
    }

    /// Invalidates every entry tagged with any of `tags`: one write of new
    /// versions (`set_many`).
    pub async fn delete_by_tags<S: AsRef<str>>(&self, tags: &[S]) -> Result<()> {
        let tags = tag::validate(tags)?;
        let items = tags
            .iter()
            .map(|tag| (self.keys.key(tag), encode_version(fresh_version())))
            .collect();
        self.cache.set_many(items, None).await
    }

    /// The version `tag` has now, if it has one (none: no entry of it is
    /// live).
    pub async fn tag_version(&self, tag: &str) -> Result<Option<Version>> {
        let tag = Tag::new(tag)?;
        let stored = self.cache.get(&self.keys.key(&tag)).await?;
        Ok(stored.as_deref().and_then(decode_version))
    }

    /// Each of `tags` with its version now (`None`: it has none).
    async fn current_versions(&self, tags: &[Tag]) -> Result<HashMap<Tag, Option<Version>>> {
        if tags.is_empty() {
            return Ok(HashMap::new());
        }
        let keys: Vec<String> = tags.iter().map(|t| self.keys.key(t)).collect();
        // One tag (the usual case) is a `get`: on Redis, concurrent `get`s
        // share one `MGET` when every connection is busy.
        let stored = match keys.as_slice() {
            [one] => vec![self.cache.get(one).await?],
            _ => self.cache.get_many(&keys).await?,
        };
        Ok(tags
            .iter()
            .cloned()
            .zip(
                stored
                    .into_iter()
                    .map(|v| v.as_deref().and_then(decode_version)),
            )
            .collect())
    }

    /// The versions to store with an entry: each tag's current one, created
    /// where a tag has none yet (`set_if_absent`, so that two writers agree
    /// on it). A version that cannot be settled is a fresh random one: the
    /// entry then reads as stale (a miss), never a stale value as fresh.
    pub(crate) async fn versions_for_write(&self, tags: &[Tag]) -> Result<Vec<(Tag, Version)>> {
        let current = self.current_versions(tags).await?;
        let mut versions = Vec::with_capacity(tags.len());
        for tag in tags {
            let version = match current.get(tag).copied().flatten() {
                Some(version) => version,
                None => self.create_version(tag).await?,
            };
            versions.push((tag.clone(), version));
        }
        Ok(versions)
    }

    async fn create_version(&self, tag: &Tag) -> Result<Version> {
        let key = self.keys.key(tag);
        let mine = fresh_version();
        if self
            .cache
            .set_if_absent(&key, encode_version(mine), None)
            .await?
        {
            return Ok(mine);
        }
        // Another writer (or an invalidation) was first: use its version.
        let theirs = self.cache.get(&key).await?;
        Ok(theirs
            .as_deref()
            .and_then(decode_version)
            .unwrap_or_else(fresh_version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_and_nothing_else_decodes() {
        for version in [0, 1, 0xDEAD_BEEF, u64::MAX, fastrand::u64(..)] {
            assert_eq!(decode_version(&encode_version(version)), Some(version));
        }
        assert_eq!(decode_version(b"00000000000000FF"), Some(255));
        for bad in [
            &b""[..],
            b"0",
            b"000000000000000",
            b"00000000000000000",
            b"000000000000000g",
            b"+00000000000000f",
            b"\xff00000000000000",
        ] {
            assert_eq!(decode_version(bad), None, "{bad:?}");
        }
    }
}
