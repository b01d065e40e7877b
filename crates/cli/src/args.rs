//! The command line.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// Operate a cache through the cache port: the embedded default, or Redis.
#[derive(Debug, Parser)]
#[command(name = "cachectl", version, about)]
pub struct Cli {
    /// The cache's URL: `memory://` (default), `moka://`,
    /// `redis://[user:password@]host:port/db?namespace=…`.
    #[arg(
        long,
        env = "CACHE_URL",
        global = true,
        hide_env_values = true,
        help = "The cache: memory:// (default), moka://, redis://[user:password@]host:port/db?namespace=…"
    )]
    pub url: Option<String>,

    /// What to do (default: demo).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// One operation.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Demonstrate every port operation, then print the stats (the default).
    Demo,
    /// Print the value of a key (exit 1 when missing).
    Get {
        /// The key.
        key: String,
    },
    /// Store a value.
    Set {
        /// The key.
        key: String,
        /// The value (UTF-8).
        value: String,
        /// Time to live, e.g. 500ms, 30s, 1h (default: none).
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
        /// Tag the entry (repeatable): `tag invalidate` drops it.
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// Delete keys; prints how many existed.
    Del {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print a key's time to live: missing, persistent, or the remaining time.
    Ttl {
        /// The key.
        key: String,
    },
    /// Add to a counter; prints the new value.
    Incr {
        /// The key.
        key: String,
        /// The amount (may be negative).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        by: i64,
        /// Time to live when the counter is created.
        #[arg(long, value_parser = parse_ttl)]
        ttl: Option<Duration>,
    },
    /// List the keys matching a Redis glob pattern.
    Keys {
        /// The pattern, e.g. 'user:*'.
        pattern: String,
    },
    /// Delete the keys matching a Redis glob pattern; prints how many.
    DeletePattern {
        /// The pattern, e.g. 'session:*'.
        pattern: String,
    },
    /// Delete every key in the namespace (Redis without a namespace: only with allow_flushdb).
    Clear {
        /// Confirm: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// Print the cache's figures; with --watch, a live view (see --scrape).
    Stats(StatsArgs),
    /// Print the round-trip time.
    Ping,
    /// Tags (cache-tags): invalidate every entry of a tag, or show its version.
    #[command(subcommand)]
    Tag(TagCommand),
    /// Load the cache and report throughput and latency percentiles.
    Bench(BenchArgs),
}

/// `tag` operations.
#[derive(Debug, Clone, Subcommand)]
pub enum TagCommand {
    /// Invalidate every entry tagged with any of these tags (one write); prints OK.
    Invalidate {
        /// The tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Print a tag's version (exit 1 when it has none: no entry of it is live).
    Show {
        /// The tag.
        tag: String,
    },
}

/// `stats` settings.
#[derive(Debug, Clone, clap::Args)]
pub struct StatsArgs {
    /// Refresh every interval (e.g. 1s), one line each, until Ctrl-C.
    #[arg(long, value_parser = parse_ttl)]
    pub watch: Option<Duration>,
    /// Stop after this many refreshes.
    #[arg(long)]
    pub count: Option<u64>,
    /// A service's Prometheus endpoint (http://host:port/metrics) to read the
    /// metrics layer's figures from: ops/s, hit rate, errors, p50 and p99.
    #[arg(long)]
    pub scrape: Option<String>,
}

/// The load tool's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Concurrent tasks issuing operations.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long to run, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = parse_ttl)]
    pub duration: Duration,
    /// Operation mix as weights: get, set, get_many (100 keys), del, incr.
    #[arg(long, default_value = "get=80,set=20")]
    pub mix: String,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Distinct keys (written once before the run, so gets hit).
    #[arg(long, default_value_t = 100_000)]
    pub keys: usize,
    /// Keep the benchmark's keys afterwards (by default its namespace is cleared).
    #[arg(long)]
    pub keep: bool,
    /// Draw the latency percentile distribution of the run(s) into this SVG file.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// Run the same load on this second cache URL afterwards, and put both
    /// runs on the picture (e.g. memory:// against redis://).
    #[arg(long)]
    pub compare: Option<String>,
    /// Serve the run's metrics (the metrics layer, turned on) for Prometheus at
    /// this address, e.g. 127.0.0.1:9464, to watch with `stats --watch --scrape`.
    #[arg(long)]
    pub serve_metrics: Option<std::net::SocketAddr>,
    /// The second run's name in the report and the picture (default: its adapter).
    #[arg(long)]
    pub compare_label: Option<String>,
}

/// `500ms`, `30s`, `1h 30m`, or a bare number of seconds.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).map_err(|e| format!("{e} (try 500ms, 30s or 1h)"))
}
