//! Tags over any cache port: write entries with tags, then invalidate every
//! entry of a tag with **one write**, whatever their number, with **no
//! clock** and **single-key commands only** (so it works on Redis Cluster,
//! where a per-tag set would hold keys of many hash slots).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use cache_port::Cache;
//! use cache_tags::TaggedCache;
//!
//! let cache: Arc<dyn Cache> = Arc::new(cache_moka::MokaConfig::default().build().unwrap());
//! let tagged = TaggedCache::new(cache);
//! let page = Bytes::from_static(b"<html>product 7</html>");
//! tagged.set("page:/p/7", page.clone(), None, &["product:7"]).await.unwrap();
//! tagged.set("page:/list", Bytes::from_static(b"..."), None, &["product:7", "list"]).await.unwrap();
//! assert_eq!(tagged.get("page:/p/7").await.unwrap(), Some(page));
//!
//! tagged.delete_by_tag("product:7").await.unwrap(); // one write
//! assert_eq!(tagged.get("page:/p/7").await.unwrap(), None);
//! assert_eq!(tagged.get("page:/list").await.unwrap(), None);
//! # });
//! ```
//!
//! # How
//!
//! Each tag has a **version**, a random 64-bit number in an ordinary key
//! (`__tag:<tag>` by default, [`TagKeys`]). An entry written with tags
//! stores the versions its tags had when it was written, in a small header
//! before the value. A read compares them with the versions now (one
//! `get_many` for every tag of every entry read); any that moved on makes
//! the entry a miss, and the read removes it (`delete_if_equals`, so a
//! value written meanwhile stays). [`TaggedCache::delete_by_tag`] writes a
//! fresh random version: one `set`, nothing else. No machine's clock takes
//! part (FusionCache's timestamp markers compared clocks of different
//! machines, and a wrong one expired entries cluster-wide: FusionCache
//! #627).
//!
//! # Rules (docs/CONTRACT.md, "Tags")
//!
//! - An entry written **before** `delete_by_tag(t)` was called is never
//!   read after it returns (if it carries `t`).
//! - A write that **began after** `delete_by_tag(t)` returned is read back
//!   (until the next invalidation of one of its tags).
//! - A write that **overlaps** the call may be read or not.
//! - On a tiered cache the versions are ordinary keys, so the tiered
//!   cache's invalidation covers them: the rules hold on every instance
//!   within the tiered cache's staleness bound.
//! - A version that is lost (evicted, deleted, flushed) makes its entries
//!   misses, never stale hits: no entry recorded the version a lost one is
//!   recreated with. The chance that a fresh version equals a recorded one
//!   is 2^-64 per comparison.
//!
//! # Costs
//!
//! - An entry with no tags is stored as given and read with no extra read
//!   (a value that starts with the bytes `0xC1 'T'`, as a tagged entry
//!   does, gets a 4-byte header).
//! - A tagged entry: 4 bytes, plus 9 bytes and the tag's name per tag;
//!   one extra read per read and per write (a `get` for one tag, which
//!   Redis coalesces with concurrent `get`s; one `get_many` for more), and
//!   none on a tiered cache while the versions are in its L1.
//! - On Redis, a one-tag `get` of a key the view has read before asks for
//!   the entry and its tag's version in one `get_many` (one round trip,
//!   one `MGET` coalesced with others): the view remembers the tag each
//!   key's entry carried (about 290 KiB per view and its clones, allocated
//!   on the first such read). The version counts only if the entry turns
//!   out to carry that tag and to have recorded that version; otherwise it
//!   is read again after the entry, as for a key never read.
//! - On a tiered cache a one-tag `get` does not even look the version up
//!   again: the view keeps each tag's version it read from L1 under a
//!   `cache_port::Watch` (`Cache::watch_now`), which holds only while a
//!   read of the version would still answer it (no write, invalidation or
//!   flush of its slot since, L1 serving, its L1 entry unexpired), so the
//!   kept version is the one the skipped read would have given. 256 tags
//!   are kept per view (and its clones); caches that give no watch (moka,
//!   Redis) read the version every time.
//! - A tag: one key, `__tag:` and its name, holding 16 bytes, with no TTL.
//!   Invalidated entries are not kept: they expire with their TTL, and a
//!   read that finds one removes it.

mod as_cache;
mod envelope;
mod hints;
mod memo;
mod one_key;
mod tag;
mod tagged;

pub use as_cache::{by_value, TagRule};
pub use envelope::Version;
pub use tag::{Tag, TagKeys, MAX_TAGS_PER_ENTRY, MAX_TAG_LEN};
pub use tagged::TaggedCache;
