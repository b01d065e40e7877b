//! Time to live: the validated TTL given to writes and the three-way answer of `ttl`.

use std::time::Duration;

use crate::error::{CacheError, Result};

/// The longest TTL the port accepts: 1,000 years.
///
/// Redis accepts far longer ones (until its millisecond clock would overflow),
/// but no cache entry needs them, and a bound that every adapter's clock can
/// represent keeps the adapters indistinguishable.
pub const MAX_TTL: Duration = Duration::from_millis(1000 * 365 * 24 * 60 * 60 * 1000);

/// A TTL that passed validation: at least one millisecond, at most [`MAX_TTL`],
/// rounded up to whole milliseconds (the granularity of Redis `PX`).
///
/// ```
/// use std::time::Duration;
/// use cache_port::Ttl;
///
/// // Sub-millisecond parts round up, never down to zero.
/// assert_eq!(Ttl::new(Duration::from_micros(1)).unwrap().as_millis(), 1);
/// assert_eq!(Ttl::new(Duration::from_micros(1500)).unwrap().as_millis(), 2);
/// assert!(Ttl::new(Duration::ZERO).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ttl {
    millis: u64,
}

impl Ttl {
    /// Validates `ttl` and rounds it up to whole milliseconds.
    pub fn new(ttl: Duration) -> Result<Self> {
        if ttl.is_zero() {
            return Err(CacheError::InvalidTtl {
                ttl,
                reason: "a TTL must be at least one millisecond (Redis refuses PX 0 too)",
            });
        }
        if ttl > MAX_TTL {
            return Err(CacheError::InvalidTtl {
                ttl,
                reason: "a TTL must be at most 1,000 years",
            });
        }
        // Fits: MAX_TTL is far below u64::MAX milliseconds.
        let millis = ttl.as_millis() as u64 + u64::from(ttl.subsec_nanos() % 1_000_000 != 0);
        Ok(Self { millis })
    }

    /// Validates an optional TTL: `None` (no expiry) is always valid.
    pub fn from_option(ttl: Option<Duration>) -> Result<Option<Self>> {
        ttl.map(Self::new).transpose()
    }

    /// The TTL in whole milliseconds (never zero).
    pub fn as_millis(&self) -> u64 {
        self.millis
    }

    /// The TTL as a duration of whole milliseconds.
    pub fn as_duration(&self) -> Duration {
        Duration::from_millis(self.millis)
    }
}

/// What `ttl(key)` found: the three cases Redis `PTTL` tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TtlState {
    /// The key does not exist (or has expired). Redis: `PTTL` = -2.
    Missing,
    /// The key exists and never expires. Redis: `PTTL` = -1.
    Persistent,
    /// The key exists and expires after this long (whole milliseconds).
    ExpiresIn(Duration),
}

impl TtlState {
    /// Whether the key exists.
    pub fn exists(&self) -> bool {
        !matches!(self, TtlState::Missing)
    }

    /// The remaining time, when the key expires.
    pub fn remaining(&self) -> Option<Duration> {
        match self {
            TtlState::ExpiresIn(d) => Some(*d),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_rounding() {
        assert_eq!(Ttl::new(Duration::from_millis(5)).unwrap().as_millis(), 5);
        assert_eq!(Ttl::new(Duration::from_nanos(1)).unwrap().as_millis(), 1);
        assert_eq!(Ttl::new(MAX_TTL).unwrap().as_duration(), MAX_TTL);
        assert!(Ttl::new(MAX_TTL + Duration::from_nanos(1)).is_err());
        assert!(Ttl::new(Duration::MAX).is_err());
        assert_eq!(Ttl::from_option(None).unwrap(), None);
    }
}
