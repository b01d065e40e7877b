//! The envelope: a loaded value with its logical expiry beside it.
//!
//! Fail-safe and eager refresh need to know, at read time, when a value was
//! stored and for how long it is fresh, while the store keeps it longer (the
//! fail-safe window). The store's own TTL cannot say that, so the loader
//! writes a small header before the value:
//!
//! ```text
//! 0xC1 | version (1) | stored at: unix ms, u64 BE | fresh for: ms, u64 BE | value
//! ```
//!
//! `0xC1` is the one byte MessagePack never uses, so no value written by
//! `CacheExt::set` (or any MessagePack encoder) is mistaken for an envelope:
//! values written by plain `set` stay readable, as fresh values without an
//! expiry the loader knows of. A header of another version is not guessed
//! at: the entry is a miss and is loaded again.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// The first byte of every envelope: unused by MessagePack.
const MARKER: u8 = 0xC1;
/// The format this code writes and reads.
const VERSION: u8 = 1;
/// Marker, version, two u64.
const HEADER_LEN: usize = 2 + 8 + 8;
/// "Fresh for" of a value without expiry.
const FOREVER: u64 = u64::MAX;

/// A stored value, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The value's encoded bytes, without the header.
    pub payload: Bytes,
    /// When it was stored; `None` for a value written without an envelope.
    pub stored_at: Option<SystemTime>,
    /// How long it is fresh from `stored_at`; `None`: for ever.
    pub fresh_for: Option<Duration>,
}

impl Opened {
    /// When it stops being fresh, if ever.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.stored_at?.checked_add(self.fresh_for?)
    }

    /// Whether it is fresh at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        self.expires_at().is_none_or(|at| now < at)
    }

    /// Whether, at `now`, more than `fraction` of its freshness has passed.
    pub fn refresh_due(&self, now: SystemTime, fraction: f64) -> bool {
        match (self.stored_at, self.fresh_for) {
            (Some(at), Some(fresh)) => now
                .duration_since(at)
                .is_ok_and(|age| age >= fresh.mul_f64(fraction)),
            _ => false,
        }
    }
}

/// `payload` with a header saying it was stored `now` and is fresh for
/// `fresh_for` (`None`: for ever).
pub fn seal(payload: &[u8], now: SystemTime, fresh_for: Option<Duration>) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
    out.put_u8(MARKER);
    out.put_u8(VERSION);
    out.put_u64(unix_millis(now));
    out.put_u64(fresh_for.map_or(FOREVER, |d| {
        u64::try_from(d.as_millis()).unwrap_or(FOREVER - 1)
    }));
    out.put_slice(payload);
    out.freeze()
}

/// Opens `stored`: an envelope of this version, or a plain value. `None`: an
/// envelope this code cannot read (another version, or cut short).
pub fn open(stored: &Bytes) -> Option<Opened> {
    if stored.first() != Some(&MARKER) {
        return Some(Opened {
            payload: stored.clone(),
            stored_at: None,
            fresh_for: None,
        });
    }
    if stored.len() < HEADER_LEN || stored[1] != VERSION {
        return None;
    }
    let u64_at = |i: usize| u64::from_be_bytes(stored[i..i + 8].try_into().expect("8 bytes"));
    let fresh_ms = u64_at(10);
    Some(Opened {
        payload: stored.slice(HEADER_LEN..),
        stored_at: UNIX_EPOCH.checked_add(Duration::from_millis(u64_at(2))),
        fresh_for: (fresh_ms != FOREVER).then(|| Duration::from_millis(fresh_ms)),
    })
}

/// The payload of `stored` if it is an envelope, else `stored` itself: what
/// the typed layer decodes, so that `CacheExt::get` reads loaded values.
pub fn payload(stored: &[u8]) -> &[u8] {
    match stored {
        [MARKER, VERSION, ..] if stored.len() >= HEADER_LEN => &stored[HEADER_LEN..],
        _ => stored,
    }
}

fn unix_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::typed::encode;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn a_sealed_value_opens_to_itself_and_its_times() {
        let sealed = seal(b"abc", at(1_000), Some(Duration::from_millis(500)));
        assert_eq!(sealed.len(), HEADER_LEN + 3);
        let opened = open(&sealed).unwrap();
        assert_eq!(&opened.payload[..], b"abc");
        assert_eq!(opened.stored_at, Some(at(1_000)));
        assert_eq!(opened.expires_at(), Some(at(1_500)));
        assert!(opened.is_fresh(at(1_499)));
        assert!(!opened.is_fresh(at(1_500)));
        assert!(!opened.refresh_due(at(1_399), 0.8));
        assert!(opened.refresh_due(at(1_400), 0.8));
        assert_eq!(payload(&sealed), b"abc");
    }

    #[test]
    fn a_value_without_expiry_is_fresh_for_ever() {
        let opened = open(&seal(b"", at(1), None)).unwrap();
        assert_eq!(opened.fresh_for, None);
        assert!(opened.is_fresh(at(u64::MAX / 4)));
        assert!(!opened.refresh_due(at(u64::MAX / 4), 0.5));
    }

    #[test]
    fn plain_values_are_fresh_values_without_a_header() {
        for value in [
            encode(&"text").unwrap(),
            encode(&42u32).unwrap(),
            Bytes::new(),
        ] {
            let opened = open(&value).unwrap();
            assert_eq!(opened.payload, value);
            assert_eq!(opened.stored_at, None);
            assert!(opened.is_fresh(SystemTime::now()));
            assert_eq!(payload(&value), &value[..]);
        }
    }

    #[test]
    fn unknown_versions_and_cut_headers_are_not_guessed_at() {
        let mut other = seal(b"x", at(1), None).to_vec();
        other[1] = 2;
        assert_eq!(open(&Bytes::from(other)), None);
        assert_eq!(open(&Bytes::from_static(&[MARKER, VERSION, 0, 0])), None);
    }

    #[test]
    fn no_messagepack_value_starts_with_the_marker() {
        // 0xC1 is "never used" in the MessagePack specification.
        for value in [
            encode(&()).unwrap(),
            encode(&vec![1u8; 40]).unwrap(),
            encode(&(-1i64)).unwrap(),
            encode(&f64::NAN).unwrap(),
            encode(&std::collections::BTreeMap::from([("a", 1)])).unwrap(),
        ] {
            assert_ne!(value.first(), Some(&MARKER));
        }
    }
}
