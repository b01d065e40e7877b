//! Every codec round-trips what proptest generates, framed every way a
//! keyspace frames (bare, versioned, compressed), and no input makes a
//! decode panic.

use std::collections::BTreeMap;

use bytes::Bytes;
use cache_keyspace::{Codec, Framed, Framing, Json, MsgPack, Named, RawBytes, Utf8};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    delta: i64,
    name: String,
    flags: Vec<bool>,
    note: Option<String>,
    attributes: BTreeMap<String, u32>,
    bytes: Vec<u8>,
}

fn records() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        any::<i64>(),
        ".{0,40}",
        prop::collection::vec(any::<bool>(), 0..8),
        prop::option::of(".{0,200}"),
        prop::collection::btree_map(".{0,8}", any::<u32>(), 0..6),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(id, delta, name, flags, note, attributes, bytes)| Record {
            id,
            delta,
            name,
            flags,
            note,
            attributes,
            bytes,
        })
}

/// Bare, versioned, compressed (threshold 0: every value that shrinks),
/// and both.
fn framings() -> Vec<Framing> {
    let plain = Framing::default();
    vec![
        plain,
        Framing { schema: 4, ..plain },
        Framing {
            compress_above: Some(0),
            ..plain
        },
        Framing {
            schema: 9,
            oldest_readable: 2,
            compress_above: Some(16),
            ..plain
        },
    ]
}

fn round_trips<V, C>(codec: C, value: &V) -> Result<(), TestCaseError>
where
    V: PartialEq + std::fmt::Debug,
    C: Codec<V> + Named + Clone,
{
    for framing in framings() {
        let framed = Framed::new(codec.clone(), framing);
        let stored = framed.encode(value).unwrap();
        prop_assert_eq!(&framed.decode(&stored).unwrap(), value, "{:?}", framing);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn messagepack_round_trips(record in records()) {
        round_trips(MsgPack, &record)?;
    }

    #[test]
    fn json_round_trips(record in records()) {
        round_trips(Json, &record)?;
    }

    #[test]
    fn raw_bytes_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        round_trips(RawBytes, &bytes)?;
        round_trips(RawBytes, &Bytes::from(bytes))?;
    }

    #[test]
    fn raw_bytes_that_look_like_a_header_round_trip(rest in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut bytes = vec![0xC1, b'K'];
        bytes.extend(rest);
        round_trips(RawBytes, &bytes)?;
    }

    #[test]
    fn text_round_trips(text in ".{0,300}") {
        round_trips(Utf8, &text)?;
    }

    #[test]
    fn no_input_makes_a_decode_panic(stored in prop::collection::vec(any::<u8>(), 0..64), header in any::<bool>()) {
        let mut stored = stored;
        if header {
            stored.splice(0..0, [0xC1, b'K', 1, 1]);
        }
        for framing in framings() {
            let _ = Codec::<Record>::decode(&Framed::new(MsgPack, framing), &stored);
            let _ = Codec::<Record>::decode(&Framed::new(Json, framing), &stored);
            let _ = Codec::<String>::decode(&Framed::new(Utf8, framing), &stored);
        }
    }
}

#[test]
fn compression_is_kept_only_when_it_saves_space() {
    let compressing = Framed::new(
        RawBytes,
        Framing {
            compress_above: Some(0),
            ..Framing::default()
        },
    );
    // Random bytes do not compress: stored bare, as given.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..1000)
        .map(|_| {
            // xorshift64: bytes with no repeats for lz4 to find.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_eq!(compressing.encode(&noise).unwrap(), noise);
    // Repetitive bytes do, behind a header.
    let text = b"lamp ".repeat(200);
    let stored = compressing.encode(&text).unwrap();
    assert!(stored.len() < text.len() / 5, "{} bytes", stored.len());
    assert_eq!(
        cache_keyspace::inspect(&stored)
            .unwrap()
            .unwrap()
            .decompressed_len,
        Some(1000)
    );
}
