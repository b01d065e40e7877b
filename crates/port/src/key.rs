//! The validated cache key.

use std::fmt;

use crate::error::{CacheError, Result};

/// The longest key the port accepts, in bytes of UTF-8.
///
/// One constant for every adapter, so that every adapter refuses exactly the
/// same keys. Redis itself would take keys of up to 512 MB; a cache key longer
/// than 4 KiB is almost always a bug (a value used as a key).
pub const MAX_KEY_LEN: usize = 4096;

/// A key that passed the port's one validation rule: non-empty UTF-8 of at
/// most [`MAX_KEY_LEN`] bytes.
///
/// Adapters call [`Key::new`] on every key they are given before they touch
/// their store, so a bad key is an [`InvalidKey`](CacheError::InvalidKey)
/// error that changes nothing.
///
/// ```
/// use cache_port::{ErrorKind, Key};
///
/// assert_eq!(Key::new("user:42").unwrap().as_str(), "user:42");
/// assert_eq!(Key::new("").unwrap_err().kind(), ErrorKind::InvalidKey);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key<'a>(&'a str);

impl<'a> Key<'a> {
    /// Validates `key`.
    pub fn new(key: &'a str) -> Result<Self> {
        if key.is_empty() {
            return Err(CacheError::InvalidKey {
                reason: "the key is empty".into(),
            });
        }
        if key.len() > MAX_KEY_LEN {
            return Err(CacheError::InvalidKey {
                reason: format!(
                    "the key is {} bytes long; the limit is {MAX_KEY_LEN}",
                    key.len()
                ),
            });
        }
        Ok(Self(key))
    }

    /// The key as the caller wrote it.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Key<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Validates every key of `keys` before any is used, so that a batch with one
/// bad key changes nothing.
pub fn validate_keys<S: AsRef<str>>(keys: &[S]) -> Result<()> {
    keys.iter().try_for_each(|k| Key::new(k.as_ref()).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(Key::new(&"k".repeat(MAX_KEY_LEN)).is_ok());
        assert!(Key::new(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        // The limit is in bytes, not characters.
        assert!(Key::new(&"é".repeat(MAX_KEY_LEN / 2 + 1)).is_err());
        assert!(validate_keys(&["a", ""]).is_err());
    }
}
