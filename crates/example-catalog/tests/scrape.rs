//! The Prometheus scrape endpoint after a known sequence of catalogue
//! calls: every counter and histogram count exactly as the calls imply.
//! (Its own test binary: a process has one global metrics recorder.)

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cache_composition::{build_cache, serve_prometheus, CacheConfig};
use cache_example_catalog::CatalogService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A free loopback port: bound, read, released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `GET /metrics` over plain HTTP/1.0; the body.
async fn scrape(port: u16) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    body.to_owned()
}

/// `name{labels} value` lines → value, labels as the exporter wrote them.
fn samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(series, _)| {
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{name} {labels:?}: {found:?} in {samples:#?}"
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_known_calls_shows_exact_counts() {
    let port = free_port();
    let _handle = serve_prometheus(([127, 0, 0, 1], port).into()).unwrap();
    let config = CacheConfig::from_url("memory://?namespace=catalog&metrics=true").unwrap();
    let cache = build_cache(&config).await.unwrap();
    let (lamp, repository) = (common::lamp(), common::repository(Duration::from_millis(1)));
    let service = CatalogService::new(Arc::clone(&cache), repository.clone());

    // 1. A miss: the caller's get, the flight's second get, the load, the set.
    assert_eq!(service.product(1).await.unwrap(), Some(lamp.clone()));
    // 2.–4. Three hits.
    for _ in 0..3 {
        assert_eq!(service.product(1).await.unwrap(), Some(lamp.clone()));
    }
    // 5. A counter that is not a number: one failed `incr`.
    cache.set("text", "abc".into(), None).await.unwrap();
    cache.incr("text", 1, None).await.unwrap_err();
    // 6. stats: the store's figures become gauges.
    let stats = cache.stats().await.unwrap();
    assert_eq!(repository.queries(), 1);

    let s = samples(&scrape(port).await);
    let ns = ("db_namespace", "catalog");
    let moka = ("db_system_name", "moka");
    let duration = "db_client_operation_duration_seconds_count";
    let get = |outcome| {
        value(
            &s,
            duration,
            &[
                ns,
                moka,
                ("db_operation_name", "get"),
                ("cache_outcome", outcome),
            ],
        )
    };
    assert_eq!(get("miss"), 2.0);
    assert_eq!(get("hit"), 3.0);
    let set = value(
        &s,
        duration,
        &[
            ns,
            moka,
            ("db_operation_name", "set"),
            ("cache_outcome", "ok"),
        ],
    );
    assert_eq!(set, 2.0, "the write-back and the text");
    let incr = value(
        &s,
        duration,
        &[
            ns,
            moka,
            ("db_operation_name", "incr"),
            ("cache_outcome", "error"),
            ("error_type", "not_an_integer"),
        ],
    );
    assert_eq!(incr, 1.0);
    assert_eq!(
        value(
            &s,
            "cache_lookups_total",
            &[ns, moka, ("cache_outcome", "hit")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "cache_lookups_total",
            &[ns, moka, ("cache_outcome", "miss")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "cache_errors_total",
            &[
                ns,
                moka,
                ("db_operation_name", "incr"),
                ("error_type", "not_an_integer")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(&s, "cache_loader_calls_total", &[("cache_outcome", "ok")]),
        1.0
    );
    assert_eq!(value(&s, "cache_loader_duration_seconds_count", &[]), 1.0);
    // The gauges hold what `stats` answered.
    assert_eq!(
        value(&s, "cache_entries", &[ns, moka]),
        stats.entries.unwrap() as f64
    );
    assert_eq!(
        value(&s, "cache_bytes", &[ns, moka]),
        stats.bytes.unwrap() as f64
    );
    // The buckets of a histogram add up to its count, and the loader's one
    // call (1 ms repository) is at least a millisecond long.
    assert_eq!(
        value(
            &s,
            "db_client_operation_duration_seconds_bucket",
            &[
                ns,
                moka,
                ("db_operation_name", "get"),
                ("cache_outcome", "hit"),
                ("le", "+Inf")
            ]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "cache_loader_duration_seconds_bucket",
            &[("le", "0.001")]
        ),
        0.0
    );
    // No key in any series.
    for series in s.keys() {
        assert!(
            !series.contains("product:") && !series.contains("text"),
            "a key in {series}"
        );
    }
}
