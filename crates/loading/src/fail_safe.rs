//! Fail-safe: how long a value past its expiry may still be served, and the
//! last known values a loader remembers for when the cache cannot be read.

use std::time::SystemTime;

use cache_port::typed::envelope::Opened;
use cache_port::typed::Codec;

use crate::loader::Inner;
use crate::options::LoadOptions;

impl<E> Inner<E> {
    /// Remembers a value read from the cache, for fail-safe calls.
    pub(crate) fn remember(&self, key: &str, opened: &Opened, options: LoadOptions) {
        if let Some(fail_safe) = options.fail_safe {
            let until = opened
                .expires_at()
                .map_or(far_future(), |at| at + fail_safe.max_stale);
            self.memory.remember(key, &opened.payload, until);
        }
    }

    /// The last known value of `key`, for a fail-safe call.
    pub(crate) fn recall<T>(
        &self,
        key: &str,
        options: LoadOptions,
        codec: &impl Codec<T>,
        now: SystemTime,
    ) -> Option<T> {
        options.fail_safe?;
        codec.decode(&self.memory.recall(key, now)?).ok()
    }
}

/// A moment no value outlives.
pub(crate) fn far_future() -> SystemTime {
    SystemTime::now() + cache_port::MAX_TTL
}

/// Whether a value past its expiry may still be served by `options`'s
/// fail-safe at `now`.
pub(crate) fn within_fail_safe(opened: &Opened, options: LoadOptions, now: SystemTime) -> bool {
    match (options.fail_safe, opened.expires_at()) {
        (Some(fail_safe), Some(at)) => now < at + fail_safe.max_stale,
        _ => false,
    }
}
