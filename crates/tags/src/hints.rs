//! Which tag a key's entry carried when the view last read it, so that the
//! next read of the key asks for the entry and its tag's version at once:
//! one round trip to Redis where a tagged read took two (the entry, then
//! its tag's version).
//!
//! A hint is only a guess, checked before it is used: the version read
//! with the entry counts only if the entry turns out to carry that very
//! tag, and only if it equals the version the entry recorded. Then it is
//! what the read after the entry would have found (the argument is in
//! `TaggedCache::get`). Anything else (no hint, another tag, another
//! version) goes the two-step way, as before, so a wrong or lost hint
//! costs one key read more, never a wrong answer.
//!
//! Space, allocated on the first hint (views over moka or a tiered cache
//! answer from memory and never make one): 65,536 key slots of 4 bytes (a
//! key is remembered in one of two slots, so that 10,000 keys nearly all
//! fit) and 4,096 tag-name slots of 8 bytes and the name: about 290 KiB.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwapOption;

/// Key slots: a power of two.
const KEY_SLOTS: usize = 1 << 16;
/// Tag-name slots: a power of two; a key slot names one in its low bits.
const NAME_BITS: u32 = 12;
const NAME_SLOTS: usize = 1 << NAME_BITS;

/// One remembered tag name.
struct Name(Box<str>);

struct Tables {
    /// `fingerprint << NAME_BITS | name slot`; 0 is empty (a fingerprint
    /// is never 0).
    keys: Box<[AtomicU32]>,
    names: Box<[ArcSwapOption<Name>]>,
}

/// The tags keys' entries carried when last read; see the module docs.
#[derive(Default)]
pub(crate) struct TagHints {
    tables: OnceLock<Tables>,
}

/// A string's hash, mixed so that every bit depends on every input bit
/// (FxHash alone leaves its low bits weak, and both slots and the
/// fingerprint come from one hash).
fn hash(text: &str) -> u64 {
    let mut h = rustc_hash::FxBuildHasher.hash_one(text);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A key's two slots and its fingerprint (never 0).
fn places(key: &str) -> ([usize; 2], u32) {
    let h = hash(key);
    let mask = KEY_SLOTS as u64 - 1;
    let slots = [(h & mask) as usize, ((h >> 16) & mask) as usize];
    let fingerprint = ((h >> (64 - (32 - NAME_BITS))) as u32).max(1);
    (slots, fingerprint)
}

fn name_slot(tag: &str) -> u32 {
    (hash(tag) as u32) & (NAME_SLOTS as u32 - 1)
}

impl Tables {
    fn new() -> Self {
        Self {
            keys: (0..KEY_SLOTS).map(|_| AtomicU32::new(0)).collect(),
            names: (0..NAME_SLOTS).map(|_| ArcSwapOption::empty()).collect(),
        }
    }
}

impl TagHints {
    /// `with(tag)` of the tag `key`'s entry carried when last read, if
    /// remembered (the name is lent, not copied: the caller builds the
    /// one string it needs from it).
    pub fn with_tag_of<R>(&self, key: &str, with: impl FnOnce(&str) -> R) -> Option<R> {
        let tables = self.tables.get()?;
        let (slots, fingerprint) = places(key);
        let held = slots
            .iter()
            .map(|&slot| tables.keys[slot].load(Relaxed))
            .find(|held| held >> NAME_BITS == fingerprint)?;
        let name = tables.names[(held & (NAME_SLOTS as u32 - 1)) as usize].load();
        name.as_ref().map(|name| with(&name.0))
    }

    /// Remembers that `key`'s entry carries the one tag `tag`.
    pub fn remember(&self, key: &str, tag: &str) {
        let tables = self.tables.get_or_init(Tables::new);
        let name = name_slot(tag);
        let names = &tables.names[name as usize];
        // Stored only when it changes: a hot tag's slot is read by every
        // read of its keys, and a store would move its cache line.
        if names.load().as_ref().is_none_or(|held| &*held.0 != tag) {
            names.store(Some(Arc::new(Name(tag.into()))));
        }
        let (slots, fingerprint) = places(key);
        let wanted = fingerprint << NAME_BITS | name;
        let held = slots.map(|slot| tables.keys[slot].load(Relaxed));
        if held.contains(&wanted) {
            return;
        }
        // This key's own slot (another tag), else an empty one, else the
        // second (the first choice is kept for keys that found it empty).
        let pick = held
            .iter()
            .position(|&h| h >> NAME_BITS == fingerprint)
            .or_else(|| held.iter().position(|&h| h == 0))
            .unwrap_or(1);
        tables.keys[slots[pick]].store(wanted, Relaxed);
    }

    /// Forgets `key` (its entry no longer carries one tag).
    pub fn forget(&self, key: &str) {
        let Some(tables) = self.tables.get() else {
            return;
        };
        let (slots, fingerprint) = places(key);
        for slot in slots {
            let held = tables.keys[slot].load(Relaxed);
            if held >> NAME_BITS == fingerprint {
                let _ = tables.keys[slot].compare_exchange(held, 0, Relaxed, Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_tag_is_given_back_until_forgotten_or_replaced() {
        let hints = TagHints::default();
        assert_eq!(hints.with_tag_of("k", str::to_owned), None);
        hints.remember("k", "product:7");
        assert_eq!(
            hints.with_tag_of("k", str::to_owned).as_deref(),
            Some("product:7")
        );
        assert_eq!(hints.with_tag_of("other", str::to_owned), None);
        hints.remember("k", "list");
        assert_eq!(
            hints.with_tag_of("k", str::to_owned).as_deref(),
            Some("list")
        );
        hints.forget("k");
        assert_eq!(hints.with_tag_of("k", str::to_owned), None);
    }

    /// 10,000 keys in 65,536 slots with two choices: nearly all kept.
    #[test]
    fn ten_thousand_keys_nearly_all_fit() {
        let hints = TagHints::default();
        let keys: Vec<String> = (0..10_000).map(|i| format!("tagged:{i}")).collect();
        for key in &keys {
            hints.remember(key, "product:7");
        }
        let kept = keys
            .iter()
            .filter(|k| hints.with_tag_of(k, str::to_owned).is_some())
            .count();
        println!("{kept} of 10,000 keys kept");
        assert!(kept >= 9_700, "{kept} of 10,000 kept");
    }
}
