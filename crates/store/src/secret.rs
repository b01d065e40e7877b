//! The one URL redactor: what may be shown of a cache URL in an error, a
//! log line or `Debug` output.

/// Query parameters whose names contain one of these (in any case) hold a
/// secret: `password`, `sentinelPassword`, `token`, `apiKey`, `secret`, …
const SECRET_PARAMETER_WORDS: &[&str] = &["pass", "token", "secret", "key", "auth", "cred"];

/// Whether a query parameter of this name holds a secret.
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMETER_WORDS.iter().any(|w| name.contains(w))
}

/// How an error may name a query parameter it refuses: quoted when it looks
/// like an option name (lowercase letters and `_`, at most 40 bytes, not
/// named like a secret), otherwise not at all, since a mistyped URL can put a
/// password where a parameter name belongs.
pub fn shown_parameter_name(name: &str) -> String {
    let option_like = !name.is_empty()
        && name.len() <= 40
        && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if option_like && !is_secret_parameter(name) {
        format!("{name:?}")
    } else {
        "(name not shown: it may hold a secret)".into()
    }
}

/// `url` with every part that could hold a secret replaced by `***`: the
/// whole userinfo (user and password), and the value of every query
/// parameter named like a secret ([`is_secret_parameter`]). It works on
/// text, not on a parsed URL, so a malformed URL (`redis:/u:pw@h`,
/// `redis:u:pw@h`, `u:pw@h`, `pw@redis://h`) is redacted as well as a
/// well-formed one: anything before the last `@` of the part before the
/// query is userinfo. The fragment is dropped.
///
/// ```
/// use cache_store::redact_url;
///
/// assert_eq!(redact_url("redis://app:s3cret@h:6379/0?namespace=shop"), "redis://***@h:6379/0?namespace=shop");
/// assert_eq!(redact_url("redis:/u:s3cret@h:6379"), "***@h:6379");
/// assert_eq!(redact_url("pw@redis://h"), "***@redis://h");
/// assert_eq!(redact_url("redis-sentinel://h?sentinelPassword=s3cret"), "redis-sentinel://h?sentinelPassword=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let url = url.split('#').next().unwrap_or("");
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = String::with_capacity(url.len());
    match base.rfind('@') {
        None => out.push_str(base),
        Some(at) => {
            // Keep a clean `scheme://` before the userinfo; without the
            // `//` (`u:pw@h`, `redis:u:pw@h`) a "scheme" may be a user name,
            // so everything before the `@` goes.
            let scheme_end = base
                .find("://")
                .filter(|&i| {
                    i + 3 <= at
                        && !base[..i].is_empty()
                        && base[..i]
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
                })
                .map(|i| i + 3);
            if let Some(end) = scheme_end {
                out.push_str(&base[..end]);
            }
            out.push_str("***");
            out.push_str(&base[at..]);
        }
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if is_secret_parameter(&percent_decoded(name)) => {
                    out.push_str(name);
                    out.push_str("=***");
                }
                _ if is_secret_parameter(&percent_decoded(pair)) => out.push_str("***"),
                _ => out.push_str(pair),
            }
        }
    }
    out
}

/// `text` with `%XX` escapes decoded where they form bytes (lossy), so that
/// `sentinel%50assword` is recognised as a password parameter.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_userinfo_and_secret_parameter_is_hidden() {
        for (url, shown) in [
            ("redis://h:6379", "redis://h:6379"),
            ("redis://u:pw@h", "redis://***@h"),
            ("redis://pw@h", "redis://***@h"),
            ("redis:u:pw@h:1", "***@h:1"),
            ("redis:/u:pw@h:1", "***@h:1"),
            ("u:pw@h", "***@h"),
            ("redis://u:p@ss@h", "redis://***@h"),
            (
                "redis://h?token=t&namespace=n",
                "redis://h?token=***&namespace=n",
            ),
            ("redis://h?apiKey=k&x", "redis://h?apiKey=***&x"),
            (
                "redis://h?sentinel%50assword=p",
                "redis://h?sentinel%50assword=***",
            ),
            ("redis://h?password", "redis://h?***"),
            ("redis://h#frag:pw", "redis://h"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
