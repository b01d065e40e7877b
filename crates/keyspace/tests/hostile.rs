//! Hostile input: a corrupt header, a truncated frame, a decompression
//! bomb and a corrupt payload are typed errors (never a panic, never a large
//! allocation); ids from a hostile caller never leave their keyspace.

use cache_keyspace::{
    escape_id, frame_error, unescape_id, Codec, FrameError, Framed, Framing, Json, KeyRule,
    MsgPack, RawBytes,
};
use cache_port::{ErrorKind, Pattern};
use proptest::prelude::*;

fn compressing<C>(codec: C) -> Framed<C> {
    Framed::new(
        codec,
        Framing {
            compress_above: Some(0),
            schema: 1,
            ..Framing::default()
        },
    )
}

fn frame_failure(result: cache_port::Result<Vec<u8>>) -> FrameError {
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Codec);
    frame_error(&error).cloned().expect("a FrameError inside")
}

#[test]
fn a_corrupt_header_is_a_typed_error() {
    let framed = compressing(RawBytes);
    let good = framed.encode(&b"lamp ".repeat(100)).unwrap().to_vec();
    let with = |at: usize, byte: u8| {
        let mut bad = good.clone();
        bad[at] = byte;
        frame_failure(framed.decode(&bad))
    };
    assert_eq!(with(2, 7), FrameError::UnknownFormat(7));
    assert_eq!(
        with(3, 2),
        FrameError::WrongCodec {
            found: 2,
            expected: 3
        }
    );
    assert_eq!(with(4, 0x81), FrameError::UnknownFlags(0x81));
    // A JSON reader refuses what the MessagePack codec wrote, and says so.
    let msgpack = Framed::new(
        MsgPack,
        Framing {
            schema: 1,
            ..Framing::default()
        },
    );
    let stored = Codec::<String>::encode(&msgpack, &"x".to_owned()).unwrap();
    let json = Framed::new(
        Json,
        Framing {
            schema: 1,
            ..Framing::default()
        },
    );
    let error = Codec::<String>::decode(&json, &stored).unwrap_err();
    assert_eq!(
        frame_error(&error),
        Some(&FrameError::WrongCodec {
            found: 1,
            expected: 2
        })
    );
}

#[test]
fn a_truncated_frame_is_a_typed_error() {
    let framed = compressing(RawBytes);
    let value = b"lamp ".repeat(100);
    let good = framed.encode(&value).unwrap();
    // Every prefix of a compressed frame fails with a frame error: cut in the
    // header (Truncated), in the length field (Truncated), or in the
    // payload (TooLarge for the payload left, or Corrupt).
    for cut in 2..good.len() {
        let error = frame_failure(framed.decode(&good[..cut]));
        assert!(
            matches!(
                error,
                FrameError::Truncated { .. } | FrameError::Corrupt(_) | FrameError::TooLarge { .. }
            ),
            "cut at {cut}: {error:?}"
        );
    }
    assert_eq!(Codec::<Vec<u8>>::decode(&framed, &good).unwrap(), value);
}

#[test]
fn a_decompression_bomb_is_refused_before_allocating() {
    let framed = compressing(RawBytes);
    // 14 bytes claiming 4 GiB: refused by the limit, nothing allocated.
    let bomb = [
        0xC1, b'K', 1, 3, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0x00,
    ];
    assert!(matches!(
        frame_failure(framed.decode(&bomb)),
        FrameError::TooLarge {
            claimed: 4_294_967_295,
            ..
        }
    ));
    // Under the limit, but more than lz4 can expand 10 bytes to (255:1).
    let mut claims_too_much = bomb[..9].to_vec();
    claims_too_much.extend(1_000_000u32.to_be_bytes());
    claims_too_much.extend([0u8; 10]);
    assert_eq!(
        frame_failure(framed.decode(&claims_too_much)),
        FrameError::TooLarge {
            claimed: 1_000_000,
            limit: 10 * 255 + 16
        }
    );
    // A keyspace's own, lower limit.
    let strict = Framed::new(
        RawBytes,
        Framing {
            max_decoded_len: 100,
            ..Framing::default()
        },
    );
    let honest = framed.encode(&vec![7u8; 1000]).unwrap();
    assert!(matches!(
        frame_failure(strict.decode(&honest)),
        FrameError::TooLarge {
            claimed: 1000,
            limit: 100
        }
    ));
}

#[test]
fn a_corrupt_payload_is_a_typed_error() {
    let framed = compressing(RawBytes);
    let good = framed.encode(&b"abcdefgh".repeat(64)).unwrap().to_vec();
    // A claimed length that is not what the payload expands to.
    let mut wrong_length = good.clone();
    wrong_length[12] ^= 1;
    assert!(matches!(
        frame_failure(framed.decode(&wrong_length)),
        FrameError::Corrupt(_)
    ));
    // A payload of garbage.
    let mut garbage = good[..13].to_vec();
    garbage.extend([0xF0; 40]);
    assert!(matches!(
        frame_failure(framed.decode(&garbage)),
        FrameError::Corrupt(_) | FrameError::TooLarge { .. }
    ));
}

/// Keyspace names that are siblings: none is a segment-prefix of another.
const SIBLINGS: [&str; 4] = [
    "shop:product",
    "shop:productx",
    "shop:produc",
    "shop:review",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Ids full of glob characters, separators, braces and escapes: each
    /// key matches its own keyspace's pattern (the port's own matcher, as
    /// every adapter uses it) and no sibling's, and the id is recovered
    /// from the key (so two ids never share a key).
    #[test]
    fn keys_from_hostile_ids_never_leave_their_keyspace(
        id in r"[:*?\[\]\\{}%a-c\x00 é-]{0,24}",
        home in 0..SIBLINGS.len(),
    ) {
        let rule = KeyRule::new(SIBLINGS[home]).unwrap();
        let key = rule.key(id.as_str()).unwrap();
        for (i, name) in SIBLINGS.iter().enumerate() {
            let pattern = Pattern::new(&KeyRule::new(name).unwrap().pattern()).unwrap();
            prop_assert_eq!(pattern.matches(&key), i == home, "{:?} under {}", key, name);
        }
        let part = key.strip_prefix(rule.name()).and_then(|k| k.strip_prefix(':')).unwrap();
        prop_assert!(!part.contains(':'));
        prop_assert_eq!(unescape_id(part), Some(id.clone()));
        prop_assert_eq!(escape_id(&id), part);
    }

    /// Two different tuple ids never share a key.
    #[test]
    fn tuple_ids_are_injective(a in "[:a%]{0,4}", b in "[:a%]{0,4}", c in "[:a%]{0,4}", d in "[:a%]{0,4}") {
        let rule = KeyRule::new("t").unwrap();
        let (x, y) = (rule.key(&(a.as_str(), b.as_str())).unwrap(), rule.key(&(c.as_str(), d.as_str())).unwrap());
        prop_assert_eq!(x == y, (a, b) == (c, d));
    }
}
