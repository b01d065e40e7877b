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
