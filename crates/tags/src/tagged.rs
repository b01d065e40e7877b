//! The tagged view over a cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use cache_port::{Cache, Result};

use crate::as_cache::TagRule;
use crate::envelope::{self, Opened, Peeked, Version};
use crate::hints::TagHints;
use crate::memo::VersionMemo;
use crate::tag::{self, Tag, TagKeys};

/// Tags over any cache: entries written with tags, and every entry of a tag
/// invalidated with one write (see the crate's docs for the rules).
#[derive(Clone)]
pub struct TaggedCache {
    cache: Arc<dyn Cache>,
    keys: TagKeys,
    /// Tags for entries written through the `Cache` port (`tag_with`).
    pub(crate) rule: Option<TagRule>,
    /// Tag versions read under a watch (`Cache::watch_now`), shared by
    /// clones of the view.
    memo: Arc<VersionMemo>,
    /// The tag each key's entry carried when last read from the cache
    /// below (not from memory), shared by clones of the view.
    hints: Arc<TagHints>,
}

/// What [`TaggedCache::at_hand`] finds.
enum AtHand {
    /// `get`'s answer.
    Answer(Result<Option<Bytes>>),
    /// The entry, which needs what is not at hand (its tag's version, its
    /// tags' versions).
    Entry(Bytes),
    /// The entry, stale (its one tag's version moved on): to remove.
    Stale(Bytes),
    /// Not even the entry.
    Nothing,
}

/// A tag's version read at the same time as an entry, on a hint.
struct Early {
    /// The key it was read from: the hinted tag's under the view's prefix.
    version_key: String,
    /// `None`: missing, not a version, or its read failed.
    version: Option<Version>,
}

impl Early {
    /// Whether it is the version of `tag` (a name as stored in an entry)
    /// under `keys`.
    fn is_of(&self, keys: &TagKeys, tag: &[u8]) -> bool {
        let key = self.version_key.as_bytes();
        key.len() == keys.prefix().len() + tag.len() && key.ends_with(tag)
    }
}

impl std::fmt::Debug for TaggedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaggedCache")
            .field("tag_prefix", &self.keys.prefix())
            .field("rule", &self.rule.is_some())
            .finish_non_exhaustive()
    }
}

/// A tag's version as [`TaggedCache::version_now`] finds it.
enum VersionNow {
    /// The version now (`None`: missing or not a version).
    AtHand(Result<Option<Version>>),
    /// Not at hand: read this key (the tag's version key) with `get`.
    Read(String),
    /// The stored name is not one (not UTF-8): open the entry, which says
    /// what is wrong.
    NotATag,
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
fn decode_version(stored: &[u8]) -> Option<Version> {
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

    /// `get`'s answer from the entry `stored` under `key` (read `below`
    /// the memory of the cache, or at hand in it) and the `early` version
    /// read with it; a stale entry is removed here.
    async fn resolve_one(
        &self,
        key: &str,
        stored: Option<Bytes>,
        early: Option<Early>,
        below: bool,
    ) -> Result<Option<Bytes>> {
        let Some(raw) = stored else {
            return Ok(None);
        };
        // The usual entries (untagged, one tag) with no collection built;
        // the rest as `get_many` answers them.
        let value_at = match envelope::peek(&raw) {
            Peeked::Plain => {
                self.forget_hint(key, &early);
                return Ok(Some(raw));
            }
            Peeked::Untagged(value_at) => {
                self.forget_hint(key, &early);
                value_at
            }
            Peeked::OneTag {
                tag,
                version,
                value_at,
            } => {
                // The version read with the entry counts when the entry
                // recorded it for this very tag: it was read after this
                // call began, so an invalidation that returned before then
                // had already replaced any version an entry written before
                // it recorded (a fresh random one), and the entry would
                // not match. Exactly what the read after the entry proves.
                let fresh = early
                    .as_ref()
                    .is_some_and(|e| e.is_of(&self.keys, tag) && e.version == Some(version));
                if !fresh {
                    let current = match self.version_now(tag) {
                        VersionNow::AtHand(answer) => answer?,
                        VersionNow::Read(version_key) => {
                            // The version had to be read after the entry:
                            // next time, read it with the entry. (Only
                            // then: where it is at hand, as on a tiered
                            // cache, a hint would only make a read of two
                            // keys out of a read of one.)
                            let hinted = early.as_ref().is_some_and(|e| e.is_of(&self.keys, tag));
                            if below && !hinted {
                                if let Some(name) = envelope::tag_name(tag) {
                                    self.hints.remember(key, name);
                                }
                            }
                            self.cache
                                .get(&version_key)
                                .await?
                                .as_deref()
                                .and_then(decode_version)
                        }
                        VersionNow::NotATag => return self.get_opened(key, raw).await,
                    };
                    if current != Some(version) {
                        // Stale: removed unless rewritten meanwhile. A
                        // failure here changes no answer.
                        let _ = self.cache.delete_if_equals(key, raw).await;
                        return Ok(None);
                    }
                }
                value_at
            }
            Peeked::Other => {
                self.forget_hint(key, &early);
                return self.get_opened(key, raw).await;
            }
        };
        let mut value = raw;
        value.advance(value_at);
        Ok(Some(value))
    }

    /// The entry under `key`, and with it, where the view remembers the
    /// tag it carried, that tag's version: both reads in flight at once.
    async fn read_with_hint(&self, key: &str) -> Result<(Option<Bytes>, Option<Early>)> {
        // No hint, or its tag's version at hand (kept under a watch): the
        // entry alone.
        let hinted = self.hints.with_tag_of(key, |tag| {
            (self.memo.get(tag.as_bytes()).is_none()).then(|| self.keys.key_of(tag))
        });
        let Some(version_key) = hinted.flatten() else {
            return Ok((self.cache.get(key).await?, None));
        };
        // One `get_many` of both: one `MGET` on Redis (coalesced with
        // other small ones), one round trip. Not necessarily one snapshot
        // (a cluster reads them from their own nodes): `get` checks.
        let keys = [key.to_owned(), version_key];
        let mut read = self.cache.get_many(&keys).await?.into_iter();
        let (stored, version) = (read.next().flatten(), read.next().flatten());
        let [_, version_key] = keys;
        Ok((
            stored,
            Some(Early {
                version_key,
                version: version.as_deref().and_then(decode_version),
            }),
        ))
    }

    /// A hinted key whose entry no longer carries one tag: no more hint
    /// (each read would read a version for nothing).
    fn forget_hint(&self, key: &str, early: &Option<Early>) {
        if early.is_some() {
            self.hints.forget(key);
        }
    }

    /// `get`'s answer for an entry `peek` leaves to `open`.
    async fn get_opened(&self, key: &str, raw: Bytes) -> Result<Option<Bytes>> {
        let keys = [key.to_owned()];
        Ok(self.resolve(&keys, vec![Some(raw)]).await?.pop().flatten())
    }

    /// [`get`](Self::get)'s answer when everything it needs is at hand in
    /// the cache underneath (`Cache::get_now`: moka, L1 hits) and the entry
    /// is fresh; `None` otherwise (a stale entry is removed by `get`).
    pub(crate) fn get_now(&self, key: &str) -> Option<Result<Option<Bytes>>> {
        match self.at_hand(key) {
            AtHand::Answer(answer) => Some(answer),
            AtHand::Entry(_) | AtHand::Stale(_) | AtHand::Nothing => None,
        }
    }

    /// What the cache underneath has at hand for `key`: `get`'s answer
    /// where everything it needs is (and the entry is fresh), else the
    /// entry if that is.
    #[inline]
    fn at_hand(&self, key: &str) -> AtHand {
        let raw = match self.cache.get_now(key) {
            None => return AtHand::Nothing,
            Some(Ok(Some(raw))) => raw,
            Some(other) => return AtHand::Answer(other),
        };
        let value_at = match envelope::peek(&raw) {
            Peeked::Plain => 0,
            Peeked::Untagged(value_at) => value_at,
            Peeked::OneTag {
                tag,
                version,
                value_at,
            } => {
                let current = match self.version_now(tag) {
                    VersionNow::AtHand(Ok(current)) => current,
                    VersionNow::AtHand(Err(error)) => return AtHand::Answer(Err(error)),
                    VersionNow::Read(_) | VersionNow::NotATag => return AtHand::Entry(raw),
                };
                if current != Some(version) {
                    return AtHand::Stale(raw);
                }
                value_at
            }
            Peeked::Other => return AtHand::Entry(raw),
        };
        let mut value = raw;
        value.advance(value_at);
        AtHand::Answer(Ok(Some(value)))
    }

    /// `tag`'s version where it is at hand: kept in the memo under a watch
    /// that still holds; read under a new watch (then kept); or from
    /// `get_now`. Otherwise the version's key, to read with `get`. A
    /// stored version that does not decode is `AtHand(Ok(None))`: no
    /// entry matches it. `tag` is the name's bytes as stored: checked as
    /// UTF-8 only when the memo does not hold it.
    fn version_now(&self, tag: &[u8]) -> VersionNow {
        if let Some(kept) = self.memo.get(tag) {
            return VersionNow::AtHand(Ok(Some(kept)));
        }
        let Some(tag) = envelope::tag_name(tag) else {
            return VersionNow::NotATag;
        };
        let version_key = self.keys.key_of(tag);
        if let Some((raw, watch)) = self.cache.watch_now(&version_key) {
            let version = decode_version(&raw);
            if let Some(version) = version {
                self.memo.keep(tag, version, watch);
            }
            return VersionNow::AtHand(Ok(version));
        }
        match self.cache.get_now(&version_key) {
            Some(answer) => VersionNow::AtHand(
                answer.map(|current| current.as_deref().and_then(decode_version)),
            ),
            None => VersionNow::Read(version_key),
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
