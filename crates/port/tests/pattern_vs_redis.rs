//! The shared matcher against a line-by-line port of Redis 7's `stringmatchlen`
//! (util.c), on random patterns and keys over the characters that matter.

use cache_port::Pattern;
use proptest::prelude::*;

/// Redis's matcher, transcribed: byte-wise, `char` signed as on x86, the
/// pattern NUL-terminated (Redis reads one byte past the end in a class).
fn redis_match(pattern: &[u8], string: &[u8]) -> bool {
    let mut p = pattern.to_vec();
    p.push(0);
    let mut skip_longer = false;
    matchlen(
        &p,
        0,
        pattern.len(),
        string,
        0,
        string.len(),
        &mut skip_longer,
    )
}

fn matchlen(
    p: &[u8],
    mut pi: usize,
    mut plen: usize,
    s: &[u8],
    mut si: usize,
    mut slen: usize,
    skip: &mut bool,
) -> bool {
    let signed = |b: u8| b as i8 as i32;
    while plen > 0 && slen > 0 {
        match p[pi] {
            b'*' => {
                while plen > 0 && p[pi + 1] == b'*' {
                    pi += 1;
                    plen -= 1;
                }
                if plen == 1 {
                    return true;
                }
                while slen > 0 {
                    if matchlen(p, pi + 1, plen - 1, s, si, slen, skip) {
                        return true;
                    }
                    if *skip {
                        return false;
                    }
                    si += 1;
                    slen -= 1;
                }
                *skip = true;
                return false;
            }
            b'?' => {
                si += 1;
                slen -= 1;
            }
            b'[' => {
                pi += 1;
                plen -= 1;
                let not = p[pi] == b'^';
                if not {
                    pi += 1;
                    plen -= 1;
                }
                let mut matched = false;
                loop {
                    if p[pi] == b'\\' && plen >= 2 {
                        pi += 1;
                        plen -= 1;
                        if p[pi] == s[si] {
                            matched = true;
                        }
                    } else if p[pi] == b']' {
                        break;
                    } else if plen == 0 {
                        pi -= 1;
                        plen += 1;
                        break;
                    } else if plen >= 3 && p[pi + 1] == b'-' {
                        let (mut start, mut end) = (signed(p[pi]), signed(p[pi + 2]));
                        let c = signed(s[si]);
                        if start > end {
                            std::mem::swap(&mut start, &mut end);
                        }
                        pi += 2;
                        plen -= 2;
                        if c >= start && c <= end {
                            matched = true;
                        }
                    } else if p[pi] == s[si] {
                        matched = true;
                    }
                    pi += 1;
                    plen -= 1;
                }
                if not {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                si += 1;
                slen -= 1;
            }
            other => {
                let mut lit = other;
                if other == b'\\' && plen >= 2 {
                    pi += 1;
                    plen -= 1;
                    lit = p[pi];
                }
                if lit != s[si] {
                    return false;
                }
                si += 1;
                slen -= 1;
            }
        }
        pi += 1;
        plen -= 1;
        if slen == 0 {
            while p[pi] == b'*' {
                pi += 1;
                plen -= 1;
            }
            break;
        }
    }
    plen == 0 && slen == 0
}

const PATTERN_ALPHABET: &[&str] = &[
    "*", "?", "[", "]", "^", "!", "-", "\\", "a", "b", "c", "z", "{", "}", ",", ":", "é", "/", " ",
];
const KEY_ALPHABET: &[&str] = &[
    "a", "b", "c", "z", "-", "]", "[", "\\", "*", "?", "^", "!", "{", "}", ",", ":", "é", "日",
    "/", "\t",
];

fn word(alphabet: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(alphabet), 1..max).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn accepted_patterns_match_as_redis_does(
        pattern in word(PATTERN_ALPHABET, 9),
        keys in proptest::collection::vec(word(KEY_ALPHABET, 7), 1..12),
    ) {
        if let Ok(p) = Pattern::new(&pattern) {
            for key in &keys {
                prop_assert_eq!(
                    p.matches(key),
                    redis_match(pattern.as_bytes(), key.as_bytes()),
                    "pattern {:?} key {:?}", pattern, key
                );
            }
        }
    }
}

#[test]
fn oracle_agrees_with_the_recorded_redis_answers() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../conformance/vectors/redis-glob.json")).unwrap();
    let keys: Vec<&str> = vectors["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let mut checked = 0;
    for row in vectors["patterns"].as_array().unwrap() {
        let pattern = row["pattern"].as_str().unwrap();
        let mut want: Vec<&str> = row["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap())
            .collect();
        want.sort();
        let mut got: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| redis_match(pattern.as_bytes(), k.as_bytes()))
            .collect();
        got.sort();
        assert_eq!(got, want, "oracle differs from Redis on {pattern:?}");
        if let Ok(p) = Pattern::new(pattern) {
            let mut ours: Vec<&str> = keys.iter().copied().filter(|k| p.matches(k)).collect();
            ours.sort();
            assert_eq!(ours, want, "matcher differs from Redis on {pattern:?}");
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} accepted patterns");
}

/// Every class body over a small alphabet of class-special characters.
#[test]
fn exhaustive_short_classes() {
    let alphabet = ["a", "b", "-", "]", "^", "\\", "!", "z", "[", ","];
    let keys: Vec<String> = [
        "a", "b", "-", "]", "^", "\\", "!", "z", "[", ",", "m", "é", "ab", "_",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut bodies = vec![String::new()];
    for _ in 0..4 {
        let next: Vec<String> = bodies
            .iter()
            .flat_map(|b| alphabet.iter().map(move |c| format!("{b}{c}")))
            .collect();
        bodies.extend(next);
    }
    bodies.sort();
    bodies.dedup();
    for body in bodies {
        for pattern in [
            format!("[{body}]"),
            format!("[{body}]*"),
            format!("x[{body}"),
        ] {
            if let Ok(p) = Pattern::new(&pattern) {
                for key in &keys {
                    assert_eq!(
                        p.matches(key),
                        redis_match(pattern.as_bytes(), key.as_bytes()),
                        "{pattern:?} {key:?}"
                    );
                }
            }
        }
    }
}
