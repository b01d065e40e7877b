//! What a load does: per-call options over the loader's defaults.

use std::time::Duration;

use cache_port::CacheError;

/// How a value is loaded and stored: per call, over the [`Loader`]'s
/// defaults (FusionCache's entry options are the model). Every option is off
/// until set; docs/LOADING.md has a runnable example of each.
///
/// ```
/// use std::time::Duration;
/// use cache_loading::{FailSafe, LoadOptions, StampedeLock};
///
/// let s = Duration::from_secs;
/// let options = LoadOptions::ttl(s(300))
///     .jitter(s(30))                              // expire within 300..=330 s
///     .negative_ttl(s(5))                         // remember "not found" for 5 s
///     .fail_safe(FailSafe::new(s(3600)).throttle(s(30))) // serve stale up to 1 h when loading fails
///     .soft_timeout(Duration::from_millis(100))   // answer stale after 100 ms; keep loading
///     .hard_timeout(s(2))                         // give up loading after 2 s
///     .eager_refresh(0.8)                         // refresh in the background after 240 s
///     .stampede_lock(StampedeLock::new(s(10), s(5))); // one loader per key across processes
/// assert_eq!(options.ttl, Some(s(300)));
/// ```
///
/// [`Loader`]: crate::Loader
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// How long a loaded value is fresh (`None`: for ever).
    pub ttl: Option<Duration>,
    /// A random extra of up to this much on each TTL (whole milliseconds,
    /// uniform), so that keys loaded together do not expire together.
    pub jitter: Duration,
    /// How long a "not found" (`None` from the loader of
    /// [`Loader::get_or_load_optional`](crate::Loader::get_or_load_optional))
    /// is remembered; `None`: not at all, every miss loads again.
    pub negative_ttl: Option<Duration>,
    /// Serve the last known value when loading fails; see [`FailSafe`].
    pub fail_safe: Option<FailSafe>,
    /// Past this, a caller that has a stale value (fail-safe) gets it, and
    /// the load goes on in the background and updates the cache. Callers
    /// without a stale value keep waiting (up to the hard timeout). Needs
    /// `fail_safe` (a `Config` error otherwise).
    pub soft_timeout: Option<Duration>,
    /// Past this, the load is abandoned: callers get the stale value if
    /// fail-safe has one, or [`LoadError::Timeout`](crate::LoadError::Timeout).
    pub hard_timeout: Option<Duration>,
    /// A read after this fraction of the TTL (in `(0, 1)`, e.g. 0.8) answers
    /// at once from the cache and starts one background refresh.
    pub eager_refresh: Option<f64>,
    /// Across processes sharing the store, one loader per key per expiry;
    /// see [`StampedeLock`].
    pub stampede_lock: Option<StampedeLock>,
}

impl LoadOptions {
    /// Values are fresh for `ttl`; every other option off.
    pub fn ttl(ttl: Duration) -> Self {
        Self {
            ttl: Some(ttl),
            ..Self::default()
        }
    }

    /// The same options with values fresh for `ttl` (`None`: for ever).
    pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.ttl = ttl;
        self
    }

    /// Adds up to `jitter` to each TTL.
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Remembers "not found" for `ttl`.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Serves stale values when loading fails, as `fail_safe` says.
    pub fn fail_safe(mut self, fail_safe: FailSafe) -> Self {
        self.fail_safe = Some(fail_safe);
        self
    }

    /// Answers from stale after `timeout`, loading on in the background.
    pub fn soft_timeout(mut self, timeout: Duration) -> Self {
        self.soft_timeout = Some(timeout);
        self
    }

    /// Abandons a load after `timeout`.
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = Some(timeout);
        self
    }

    /// Refreshes in the background once `fraction` of the TTL has passed.
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.eager_refresh = Some(fraction);
        self
    }

    /// Takes a lock in the store before loading, as `lock` says.
    pub fn stampede_lock(mut self, lock: StampedeLock) -> Self {
        self.stampede_lock = Some(lock);
        self
    }

    /// Refuses options that cannot mean anything, before any work.
    pub(crate) fn check(&self) -> Result<(), CacheError> {
        let bad = |message: String| Err(CacheError::Config { message });
        if let Some(fraction) = self.eager_refresh {
            if !(fraction > 0.0 && fraction < 1.0) {
                return bad(format!(
                    "eager_refresh is a fraction of the TTL strictly between 0 and 1, not {fraction}"
                ));
            }
        }
        for (name, timeout) in [
            ("soft_timeout", self.soft_timeout),
            ("hard_timeout", self.hard_timeout),
        ] {
            if timeout.is_some_and(|t| t.is_zero()) {
                return bad(format!("{name} must be longer than zero"));
            }
        }
        if self.soft_timeout.is_some() && self.fail_safe.is_none() {
            return bad(
                "soft_timeout needs fail_safe: it answers from a stale value, which only fail-safe keeps"
                    .into(),
            );
        }
        if let (Some(soft), Some(hard)) = (self.soft_timeout, self.hard_timeout) {
            if soft > hard {
                return bad(format!(
                    "soft_timeout ({soft:?}) is longer than hard_timeout ({hard:?}): it would never apply"
                ));
            }
        }
        if let Some(lock) = self.stampede_lock {
            if lock.ttl.as_millis() == 0 {
                return bad("the stampede lock's TTL must be at least one millisecond".into());
            }
        }
        Ok(())
    }

    /// Whether values are stored in an envelope (their logical expiry beside
    /// them): only when an option reads it back.
    pub(crate) fn sealed(&self) -> bool {
        self.fail_safe.is_some() || self.eager_refresh.is_some()
    }

    /// How long a loaded value is fresh: `ttl` plus its jitter.
    pub(crate) fn jittered_ttl(&self) -> Option<Duration> {
        let jitter_ms = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        self.ttl.map(|ttl| match jitter_ms {
            0 => ttl,
            max => ttl.saturating_add(Duration::from_millis(fastrand::u64(0..=max))),
        })
    }

    /// How long the store keeps a value fresh for `fresh_for`: longer by the
    /// fail-safe window, so that a stale value is there to serve.
    pub(crate) fn kept_for(&self, fresh_for: Option<Duration>) -> Option<Duration> {
        match (fresh_for, self.fail_safe) {
            (Some(fresh), Some(fail_safe)) => Some(fresh.saturating_add(fail_safe.max_stale)),
            (fresh, _) => fresh,
        }
    }
}

/// Fail-safe (FusionCache's `IsFailSafeEnabled`, `FailSafeMaxDuration`,
/// `FailSafeThrottleDuration`): when the loader fails or times out, or the
/// cache cannot be read, the last known value is served, up to `max_stale`
/// past its expiry, and marked [`Stale`](crate::Origin::Stale) for the
/// caller who asks. The store keeps each value `max_stale` longer than its
/// TTL so that it is there to serve; while the cache cannot be read, the
/// loader's own memory of the values it saw (see
/// [`LoaderBuilder::memory`](crate::LoaderBuilder::memory)) serves them.
/// After a failed load of a key, its loader is not called again for
/// `throttle`: callers get the stale value at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailSafe {
    /// How long past its expiry a value may still be served.
    pub max_stale: Duration,
    /// How long after a failed load the loader rests (default 30 s).
    pub throttle: Duration,
}

impl FailSafe {
    /// Stale values served up to `max_stale` past expiry; throttle 30 s.
    pub fn new(max_stale: Duration) -> Self {
        Self {
            max_stale,
            throttle: Duration::from_secs(30),
        }
    }

    /// After a failed load, rest the loader for `throttle`.
    pub fn throttle(mut self, throttle: Duration) -> Self {
        self.throttle = throttle;
        self
    }
}

/// The distributed stampede lock: before loading a key, a process takes
/// `<key>` + [`LOCK_SUFFIX`](crate::LOCK_SUFFIX) with `set_if_absent`, a
/// random token and a TTL, and releases it with `delete_if_equals` (only its
/// own token). The others poll the cache with backoff (5 ms doubling to
/// 200 ms) for the winner's value, for at most `wait`; past it they load
/// anyway (or serve stale), so a crashed owner delays them by `wait` at most.
/// A store error while taking the lock is not a failure: the load goes
/// ahead without the lock (the read before it succeeded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StampedeLock {
    /// How long the lock lives if its owner never releases it (a crash):
    /// longer than a load takes.
    pub ttl: Duration,
    /// How long the others wait for the owner's value before loading anyway.
    pub wait: Duration,
}

impl StampedeLock {
    /// A lock held at most `ttl`, waited for at most `wait`.
    pub fn new(ttl: Duration, wait: Duration) -> Self {
        Self { ttl, wait }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_port::ErrorKind;

    #[test]
    fn options_that_cannot_mean_anything_are_config_errors() {
        let ms = Duration::from_millis;
        for bad in [
            LoadOptions::default().eager_refresh(0.0),
            LoadOptions::default().eager_refresh(1.0),
            LoadOptions::default().eager_refresh(f64::NAN),
            LoadOptions::default().soft_timeout(ms(10)),
            LoadOptions::default()
                .fail_safe(FailSafe::new(ms(1)))
                .soft_timeout(ms(0)),
            LoadOptions::default().hard_timeout(ms(0)),
            LoadOptions::default()
                .soft_timeout(ms(20))
                .hard_timeout(ms(10)),
            LoadOptions::default()
                .stampede_lock(StampedeLock::new(Duration::from_micros(10), ms(1))),
        ] {
            assert_eq!(
                bad.check().unwrap_err().kind(),
                ErrorKind::Config,
                "{bad:?}"
            );
        }
        assert!(LoadOptions::ttl(ms(10)).eager_refresh(0.5).check().is_ok());
    }

    #[test]
    fn the_store_keeps_values_for_the_fail_safe_window_too() {
        let s = Duration::from_secs;
        let options = LoadOptions::ttl(s(60)).fail_safe(FailSafe::new(s(600)));
        assert_eq!(options.kept_for(Some(s(60))), Some(s(660)));
        assert_eq!(options.kept_for(None), None);
        assert_eq!(LoadOptions::ttl(s(60)).kept_for(Some(s(60))), Some(s(60)));
        assert!(options.sealed());
        assert!(!LoadOptions::ttl(s(1)).sealed());
    }
}
