//! A tagged entry as stored: the versions its tags had when it was written,
//! then the value.
//!
//! ```text
//! 0xC1 | 'T' | format 1 | tag count (1) | per tag: version u64 BE, length (1), name | value
//! ```
//!
//! `0xC1` is the byte MessagePack never uses; the loader's envelope starts
//! with it too, followed by its format byte 1, so neither is mistaken for
//! the other (a loader reads a tagged entry as a miss). An entry written
//! through the tagged view with no tags is stored as given, unless it
//! starts with `0xC1 'T'`: then it is wrapped with no tags, so that every
//! value the view wrote reads back as written.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use cache_port::{CacheError, Result};

use crate::tag::{Tag, MAX_TAGS_PER_ENTRY};

const MARKER: u8 = 0xC1;
const KIND: u8 = b'T';
const FORMAT: u8 = 1;

/// A tag's version: a random 64-bit number, new at every invalidation.
pub type Version = u64;

/// A stored value, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Opened {
    /// Each tag with the version it had when the entry was written.
    pub(crate) tags: Vec<(Tag, Version)>,
    /// The value as the caller gave it.
    pub(crate) value: Bytes,
}

/// Whether `value` needs an envelope although it has no tags: only a value
/// that starts as a tagged entry does (a loader's envelope, `0xC1 1`, is
/// stored as given).
pub(crate) fn needs_wrapping(value: &[u8]) -> bool {
    value.starts_with(&[MARKER, KIND])
}

/// `value` with `tags` and their versions before it.
pub(crate) fn seal(tags: &[(Tag, Version)], value: &[u8]) -> Bytes {
    let names: usize = tags.iter().map(|(t, _)| t.as_str().len()).sum();
    let mut out = BytesMut::with_capacity(4 + tags.len() * 9 + names + value.len());
    out.put_u8(MARKER);
    out.put_u8(KIND);
    out.put_u8(FORMAT);
    // At most MAX_TAGS_PER_ENTRY (64) and MAX_TAG_LEN (255): both fit a byte.
    out.put_u8(tags.len() as u8);
    for (tag, version) in tags {
        out.put_u64(*version);
        out.put_u8(tag.as_str().len() as u8);
        out.put_slice(tag.as_str().as_bytes());
    }
    out.put_slice(value);
    out.freeze()
}

/// A stored value's header, read without allocating or counting a
/// reference: the read path's common cases (no envelope; an envelope with
/// no tag or one) answered here, the rest left to [`open`]. Where the
/// value starts is an offset, so that the read hands back the stored
/// `Bytes` advanced past the header (a `slice` would take and drop a
/// reference on the shared buffer every read; at 64 tasks on one L1 entry
/// those are contended atomics).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Peeked<'a> {
    /// No envelope: the value is stored as given.
    Plain,
    /// An envelope with no tag; the value starts at this offset.
    Untagged(usize),
    /// An envelope with one tag.
    OneTag {
        /// The tag's name as stored, not yet checked as UTF-8: a name
        /// the view's memo holds was checked when it was kept, and any
        /// other is checked ([`tag_name`]) before its version is read.
        tag: &'a [u8],
        /// The version it had when the entry was written.
        version: Version,
        /// Where the value as the caller gave it starts.
        value_at: usize,
    },
    /// Anything else (several tags, or a header that does not parse):
    /// [`open`] it, which reads it or says what is wrong.
    Other,
}

/// `stored`'s header as [`Peeked`]. Never wrong where it answers: what it
/// does not read whole is [`Peeked::Other`], never a guess.
pub(crate) fn peek(stored: &[u8]) -> Peeked<'_> {
    if stored.len() < 2 || stored[0] != MARKER || stored[1] != KIND {
        return Peeked::Plain;
    }
    match stored.get(2..4) {
        Some(&[FORMAT, 0]) => Peeked::Untagged(4),
        Some(&[FORMAT, 1]) => {
            let (Some(version), Some(&len)) = (stored.get(4..12), stored.get(12)) else {
                return Peeked::Other;
            };
            let value_at = 13 + usize::from(len);
            let Some(tag) = stored.get(13..value_at) else {
                return Peeked::Other;
            };
            if tag.is_empty() {
                return Peeked::Other;
            }
            let version = Version::from_be_bytes(version.try_into().expect("8 bytes"));
            Peeked::OneTag {
                tag,
                version,
                value_at,
            }
        }
        _ => Peeked::Other,
    }
}

/// A peeked tag's name, where it is one [`open`] would accept (UTF-8;
/// `peek` has checked the rest). `None`: open the entry, which says what
/// is wrong.
pub(crate) fn tag_name(tag: &[u8]) -> Option<&str> {
    std::str::from_utf8(tag).ok()
}

/// `stored` opened: `None` for a value with no tag envelope (stored as
/// given), an error for an envelope that does not parse (never a guess).
pub(crate) fn open(stored: &Bytes) -> Result<Option<Opened>> {
    if stored.len() < 2 || stored[0] != MARKER || stored[1] != KIND {
        return Ok(None);
    }
    let corrupt = |why: &str| CacheError::Codec {
        source: format!("a tagged entry's header {why}").into(),
    };
    let mut rest = stored.slice(2..);
    if rest.remaining() < 2 {
        return Err(corrupt("is cut short"));
    }
    let format = rest.get_u8();
    if format != FORMAT {
        return Err(corrupt(&format!("has format {format}, not {FORMAT}")));
    }
    let count = usize::from(rest.get_u8());
    if count > MAX_TAGS_PER_ENTRY {
        return Err(corrupt(&format!("names {count} tags")));
    }
    let mut tags = Vec::with_capacity(count);
    for _ in 0..count {
        if rest.remaining() < 9 {
            return Err(corrupt("is cut short"));
        }
        let version = rest.get_u64();
        let len = usize::from(rest.get_u8());
        if rest.remaining() < len {
            return Err(corrupt("is cut short"));
        }
        let name = std::str::from_utf8(&rest[..len])
            .map_err(|_| corrupt("holds a tag that is not UTF-8"))?;
        let tag = Tag::new(name).map_err(|_| corrupt("holds an empty tag"))?;
        rest.advance(len);
        tags.push((tag, version));
    }
    Ok(Some(Opened { tags, value: rest }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(name: &str) -> Tag {
        Tag::new(name).unwrap()
    }

    #[test]
    fn round_trips() {
        let tags = vec![(tag("a"), 1), (tag("product:7"), u64::MAX)];
        let sealed = seal(&tags, b"value");
        let opened = open(&sealed).unwrap().unwrap();
        assert_eq!(opened.tags, tags);
        assert_eq!(&opened.value[..], b"value");
        assert_eq!(
            open(&seal(&[], b"\xC1x")).unwrap().unwrap().value,
            &b"\xC1x"[..]
        );
        assert_eq!(open(&Bytes::from_static(b"plain")).unwrap(), None);
        // The loader's envelope (0xC1, format 1) is not a tagged entry.
        assert_eq!(open(&Bytes::from_static(b"\xC1\x01rest")).unwrap(), None);
    }

    /// The cost the crate's docs state: 4 bytes, and 9 plus its name per tag.
    #[test]
    fn a_header_costs_4_bytes_and_9_plus_the_name_per_tag() {
        assert_eq!(seal(&[], b"v").len(), 4 + 1);
        let tags = [(tag("product:7"), 1), (tag("list"), 2)];
        assert_eq!(seal(&tags, b"v").len(), 4 + (9 + 9) + (9 + 4) + 1);
    }

    /// `peek` answers as `open` does wherever it answers, on every cut of
    /// entries with no tag, one and two (and a malformed tag name).
    #[test]
    fn peek_agrees_with_open() {
        let entries = [
            seal(&[], b"value"),
            seal(&[(tag("product:7"), 42)], b"value"),
            seal(&[(tag("a"), 1), (tag("b"), 2)], b"value"),
            Bytes::from_static(b"plain"),
            Bytes::from_static(b"\xC1T\x01\x01\0\0\0\0\0\0\0\x07\x02\xFF\xFEvalue"),
        ];
        for entry in entries {
            for cut in 0..=entry.len() {
                let stored = entry.slice(..cut);
                let opened = open(&stored);
                match peek(&stored) {
                    Peeked::Plain => assert_eq!(opened.unwrap(), None, "{stored:?}"),
                    Peeked::Untagged(value_at) => {
                        let opened = opened.unwrap().unwrap();
                        assert!(opened.tags.is_empty());
                        assert_eq!(opened.value, stored.slice(value_at..));
                    }
                    Peeked::OneTag {
                        tag: name,
                        version,
                        value_at,
                    } => match tag_name(name) {
                        Some(name) => {
                            let opened = opened.unwrap().unwrap();
                            assert_eq!(opened.tags, vec![(tag(name), version)]);
                            assert_eq!(opened.value, stored.slice(value_at..));
                        }
                        None => assert!(opened.is_err(), "{stored:?}: {opened:?}"),
                    },
                    Peeked::Other => {
                        let many = opened
                            .as_ref()
                            .is_ok_and(|o| o.as_ref().is_some_and(|o| o.tags.len() > 1));
                        assert!(many || opened.is_err(), "{stored:?}: {opened:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_a_panic() {
        let sealed = seal(&[(tag("abc"), 7), (tag("d"), 9)], b"");
        for cut in 2..sealed.len() {
            let short = sealed.slice(..cut);
            assert!(open(&short).is_err(), "cut at {cut}");
        }
        let mut bad = sealed.to_vec();
        bad[2] = 9;
        assert!(open(&Bytes::from(bad)).is_err());
        let mut many = sealed.to_vec();
        many[3] = 200;
        assert!(open(&Bytes::from(many)).is_err());
    }
}
