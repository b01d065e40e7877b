//! The validated namespace: a path of key segments that owns every key under it.

use std::fmt;
use std::sync::Arc;

use crate::error::{CacheError, Result};
use crate::key::MAX_KEY_LEN;

/// A namespace: one or more non-empty segments joined by `:` (`shop`,
/// `shop:eu`).
///
/// Keys are stored as `namespace:key`, readable as such by `redis-cli`.
/// Namespaces are hierarchical, as folders are: `shop` owns every key under
/// `shop:`, its child `shop:eu`'s keys included, so clearing `shop` clears
/// `shop:eu`. A namespace never reaches its parent, its siblings or
/// look-alikes (`shops`, `shop*`, `{shop}`): every key it touches starts with
/// `shop:`.
///
/// An empty segment (`shop:`, `:eu`, `a::b`) is refused with a `Config`
/// error: `shop:` would silently share keys with `shop`'s child of the empty
/// name, and `a::b` is almost always a formatting bug.
///
/// ```
/// use cache_port::{ErrorKind, Namespace};
///
/// let eu = Namespace::new("shop").unwrap().child("eu").unwrap();
/// assert_eq!(eu.as_str(), "shop:eu");
/// assert_eq!(Namespace::new("shop:").unwrap_err().kind(), ErrorKind::Config);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Namespace {
    /// The namespace followed by `:`, shared by every view built from it.
    prefix: Arc<str>,
}

/// The longest namespace accepted, in bytes: a key of [`MAX_KEY_LEN`] under
/// it stays a reasonable Redis key.
pub const MAX_NAMESPACE_LEN: usize = MAX_KEY_LEN;

impl Namespace {
    /// Validates `namespace`.
    pub fn new(namespace: &str) -> Result<Self> {
        if namespace.len() > MAX_NAMESPACE_LEN {
            return Err(config(format!(
                "the namespace is {} bytes long; the limit is {MAX_NAMESPACE_LEN}",
                namespace.len()
            )));
        }
        if namespace.is_empty() {
            return Err(config(
                "the namespace is empty; leave it out for no namespace".into(),
            ));
        }
        if namespace.split(':').any(str::is_empty) {
            // The namespace itself is not repeated: from a URL, it may be
            // a secret pasted into the wrong parameter.
            return Err(config(
                "the namespace has an empty segment: a namespace is one or more non-empty \
                 segments joined by ':' (such as shop or shop:eu)"
                    .into(),
            ));
        }
        Ok(Self {
            prefix: Arc::from(format!("{namespace}:")),
        })
    }

    /// The child namespace `self:child` (`child` may itself hold segments).
    pub fn child(&self, child: &str) -> Result<Self> {
        Self::new(&format!("{}{child}", self.prefix))
    }

    /// The namespace as written, without the trailing `:`.
    pub fn as_str(&self) -> &str {
        &self.prefix[..self.prefix.len() - 1]
    }

    /// The namespace followed by `:`: what every key in it starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn config(message: String) -> CacheError {
    CacheError::Config { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_must_not_be_empty() {
        for good in ["a", "shop:eu", "a:b:c", "w*[x]?\\", "{app}", "é"] {
            assert_eq!(Namespace::new(good).unwrap().as_str(), good);
        }
        for bad in ["", ":", "app:", ":x", "a::b", "a:b:"] {
            let err = Namespace::new(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad:?}");
        }
        assert!(Namespace::new("a::b")
            .unwrap_err()
            .to_string()
            .contains("non-empty segments"));
        assert!(Namespace::new(&"n".repeat(MAX_NAMESPACE_LEN + 1)).is_err());
    }

    #[test]
    fn children_nest() {
        let app = Namespace::new("app").unwrap();
        assert_eq!(app.child("x:y").unwrap().prefix(), "app:x:y:");
        assert!(app.child("").is_err());
        assert!(app.child(":x").is_err());
    }
}
