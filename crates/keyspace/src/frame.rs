//! The stored header: which codec wrote a value, whether it is compressed,
//! and the schema version of the struct it came from.
//!
//! ```text
//! 0xC1 'K' 1 | codec id: u8 | flags: u8 (bit 0: lz4) | schema: u32 BE | [length before compression: u32 BE] | payload
//! ```
//!
//! `0xC1` is the byte neither MessagePack nor UTF-8 (so no JSON text) ever
//! starts with; the loader's envelope (`0xC1 1`) and the tag envelope
//! (`0xC1 'T'`) use it too, each with its own second byte.
//!
//! A value is written bare (the codec's bytes alone, no header) when the
//! header would say nothing a reader does not assume: not compressed,
//! schema version 0, and not itself starting with `0xC1`. So an
//! unversioned MessagePack keyspace writes exactly what `set_typed` always
//! has, and an unversioned JSON keyspace writes JSON that `redis-cli` and
//! other languages read; a compressed or versioned value always carries the
//! header, and a reader never guesses either.
//!
//! Reading refuses, as a typed [`FrameError`] (inside a `Codec` error that a
//! keyspace and a loader count as a miss): a header cut short, a format,
//! codec or compression this code does not know, a schema older than the
//! oldest readable one, a compressed frame claiming more than the limit
//! (default [`DEFAULT_MAX_DECODED_LEN`]) or more than lz4 could ever expand
//! its payload to (a bomb), and a payload that does not decompress to
//! exactly the length it claims.

use bytes::{BufMut, Bytes, BytesMut};
use cache_port::typed::Codec;
use cache_port::{CacheError, Result};

use crate::codecs::{CodecId, Named};

/// The first two bytes of a framed value.
const MARKER: [u8; 2] = [0xC1, b'K'];
/// The header format this code writes and reads.
const FORMAT: u8 = 1;
/// Marker, format, codec, flags, schema.
const HEADER_LEN: usize = 2 + 1 + 1 + 1 + 4;
/// Flag bit: the payload is an lz4 block, preceded by its original length.
const LZ4: u8 = 1;
/// lz4 cannot expand a block by more than this factor (a match of 255+
/// bytes costs at least one byte): a frame claiming more is a bomb.
const LZ4_MAX_RATIO: usize = 255;

/// The most bytes a compressed value may claim to expand to, unless the
/// keyspace says otherwise (Redis's own largest value is 512 MB).
pub const DEFAULT_MAX_DECODED_LEN: usize = 64 << 20;

/// Why a stored value could not be read: the `source` of the
/// [`Codec`](cache_port::CacheError::Codec) error (downcast it to match).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The header is shorter than its fields.
    #[error("the stored header is cut short ({len} bytes)")]
    Truncated {
        /// How many bytes there were.
        len: usize,
    },
    /// A header format this code does not read (a newer release wrote it).
    #[error("stored header format {0} is unknown")]
    UnknownFormat(u8),
    /// Another codec wrote the value.
    #[error("stored by codec {found}, read with codec {expected}")]
    WrongCodec {
        /// The id in the header.
        found: u8,
        /// The reader's codec id.
        expected: u8,
    },
    /// Flags this code does not know (a compression added later).
    #[error("stored flags {0:#04x} are unknown")]
    UnknownFlags(u8),
    /// The value's schema version is older than the oldest the reader accepts.
    #[error("schema version {found} is older than the oldest readable, {oldest}")]
    Retired {
        /// The version in the header (0 for a bare value).
        found: u32,
        /// The oldest version the reader accepts.
        oldest: u32,
    },
    /// A compressed value claims to expand past the reader's limit, or past
    /// what its payload could expand to.
    #[error("compressed value claims {claimed} bytes; the limit is {limit}")]
    TooLarge {
        /// The length in the header.
        claimed: usize,
        /// The reader's limit for this payload.
        limit: usize,
    },
    /// The compressed payload is corrupt, or expands to another length than
    /// the header says.
    #[error("compressed payload is corrupt: {0}")]
    Corrupt(String),
}

impl From<FrameError> for CacheError {
    fn from(error: FrameError) -> Self {
        CacheError::codec(error)
    }
}

/// How a keyspace frames its values: schema version, compression, limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// The schema version written into every value (0: none, written bare).
    pub schema: u32,
    /// Values of an older schema version read as misses.
    pub oldest_readable: u32,
    /// Payloads longer than this are lz4-compressed (`None`: never).
    pub compress_above: Option<usize>,
    /// The most a compressed value may expand to.
    pub max_decoded_len: usize,
}

impl Default for Framing {
    fn default() -> Self {
        Self {
            schema: 0,
            oldest_readable: 0,
            compress_above: None,
            max_decoded_len: DEFAULT_MAX_DECODED_LEN,
        }
    }
}

/// A codec with the header around it: what a keyspace stores with, and
/// hands to a loader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<C> {
    codec: C,
    framing: Framing,
}

impl<C> Framed<C> {
    /// `codec` framed as `framing` says.
    pub fn new(codec: C, framing: Framing) -> Self {
        Self { codec, framing }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// The codec inside.
    pub fn codec(&self) -> &C {
        &self.codec
    }
}

impl<V, C: Codec<V> + Named> Codec<V> for Framed<C> {
    fn encode(&self, value: &V) -> Result<Bytes> {
        let payload = self.codec.encode(value)?;
        Ok(self.frame(payload))
    }

    fn decode(&self, stored: &[u8]) -> Result<V> {
        match self.unframe(stored)? {
            Unframed::Borrowed(payload) => self.codec.decode(payload),
            Unframed::Owned(payload) => self.codec.decode(&payload),
        }
    }
}

enum Unframed<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl<C: Named> Framed<C> {
    /// `payload` as stored: bare, or behind a header.
    fn frame(&self, payload: Bytes) -> Bytes {
        let Framing {
            schema,
            compress_above,
            ..
        } = self.framing;
        let compressed = compress_above
            .filter(|limit| payload.len() > *limit && u32::try_from(payload.len()).is_ok())
            .map(|_| lz4_flex::block::compress(&payload))
            // Kept only when it saves more than the length field costs.
            .filter(|c| c.len() + 4 < payload.len());
        let bare = compressed.is_none() && schema == 0 && payload.first() != Some(&MARKER[0]);
        if bare {
            return payload;
        }
        let body = compressed.as_deref().unwrap_or(&payload);
        let mut out = BytesMut::with_capacity(HEADER_LEN + 4 + body.len());
        out.put_slice(&MARKER);
        out.put_u8(FORMAT);
        out.put_u8(self.codec.id().get());
        out.put_u8(if compressed.is_some() { LZ4 } else { 0 });
        out.put_u32(schema);
        if compressed.is_some() {
            // Checked above: the payload's length fits.
            out.put_u32(payload.len() as u32);
        }
        out.put_slice(body);
        out.freeze()
    }

    /// The codec's bytes inside `stored`, decompressed if need be.
    fn unframe<'a>(&self, stored: &'a [u8]) -> Result<Unframed<'a>, FrameError> {
        let Framing {
            oldest_readable,
            max_decoded_len,
            ..
        } = self.framing;
        if !stored.starts_with(&MARKER) {
            if oldest_readable > 0 {
                return Err(FrameError::Retired {
                    found: 0,
                    oldest: oldest_readable,
                });
            }
            return Ok(Unframed::Borrowed(stored));
        }
        let header = Header::parse(stored)?;
        if header.codec != self.codec.id() {
            return Err(FrameError::WrongCodec {
                found: header.codec.get(),
                expected: self.codec.id().get(),
            });
        }
        if header.schema < oldest_readable {
            return Err(FrameError::Retired {
                found: header.schema,
                oldest: oldest_readable,
            });
        }
        let Some(claimed) = header.decompressed_len else {
            return Ok(Unframed::Borrowed(header.body));
        };
        let limit = max_decoded_len.min(header.body.len().saturating_mul(LZ4_MAX_RATIO) + 16);
        if claimed > limit {
            return Err(FrameError::TooLarge { claimed, limit });
        }
        let mut out = vec![0; claimed];
        let written = lz4_flex::block::decompress_into(header.body, &mut out)
            .map_err(|e| FrameError::Corrupt(e.to_string()))?;
        if written != claimed {
            return Err(FrameError::Corrupt(format!(
                "expanded to {written} bytes, the header says {claimed}"
            )));
        }
        Ok(Unframed::Owned(out))
    }
}

/// A parsed header.
#[derive(Debug)]
struct Header<'a> {
    codec: CodecId,
    schema: u32,
    /// `Some` for a compressed body: its length once decompressed.
    decompressed_len: Option<usize>,
    body: &'a [u8],
}

impl<'a> Header<'a> {
    fn parse(stored: &'a [u8]) -> Result<Self, FrameError> {
        let truncated = FrameError::Truncated { len: stored.len() };
        if stored.len() < 3 {
            return Err(truncated);
        }
        if stored[2] != FORMAT {
            return Err(FrameError::UnknownFormat(stored[2]));
        }
        if stored.len() < HEADER_LEN {
            return Err(truncated);
        }
        let flags = stored[4];
        if flags & !LZ4 != 0 {
            return Err(FrameError::UnknownFlags(flags));
        }
        let schema = u32::from_be_bytes(stored[5..9].try_into().expect("4 bytes"));
        let (decompressed_len, body) = if flags & LZ4 != 0 {
            let Some(len) = stored.get(HEADER_LEN..HEADER_LEN + 4) else {
                return Err(truncated);
            };
            let len = u32::from_be_bytes(len.try_into().expect("4 bytes"));
            (Some(len as usize), &stored[HEADER_LEN + 4..])
        } else {
            (None, &stored[HEADER_LEN..])
        };
        Ok(Self {
            codec: CodecId::from_byte(stored[3]),
            schema,
            decompressed_len,
            body,
        })
    }
}

/// What a stored value's header says, for tools (`cachectl`) and tests:
/// `None` for a bare value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderInfo {
    /// The codec that wrote it.
    pub codec: CodecId,
    /// Its schema version.
    pub schema: u32,
    /// Its length before compression, if compressed.
    pub decompressed_len: Option<usize>,
}

/// The header of `stored`, if it has one; a header this code cannot parse
/// is the error a read would give.
pub fn inspect(stored: &[u8]) -> Result<Option<HeaderInfo>, FrameError> {
    if !stored.starts_with(&MARKER) {
        return Ok(None);
    }
    let header = Header::parse(stored)?;
    Ok(Some(HeaderInfo {
        codec: header.codec,
        schema: header.schema,
        decompressed_len: header.decompressed_len,
    }))
}

/// The [`FrameError`] inside `error`, if that is what it is.
pub fn frame_error(error: &CacheError) -> Option<&FrameError> {
    match error {
        CacheError::Codec { source } => source.downcast_ref(),
        _ => None,
    }
}
