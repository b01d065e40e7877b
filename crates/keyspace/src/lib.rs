//! Typed keyspaces over any cache port: one entity's ids and values, keys
//! built one way, a codec chosen once, compression and schema versions in
//! a stored header.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::time::Duration;
//! use cache_keyspace::{Json, Keyspace};
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Listing { ids: Vec<u64> }
//!
//! let cache: std::sync::Arc<dyn cache_port::Cache> =
//!     std::sync::Arc::new(cache_moka::MokaConfig::default().build().unwrap()); // any adapter
//! let listings = Keyspace::<str, Listing>::builder(cache.clone(), "shop:listing")
//!     .codec(Json)            // readable by `redis-cli` and other languages
//!     .compress_above(4096)   // lz4 past 4 KiB, marked in the header
//!     .schema(2)              // read older versions; `oldest_readable` retires them
//!     .ttl(Duration::from_secs(60))
//!     .build()
//!     .unwrap();
//!
//! let big = Listing { ids: (0..2000).collect() };
//! listings.set("lamps", &big).await.unwrap();
//! assert_eq!(listings.get("lamps").await.unwrap().unwrap(), big);
//! // Stored compressed, with a header saying so.
//! let stored = cache.get("shop:listing:lamps").await.unwrap().unwrap();
//! let header = cache_keyspace::inspect(&stored).unwrap().unwrap();
//! assert_eq!(header.schema, 2);
//! assert!(header.decompressed_len.unwrap() > stored.len());
//! # });
//! ```
//!
//! - [`KeyRule`]: `{name}[:v{n}]:{id}`; ids escaped so that none reaches
//!   another entity's keys ([`escape_id`]); list keys from a hashed query.
//! - Codecs: [`MsgPack`] (default; what `CacheExt::set_typed` and the
//!   loader write), [`Json`], [`RawBytes`], [`Utf8`], or your own
//!   ([`Codec`] + [`Named`]).
//! - [`Framed`]: the header with the codec, lz4 compression and the schema
//!   version; values that need no header are stored bare, so existing
//!   entries and other languages' JSON read as they are.
//! - [`Keyspace`]: `get`, `set`, `delete`, `exists`, `get_many`,
//!   `exists_many`, `set_many`, `delete_all`, `get_or_load` (through a
//!   `cache_loading::Loader`, with the keyspace's codec).
//!
//! docs/KEYSPACES.md has the rules, the measured costs, and the choice of
//! lz4 over zstd.

mod codecs;
mod frame;
mod key;
mod keyspace;

pub use cache_port::typed::Codec;
pub use codecs::{CodecId, Json, MsgPack, Named, RawBytes, Utf8};
pub use frame::{
    frame_error, inspect, FrameError, Framed, Framing, HeaderInfo, DEFAULT_MAX_DECODED_LEN,
};
pub use key::{escape_id, unescape_id, KeyPart, KeyRule, KeyWriter};
pub use keyspace::{BoxError, Keyspace, KeyspaceBuilder};

/// docs/KEYSPACES.md, whose examples run as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/KEYSPACES.md")]
pub struct KeyspacesDoc;
