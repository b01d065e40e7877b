//! How values, TTLs and stats are printed.

use std::time::Duration;

use cache_port::{Stats, TtlState};

/// A value as text when it is UTF-8, else as hex.
pub fn value(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => format!("{text:?}"),
        Err(_) => format!(
            "0x{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// An optional value; `(nil)` for none.
pub fn maybe_value(bytes: Option<&[u8]>) -> String {
    bytes.map(value).unwrap_or_else(|| "(nil)".into())
}

/// A TTL answer.
pub fn ttl(state: TtlState) -> String {
    match state {
        TtlState::Missing => "missing".into(),
        TtlState::Persistent => "persistent".into(),
        TtlState::ExpiresIn(d) => format!("expires in {}", duration(d)),
    }
}

/// `1.5s`, `250ms`, `37µs`.
pub fn duration(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.3}s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}µs", d.as_micros())
    }
}

/// The stats as an aligned two-column table.
pub fn stats_table(stats: &Stats) -> String {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "n/a".into());
    let rows = [
        ("hits", stats.hits.to_string()),
        ("misses", stats.misses.to_string()),
        (
            "hit rate",
            stats
                .hit_rate()
                .map(|r| format!("{:.1}%", r * 100.0))
                .unwrap_or_else(|| "n/a".into()),
        ),
        ("sets", stats.sets.to_string()),
        ("deletes", stats.deletes.to_string()),
        ("evictions", opt(stats.evictions)),
        ("errors", stats.errors.to_string()),
        ("entries", opt(stats.entries)),
        ("bytes", opt(stats.bytes)),
    ];
    rows.iter()
        .map(|(name, v)| format!("  {name:<10} {v:>12}\n"))
        .collect()
}
