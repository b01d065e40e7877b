//! Keys built one way: `{name}[:v{version}]:{id}`, every id escaped so that
//! no id reaches another entity's keys, list keys from a hashed query.
//!
//! The rules, each with its reason:
//! - An id's text is percent-escaped where a byte could change what the key
//!   means: `:` (the segment separator: an id `1:reviews` must not become a
//!   key of a nested entity), the Redis glob characters `*?[]\` (a key that
//!   holds them would match patterns it was not meant to, and `delete_all`
//!   of one keyspace must not reach another), `{` and `}` (Redis Cluster
//!   hashes only what is between braces: an id must not choose the slot),
//!   `%` itself (so the escape is reversible, and two ids never share a
//!   key), and ASCII control characters and space (readable keys in
//!   `redis-cli`). Every other character, UTF-8 included, is kept.
//! - Numbers are written in decimal; a tuple id joins its parts with `:`,
//!   each part escaped, so `("a:b", "c")` and `("a", "b:c")` differ.
//! - A list key hashes its query: the query is turned into JSON with every
//!   object's keys sorted (so a `HashMap`'s order does not matter), and
//!   hashed with XXH3-128, a fixed published algorithm, into 32 hex digits:
//!   the same key in every process and every release.

use std::fmt::Write as _;

use cache_port::{CacheError, Key, Namespace, Result};
use serde::Serialize;

/// A value that can be an id in a key: numbers, strings, and tuples of them.
///
/// Implement it for an id type of your own by writing its parts with
/// [`KeyWriter::part`] (escaped) or [`KeyWriter::number`].
pub trait KeyPart {
    /// Writes this id into `out`.
    fn write_key(&self, out: &mut KeyWriter<'_>);
}

/// Where a [`KeyPart`] writes itself: escapes what needs it.
pub struct KeyWriter<'a> {
    out: &'a mut String,
    first: bool,
}

impl KeyWriter<'_> {
    /// Appends one part, escaped, after a `:` unless it is the first.
    pub fn part(&mut self, text: &str) {
        self.separate();
        escape_into(text, self.out);
    }

    /// Appends one number part, after a `:` unless it is the first.
    pub fn number(&mut self, n: impl std::fmt::Display) {
        self.separate();
        let _ = write!(self.out, "{n}");
    }

    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.out.push(':');
        }
    }
}

/// Whether `byte` is written as `%XX` in an id.
fn needs_escape(byte: u8) -> bool {
    matches!(
        byte,
        b':' | b'*' | b'?' | b'[' | b']' | b'\\' | b'{' | b'}' | b'%' | b' '
    ) || byte.is_ascii_control()
}

/// `text` with every byte that [`needs_escape`] written as `%XX`.
fn escape_into(text: &str, out: &mut String) {
    let mut rest = text;
    while let Some(at) = rest.bytes().position(needs_escape) {
        out.push_str(&rest[..at]);
        let _ = write!(out, "%{:02X}", rest.as_bytes()[at]);
        // Escaped bytes are ASCII, so `at + 1` is a character boundary.
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// The id text escaped as a key part: what [`KeyWriter::part`] writes.
///
/// ```
/// assert_eq!(cache_keyspace::escape_id("a:b*{c}"), "a%3Ab%2A%7Bc%7D");
/// assert_eq!(cache_keyspace::escape_id("lampe-été"), "lampe-été");
/// ```
pub fn escape_id(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(text, &mut out);
    out
}

/// The id an escaped part came from; `None` if `part` is not one
/// [`escape_id`] could have written.
///
/// ```
/// use cache_keyspace::{escape_id, unescape_id};
/// assert_eq!(unescape_id(&escape_id("50% off: *all*")).as_deref(), Some("50% off: *all*"));
/// assert_eq!(unescape_id("a:b"), None); // a raw ':' is never in an escaped id
/// ```
pub fn unescape_id(part: &str) -> Option<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = part.get(i + 1..i + 3)?;
                let byte = u8::from_str_radix(hex, 16).ok()?;
                if !needs_escape(byte) || hex.bytes().any(|b| b.is_ascii_lowercase()) {
                    return None;
                }
                out.push(byte);
                i += 3;
            }
            b if needs_escape(b) => return None,
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

macro_rules! number_parts {
    ($($t:ty)*) => {$(
        impl KeyPart for $t {
            fn write_key(&self, out: &mut KeyWriter<'_>) {
                out.number(self);
            }
        }
    )*};
}
number_parts!(u8 u16 u32 u64 u128 usize i8 i16 i32 i64 i128 isize);

impl KeyPart for str {
    fn write_key(&self, out: &mut KeyWriter<'_>) {
        out.part(self);
    }
}

impl KeyPart for String {
    fn write_key(&self, out: &mut KeyWriter<'_>) {
        out.part(self);
    }
}

impl<T: KeyPart + ?Sized> KeyPart for &T {
    fn write_key(&self, out: &mut KeyWriter<'_>) {
        (**self).write_key(out);
    }
}

macro_rules! tuple_parts {
    ($(($($n:tt $t:ident),*))*) => {$(
        impl<$($t: KeyPart),*> KeyPart for ($($t,)*) {
            fn write_key(&self, out: &mut KeyWriter<'_>) {
                $(self.$n.write_key(out);)*
            }
        }
    )*};
}
tuple_parts!((0 A, 1 B) (0 A, 1 B, 2 C) (0 A, 1 B, 2 C, 3 D));

/// How a keyspace turns ids into keys: its name (a [`Namespace`]: non-empty
/// segments joined by `:`), and an optional key version.
///
/// ```
/// use cache_keyspace::KeyRule;
///
/// let products = KeyRule::new("shop:product").unwrap();
/// assert_eq!(products.key(&7u64).unwrap(), "shop:product:7");
/// assert_eq!(products.key("a:b").unwrap(), "shop:product:a%3Ab");
/// assert_eq!(products.pattern(), "shop:product:*");
///
/// // A new key version leaves every key of the old one behind at once.
/// let v2 = products.versioned(2);
/// assert_eq!(v2.key(&7u64).unwrap(), "shop:product:v2:7");
///
/// // A list key: a query, hashed, the same in every process.
/// #[derive(serde::Serialize)]
/// struct Search<'a> { category: &'a str, page: u32 }
/// let key = KeyRule::new("shop:search").unwrap()
///     .query_key(&Search { category: "lamps", page: 2 }).unwrap();
/// assert!(key.starts_with("shop:search:q:") && key.len() == "shop:search:q:".len() + 32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRule {
    /// `{name}:` or `{name}:v{version}:`: what every key starts with.
    prefix: String,
}

impl KeyRule {
    /// A rule for keys under `name`; a name that is not a valid
    /// [`Namespace`] (empty, an empty segment, a glob character, too long)
    /// is an `InvalidKey` error.
    pub fn new(name: &str) -> Result<Self> {
        let namespace = Namespace::new(name).map_err(|e| CacheError::InvalidKey {
            reason: format!("keyspace name: {e}"),
        })?;
        Ok(Self {
            prefix: format!("{}:", namespace.as_str()),
        })
    }

    /// The same rule with key version `version`: `{name}:v{version}:{id}`.
    /// Bump it when the stored form changes incompatibly and old entries
    /// should simply be left to expire.
    #[must_use]
    pub fn versioned(&self, version: u32) -> Self {
        let name = self.name();
        let name = match name.rsplit_once(':') {
            Some((base, last)) if is_version(last) => base,
            _ => name,
        };
        Self {
            prefix: format!("{name}:v{version}:"),
        }
    }

    /// The name, with its key version if any (no trailing `:`).
    pub fn name(&self) -> &str {
        &self.prefix[..self.prefix.len() - 1]
    }

    /// The key of `id`; a key longer than [`MAX_KEY_LEN`](cache_port::MAX_KEY_LEN)
    /// is an `InvalidKey` error.
    pub fn key<K: KeyPart + ?Sized>(&self, id: &K) -> Result<String> {
        let mut out = String::with_capacity(self.prefix.len() + 16);
        out.push_str(&self.prefix);
        id.write_key(&mut KeyWriter {
            out: &mut out,
            first: true,
        });
        Key::new(&out)?;
        Ok(out)
    }

    /// The key of a list or search result: `{name}:q:{hash}`, where the hash
    /// is XXH3-128 of `query` as canonical JSON (object keys sorted). A
    /// query that does not serialize is a `Codec` error.
    pub fn query_key<Q: Serialize + ?Sized>(&self, query: &Q) -> Result<String> {
        let value = serde_json::to_value(query).map_err(CacheError::codec)?;
        let mut canonical = String::new();
        write_canonical(&value, &mut canonical);
        let hash = xxhash_rust::xxh3::xxh3_128(canonical.as_bytes());
        let key = format!("{}q:{hash:032x}", self.prefix);
        Key::new(&key)?;
        Ok(key)
    }

    /// The glob pattern of every key of this rule (`{name}:*`), for
    /// `keys`, `delete_pattern` and `keys_stream`. It covers the keys of a
    /// keyspace whose name extends this one (`shop:product:reviews` under
    /// `shop:product`): give sibling entities sibling names.
    pub fn pattern(&self) -> String {
        format!("{}*", cache_port::escape_glob(&self.prefix))
    }
}

fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// `value` as JSON with every object's keys in sorted order, so that two
/// equal queries hash alike whatever map type held them.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn ids_that_could_reach_other_keys_are_escaped() {
        let rule = KeyRule::new("shop:product").unwrap();
        assert_eq!(rule.key("1*").unwrap(), "shop:product:1%2A");
        assert_eq!(rule.key("1:reviews").unwrap(), "shop:product:1%3Areviews");
        assert_eq!(rule.key("{tag}").unwrap(), "shop:product:%7Btag%7D");
        assert_eq!(rule.key("100%").unwrap(), "shop:product:100%25");
        assert_eq!(rule.key("a b\n").unwrap(), "shop:product:a%20b%0A");
        assert_eq!(rule.key(&("a:b", "c")).unwrap(), "shop:product:a%3Ab:c");
        assert_eq!(rule.key(&("a", "b:c")).unwrap(), "shop:product:a:b%3Ac");
        assert_eq!(rule.key(&(-3i32, 4u8)).unwrap(), "shop:product:-3:4");
    }

    #[test]
    fn a_key_over_the_limit_is_a_typed_error() {
        let rule = KeyRule::new("p").unwrap();
        let err = rule.key(&"*".repeat(2000)).unwrap_err();
        assert_eq!(err.kind(), cache_port::ErrorKind::InvalidKey);
        assert!(rule.key(&"x".repeat(4000)).is_ok());
    }

    #[test]
    fn bad_names_are_typed_errors() {
        for name in ["", "a::b", ":a", "a:"] {
            let err = KeyRule::new(name).unwrap_err();
            assert_eq!(err.kind(), cache_port::ErrorKind::InvalidKey, "{name:?}");
        }
    }

    #[test]
    fn versions_replace_each_other() {
        let rule = KeyRule::new("shop:product").unwrap();
        assert_eq!(rule.versioned(1).versioned(3).name(), "shop:product:v3");
        assert_eq!(rule.versioned(3).pattern(), "shop:product:v3:*");
    }

    #[test]
    fn query_keys_ignore_map_order_and_are_stable() {
        let rule = KeyRule::new("search").unwrap();
        let mut a = HashMap::new();
        let mut b = BTreeMap::new();
        for (k, v) in [("zeta", 1), ("alpha", 2), ("mid", 3)] {
            a.insert(k, v);
            b.insert(k, v);
        }
        assert_eq!(rule.query_key(&a).unwrap(), rule.query_key(&b).unwrap());
        // Pinned: a change of algorithm or canonical form would orphan every
        // list key in every running cache.
        assert_eq!(
            rule.query_key(&b).unwrap(),
            "search:q:48071274b1a33b7aa423088938329c18"
        );
        assert_ne!(
            rule.query_key(&[1, 2]).unwrap(),
            rule.query_key(&[2, 1]).unwrap()
        );
    }
}
