//! The loader's memory of last known values, for fail-safe.
//!
//! When the cache itself cannot be read (Redis is down), the stale value is
//! not there to serve: it is in Redis. So a loader with fail-safe calls keeps
//! the last value it saw of each key in process memory, bounded in entries
//! (quick_cache's S3-FIFO: a burst of one-off keys does not flush the hot
//! ones), and serves from it only when a read or a load fails. It also
//! remembers, per key, until when a failed loader rests (the throttle).

use std::time::{Instant, SystemTime};

use bytes::Bytes;

/// What is remembered of one key.
#[derive(Clone)]
struct Remembered {
    /// The value's encoded bytes (no envelope).
    payload: Bytes,
    /// Past this the value is too stale to serve.
    usable_until: SystemTime,
    /// Until when a failed loader of this key rests.
    resting_until: Option<Instant>,
}

/// Last known values by key.
pub(crate) struct Memory {
    entries: quick_cache::sync::Cache<String, Remembered>,
}

impl Memory {
    /// Remembers up to `capacity` keys (0: none).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// Remembers `payload` as the value of `key`, usable until `until`; a
    /// throttle in force stays.
    pub fn remember(&self, key: &str, payload: &Bytes, until: SystemTime) {
        let resting_until = self.entries.get(key).and_then(|r| r.resting_until);
        self.entries.insert(
            key.to_owned(),
            Remembered {
                payload: payload.clone(),
                usable_until: until,
                resting_until,
            },
        );
    }

    /// The last known value of `key`, if still usable at `now`.
    pub fn recall(&self, key: &str, now: SystemTime) -> Option<Bytes> {
        self.entries
            .get(key)
            .filter(|r| now < r.usable_until)
            .map(|r| r.payload)
    }

    /// Rests the loader of `key` until `until`.
    pub fn rest(&self, key: &str, until: Instant) {
        if let Some(mut r) = self.entries.get(key) {
            r.resting_until = Some(until);
            self.entries.insert(key.to_owned(), r);
        }
    }

    /// Whether the loader of `key` rests at `now`.
    pub fn resting(&self, key: &str, now: Instant) -> bool {
        self.entries
            .get(key)
            .and_then(|r| r.resting_until)
            .is_some_and(|until| now < until)
    }

    /// Ends the rest of `key`'s loader (it succeeded).
    pub fn wake(&self, key: &str) {
        if let Some(mut r) = self.entries.get(key) {
            if r.resting_until.take().is_some() {
                self.entries.insert(key.to_owned(), r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_value_is_recalled_until_it_is_too_stale() {
        let memory = Memory::new(10);
        let now = SystemTime::now();
        memory.remember("k", &Bytes::from_static(b"v"), now + Duration::from_secs(1));
        assert_eq!(memory.recall("k", now), Some(Bytes::from_static(b"v")));
        assert_eq!(memory.recall("k", now + Duration::from_secs(1)), None);
        assert_eq!(memory.recall("other", now), None);
    }

    #[test]
    fn a_rest_survives_a_new_value_and_ends_when_woken() {
        let memory = Memory::new(10);
        let (now, later) = (SystemTime::now(), Instant::now() + Duration::from_secs(60));
        memory.remember(
            "k",
            &Bytes::from_static(b"v1"),
            now + Duration::from_secs(9),
        );
        memory.rest("k", later);
        memory.remember(
            "k",
            &Bytes::from_static(b"v2"),
            now + Duration::from_secs(9),
        );
        assert!(memory.resting("k", Instant::now()));
        assert!(!memory.resting("k", later));
        memory.wake("k");
        assert!(!memory.resting("k", Instant::now()));
    }

    #[test]
    fn memory_is_bounded() {
        let memory = Memory::new(100);
        let until = SystemTime::now() + Duration::from_secs(60);
        for i in 0..10_000 {
            memory.remember(&i.to_string(), &Bytes::new(), until);
        }
        assert!(
            memory.entries.len() <= 100,
            "{} entries",
            memory.entries.len()
        );
    }
}
