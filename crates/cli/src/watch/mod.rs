//! `cachectl stats --watch`: a live view, one line per interval.
//!
//! With `--scrape URL` it reads a service's Prometheus endpoint (the
//! metrics layer's series, e.g. the catalogue's) and shows, per interval,
//! operations per second, the hit rate, errors, and p50/p99 latency from
//! the duration histogram's buckets. Without it, it shows the cache's own
//! figures (entries, bytes, evictions) as `stats` reads them.

mod exposition;
mod figures;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::args::{Cli, StatsArgs};
use crate::exit::Failure;
use crate::{ops, output};
use figures::Totals;

/// The shortest refresh interval.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// How long one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest scrape read (a bound on memory for a hostile endpoint).
const MAX_SCRAPE_BYTES: u64 = 64 << 20;

/// `stats`, once or watching.
pub async fn run(cli: &Cli, args: StatsArgs) -> Result<ExitCode, Failure> {
    if let Some(interval) = args.watch {
        if interval < MIN_INTERVAL {
            return Err(Failure::Usage("--watch must be at least 100ms".into()));
        }
    } else if args.count.is_some() {
        return Err(Failure::Usage("--count needs --watch".into()));
    }
    if args.count == Some(0) {
        return Err(Failure::Usage("--count must be at least 1".into()));
    }
    match (&args.scrape, args.watch) {
        (Some(url), watch) => {
            let endpoint = Endpoint::parse(url)?;
            watch_scrape(&endpoint, watch, args.count).await
        }
        (None, None) => {
            let cache = ops::connect(&ops::config(cli)?).await?;
            print!("{}", output::stats_table(&cache.stats().await?));
            Ok(ExitCode::SUCCESS)
        }
        (None, Some(interval)) => {
            let cache = ops::connect(&ops::config(cli)?).await?;
            println!(
                "{:>8}  {:>10}  {:>12}  {:>10}",
                "time", "entries", "bytes", "evictions"
            );
            let started = Instant::now();
            let mut ticks = tokio::time::interval(interval);
            for _ in 0..args.count.unwrap_or(u64::MAX) {
                ticks.tick().await;
                let stats = cache.stats().await?;
                let opt = |v: Option<u64>| v.map_or_else(|| "n/a".into(), |v| v.to_string());
                println!(
                    "{:>7.1}s  {:>10}  {:>12}  {:>10}",
                    started.elapsed().as_secs_f64(),
                    opt(stats.entries),
                    opt(stats.bytes),
                    opt(stats.evictions)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn watch_scrape(
    endpoint: &Endpoint,
    watch: Option<Duration>,
    count: Option<u64>,
) -> Result<ExitCode, Failure> {
    println!(
        "{:>8}  {:>10}  {:>10}  {:>8}  {:>8}  {:>10}  {:>10}",
        "time", "operations", "ops/s", "hit rate", "errors", "p50", "p99"
    );
    let started = Instant::now();
    let mut last = endpoint.totals().await?;
    print_line("total", &last, None);
    let Some(interval) = watch else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.tick().await;
    let mut taken = Instant::now();
    for _ in 0..count.unwrap_or(u64::MAX) {
        ticks.tick().await;
        let now = endpoint.totals().await?;
        let elapsed = taken.elapsed();
        taken = Instant::now();
        let at = format!("{:.1}s", started.elapsed().as_secs_f64());
        print_line(&at, &now.since(&last), Some(elapsed));
        last = now;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_line(at: &str, figures: &Totals, over: Option<Duration>) {
    let latency = |q| {
        figures.quantile(q).map_or_else(
            || "-".into(),
            |s| output::duration(Duration::from_secs_f64(s)),
        )
    };
    let rate = over.map_or_else(
        || "-".into(),
        |d| format!("{:.0}", figures.operations / d.as_secs_f64()),
    );
    let hit_rate = figures
        .hit_rate()
        .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0));
    println!(
        "{at:>8}  {:>10}  {rate:>10}  {hit_rate:>8}  {:>8}  {:>10}  {:>10}",
        figures.operations,
        figures.errors,
        latency(0.5),
        latency(0.99)
    );
}

/// An `http://host:port/path` scrape endpoint.
struct Endpoint {
    authority: String,
    path: String,
}

impl Endpoint {
    fn parse(url: &str) -> Result<Self, Failure> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            Failure::Usage(format!(
                "--scrape takes an http:// URL (a Prometheus endpoint), not {url:?}"
            ))
        })?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/metrics"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(Failure::Usage(
                "--scrape needs a host and port, and takes no credentials".into(),
            ));
        }
        Ok(Self {
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    async fn totals(&self) -> Result<Totals, Failure> {
        let body = tokio::time::timeout(SCRAPE_TIMEOUT, self.fetch())
            .await
            .map_err(|_| {
                Failure::Unreachable(format!(
                    "http://{}{}: no answer within {SCRAPE_TIMEOUT:?}",
                    self.authority, self.path
                ))
            })??;
        Ok(Totals::from_samples(&exposition::parse(&body)))
    }

    async fn fetch(&self) -> Result<String, Failure> {
        let unreachable = |e: std::io::Error| {
            Failure::Unreachable(format!("http://{}{}: {e}", self.authority, self.path))
        };
        let mut stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(unreachable)?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nAccept: text/plain\r\n\r\n",
            self.path, self.authority
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(unreachable)?;
        let mut response = Vec::new();
        stream
            .take(MAX_SCRAPE_BYTES)
            .read_to_end(&mut response)
            .await
            .map_err(unreachable)?;
        let response = String::from_utf8_lossy(&response);
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.lines().next().unwrap_or_default();
        if status.split_whitespace().nth(1) != Some("200") {
            return Err(Failure::Unreachable(format!(
                "http://{}{} answered {status:?}",
                self.authority, self.path
            )));
        }
        Ok(body.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:9464").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.path.as_str()),
            ("127.0.0.1:9464", "/metrics")
        );
        let e = Endpoint::parse("http://localhost:80/custom").unwrap();
        assert_eq!(e.path, "/custom");
        assert!(Endpoint::parse("https://x:1").is_err());
        assert!(Endpoint::parse("http:///metrics").is_err());
        assert!(Endpoint::parse("http://user:pw@x:1").is_err());
    }
}
