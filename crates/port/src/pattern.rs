//! Redis glob patterns: the one validator and matcher every adapter shares.
//!
//! Redis matches patterns byte by byte (`stringmatchlen` in `util.c`), and its
//! dialect differs from every other glob: `{a,b}` is literal, `[!a]` does not
//! negate, `]` right after `[` closes an empty class, reversed ranges are
//! swapped, `\` escapes inside classes, an unclosed `[` runs to the end of the
//! pattern. [`Pattern::new`] parses a pattern exactly as Redis does, refuses
//! the constructs whose meaning would surprise a caller (see
//! [`Pattern::new`]), and compiles the rest to a `globset` matcher through a
//! translation that re-emits every class as the byte set Redis would test and
//! every literal escaped. The matcher then answers exactly as Redis does; the
//! Redis adapter sends the caller's pattern unchanged to `SCAN MATCH`.

use std::fmt;

use globset::{Candidate, GlobBuilder, GlobMatcher};

use crate::error::{CacheError, Result};
use crate::key::MAX_KEY_LEN;

/// The longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = MAX_KEY_LEN;

/// The most `*` wildcards (after runs of `*` are folded) a pattern may hold.
///
/// Patched Redis servers stop matching past 1,000 nested wildcards
/// (CVE-2024-31228), unpatched ones do not; far below either, both agree.
pub const MAX_PATTERN_STARS: usize = 100;

/// A validated Redis glob pattern with its compiled matcher.
///
/// ```
/// use cache_port::Pattern;
///
/// let p = Pattern::new("{user:1}:*").unwrap(); // braces are literal, as in Redis
/// assert!(p.matches("{user:1}:cart"));
/// assert!(!p.matches("user:1:cart"));
/// assert!(Pattern::new("[abc").is_err()); // unclosed class: refused
/// ```
#[derive(Clone)]
pub struct Pattern {
    source: String,
    matcher: GlobMatcher,
}

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of literal bytes (always whole UTF-8 characters).
    Literal(Vec<u8>),
    /// `?`: exactly one byte.
    AnyByte,
    /// `*` (or a run of them): any run of bytes.
    Star,
    /// `[...]`: one byte in (or, negated, not in) the set. Members are ASCII.
    Class { negated: bool, members: [bool; 128] },
}

impl Pattern {
    /// Parses and validates a Redis glob pattern.
    ///
    /// Refused with [`InvalidPattern`](CacheError::InvalidPattern), by every
    /// adapter alike, before anything is read or deleted:
    /// - the empty pattern (it could only match the empty key, which cannot exist);
    /// - a pattern longer than [`MAX_PATTERN_LEN`] bytes or with more than
    ///   [`MAX_PATTERN_STARS`] wildcards;
    /// - an unclosed class (`[abc`, `user:[`, `[a-]`): Redis silently runs it
    ///   to the end of the pattern;
    /// - an empty class (`[]`, `[^]`, `[]a]`): Redis closes a class at a `]`
    ///   right after `[`, where every other glob takes it literally;
    /// - a class opening with `!` (`[!a]`): Redis takes `!` literally, every
    ///   shell negates; write `[^a]` to negate or `[a!]` for the literal;
    /// - a class holding a non-ASCII character (`[é]`): Redis compares single
    ///   bytes, so a multi-byte character in a class can never match it;
    /// - a trailing lone `\` (`a\`): Redis takes it literally.
    pub fn new(pattern: &str) -> Result<Self> {
        let tokens = parse(pattern).map_err(|reason| CacheError::InvalidPattern {
            pattern: pattern.to_owned(),
            reason,
        })?;
        let glob = to_glob(&tokens);
        let matcher = GlobBuilder::new(&glob)
            .literal_separator(false)
            .backslash_escape(true)
            .case_insensitive(false)
            .empty_alternates(false)
            .build()
            .map_err(|e| CacheError::InvalidPattern {
                pattern: pattern.to_owned(),
                reason: format!("internal translation failed ({e}); please report this pattern"),
            })?
            .compile_matcher();
        Ok(Self {
            source: pattern.to_owned(),
            matcher,
        })
    }

    /// Whether `key` (un-prefixed) matches, exactly as Redis `SCAN MATCH` would.
    pub fn matches(&self, key: &str) -> bool {
        self.matcher
            .is_match_candidate(&Candidate::from_bytes(key.as_bytes()))
    }

    /// The pattern as the caller wrote it; the Redis adapter sends it as is.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

/// Escapes `literal` so that a Redis glob matches it literally: a backslash
/// before each of `*?[]\`. The Redis adapter puts its escaped namespace in
/// front of every `SCAN MATCH` pattern.
///
/// ```
/// assert_eq!(cache_port::escape_glob("a*b[1]"), r"a\*b\[1\]");
/// ```
pub fn escape_glob(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len() + 4);
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Parses `pattern` as Redis's `stringmatchlen` reads it, refusing what
/// [`Pattern::new`] documents.
fn parse(pattern: &str) -> std::result::Result<Vec<Token>, String> {
    if pattern.is_empty() {
        return Err("the pattern is empty; it could only match an empty key".into());
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(format!(
            "the pattern is {} bytes long; the limit is {MAX_PATTERN_LEN}",
            pattern.len()
        ));
    }
    let p = pattern.as_bytes();
    let n = p.len();
    let mut tokens = Vec::new();
    let mut stars = 0;
    let mut i = 0;
    let push_literal = |tokens: &mut Vec<Token>, b: u8| match tokens.last_mut() {
        Some(Token::Literal(run)) => run.push(b),
        _ => tokens.push(Token::Literal(vec![b])),
    };
    while i < n {
        match p[i] {
            b'*' => {
                if tokens.last() != Some(&Token::Star) {
                    tokens.push(Token::Star);
                    stars += 1;
                }
            }
            b'?' => tokens.push(Token::AnyByte),
            b'\\' => {
                if i + 1 == n {
                    return Err(
                        "a trailing lone backslash escapes nothing (Redis would take it literally); write \\\\ for a backslash".into(),
                    );
                }
                i += 1;
                push_literal(&mut tokens, p[i]);
            }
            b'[' => {
                let (token, next) = parse_class(p, i + 1)?;
                tokens.push(token);
                i = next;
            }
            b => push_literal(&mut tokens, b),
        }
        i += 1;
    }
    if stars > MAX_PATTERN_STARS {
        return Err(format!(
            "the pattern has {stars} wildcards; the limit is {MAX_PATTERN_STARS}"
        ));
    }
    Ok(tokens)
}

/// Parses a class whose body starts at `i` (just after `[`), as Redis does.
/// Returns the class and the index of its closing `]`.
fn parse_class(p: &[u8], mut i: usize) -> std::result::Result<(Token, usize), String> {
    let n = p.len();
    let negated = i < n && p[i] == b'^';
    if negated {
        i += 1;
    } else if i < n && p[i] == b'!' {
        return Err(
            "Redis reads [! as a literal '!', not as negation; write [^...] to negate, or put '!' later in the class".into(),
        );
    }
    let mut members = [false; 128];
    let mut any = false;
    let mut add = |b: u8| -> std::result::Result<(), String> {
        if b >= 0x80 {
            return Err("a class may hold only ASCII characters: Redis compares single bytes, so a multi-byte character in a class never matches it".into());
        }
        members[usize::from(b)] = true;
        any = true;
        Ok(())
    };
    loop {
        if i >= n {
            return Err("unclosed class: Redis would run it to the end of the pattern; close it with ] or escape the [ as \\[".into());
        }
        // The order of these tests is Redis's: escape, close, range, member.
        if p[i] == b'\\' && n - i >= 2 {
            i += 1;
            add(p[i])?;
        } else if p[i] == b']' {
            break;
        } else if n - i >= 3 && p[i + 1] == b'-' {
            let (mut lo, mut hi) = (p[i], p[i + 2]);
            if lo >= 0x80 || hi >= 0x80 {
                return Err("a class may hold only ASCII characters: Redis compares single bytes, so a multi-byte character in a class never matches it".into());
            }
            if lo > hi {
                // Redis swaps a reversed range.
                std::mem::swap(&mut lo, &mut hi);
            }
            for b in lo..=hi {
                add(b)?;
            }
            i += 2;
        } else {
            add(p[i])?;
        }
        i += 1;
    }
    if !any {
        return Err("empty class: Redis closes a class at a ] right after [ or [^, so it never matches (or, negated, matches any byte); escape it as \\] to match ']'".into());
    }
    Ok((Token::Class { negated, members }, i))
}

/// Writes `tokens` as a globset glob (with backslash escapes on) that
/// matches exactly the same byte strings.
fn to_glob(tokens: &[Token]) -> String {
    let mut glob = String::new();
    for token in tokens {
        match token {
            Token::Star => glob.push('*'),
            Token::AnyByte => glob.push('?'),
            Token::Literal(bytes) => {
                // A literal run is whole UTF-8 characters: only ASCII bytes
                // (escapes, metacharacters) were ever taken out of the pattern.
                let text = String::from_utf8_lossy(bytes);
                for c in text.chars() {
                    push_escaped(&mut glob, c);
                }
            }
            Token::Class { negated, members } => push_class(&mut glob, *negated, members),
        }
    }
    glob
}

/// Writes `c` so that globset takes it literally.
fn push_escaped(glob: &mut String, c: char) {
    if c.is_ascii_punctuation() {
        glob.push('\\');
    }
    glob.push(c);
}

/// Writes a class. A negated one becomes a globset `[!...]` (in globset's
/// byte mode it matches every byte outside the set, as Redis's does); a
/// positive one becomes an alternation of escaped single characters, which
/// sidesteps globset's own class syntax (`[!`, `[^`, `]` and `-` rules).
fn push_class(glob: &mut String, negated: bool, members: &[bool; 128]) {
    let chars: Vec<char> = (0u8..128)
        .filter(|b| members[usize::from(*b)])
        .map(char::from)
        .collect();
    if negated {
        glob.push_str("[!");
        // In a globset class `]` is literal only first, `-` only last, and
        // a backslash is always literal.
        if chars.contains(&']') {
            glob.push(']');
        }
        glob.extend(chars.iter().filter(|c| !matches!(c, ']' | '-')));
        if chars.contains(&'-') {
            glob.push('-');
        }
        glob.push(']');
    } else if let [only] = chars.as_slice() {
        push_escaped(glob, *only);
    } else {
        glob.push('{');
        for (n, c) in chars.iter().enumerate() {
            if n > 0 {
                glob.push(',');
            }
            push_escaped(glob, *c);
        }
        glob.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_examples() {
        let p = |s: &str| Pattern::new(s).unwrap();
        assert!(p("a?b").matches("a\\b"));
        assert!(p("[z-a]").matches("m"));
        assert!(p("[\\]]").matches("]"));
        assert!(p("[^!]").matches("x"));
        assert!(p("[a!]").matches("!"));
        assert!(!p("[^a]").matches("é")); // é is two bytes: one class cannot take both
        assert!(p("[^a]?").matches("é"));
        assert!(p("na??ve").matches("naïve"));
        assert!(p("tab?key").matches("tab\tkey"));
        assert!(p("a?b").matches("a\nb"));
        assert!(p("[a,b]").matches(","));
        assert!(p("{a,b}").matches("{a,b}"));
        assert!(!p("{a,b}").matches("a"));
    }

    #[test]
    fn refusals() {
        for bad in [
            "", "a\\", "\\", "[abc", "[^", "user:[", "[a-", "[a-]", "[]", "[]]", "[^]", "[]a]",
            "[!a]", "[é]", "[a-é]",
        ] {
            assert!(Pattern::new(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Pattern::new(&"*a".repeat(MAX_PATTERN_STARS)).is_ok());
        assert!(Pattern::new(&"*a".repeat(MAX_PATTERN_STARS + 1)).is_err());
        assert!(Pattern::new(&"a".repeat(MAX_PATTERN_LEN + 1)).is_err());
    }
}
