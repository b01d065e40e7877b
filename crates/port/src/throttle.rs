//! Rate limits: a [`Quota`], the [`Decision`] a check answers, and [`gcra`],
//! the one computation every adapter runs (in a Redis script with the
//! server's clock, under the key's lock in process).
//!
//! GCRA (the generic cell rate algorithm, as redis-cell and governor use
//! it) keeps one number per limited subject: the theoretical arrival time
//! (TAT) of the next request, in microseconds. Requests are spaced by the
//! emission interval `T = period / count`; up to `burst` may come at once.
//! A request of cost `c` at `now` is allowed when
//! `max(TAT, now) + c·T − now ≤ burst·T`, and then moves the TAT there.
//! Over any interval of length `L`, at most `burst + L / T` requests are
//! allowed; a steady caller gets exactly `count` per `period`.
//!
//! The stored value is the TAT as a decimal integer of microseconds since
//! the Unix epoch, with a TTL of the time until the subject's allowance is
//! full again: an idle subject leaves nothing behind, and a crash between
//! two commands cannot leave a key without a TTL (there is one command).

use std::time::Duration;

use crate::error::{CacheError, Result};
use crate::ttl::MAX_TTL;

/// A rate limit: `count` requests per `period`, up to `burst` of them at
/// once (by default `burst = count`).
///
/// ```
/// use std::time::Duration;
/// use cache_port::Quota;
///
/// let quota = Quota::per(100, Duration::from_secs(60)).unwrap().burst(10).unwrap();
/// assert_eq!(quota.emission_interval(), Duration::from_millis(600));
/// assert!(Quota::per(0, Duration::from_secs(1)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    count: u32,
    period: Duration,
    burst: u32,
}

impl Quota {
    /// `count` requests per `period`: `count` at least 1, `period` from 1 ms
    /// to [`MAX_TTL`], and at least 1 µs between requests; anything else is
    /// a `Config` error.
    pub fn per(count: u32, period: Duration) -> Result<Self> {
        if count == 0 {
            return Err(config(
                "a quota of 0 requests allows nothing; use at least 1",
            ));
        }
        if period < Duration::from_millis(1) || period > MAX_TTL {
            return Err(config("a quota's period is from 1 ms to MAX_TTL"));
        }
        let quota = Self {
            count,
            period,
            burst: count,
        };
        if quota.interval_micros() == 0 {
            return Err(config("a quota allows at most one request per microsecond"));
        }
        Ok(quota)
    }

    /// The same quota with up to `burst` requests at once (at least 1).
    pub fn burst(self, burst: u32) -> Result<Self> {
        if burst == 0 {
            return Err(config("a burst of 0 allows nothing; use at least 1"));
        }
        Ok(Self { burst, ..self })
    }

    /// Requests per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Requests allowed at once.
    pub fn max_burst(&self) -> u32 {
        self.burst
    }

    /// The spacing of a steady caller's requests, `period / count`.
    pub fn emission_interval(&self) -> Duration {
        Duration::from_micros(self.interval_micros())
    }

    /// `T` in whole microseconds (the unit every adapter computes in).
    pub fn interval_micros(&self) -> u64 {
        (self.period.as_micros() / u128::from(self.count)) as u64
    }

    /// `burst · T` in microseconds: how far ahead of now the TAT may run.
    pub fn tolerance_micros(&self) -> u64 {
        self.interval_micros().saturating_mul(u64::from(self.burst))
    }
}

fn config(message: &str) -> CacheError {
    CacheError::Config {
        message: message.to_owned(),
    }
}

/// What a check answers (redis-cell's answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go ahead (and was counted).
    pub allowed: bool,
    /// The quota's burst: the most requests allowed at once.
    pub limit: u32,
    /// How many more requests of cost 1 would be allowed right now.
    pub remaining: u32,
    /// When denied, how long until this request would be allowed; zero
    /// when allowed.
    pub retry_after: Duration,
    /// How long until the subject's allowance is full again (`remaining
    /// = limit`), when its key expires.
    pub reset_after: Duration,
}

/// What a check does to the stored TAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Nothing (a denial, or a check of cost 0).
    None,
    /// Store `tat` (µs since the epoch) for `ttl`.
    Store {
        /// The new TAT.
        tat: u64,
        /// Until the allowance is full again (at least 1 ms).
        ttl: Duration,
    },
}

/// One GCRA check of cost `cost` at `now` (µs since the epoch) against the
/// stored TAT (`None`: no key). The computation every adapter runs; the
/// Redis script is a line-by-line transcription (and the conformance
/// behaviours `rate_limits::*` hold both to it).
pub fn gcra(tat: Option<u64>, now: u64, quota: &Quota, cost: u32) -> (Decision, Write) {
    let t = quota.interval_micros();
    let tau = quota.tolerance_micros();
    let tat = tat.map_or(now, |tat| tat.max(now));
    let new = tat.saturating_add(t.saturating_mul(u64::from(cost)));
    let micros = Duration::from_micros;
    let remaining = |ahead: u64| u32::try_from(tau.saturating_sub(ahead) / t).unwrap_or(u32::MAX);
    if new - now <= tau {
        let decision = Decision {
            allowed: true,
            limit: quota.burst,
            remaining: remaining(new - now),
            retry_after: Duration::ZERO,
            reset_after: micros(new - now),
        };
        let write = if cost == 0 {
            Write::None
        } else {
            Write::Store {
                tat: new,
                ttl: micros(new - now).max(Duration::from_millis(1)),
            }
        };
        (decision, write)
    } else {
        let decision = Decision {
            allowed: false,
            limit: quota.burst,
            remaining: remaining(tat - now),
            retry_after: micros(new - now - tau),
            reset_after: micros(tat - now),
        };
        (decision, Write::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(count: u32, period_ms: u64, burst: u32) -> Quota {
        Quota::per(count, Duration::from_millis(period_ms))
            .unwrap()
            .burst(burst)
            .unwrap()
    }

    /// Runs checks at the given times (µs), threading the TAT through.
    fn run(quota: &Quota, times: &[u64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&now| {
                let (decision, write) = gcra(tat, now, quota, 1);
                if let Write::Store { tat: new, .. } = write {
                    tat = Some(new);
                }
                decision.allowed
            })
            .collect()
    }

    #[test]
    fn a_burst_then_one_per_interval() {
        // 10 per second, burst 3: three at once, then one every 100 ms.
        let q = quota(10, 1000, 3);
        let start = 1_000_000_000;
        let at = |ms: u64| start + ms * 1000;
        assert_eq!(
            run(
                &q,
                &[
                    at(0),
                    at(0),
                    at(0),
                    at(0),
                    at(99),
                    at(100),
                    at(150),
                    at(200)
                ]
            ),
            [true, true, true, false, false, true, false, true]
        );
    }

    #[test]
    fn the_answers_say_when_to_come_back() {
        let q = quota(10, 1000, 2);
        let now = 5_000_000;
        let (first, write) = gcra(None, now, &q, 1);
        assert!(first.allowed);
        assert_eq!((first.limit, first.remaining), (2, 1));
        assert_eq!(first.reset_after, Duration::from_millis(100));
        let Write::Store { tat, ttl } = write else {
            panic!("an allowed check stores")
        };
        assert_eq!((tat, ttl), (now + 100_000, Duration::from_millis(100)));
        let (second, write) = gcra(Some(tat), now, &q, 1);
        assert!(second.allowed && second.remaining == 0);
        let Write::Store { tat, .. } = write else {
            panic!()
        };
        let (third, write) = gcra(Some(tat), now, &q, 1);
        assert!(!third.allowed);
        assert_eq!(write, Write::None);
        assert_eq!(third.retry_after, Duration::from_millis(100));
        assert_eq!(third.reset_after, Duration::from_millis(200));
        // A cost-0 check peeks: allowed while the allowance lasts, no write.
        assert_eq!(gcra(None, now, &q, 0).1, Write::None);
        // A cost above the burst is never allowed.
        assert!(!gcra(None, now, &q, 3).0.allowed);
    }

    #[test]
    fn no_interval_of_any_length_allows_more_than_burst_plus_its_length() {
        // Requests every 7 ms for 10 s against 100/s, burst 5.
        let q = quota(100, 1000, 5);
        let times: Vec<u64> = (0..1430).map(|i| 1_000_000 + i * 7_000).collect();
        let allowed: Vec<u64> = times
            .iter()
            .zip(run(&q, &times))
            .filter(|(_, ok)| *ok)
            .map(|(t, _)| *t)
            .collect();
        for window_ms in [10u64, 100, 1000, 5000] {
            for (i, &from) in allowed.iter().enumerate() {
                let inside = allowed[i..]
                    .iter()
                    .take_while(|&&t| t < from + window_ms * 1000)
                    .count() as u64;
                assert!(inside <= 5 + window_ms / 10, "{inside} in {window_ms} ms");
            }
        }
        // And a steady caller gets the rate: 100/s over 10 s, plus the burst.
        assert!(
            (1000..=1005).contains(&(allowed.len() as u64)),
            "{}",
            allowed.len()
        );
    }
}
