//! Reading Prometheus's text exposition format: just what `stats --watch`
//! needs (samples with labels), written here because the crates that parse
//! it pull in a regex engine and a date library for these forty lines.

/// One sample line: `name{label="value",…} number`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric name, with its `_bucket`/`_count`/`_total` suffix.
    pub name: String,
    /// The labels, in the order given.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of `text`; comment lines and lines that do not parse are
/// skipped (the exposition format allows comments and timestamps; a line
/// this reader does not understand is not a reason to stop watching).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let (labels, rest) = parse_labels(&line[open + 1..])?;
            (&line[..open], labels, rest)
        }
        None => {
            let space = line.find(char::is_whitespace)?;
            (&line[..space], Vec::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name: name.trim().to_owned(),
        labels,
        value,
    })
}

/// `k="v",k2="v2"}` → the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim().to_owned();
        let mut chars = text[eq + 1..].char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((key, value));
        text = &text[eq + 1 + end + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_with_and_without_labels_escapes_and_infinities() {
        let text = "# HELP x y\n# TYPE cache_lookups_total counter\n\
            cache_lookups_total{db_system_name=\"moka\",cache_outcome=\"hit\"} 3\n\
            up 1\n\
            h_bucket{le=\"+Inf\",q=\"a\\\"b\\\\c\"} 7 1700000000\n\
            broken{x=1} 2\n\
            \n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3, "{samples:#?}");
        assert_eq!(samples[0].name, "cache_lookups_total");
        assert_eq!(samples[0].label("cache_outcome"), Some("hit"));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!((samples[1].name.as_str(), samples[1].value), ("up", 1.0));
        assert_eq!(samples[2].label("le"), Some("+Inf"));
        assert_eq!(samples[2].label("q"), Some("a\"b\\c"));
        assert_eq!(samples[2].value, 7.0);
    }
}
