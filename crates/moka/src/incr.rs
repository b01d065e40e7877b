//! Redis's reading of a counter: `string2ll` in util.c.

/// Parses `bytes` as Redis `INCRBY` does: optional `-`, then digits with no
/// leading zero (a lone `0` excepted), nothing else, within i64. `+1`, `01`,
/// `-0`, ` 1`, `1.0` and the empty string are not integers.
pub(crate) fn parse_i64(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'0'] => return Some(0),
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits.first() {
        Some(b'1'..=b'9') if digits.iter().all(u8::is_ascii_digit) => {}
        _ => return None,
    }
    let text = std::str::from_utf8(bytes).ok()?;
    // With the shape checked, std's parser decides the range (and overflow).
    let value: i64 = text.parse().ok()?;
    debug_assert_eq!(negative, value < 0);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::parse_i64;

    #[test]
    fn redis_rules() {
        for (text, want) in [
            ("0", Some(0)),
            ("7", Some(7)),
            ("-7", Some(-7)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("-0", None),
            ("00", None),
            ("01", None),
            ("+1", None),
            (" 1", None),
            ("1 ", None),
            ("1.0", None),
            ("", None),
            ("-", None),
            ("abc", None),
        ] {
            assert_eq!(parse_i64(text.as_bytes()), want, "{text:?}");
        }
    }
}
