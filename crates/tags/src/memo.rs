//! The view's memory of tag versions it read, each kept only under a
//! [`Watch`] from the cache below (`Cache::watch_now`: the tiered cache's
//! L1 hits), so that a tagged read whose tag version is known skips the
//! second lookup.
//!
//! Why it is exact: a kept version is used only while its watch holds,
//! and a watch holds only while a read of the version key would still
//! answer that version (for the tiered cache: no write, invalidation or
//! flush touched the key's slot since the version was read, L1 still
//! serves, and the L1 entry has not expired). A version kept late by a
//! slow reader carries its own, older watch, which has failed by then.
//! So the memo answers what the read it saves would have answered; caches
//! that give no watch (moka, Redis) never fill it.

use std::hash::BuildHasher;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use cache_port::Watch;

use crate::envelope::Version;

/// How many tags are kept at once (direct-mapped: a tag whose slot holds
/// another is read as before, and then takes the slot).
const SLOTS: usize = 256;

/// One kept version.
struct Kept {
    tag: Box<str>,
    version: Version,
    watch: Watch,
}

/// Tag versions kept under their watches.
pub(crate) struct VersionMemo {
    slots: Box<[ArcSwapOption<Kept>]>,
}

impl Default for VersionMemo {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| ArcSwapOption::empty()).collect(),
        }
    }
}

/// Hashed as bytes: a read looks a tag up by its stored bytes, before
/// (and, on a hit, without) checking them as UTF-8.
fn slot(tag: &[u8]) -> usize {
    rustc_hash::FxBuildHasher.hash_one(tag) as usize % SLOTS
}

impl VersionMemo {
    /// The version of the tag named by `tag` (its bytes as stored in an
    /// entry), if kept and its watch still holds. A kept name is UTF-8, so
    /// bytes equal to it are too.
    #[inline]
    pub fn get(&self, tag: &[u8]) -> Option<Version> {
        let kept = self.slots[slot(tag)].load();
        let kept = kept.as_ref()?;
        (kept.tag.as_bytes() == tag && kept.watch.holds()).then_some(kept.version)
    }

    /// Keeps `version` for `tag` while `watch` holds.
    pub fn keep(&self, tag: &str, version: Version, watch: Watch) {
        self.slots[slot(tag.as_bytes())].store(Some(Arc::new(Kept {
            tag: tag.into(),
            version,
            watch,
        })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cache_port::{Stamp, Watched};
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    struct Counter(AtomicU64);
    impl Watched for Counter {
        fn unchanged(&self, stamp: &Stamp) -> bool {
            self.0.load(SeqCst) == stamp.0[0]
        }
    }

    #[test]
    fn a_kept_version_answers_only_for_its_tag_and_while_its_watch_holds() {
        let memo = VersionMemo::default();
        let counter = Arc::new(Counter(AtomicU64::new(0)));
        let watch = |at| Watch::new(counter.clone(), Stamp([at, 0, 0]), None);
        assert_eq!(memo.get(b"a"), None);
        memo.keep("a", 7, watch(0));
        assert_eq!(memo.get(b"a"), Some(7));
        assert_eq!(memo.get(b"b"), None);
        counter.0.store(1, SeqCst);
        assert_eq!(memo.get(b"a"), None, "the watch no longer holds");
        memo.keep("a", 8, watch(1));
        assert_eq!(memo.get(b"a"), Some(8));
        // Two tags of one slot: the later takes it, the earlier is read again.
        let other = (0..10_000)
            .map(|i| format!("t{i}"))
            .find(|t| slot(t.as_bytes()) == slot(b"a") && t != "a")
            .unwrap();
        memo.keep(&other, 9, watch(1));
        assert_eq!(
            (memo.get(b"a"), memo.get(other.as_bytes())),
            (None, Some(9))
        );
    }
}
