//! What a watch line shows, computed from two scrapes of the metrics layer.

use super::exposition::Sample;

/// The metrics layer's series, as a Prometheus exporter names them.
const DURATION: &str = "db_client_operation_duration_seconds";
const LOOKUPS: &str = "cache_lookups_total";
const ERRORS: &str = "cache_errors_total";

/// The cumulative figures of one scrape, summed over every label set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    /// Operations timed.
    pub operations: f64,
    /// Keys found.
    pub hits: f64,
    /// Keys not found.
    pub misses: f64,
    /// Failed operations.
    pub errors: f64,
    /// `(upper bound in seconds, cumulative count)`, by bound.
    pub buckets: Vec<(f64, f64)>,
}

impl Totals {
    /// Sums the scrape's series.
    pub fn from_samples(samples: &[Sample]) -> Self {
        let mut totals = Totals::default();
        for sample in samples {
            match sample.name.as_str() {
                n if n == format!("{DURATION}_count") => totals.operations += sample.value,
                n if n == format!("{DURATION}_bucket") => {
                    let Some(le) = sample.label("le").and_then(parse_bound) else {
                        continue;
                    };
                    match totals.buckets.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, count)) => *count += sample.value,
                        None => totals.buckets.push((le, sample.value)),
                    }
                }
                LOOKUPS => match sample.label("cache_outcome") {
                    Some("hit") => totals.hits += sample.value,
                    Some("miss") => totals.misses += sample.value,
                    _ => {}
                },
                ERRORS => totals.errors += sample.value,
                _ => {}
            }
        }
        totals.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        totals
    }

    /// What happened between `earlier` and `self` (a counter that went
    /// down, a restarted service, counts from zero again).
    pub fn since(&self, earlier: &Totals) -> Totals {
        let delta = |now: f64, then: f64| if now >= then { now - then } else { now };
        Totals {
            operations: delta(self.operations, earlier.operations),
            hits: delta(self.hits, earlier.hits),
            misses: delta(self.misses, earlier.misses),
            errors: delta(self.errors, earlier.errors),
            buckets: self
                .buckets
                .iter()
                .map(|(le, count)| {
                    let then = earlier
                        .buckets
                        .iter()
                        .find(|(b, _)| b == le)
                        .map_or(0.0, |(_, c)| *c);
                    (*le, delta(*count, then))
                })
                .collect(),
        }
    }

    /// `hits / (hits + misses)`, when there was a lookup.
    pub fn hit_rate(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0.0).then(|| self.hits / lookups)
    }

    /// The `q` quantile in seconds, interpolated within its bucket as
    /// Prometheus's `histogram_quantile` does; `None` without operations.
    /// Its precision is the bucket's width.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.buckets {
            if count >= rank {
                if le.is_infinite() {
                    // Past the last finite bound: say the bound.
                    return Some(lower.0);
                }
                let within = count - lower.1;
                let fraction = if within > 0.0 {
                    (rank - lower.1) / within
                } else {
                    1.0
                };
                return Some(lower.0 + (le - lower.0) * fraction);
            }
            lower = (le, count);
        }
        Some(lower.0)
    }
}

fn parse_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::exposition::parse;
    use super::*;

    const SCRAPE: &str = "\
db_client_operation_duration_seconds_bucket{db_operation_name=\"get\",le=\"0.0001\"} 60
db_client_operation_duration_seconds_bucket{db_operation_name=\"get\",le=\"0.001\"} 90
db_client_operation_duration_seconds_bucket{db_operation_name=\"get\",le=\"+Inf\"} 100
db_client_operation_duration_seconds_count{db_operation_name=\"get\"} 100
db_client_operation_duration_seconds_bucket{db_operation_name=\"set\",le=\"0.0001\"} 0
db_client_operation_duration_seconds_bucket{db_operation_name=\"set\",le=\"0.001\"} 10
db_client_operation_duration_seconds_bucket{db_operation_name=\"set\",le=\"+Inf\"} 10
db_client_operation_duration_seconds_count{db_operation_name=\"set\"} 10
cache_lookups_total{cache_outcome=\"hit\"} 75
cache_lookups_total{cache_outcome=\"miss\"} 25
cache_errors_total{error_type=\"timeout\"} 4
";

    #[test]
    fn totals_rates_and_interpolated_quantiles() {
        let totals = Totals::from_samples(&parse(SCRAPE));
        assert_eq!(totals.operations, 110.0);
        assert_eq!(totals.errors, 4.0);
        assert_eq!(totals.hit_rate(), Some(0.75));
        assert_eq!(
            totals.buckets,
            vec![(0.0001, 60.0), (0.001, 100.0), (f64::INFINITY, 110.0)]
        );
        // Rank 55 of 60 in the first bucket: 55/60 of 100 µs.
        let p50 = totals.quantile(0.5).unwrap();
        assert!((p50 - 0.0001 * 55.0 / 60.0).abs() < 1e-12, "{p50}");
        // Rank 108.9 is past the last finite bound: the bound.
        assert_eq!(totals.quantile(0.99), Some(0.001));
        let empty = Totals::default();
        assert_eq!((empty.quantile(0.5), empty.hit_rate()), (None, None));
    }

    #[test]
    fn an_interval_is_the_difference_and_a_restart_counts_from_zero() {
        let before = Totals::from_samples(&parse(SCRAPE));
        let after = Totals::from_samples(&parse(&SCRAPE.replace("} 75", "} 175")));
        let interval = after.since(&before);
        assert_eq!(
            (interval.hits, interval.misses, interval.operations),
            (100.0, 0.0, 0.0)
        );
        let restarted =
            Totals::from_samples(&parse("cache_lookups_total{cache_outcome=\"hit\"} 5\n"));
        assert_eq!(restarted.since(&before).hits, 5.0);
    }
}
