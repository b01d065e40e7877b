//! [`RateLimiter`]: a quota per subject over any cache.

use std::sync::Arc;

use cache_keyspace::{KeyPart, KeyRule};
use cache_port::{Cache, Decision, Limit, Result};

/// Limits each subject to a [`Limit`]: a `Quota` (GCRA) or a `Window`
/// (an exact sliding window), through `Cache::throttle`.
///
/// A subject's key is `{name}:{subject}` (the subject escaped as a
/// keyspace escapes ids, so no subject reaches another's key or picks a
/// Cluster slot); it holds the subject's schedule and expires when the
/// subject's allowance is full again, so idle subjects cost nothing.
///
/// Clocks: on Redis the server's clock decides (`TIME` inside the script),
/// so any number of processes with skewed clocks share one exact limit. In
/// process the machine's clock decides; a step back of the clock delays
/// requests by the step at most (a schedule in the future waits for it), a
/// step forward refills early.
#[derive(Clone)]
pub struct RateLimiter {
    cache: Arc<dyn Cache>,
    rule: KeyRule,
    limit: Limit,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.rule.name())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl RateLimiter {
    /// A limiter of `limit` (a `Quota` or a `Window`) per subject under
    /// `name` (a namespace: non-empty segments joined by `:`; anything else
    /// is an `InvalidKey` error).
    pub fn new(cache: Arc<dyn Cache>, name: &str, limit: impl Into<Limit>) -> Result<Self> {
        Ok(Self {
            cache,
            rule: KeyRule::new(name)?,
            limit: limit.into(),
        })
    }

    /// The limit.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// The key of `subject`.
    pub fn key<S: KeyPart + ?Sized>(&self, subject: &S) -> Result<String> {
        self.rule.key(subject)
    }

    /// Counts one request of `subject`: allowed (and counted) or not, with
    /// what remains, when to retry and when the allowance is full again.
    pub async fn check<S: KeyPart + ?Sized>(&self, subject: &S) -> Result<Decision> {
        self.check_n(subject, 1).await
    }

    /// Counts a request of `cost` (a batch of `cost` items, say): allowed
    /// only as a whole; a cost above the burst (or the window's limit) is
    /// never allowed.
    pub async fn check_n<S: KeyPart + ?Sized>(&self, subject: &S, cost: u32) -> Result<Decision> {
        let key = self.key(subject)?;
        self.cache.throttle(&key, self.limit, cost).await
    }

    /// What a check would answer now, counting nothing.
    pub async fn peek<S: KeyPart + ?Sized>(&self, subject: &S) -> Result<Decision> {
        self.check_n(subject, 0).await
    }

    /// Gives `subject` its whole allowance back; says whether it had used
    /// any.
    pub async fn reset<S: KeyPart + ?Sized>(&self, subject: &S) -> Result<bool> {
        self.cache.delete(&self.key(subject)?).await
    }
}
