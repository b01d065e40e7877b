//! A tag, and where its version lives.

use std::fmt;

use cache_port::{CacheError, Result, MAX_KEY_LEN};

/// The longest tag, in bytes of UTF-8: its length is one byte in an
/// entry's header.
pub const MAX_TAG_LEN: usize = 255;

/// The most tags one entry may carry: each costs a version read on every
/// read of the entry (in one `get_many`) and 9 bytes plus its name in the
/// entry.
pub const MAX_TAGS_PER_ENTRY: usize = 64;

/// A validated tag: non-empty UTF-8 of at most [`MAX_TAG_LEN`] bytes.
///
/// ```
/// use cache_tags::Tag;
/// use cache_port::ErrorKind;
///
/// assert_eq!(Tag::new("product:7").unwrap().as_str(), "product:7");
/// assert_eq!(Tag::new("").unwrap_err().kind(), ErrorKind::InvalidKey);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// Validates `tag`; a bad tag is an `InvalidKey` error (a tag names a
    /// key, its version's).
    pub fn new(tag: impl Into<String>) -> Result<Self> {
        let tag = tag.into();
        if tag.is_empty() {
            return Err(CacheError::InvalidKey {
                reason: "the tag is empty".into(),
            });
        }
        if tag.len() > MAX_TAG_LEN {
            return Err(CacheError::InvalidKey {
                reason: format!(
                    "the tag is {} bytes long; the limit is {MAX_TAG_LEN}",
                    tag.len()
                ),
            });
        }
        Ok(Self(tag))
    }

    /// The tag as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where tags' versions live: keys `<prefix><tag>` in the cache the
/// entries are in (so a namespace, a tiered cache's invalidation and a
/// cluster's hash slots cover them as any key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagKeys {
    prefix: String,
}

impl TagKeys {
    /// The default prefix, `__tag:`: keys that start with it are the
    /// tagged view's own.
    pub const DEFAULT_PREFIX: &'static str = "__tag:";

    /// Versions under `prefix`; it must leave room for the longest tag in a
    /// key.
    pub fn new(prefix: &str) -> Result<Self> {
        if prefix.is_empty() || prefix.len() + MAX_TAG_LEN > MAX_KEY_LEN {
            return Err(CacheError::InvalidKey {
                reason: format!(
                    "a tag prefix is 1 to {} bytes long",
                    MAX_KEY_LEN - MAX_TAG_LEN
                ),
            });
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The key holding `tag`'s version.
    pub fn key(&self, tag: &Tag) -> String {
        self.key_of(tag.as_str())
    }

    /// [`key`](Self::key) of a tag read from an entry (valid: the entry's
    /// header was checked).
    pub(crate) fn key_of(&self, tag: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + tag.len());
        key.push_str(&self.prefix);
        key.push_str(tag);
        key
    }

    /// The prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl Default for TagKeys {
    fn default() -> Self {
        Self {
            prefix: Self::DEFAULT_PREFIX.to_owned(),
        }
    }
}

/// `tags` validated, each once, in the order first given; at most
/// [`MAX_TAGS_PER_ENTRY`].
pub(crate) fn validate<S: AsRef<str>>(tags: &[S]) -> Result<Vec<Tag>> {
    let mut valid: Vec<Tag> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = Tag::new(tag.as_ref())?;
        if !valid.contains(&tag) {
            valid.push(tag);
        }
    }
    if valid.len() > MAX_TAGS_PER_ENTRY {
        return Err(CacheError::InvalidKey {
            reason: format!(
                "{} tags on one entry; the limit is {MAX_TAGS_PER_ENTRY}",
                valid.len()
            ),
        });
    }
    Ok(valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_duplicates() {
        assert!(Tag::new("t".repeat(MAX_TAG_LEN)).is_ok());
        assert!(Tag::new("t".repeat(MAX_TAG_LEN + 1)).is_err());
        assert_eq!(validate(&["a", "b", "a"]).unwrap().len(), 2);
        let many: Vec<String> = (0..=MAX_TAGS_PER_ENTRY).map(|i| format!("t{i}")).collect();
        assert!(validate(&many).is_err());
        assert!(validate(&many[1..]).is_ok());
        assert!(TagKeys::new("").is_err());
        assert_eq!(TagKeys::default().key(&Tag::new("x").unwrap()), "__tag:x");
    }
}
