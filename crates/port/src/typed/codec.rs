//! [`Codec`]: how a typed value becomes the bytes a cache stores, and back.
//!
//! The port stores bytes; everything typed above it (`CacheExt`, a
//! `cache_loading::Loader`, a keyspace of `cache-keyspace`) goes through a
//! codec. [`MsgPack`] is the default everywhere: what [`CacheExt::set_typed`]
//! has always written, so entries written before codecs existed stay
//! readable. Other codecs (JSON, raw bytes, UTF-8, compression and schema
//! versions) live in `cache-keyspace`, which keeps the port small.
//!
//! [`CacheExt::set_typed`]: crate::CacheExt::set_typed

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Result;

/// Turns values of type `V` into bytes and back.
///
/// Implement it for a format of your own (protobuf, a hand-written layout):
/// a loader and a keyspace take any codec. `decode` must not panic on any
/// input: a value another writer stored, cut short or corrupted, is a
/// [`Codec`](crate::CacheError::Codec) error, which a loader counts and
/// treats as a miss.
///
/// ```
/// use bytes::Bytes;
/// use cache_port::typed::{Codec, MsgPack};
///
/// // A codec of one's own: a u32 as 4 big-endian bytes.
/// struct BigEndian;
/// impl Codec<u32> for BigEndian {
///     fn encode(&self, value: &u32) -> cache_port::Result<Bytes> {
///         Ok(Bytes::copy_from_slice(&value.to_be_bytes()))
///     }
///     fn decode(&self, bytes: &[u8]) -> cache_port::Result<u32> {
///         let four: [u8; 4] = bytes
///             .try_into()
///             .map_err(|_| cache_port::CacheError::codec("not 4 bytes"))?;
///         Ok(u32::from_be_bytes(four))
///     }
/// }
/// assert_eq!(BigEndian.decode(&BigEndian.encode(&7).unwrap()).unwrap(), 7);
/// assert!(BigEndian.decode(b"xyz").is_err());
/// // The default: MessagePack maps with field names.
/// let stored = Codec::<String>::encode(&MsgPack, &"lamp".to_owned()).unwrap();
/// assert_eq!(Codec::<String>::decode(&MsgPack, &stored).unwrap(), "lamp");
/// ```
pub trait Codec<V>: Send + Sync + 'static {
    /// `value` as bytes.
    fn encode(&self, value: &V) -> Result<Bytes>;

    /// The value `bytes` hold; any input that is not one is an error, never
    /// a panic.
    fn decode(&self, bytes: &[u8]) -> Result<V>;
}

/// MessagePack maps with field names (`rmp_serde::to_vec_named`), so that a
/// field added with `#[serde(default)]` does not break reading old entries:
/// the default codec of the toolkit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgPack;

impl<V: Serialize + DeserializeOwned> Codec<V> for MsgPack {
    fn encode(&self, value: &V) -> Result<Bytes> {
        super::encode(value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        rmp_serde::from_slice(bytes).map_err(crate::CacheError::codec)
    }
}

impl<V, C: Codec<V> + ?Sized> Codec<V> for std::sync::Arc<C> {
    fn encode(&self, value: &V) -> Result<Bytes> {
        (**self).encode(value)
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        (**self).decode(bytes)
    }
}
