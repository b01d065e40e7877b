//! How a key appears in a span or a log line: never as it is by default.

use cache_port::report::key_digest;

/// How [`Traced`](crate::Traced) shows a key, and only when the
/// `cache` target is enabled at `TRACE`: keys can hold personal data (an
/// e-mail address, a session token), so by default a span carries none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyField {
    /// No key in any span (the default).
    #[default]
    Hidden,
    /// A 16-hex-digit digest ([`key_digest`](cache_port::report::key_digest)): the same key gives the same
    /// digest in every process, so spans of one key can be correlated
    /// without showing it.
    Hashed,
    /// The first `n` bytes (cut back to a character boundary), for
    /// namespaces whose key prefixes are safe to show (`product:`).
    Truncated(usize),
}

impl KeyField {
    /// The key as this setting shows it, or `None` when it is hidden.
    pub fn show(self, key: &str) -> Option<String> {
        match self {
            KeyField::Hidden => None,
            KeyField::Hashed => Some(key_digest(key)),
            KeyField::Truncated(n) => {
                let mut end = n.min(key.len());
                while !key.is_char_boundary(end) {
                    end -= 1;
                }
                Some(key[..end].to_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hidden_hashed_or_cut_at_a_character_boundary() {
        assert_eq!(KeyField::Hidden.show("user:alice@example.com"), None);
        let digest = KeyField::Hashed.show("user:alice@example.com").unwrap();
        assert_eq!(digest.len(), 16);
        assert!(!digest.contains("alice"));
        assert_eq!(
            Some(digest),
            KeyField::Hashed.show("user:alice@example.com")
        );
        assert_eq!(KeyField::Truncated(5).show("user:alice").unwrap(), "user:");
        // "é" is two bytes: a cut inside it goes back to before it.
        assert_eq!(KeyField::Truncated(2).show("éa").unwrap(), "é");
        assert_eq!(KeyField::Truncated(1).show("éa").unwrap(), "");
        assert_eq!(KeyField::Truncated(99).show("ab").unwrap(), "ab");
    }
}
