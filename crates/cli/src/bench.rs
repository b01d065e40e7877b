//! `cachectl bench`: a load tool for any cache URL.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cache_port::Cache;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use cache_composition::CacheConfig;

use crate::args::{BenchArgs, Cli};
use crate::exit::Failure;
use crate::{ops, plot};

/// The namespace the load runs in unless the URL names one.
pub const BENCH_NAMESPACE: &str = "cachectl-bench";

/// One kind of operation in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Get,
    Set,
    GetMany,
    Del,
    Incr,
}

const BATCH: usize = 100;

/// The largest weight of one operation in `--mix`.
const MAX_WEIGHT: u32 = 1_000_000;
/// The longest run.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
/// The most distinct keys written before a run.
const MAX_KEYS: usize = 10_000_000;
/// The largest value (Redis's own limit on a bulk string).
const MAX_VALUE_SIZE: usize = 512 * 1024 * 1024;

/// Every argument within its range, or a usage error (exit 2) that names it.
fn check_ranges(args: &BenchArgs) -> Result<(), Failure> {
    let out_of_range = |what: String| Err(Failure::Usage(what));
    if args.concurrency == 0 || args.concurrency > 10_000 {
        return out_of_range("--concurrency must be 1 to 10000".into());
    }
    if args.duration.is_zero() || args.duration > MAX_DURATION {
        return out_of_range("--duration must be more than 0 and at most 24h".into());
    }
    if args.keys == 0 || args.keys > MAX_KEYS {
        return out_of_range(format!("--keys must be 1 to {MAX_KEYS}"));
    }
    if args.value_size > MAX_VALUE_SIZE {
        return out_of_range(format!(
            "--value-size must be at most {MAX_VALUE_SIZE} bytes"
        ));
    }
    Ok(())
}

/// `get=80,set=20` as cumulative weights.
fn parse_mix(mix: &str) -> Result<Vec<(OpKind, u32)>, Failure> {
    let mut total = 0u32;
    let mut out = Vec::new();
    for part in mix.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--mix: {part:?} is not op=weight")))?;
        let kind = match name.trim() {
            "get" => OpKind::Get,
            "set" => OpKind::Set,
            "get_many" => OpKind::GetMany,
            "del" => OpKind::Del,
            "incr" => OpKind::Incr,
            other => {
                return Err(Failure::Usage(format!(
                    "--mix: unknown operation {other:?} (get, set, get_many, del, incr)"
                )))
            }
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .ok()
            .filter(|w| *w <= MAX_WEIGHT)
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "--mix: weight of {name} must be a whole number from 0 to {MAX_WEIGHT}"
                ))
            })?;
        // At most five operations of at most MAX_WEIGHT each: no overflow.
        total += weight;
        out.push((kind, total));
    }
    if total == 0 {
        return Err(Failure::Usage(
            "--mix needs at least one operation with a weight above 0".into(),
        ));
    }
    Ok(out)
}

/// One run's results, for the report and the picture.
pub struct Run {
    /// What ran (the adapter, as `describe` says it).
    pub label: String,
    /// Every operation's latency, in nanoseconds.
    pub latencies: Histogram<u64>,
}

/// Runs the load (on the URL, then on `--compare`'s), prints each report,
/// and draws the picture when asked.
pub async fn run(cli: &Cli, args: BenchArgs) -> Result<ExitCode, Failure> {
    check_ranges(&args)?;
    let mix = parse_mix(&args.mix)?;
    if let Some(path) = &args.plot {
        plot::check_path(path)?;
    }
    let mut configs = vec![ops::config(cli)?];
    if let Some(url) = &args.compare {
        configs.push(CacheConfig::from_url(url.trim())?);
    } else if args.compare_label.is_some() {
        return Err(Failure::Usage("--compare-label needs --compare".into()));
    }
    if let Some(addr) = args.serve_metrics {
        cache_composition::serve_prometheus(addr)?;
        eprintln!("metrics: http://{addr}/metrics (cachectl stats --watch 1s --scrape http://{addr}/metrics)");
        configs = configs
            .into_iter()
            .map(|c| {
                let observe = cache_composition::Observe {
                    metrics: true,
                    ..c.observe()
                };
                c.with_observe(observe)
            })
            .collect();
    }
    let mut runs = Vec::new();
    for config in configs {
        match run_one(config, &args, &mix).await? {
            Ok(run) => runs.push(run),
            Err(interrupted) => return Ok(interrupted),
        }
    }
    if runs.len() == 2 && runs[0].label == runs[1].label {
        runs[1].label = args
            .compare_label
            .clone()
            .unwrap_or_else(|| format!("{} (--compare)", runs[1].label));
    }
    if let Some(path) = &args.plot {
        plot::write(path, &runs, &args)?;
        println!("latency picture: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// One run: the load on `config`, its report printed; `Err(code)` when
/// interrupted (the run's keys cleaned up all the same).
async fn run_one(
    config: CacheConfig,
    args: &BenchArgs,
    mix: &[(OpKind, u32)],
) -> Result<Result<Run, ExitCode>, Failure> {
    // A fresh namespace of its own under the configured one: the load tool
    // writes, and afterwards deletes, only its own keys, never the user's.
    let run_namespace = bench_namespace(config.namespace(), fastrand::u64(..));
    let config = config.with_namespace(&run_namespace)?;
    let cache = ops::connect(&config).await?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let value = Bytes::from(vec![b'x'; args.value_size]);
    let keys: Arc<Vec<String>> = Arc::new((0..args.keys).map(|i| format!("bench:{i}")).collect());

    eprintln!("writing {} keys of {} bytes…", args.keys, args.value_size);
    for chunk in keys.chunks(1000) {
        cache
            .set_many(
                chunk.iter().map(|k| (k.clone(), value.clone())).collect(),
                None,
            )
            .await?;
    }

    let done = Arc::new(AtomicBool::new(false));
    {
        // Ctrl-C stops the load and still cleans up what the run wrote.
        let (done, interrupted) = (Arc::clone(&done), Arc::clone(&interrupted));
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                interrupted.store(true, Relaxed);
                done.store(true, Relaxed);
            }
        });
    }
    let count = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|seed| {
            let (cache, keys, mix, value) = (
                Arc::clone(&cache),
                Arc::clone(&keys),
                mix.to_vec(),
                value.clone(),
            );
            let (done, count, errors) =
                (Arc::clone(&done), Arc::clone(&count), Arc::clone(&errors));
            tokio::spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed as u64);
                let mut latencies = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                    .expect("histogram bounds");
                let mut n = 0u32;
                while !done.load(Relaxed) && Instant::now() < deadline {
                    n = n.wrapping_add(1);
                    if n % 32 == 0 {
                        // An in-process cache never makes a task wait: yield so
                        // the timer and the progress bar keep running.
                        tokio::task::yield_now().await;
                    }
                    let kind = pick(&mix, rng.u32(0..mix.last().map(|m| m.1).unwrap_or(1)));
                    let began = Instant::now();
                    let ok = one(&*cache, kind, &keys, &value, &mut rng).await;
                    let _ = latencies.record((began.elapsed().as_nanos() as u64).max(1));
                    count.fetch_add(1, Relaxed);
                    if !ok {
                        errors.fetch_add(1, Relaxed);
                    }
                }
                latencies
            })
        })
        .collect();

    let bar = ProgressBar::new(args.duration.as_millis() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}")
            .expect("progress template")
            .progress_chars("=> "),
    );
    while started.elapsed() < args.duration && !done.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let elapsed = started.elapsed();
        bar.set_position(elapsed.as_millis().min(args.duration.as_millis()) as u64);
        let ops = count.load(Relaxed);
        bar.set_message(format!(
            "{ops} ops, {:.0} ops/s, {} errors",
            ops as f64 / elapsed.as_secs_f64(),
            errors.load(Relaxed)
        ));
    }
    done.store(true, Relaxed);
    bar.finish_and_clear();
    let mut all =
        Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    for task in tasks {
        let h = task
            .await
            .map_err(|e| Failure::Usage(format!("a load task failed: {e}")))?;
        all.add(h).expect("same bounds");
    }
    let elapsed = started.elapsed();
    if args.keep {
        eprintln!("kept the run's keys in namespace {run_namespace:?}");
    } else {
        cache.clear().await?;
    }
    if interrupted.load(Relaxed) {
        eprintln!("interrupted; the run's keys were cleaned up");
        return Ok(Err(ExitCode::from(130)));
    }

    let us = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!("cachectl bench on {config}");
    println!(
        "  mix {}  concurrency {}  keys {}  value {} B  duration {:.1?}",
        args.mix, args.concurrency, args.keys, args.value_size, elapsed
    );
    println!(
        "  operations {:>12}   errors {}",
        all.len(),
        errors.load(Relaxed)
    );
    println!(
        "  throughput {:>12.0} ops/s",
        all.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency µs   p50 {:.1}   p99 {:.1}   p99.9 {:.1}   max {:.1}",
        us(0.50),
        us(0.99),
        us(0.999),
        all.max() as f64 / 1000.0
    );
    Ok(Ok(Run {
        label: ops::describe(&config),
        latencies: all,
    }))
}

/// The run's own namespace: `cachectl-bench:<run>` under the configured
/// namespace, if any.
fn bench_namespace(configured: Option<&str>, run: u64) -> String {
    match configured {
        Some(ns) => format!("{ns}:{BENCH_NAMESPACE}:{run:016x}"),
        None => format!("{BENCH_NAMESPACE}:{run:016x}"),
    }
}

fn pick(mix: &[(OpKind, u32)], roll: u32) -> OpKind {
    mix.iter()
        .find(|(_, upto)| roll < *upto)
        .map(|(k, _)| *k)
        .unwrap_or(mix[0].0)
}

/// One operation; whether it succeeded.
async fn one(
    cache: &dyn Cache,
    kind: OpKind,
    keys: &[String],
    value: &Bytes,
    rng: &mut fastrand::Rng,
) -> bool {
    let key = &keys[rng.usize(0..keys.len())];
    match kind {
        OpKind::Get => cache.get(key).await.is_ok(),
        OpKind::Set => cache.set(key, value.clone(), None).await.is_ok(),
        OpKind::Del => cache.delete(key).await.is_ok(),
        OpKind::Incr => cache
            .incr(&format!("counter:{}", rng.usize(0..64)), 1, None)
            .await
            .is_ok(),
        OpKind::GetMany => {
            let batch: Vec<String> = (0..BATCH)
                .map(|_| keys[rng.usize(0..keys.len())].clone())
                .collect();
            cache.get_many(&batch).await.is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes() {
        let mix = parse_mix("get=80,set=20").unwrap();
        assert_eq!(mix, vec![(OpKind::Get, 80), (OpKind::Set, 100)]);
        assert_eq!(pick(&mix, 79), OpKind::Get);
        assert_eq!(pick(&mix, 80), OpKind::Set);
        assert!(parse_mix("get=0").is_err());
        assert!(parse_mix("fly=1").is_err());
        assert!(parse_mix("get").is_err());
        assert!(parse_mix("get=x").is_err());
        // Issue 11, item 9: used to overflow (debug) or wrap and drop `set` (release).
        assert!(parse_mix("get=4294967295,set=1").is_err());
        assert!(
            parse_mix("get=1000000,set=1000000,del=1000000,incr=1000000,get_many=1000000").is_ok()
        );
    }

    #[test]
    fn each_run_gets_a_namespace_of_its_own_under_the_configured_one() {
        assert_eq!(
            bench_namespace(Some("shop"), 255),
            "shop:cachectl-bench:00000000000000ff"
        );
        assert_eq!(bench_namespace(None, 1), "cachectl-bench:0000000000000001");
    }
}
