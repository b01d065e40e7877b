//! `LogThrottle`: one log line per interval for a failure that repeats.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lets one occurrence of a repeated event through per interval and counts
/// the rest, so that an outage (thousands of failed calls a second) writes
/// one warning per interval with a count instead of one per call.
///
/// ```
/// use std::time::Duration;
/// use cache_port::report::LogThrottle;
///
/// let throttle = LogThrottle::new(Duration::from_secs(10));
/// assert_eq!(throttle.admit(), Some(0)); // the first one is logged
/// assert_eq!(throttle.admit(), None);    // the next ones within 10 s are counted
/// assert_eq!(throttle.admit(), None);
/// // The first one after the interval is logged, saying "2 more since".
/// ```
#[derive(Debug)]
pub struct LogThrottle {
    interval_ms: u64,
    /// Milliseconds since [`epoch`] of the last admitted event, or `NEVER`.
    last: AtomicU64,
    suppressed: AtomicU64,
}

const NEVER: u64 = u64::MAX;

/// A process-wide origin, so that a throttle is two atomics and no clock of its own.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl LogThrottle {
    /// At most one admitted event per `interval`.
    pub const fn new(interval: Duration) -> Self {
        Self {
            interval_ms: interval.as_millis() as u64,
            last: AtomicU64::new(NEVER),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this occurrence should be logged, `n` being how many
    /// were held back since the last one logged; `None` when it is only
    /// counted.
    pub fn admit(&self) -> Option<u64> {
        let now = epoch().elapsed().as_millis() as u64;
        let last = self.last.load(Relaxed);
        if last != NEVER && now < last.saturating_add(self.interval_ms) {
            self.suppressed.fetch_add(1, Relaxed);
            return None;
        }
        // One of several racing callers wins the slot; the others count.
        match self.last.compare_exchange(last, now, Relaxed, Relaxed) {
            Ok(_) => Some(self.suppressed.swap(0, Relaxed)),
            Err(_) => {
                self.suppressed.fetch_add(1, Relaxed);
                None
            }
        }
    }
}

impl Default for LogThrottle {
    /// One line per 10 seconds.
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_per_interval_with_the_count_of_the_rest() {
        let throttle = LogThrottle::new(Duration::from_millis(50));
        assert_eq!(throttle.admit(), Some(0));
        for _ in 0..99 {
            assert_eq!(throttle.admit(), None);
        }
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(throttle.admit(), Some(99));
        assert_eq!(throttle.admit(), None);
    }

    #[test]
    fn racing_threads_admit_one_per_interval() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        let admitted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..1000).filter(|_| throttle.admit().is_some()).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(admitted, 1);
        assert_eq!(throttle.suppressed.load(Relaxed), 7999);
    }
}
