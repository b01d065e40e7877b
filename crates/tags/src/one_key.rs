//! The one-key read path of the tagged view (`TaggedCache::get`): what
//! the cache has at hand (the entry, its tag's version kept under a
//! watch), else the read below, with the hinted tag's version in the same
//! round trip (`hints.rs`), and the check of a one-tag entry against its
//! tag's version.

use bytes::{Buf, Bytes};
use cache_port::Result;

use crate::envelope::{self, Peeked, Version};
use crate::tag::TagKeys;
use crate::tagged::{decode_version, TaggedCache};

/// What [`TaggedCache::at_hand`] finds.
pub(crate) enum AtHand {
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
pub(crate) struct Early {
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

/// A tag's version as [`TaggedCache::version_now`] finds it.
pub(crate) enum VersionNow {
    /// The version now (`None`: missing or not a version).
    AtHand(Result<Option<Version>>),
    /// Not at hand: read this key (the tag's version key) with `get`.
    Read(String),
    /// The stored name is not one (not UTF-8): open the entry, which says
    /// what is wrong.
    NotATag,
}

impl TaggedCache {
    /// `get`'s answer from the entry `stored` under `key` (read `below`
    /// the memory of the cache, or at hand in it) and the `early` version
    /// read with it; a stale entry is removed here.
    pub(crate) async fn resolve_one(
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
    pub(crate) async fn read_with_hint(&self, key: &str) -> Result<(Option<Bytes>, Option<Early>)> {
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
    pub(crate) fn forget_hint(&self, key: &str, early: &Option<Early>) {
        if early.is_some() {
            self.hints.forget(key);
        }
    }

    /// `get`'s answer for an entry `peek` leaves to `open`.
    pub(crate) async fn get_opened(&self, key: &str, raw: Bytes) -> Result<Option<Bytes>> {
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
    pub(crate) fn at_hand(&self, key: &str) -> AtHand {
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
    pub(crate) fn version_now(&self, tag: &[u8]) -> VersionNow {
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
}
