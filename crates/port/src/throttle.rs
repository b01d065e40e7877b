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

/// What a check does to the subject's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Nothing (a denial, or a check of cost 0).
    None,
    /// Store `value` for `ttl`.
    Store {
        /// The new state: GCRA's TAT, or a window's timestamps, as text.
        value: String,
        /// Until the allowance is full again (at least 1 ms).
        ttl: Duration,
    },
}

/// The most requests a [`Window`] may allow: its state holds one
/// timestamp per request (about 17 bytes each).
pub const MAX_WINDOW_LIMIT: u32 = 10_000;

/// A sliding window: at most `limit` requests in any window of length
/// `window`, counted exactly (a log of the allowed requests' times, not
/// two fixed windows weighted).
///
/// ```
/// use std::time::Duration;
/// use cache_port::throttle::Window;
///
/// let window = Window::new(100, Duration::from_secs(60)).unwrap();
/// assert_eq!(window.limit(), 100);
/// assert!(Window::new(0, Duration::from_secs(1)).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    limit: u32,
    window: Duration,
}

impl Window {
    /// At most `limit` (1 to [`MAX_WINDOW_LIMIT`]) requests in any `window`
    /// (1 ms to [`MAX_TTL`]); anything else is a `Config` error.
    pub fn new(limit: u32, window: Duration) -> Result<Self> {
        if limit == 0 || limit > MAX_WINDOW_LIMIT {
            return Err(config(
                "a window's limit is from 1 to MAX_WINDOW_LIMIT (10,000)",
            ));
        }
        if window < Duration::from_millis(1) || window > MAX_TTL {
            return Err(config("a window is from 1 ms to MAX_TTL long"));
        }
        Ok(Self { limit, window })
    }

    /// Requests allowed in any window.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The window in whole microseconds.
    pub fn window_micros(&self) -> u64 {
        self.window.as_micros().min(u128::from(u64::MAX)) as u64
    }
}

/// A rate limit of either kind, as [`Cache::throttle`](crate::Cache::throttle) takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// GCRA: smooth, with a burst.
    Gcra(Quota),
    /// A sliding window, counted exactly.
    Window(Window),
}

impl From<Quota> for Limit {
    fn from(quota: Quota) -> Self {
        Limit::Gcra(quota)
    }
}

impl From<Window> for Limit {
    fn from(window: Window) -> Self {
        Limit::Window(window)
    }
}

impl Limit {
    /// One check of cost `cost` at `now` (µs since the epoch) against the
    /// stored state (`None`: no key); a state this limit cannot read is a
    /// `NotAnInteger` error.
    pub fn check(&self, stored: Option<&[u8]>, now: u64, cost: u32) -> Result<(Decision, Write)> {
        match self {
            Limit::Gcra(quota) => {
                let tat = match stored {
                    None => None,
                    Some(bytes) => Some(parse_micros(bytes).ok_or(CacheError::NotAnInteger)?),
                };
                Ok(gcra(tat, now, quota, cost))
            }
            Limit::Window(window) => sliding_window(stored, now, window, cost),
        }
    }

    /// The most requests allowed at once (GCRA's burst, a window's limit).
    pub fn max_burst(&self) -> u32 {
        match self {
            Limit::Gcra(quota) => quota.max_burst(),
            Limit::Window(window) => window.limit(),
        }
    }
}

/// A decimal count of microseconds, digits only.
fn parse_micros(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// One sliding-window check: the stored state is the allowed requests'
/// times (decimal µs, comma-separated); those that left the window are
/// dropped, and the request is allowed if the rest and its cost fit the
/// limit. The Redis script is a line-by-line transcription.
pub fn sliding_window(
    stored: Option<&[u8]>,
    now: u64,
    window: &Window,
    cost: u32,
) -> Result<(Decision, Write)> {
    let w = window.window_micros();
    let mut kept: Vec<u64> = Vec::new();
    if let Some(bytes) = stored {
        for part in bytes.split(|b| *b == b',') {
            let at = parse_micros(part).ok_or(CacheError::NotAnInteger)?;
            if at.saturating_add(w) > now {
                kept.push(at);
            }
        }
    }
    kept.sort_unstable();
    let (limit, count, cost_n) = (window.limit as usize, kept.len(), cost as usize);
    let until_gone = |at: u64| Duration::from_micros(at.saturating_add(w).saturating_sub(now));
    if count + cost_n <= limit {
        let write = if cost == 0 {
            Write::None
        } else {
            kept.extend(std::iter::repeat_n(now, cost_n));
            let value = kept
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            Write::Store {
                value,
                ttl: window.window,
            }
        };
        let decision = Decision {
            allowed: true,
            limit: window.limit,
            remaining: (limit - count - cost_n) as u32,
            retry_after: Duration::ZERO,
            reset_after: kept.last().map_or(Duration::ZERO, |at| until_gone(*at)),
        };
        return Ok((decision, write));
    }
    let need = count + cost_n - limit;
    let reset_after = kept.last().map_or(Duration::ZERO, |at| until_gone(*at));
    let decision = Decision {
        allowed: false,
        limit: window.limit,
        remaining: limit.saturating_sub(count) as u32,
        // It fits once its `need` oldest have left the window (a cost above
        // the limit never fits: then, when all have).
        retry_after: if need <= count {
            until_gone(kept[need - 1])
        } else {
            reset_after
        },
        reset_after,
    };
    Ok((decision, Write::None))
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
                value: new.to_string(),
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
                if let Write::Store { value, .. } = write {
                    tat = Some(value.parse().unwrap());
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
        let Write::Store { value, ttl } = write else {
            panic!("an allowed check stores")
        };
        let tat: u64 = value.parse().unwrap();
        assert_eq!((tat, ttl), (now + 100_000, Duration::from_millis(100)));
        let (second, write) = gcra(Some(tat), now, &q, 1);
        assert!(second.allowed && second.remaining == 0);
        let Write::Store { value, .. } = write else {
            panic!()
        };
        let tat: u64 = value.parse().unwrap();
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

    #[test]
    fn a_window_allows_its_limit_in_any_window_and_no_more() {
        let w = Window::new(3, Duration::from_millis(300)).unwrap();
        let mut stored: Option<String> = None;
        let mut at = |ms: u64| {
            let (decision, write) =
                sliding_window(stored.as_deref().map(str::as_bytes), ms * 1000, &w, 1).unwrap();
            if let Write::Store { value, .. } = write {
                stored = Some(value);
            }
            decision
        };
        assert!(at(0).allowed && at(100).allowed && at(200).allowed);
        let denied = at(250);
        assert!(!denied.allowed);
        // The oldest (at 0) leaves at 300.
        assert_eq!(denied.retry_after, Duration::from_millis(50));
        assert_eq!(denied.reset_after, Duration::from_millis(250));
        // No fixed window's edge: at 299 the three are still inside.
        assert!(!at(299).allowed);
        assert!(at(300).allowed);
        assert!(!at(350).allowed);
        assert!(at(400).allowed);
    }

    #[test]
    fn a_window_state_that_is_not_timestamps_is_refused() {
        let w = Window::new(3, Duration::from_secs(1)).unwrap();
        for bad in [&b"x"[..], b"1,-2", b"1.5", b"1,,2"] {
            assert_eq!(
                sliding_window(Some(bad), 10, &w, 1).unwrap_err().kind(),
                crate::ErrorKind::NotAnInteger
            );
        }
        assert!(Window::new(MAX_WINDOW_LIMIT + 1, Duration::from_secs(1)).is_err());
    }
}
