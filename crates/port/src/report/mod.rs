//! What every crate of the toolkit uses to report a failure it does not
//! return: the log target, a throttle that keeps an outage from flooding the
//! logs, and the digest that stands for a key in a log line.
//!
//! They live in the port, below every other crate, because the port itself
//! reports: [`CacheExt::get_or_load`](crate::CacheExt::get_or_load) counts
//! (and, with the `tracing` feature, logs) values that no longer decode and
//! loaded values it could not store. None of them needs a dependency.

mod throttle;

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};

pub use throttle::LogThrottle;

/// The `tracing` target of every span and event of the toolkit: `cache`
/// (`RUST_LOG=cache=debug` shows them all).
pub const TARGET: &str = "cache";

/// A stable 64-bit digest of `key`, as 16 hex digits: SipHash with fixed
/// keys (std's `DefaultHasher`), the same in every process and run.
/// Not a secret-keeping hash: it hides a key from a reader of the logs, not
/// from someone who can guess the key and hash the guess.
pub fn key_digest(key: &str) -> String {
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_stable_and_hides_the_key() {
        let digest = key_digest("user:alice@example.com");
        assert_eq!(digest.len(), 16);
        assert!(!digest.contains("alice"));
        assert_eq!(digest, key_digest("user:alice@example.com"));
        assert_ne!(digest, key_digest("user:bob@example.com"));
    }
}
