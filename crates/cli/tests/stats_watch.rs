//! `cachectl stats --watch --scrape` against a Prometheus endpoint served by
//! this test, as a service with `metrics=true` serves it. (Its own test
//! binary: a process has one global metrics recorder.)

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use cache_composition::{build_cache, serve_prometheus, CacheConfig};

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn columns(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_view_shows_totals_then_each_interval() {
    let port = free_port();
    let _handle = serve_prometheus(([127, 0, 0, 1], port).into()).unwrap();
    let config = CacheConfig::from_url("memory://?namespace=svc&metrics=true").unwrap();
    let cache = build_cache(&config).await.unwrap();
    cache.set("hot", "v".into(), None).await.unwrap();
    for i in 0..400 {
        let key = if i % 4 == 3 { "cold" } else { "hot" };
        cache.get(key).await.unwrap();
    }
    cache.set("text", "abc".into(), None).await.unwrap();
    for _ in 0..5 {
        cache.incr("text", 1, None).await.unwrap_err();
    }

    let load = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let background = {
        let (cache, load, stop) = (Arc::clone(&cache), Arc::clone(&load), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Relaxed) {
                if load.load(Relaxed) {
                    cache.get("hot").await.unwrap();
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
    };
    let url = format!("http://127.0.0.1:{port}/metrics");
    let load_on = Arc::clone(&load);
    let lines = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cachectl"))
            .args([
                "stats", "--watch", "300ms", "--count", "2", "--scrape", &url,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if line.trim_start().starts_with("total") {
                load_on.store(true, Relaxed);
            }
            lines.push(line);
        }
        assert!(child.wait().unwrap().success());
        lines
    })
    .await
    .unwrap();
    stop.store(true, Relaxed);
    background.await.unwrap();

    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        columns(&lines[0]),
        [
            "time",
            "operations",
            "ops/s",
            "hit",
            "rate",
            "errors",
            "p50",
            "p99"
        ]
    );
    // Before the watch: 2 sets, 400 gets (300 hits, 100 misses), 5 failed incrs.
    let total = columns(&lines[1]);
    assert_eq!(
        &total[..5],
        ["total", "407", "-", "75.0%", "5"],
        "{lines:#?}"
    );
    assert_ne!(total[5], "-", "a p50");
    // Each interval: only the background's hits, at some hundreds a second.
    for line in &lines[2..] {
        let figures = columns(line);
        let rate: f64 = figures[2].parse().unwrap();
        assert!(rate > 10.0, "{line}");
        assert_eq!(
            (figures[3].as_str(), figures[4].as_str()),
            ("100.0%", "0"),
            "{line}"
        );
    }
}

#[test]
fn bad_watch_arguments_and_an_endpoint_that_is_down_fail_clearly() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cachectl"))
            .args(args)
            .output()
            .unwrap()
    };
    for (args, code) in [
        (&["stats", "--watch", "10ms"][..], 2),
        (&["stats", "--count", "2"][..], 2),
        (&["stats", "--watch", "1s", "--count", "0"][..], 2),
        (&["stats", "--scrape", "https://x:1/metrics"][..], 2),
        (
            &[
                "stats",
                "--scrape",
                &format!("http://127.0.0.1:{}/metrics", free_port()),
            ][..],
            3,
        ),
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("cachectl: error:"));
    }
}

/// One `cachectl` loads a cache and serves its metrics; another watches it.
#[test]
fn one_cachectl_watches_another_s_load() {
    let port = free_port();
    let mut bench = Command::new(env!("CARGO_BIN_EXE_cachectl"))
        .args([
            "bench",
            "--duration",
            "3s",
            "--keys",
            "1000",
            "--concurrency",
            "4",
        ])
        .args(["--serve-metrics", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The endpoint is up once the bench says where it is.
    let mut stderr = BufReader::new(bench.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("metrics: http://127.0.0.1:"), "{first}");
    let watch = Command::new(env!("CARGO_BIN_EXE_cachectl"))
        .args(["stats", "--watch", "500ms", "--count", "2", "--scrape"])
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .unwrap();
    assert!(bench.wait().unwrap().success());
    let text = String::from_utf8_lossy(&watch.stdout);
    assert!(watch.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    for line in &lines[2..] {
        let figures = columns(line);
        let rate: f64 = figures[2].parse().unwrap();
        assert!(rate > 1000.0, "the load shows: {line}");
        assert_eq!(figures[4], "0", "no errors: {line}");
        assert_ne!(figures[5], "-", "a p50: {line}");
    }
}
