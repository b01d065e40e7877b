//! The distributed stampede lock: one loader per key across processes.
//!
//! `set_if_absent(<key>#stampede-lock, <random token>, ttl)` takes it;
//! `delete_if_equals(<lock key>, <token>)` releases it, and only the owner's
//! token does (a lock that expired under a slow owner and was taken by
//! another process is not released by the first). The others poll the cache
//! for the owner's value with backoff, for a bounded time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use cache_port::{Cache, CacheError, MAX_KEY_LEN};

use crate::options::StampedeLock;

/// Appended to a key to name its lock. Keys too long to take it are locked
/// under `stampede-lock#<hash of the key>` instead.
pub const LOCK_SUFFIX: &str = "#stampede-lock";

/// The first poll comes after this; each next one after twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest pause between two polls.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// How taking the lock ended.
pub(crate) enum Taken {
    /// This process owns the lock and loads.
    Owner(Guard),
    /// Another process loaded meanwhile: its value as stored.
    Found(Bytes),
    /// Nobody delivered within the wait: load without the lock.
    GaveUp,
}

/// The name of `key`'s lock.
pub(crate) fn lock_key(key: &str) -> String {
    if key.len() + LOCK_SUFFIX.len() <= MAX_KEY_LEN {
        return format!("{key}{LOCK_SUFFIX}");
    }
    // FNV-1a, 64 bits twice with different offsets: stable across
    // processes and builds, unlike std's hasher.
    let fnv = |offset: u64| {
        key.bytes().fold(offset, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "stampede-lock#{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

/// Takes `key`'s lock, or waits (bounded) for its owner's value, which
/// `usable` accepts. A lock the store refuses to take (an error) is given
/// up on: the load goes ahead without it.
pub(crate) async fn take(
    cache: &Arc<dyn Cache>,
    key: &str,
    lock: StampedeLock,
    usable: impl Fn(&Bytes) -> bool,
) -> Result<Taken, CacheError> {
    let name = lock_key(key);
    let token = Bytes::from(format!("{:032x}", fastrand::u128(..)));
    let deadline = Instant::now() + lock.wait;
    let mut backoff = FIRST_BACKOFF;
    loop {
        let taken = match cache
            .set_if_absent(&name, token.clone(), Some(lock.ttl))
            .await
        {
            Ok(taken) => taken,
            // The read before this succeeded (or was failed open by the
            // caller's choice): a lock that cannot be taken must not stop
            // the load. (An `OutcomeUnknown` may have taken it: then it
            // expires by its TTL.)
            Err(error) => {
                tracing::debug!(lock = name, %error, "stampede lock unavailable; loading without it");
                return Ok(Taken::GaveUp);
            }
        };
        if taken {
            return Ok(Taken::Owner(Guard {
                cache: Arc::clone(cache),
                name,
                token: Some(token),
            }));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Taken::GaveUp);
        }
        tokio::time::sleep_until((now + backoff).min(deadline)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
        if let Some(stored) = cache.get(key).await? {
            if usable(&stored) {
                return Ok(Taken::Found(stored));
            }
        }
    }
}

/// An owned lock. Release it with [`release`](Guard::release); dropped
/// unreleased (the load was cancelled), it is released in the background,
/// and failing that it expires by its TTL.
pub(crate) struct Guard {
    cache: Arc<dyn Cache>,
    name: String,
    token: Option<Bytes>,
}

impl Guard {
    /// Releases the lock if it is still this owner's.
    pub async fn release(mut self) {
        if let Some(token) = self.token.take() {
            release(&*self.cache, &self.name, token).await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let (Some(token), Ok(runtime)) =
            (self.token.take(), tokio::runtime::Handle::try_current())
        {
            let (cache, name) = (Arc::clone(&self.cache), std::mem::take(&mut self.name));
            runtime.spawn(async move { release(&*cache, &name, token).await });
        }
    }
}

async fn release(cache: &dyn Cache, name: &str, token: Bytes) {
    if let Err(error) = cache.delete_if_equals(name, token).await {
        tracing::debug!(lock = name, %error, "stampede lock not released; it expires by its TTL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_valid_lock_key() {
        assert_eq!(lock_key("product:7"), "product:7#stampede-lock");
        let long = "k".repeat(MAX_KEY_LEN);
        let other = format!("{}j", "k".repeat(MAX_KEY_LEN - 1));
        for key in [&long, &other] {
            let name = lock_key(key);
            assert!(name.len() <= MAX_KEY_LEN, "{name}");
            assert!(name.starts_with("stampede-lock#"));
        }
        assert_ne!(lock_key(&long), lock_key(&other));
        assert_eq!(lock_key(&long), lock_key(&long.clone()));
    }
}
