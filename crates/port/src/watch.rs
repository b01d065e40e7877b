//! [`Watch`]: what `Cache::watch_now` hands back with a value at hand, so
//! that a layer reading one key on every call (a tag's version) can keep
//! the value and skip the read while nothing could have changed it.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// The state a [`Watch`] was taken in, in the terms of its [`Watched`]
/// source (for the tiered cache: the invalidation counters of the key's
/// slot and of the whole cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(pub [u64; 3]);

/// What can tell whether a [`Stamp`] it gave still holds.
pub trait Watched: Send + Sync {
    /// Whether nothing that could change the watched key's answer (a
    /// write, an invalidation, a flush, the source stopping to answer from
    /// memory) happened since `stamp` was taken.
    fn unchanged(&self, stamp: &Stamp) -> bool;
}

/// Proof, while [`holds`](Self::holds) says so, that a read of the key it
/// came with would still answer the value it came with.
///
/// A store gives one only where it can keep that promise cheaply: the
/// tiered cache for an L1 hit (its invalidation counters, which every
/// write, invalidation and flush bumps before it changes L1, and the L1
/// entry's own expiry). It ends at the entry's expiry (`until`) whatever
/// the source says, so a kept value never outlives what it was read from.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use cache_port::{Stamp, Watch, Watched};
///
/// struct Counter(AtomicU64);
/// impl Watched for Counter {
///     fn unchanged(&self, stamp: &Stamp) -> bool {
///         self.0.load(Ordering::SeqCst) == stamp.0[0]
///     }
/// }
///
/// let counter = Arc::new(Counter(AtomicU64::new(7)));
/// let watch = Watch::new(counter.clone(), Stamp([7, 0, 0]), None);
/// assert!(watch.holds());
/// counter.0.fetch_add(1, Ordering::SeqCst);
/// assert!(!watch.holds());
/// ```
#[derive(Clone)]
pub struct Watch {
    source: Arc<dyn Watched>,
    stamp: Stamp,
    until: Option<Instant>,
}

impl Watch {
    /// A watch on `source` as of `stamp`, ending at `until` at the latest
    /// (`None`: only when the source says so).
    pub fn new(source: Arc<dyn Watched>, stamp: Stamp, until: Option<Instant>) -> Self {
        Self {
            source,
            stamp,
            until,
        }
    }

    /// Whether the value it came with is still what a read would answer.
    #[inline]
    pub fn holds(&self) -> bool {
        self.until.is_none_or(|until| Instant::now() < until) && self.source.unchanged(&self.stamp)
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("stamp", &self.stamp)
            .field("until", &self.until)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::time::Duration;

    struct Flag(AtomicBool);
    impl Watched for Flag {
        fn unchanged(&self, _: &Stamp) -> bool {
            self.0.load(SeqCst)
        }
    }

    #[test]
    fn a_watch_ends_at_its_deadline_or_when_its_source_says() {
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        let far = Instant::now() + Duration::from_secs(60);
        let watch = Watch::new(flag.clone(), Stamp([0; 3]), Some(far));
        assert!(watch.holds());
        let past = Watch::new(flag.clone(), Stamp([0; 3]), Some(Instant::now()));
        assert!(
            !past.holds(),
            "an entry's expiry ends it, whatever the source"
        );
        flag.0.store(false, SeqCst);
        assert!(!watch.holds());
        assert!(format!("{watch:?}").starts_with("Watch { stamp: Stamp([0, 0, 0])"));
    }
}
