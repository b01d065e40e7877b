//! The codecs a keyspace can store its values with, each with the id the
//! stored header names it by.
//!
//! | codec | for | id |
//! |---|---|---|
//! | [`MsgPack`] (default) | any serde type; what `set_typed` and the loader write | 1 |
//! | [`Json`] | any serde type, readable by other languages and by people | 2 |
//! | [`RawBytes`] | `Bytes` / `Vec<u8>` as they are | 3 |
//! | [`Utf8`] | `String` as its UTF-8 | 4 |
//! | your own | [`Codec`] + [`Named`] with an id from 128 up | 128–255 |

use bytes::Bytes;
use cache_port::typed::Codec;
pub use cache_port::typed::MsgPack;
use cache_port::{CacheError, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The id a stored header names a codec by: a reader refuses (as a counted
/// miss) a value another codec wrote instead of misreading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodecId(u8);

impl CodecId {
    /// [`MsgPack`].
    pub const MSGPACK: Self = Self(1);
    /// [`Json`].
    pub const JSON: Self = Self(2);
    /// [`RawBytes`].
    pub const RAW: Self = Self(3);
    /// [`Utf8`].
    pub const UTF8: Self = Self(4);

    /// An id for a codec of your own: `n` from 128 to 255 (the ids below are
    /// the toolkit's); any other `n` is a `Config` error.
    pub fn custom(n: u8) -> Result<Self> {
        if n >= 128 {
            Ok(Self(n))
        } else {
            Err(CacheError::Config {
                message: format!("codec id {n}: ids below 128 are the toolkit's; pick 128 to 255"),
            })
        }
    }

    /// The byte stored in the header.
    pub fn get(self) -> u8 {
        self.0
    }

    pub(crate) fn from_byte(byte: u8) -> Self {
        Self(byte)
    }
}

/// A codec with the id its values are stored under.
pub trait Named {
    /// The id written in the header of every framed value.
    fn id(&self) -> CodecId;
}

impl Named for MsgPack {
    fn id(&self) -> CodecId {
        CodecId::MSGPACK
    }
}

/// JSON (`serde_json`): what a service in another language, or a person with
/// `redis-cli GET`, reads. Values are stored as bare JSON text unless
/// compressed or given a schema version (see the crate's docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl<V: Serialize + DeserializeOwned> Codec<V> for Json {
    fn encode(&self, value: &V) -> Result<Bytes> {
        serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(CacheError::codec)
    }

    fn decode(&self, bytes: &[u8]) -> Result<V> {
        serde_json::from_slice(bytes).map_err(CacheError::codec)
    }
}

impl Named for Json {
    fn id(&self) -> CodecId {
        CodecId::JSON
    }
}

/// Bytes stored as they are: images, pre-rendered pages, a format the
/// caller already encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RawBytes;

impl Codec<Bytes> for RawBytes {
    fn encode(&self, value: &Bytes) -> Result<Bytes> {
        Ok(value.clone())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(bytes))
    }
}

impl Codec<Vec<u8>> for RawBytes {
    fn encode(&self, value: &Vec<u8>) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(value))
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

impl Named for RawBytes {
    fn id(&self) -> CodecId {
        CodecId::RAW
    }
}

/// A `String` as its UTF-8 bytes (readable in `redis-cli` as it is); bytes
/// that are not UTF-8 are a `Codec` error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Utf8;

impl Codec<String> for Utf8 {
    fn encode(&self, value: &String) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }

    fn decode(&self, bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec()).map_err(CacheError::codec)
    }
}

impl Named for Utf8 {
    fn id(&self) -> CodecId {
        CodecId::UTF8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_ids_start_at_128() {
        assert_eq!(CodecId::custom(200).unwrap().get(), 200);
        assert_eq!(
            CodecId::custom(2).unwrap_err().kind(),
            cache_port::ErrorKind::Config
        );
    }

    #[test]
    fn utf8_refuses_bytes_that_are_not_text() {
        assert!(Codec::<String>::decode(&Utf8, &[0xff, 0xfe]).is_err());
        assert_eq!(
            Codec::<String>::decode(&Utf8, "été".as_bytes()).unwrap(),
            "été"
        );
    }
}
