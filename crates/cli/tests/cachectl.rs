//! cachectl end to end: the demo on the embedded default and on a
//! self-started redis-server, single operations, exit codes.

use std::process::{Command, Output};

use cache_redis_harness::RedisServer;

fn cachectl(args: &[&str], cache_url: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cachectl"));
    cmd.args(args).env_remove("CACHE_URL");
    if let Some(url) = cache_url {
        cmd.env("CACHE_URL", url);
    }
    cmd.output().expect("run cachectl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

const EVERY_OPERATION: &[&str] = &[
    "ping",
    "set user:1",
    "get user:1",
    "exists",
    "ttl",
    "expire",
    "set_many",
    "get_many",
    "set_if_absent",
    "incr",
    "keys",
    "delete_pattern",
    "delete user:1",
    "delete_many",
    "clear",
    "hits",
    "misses",
    "hit rate",
    "evictions",
];

#[test]
fn the_demo_runs_every_operation_on_the_embedded_default() {
    let out = cachectl(&[], None);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("on memory"), "{text}");
    for op in EVERY_OPERATION {
        assert!(text.contains(op), "the demo did not show {op}:\n{text}");
    }
    assert!(text.contains("-> 42"), "incr answers 42:\n{text}");
}

#[test]
fn cache_url_switches_the_same_binary_to_redis() {
    let server = RedisServer::start();
    server.command("SET theirs:key untouched");
    let out = cachectl(&[], Some(&server.url()));
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("on redis"), "{text}");
    for op in EVERY_OPERATION {
        assert!(text.contains(op), "the demo did not show {op}:\n{text}");
    }
    // The demo worked in its own namespace and left the rest alone.
    assert!(
        server.command("DBSIZE").starts_with(":1"),
        "the demo left keys or deleted others"
    );
    assert!(server.command("GET theirs:key").contains("untouched"));
}

#[test]
fn the_demo_runs_on_the_tiered_cache() {
    let server = RedisServer::start();
    let out = cachectl(&[], Some(&format!("{}/0?l1=8MiB", server.url())));
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    // The first line says what runs, as a person reads it (it was the
    // whole Debug struct of the configuration).
    let first = text.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        format!(
            "cachectl demo on redis at {}/0, namespace cachectl-demo, with an in-process L1 of 8388608 bytes",
            server.url()
        ),
        "{text}"
    );
    for op in EVERY_OPERATION {
        assert!(text.contains(op), "the demo did not show {op}:\n{text}");
    }
}

#[test]
fn single_operations_and_their_exit_codes() {
    let server = RedisServer::start();
    let url = format!("{}/0?namespace=ops", server.url());
    let run = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        cachectl(&all, None)
    };
    assert_eq!(
        stdout(&run(&["set", "greeting", "hello", "--ttl", "90s"])).trim(),
        "OK"
    );
    assert_eq!(stdout(&run(&["get", "greeting"])).trim(), "\"hello\"");
    assert!(stdout(&run(&["ttl", "greeting"])).starts_with("expires in"));
    assert_eq!(stdout(&run(&["incr", "n", "--by", "-5"])).trim(), "-5");
    assert_eq!(stdout(&run(&["keys", "*"])), "greeting\nn\n");
    assert_eq!(stdout(&run(&["delete-pattern", "gr*"])).trim(), "1");
    assert_eq!(stdout(&run(&["del", "n", "nothing"])).trim(), "1");
    assert!(stdout(&run(&["ping"])).starts_with("PONG"));
    assert!(stdout(&run(&["stats"])).contains("hits"));
    assert!(
        server.command("GET ops:greeting").contains("$-1"),
        "namespaced on the server"
    );

    let missing = run(&["get", "greeting"]);
    assert_eq!(
        (code(&missing), stdout(&missing).trim().to_owned()),
        (1, "(nil)".to_owned())
    );
    assert_eq!(code(&run(&["ttl", "greeting"])), 1);
    assert_eq!(code(&run(&["get", ""])), 2, "an empty key is bad input");
    assert_eq!(
        code(&run(&["keys", "[abc"])),
        2,
        "an unclosed class is bad input"
    );
    assert_eq!(code(&run(&["set", "k", "v", "--ttl", "soon"])), 2);
    assert_eq!(code(&run(&["clear"])), 2, "clear needs --yes");
    assert_eq!(code(&run(&["clear", "--yes"])), 0);
    server.command("SET n notanumber");
    let not_int = cachectl(&["--url", &server.url(), "incr", "n"], None);
    assert_eq!(code(&not_int), 4);
    assert!(String::from_utf8_lossy(&not_int.stderr).contains("not an integer"));
}

/// Issue 26: `set --tag`, `tag show`, `tag invalidate`, with exit codes.
#[test]
fn tags_invalidate_their_entries_with_exit_codes() {
    let server = RedisServer::start();
    let url = format!("{}/0?namespace=tags", server.url());
    let run = |args: &[&str]| {
        let mut all = vec!["--url", url.as_str()];
        all.extend_from_slice(args);
        cachectl(&all, None)
    };
    let ok = |out: Output| {
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        stdout(&out).trim().to_owned()
    };
    assert_eq!(
        ok(run(&[
            "set",
            "page:7",
            "seven",
            "--tag",
            "product:7",
            "--tag",
            "pages"
        ])),
        "OK"
    );
    assert_eq!(ok(run(&["set", "page:8", "eight", "--tag", "pages"])), "OK");
    assert_eq!(ok(run(&["get", "page:7"])), "\"seven\"");
    let version = ok(run(&["tag", "show", "product:7"]));
    assert_eq!(version.len(), 16, "{version}");
    assert_eq!(ok(run(&["tag", "invalidate", "product:7"])), "OK");
    assert_ne!(ok(run(&["tag", "show", "product:7"])), version);
    let gone = run(&["get", "page:7"]);
    assert_eq!((code(&gone), stdout(&gone).trim()), (1, "(nil)"));
    assert_eq!(ok(run(&["get", "page:8"])), "\"eight\"");
    let none = run(&["tag", "show", "never-used"]);
    assert_eq!((code(&none), stdout(&none).trim()), (1, "(none)"));
    assert_eq!(
        code(&run(&["tag", "invalidate", ""])),
        2,
        "an empty tag is bad input"
    );
    assert_eq!(code(&run(&["set", "k", "v", "--tag", ""])), 2);
    assert_eq!(code(&run(&["tag", "invalidate"])), 2, "a tag is required");
}

#[test]
fn bad_and_unreachable_urls_fail_clearly() {
    let bad = cachectl(&["--url", "memcached://x", "ping"], None);
    assert_eq!(code(&bad), 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown cache scheme"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = cachectl(
        &["ping"],
        Some(&format!(
            "redis://:pw-never-shown@127.0.0.1:{port}?connect_timeout_ms=500"
        )),
    );
    assert_eq!(code(&down), 3);
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(!err.contains("pw-never-shown"), "{err}");
    // Issue 11, items 4 and 11: malformed URLs are configuration errors
    // (exit 2) that never repeat the password, and messages are words, not
    // Rust's Debug text.
    for url in [
        "redis:/u:S3cret@127.0.0.1:6379".to_owned(),
        "redis:u:S3cret@127.0.0.1:6379".to_owned(),
        "u:S3cret@127.0.0.1:6379".to_owned(),
        "S3cret@redis://127.0.0.1".to_owned(),
        format!("redis://u:S3cret@127.0.0.1:{port}/notanumber"),
        format!("redis://u:S3cret@127.0.0.1:{port}?command_timeout_ms=18446744073709551615"),
        format!("redis-sentinel://127.0.0.1:{port}/0?sentinelServiceName=m&sentinelPassword=S3cret&bogus=1"),
    ] {
        let out = cachectl(&["--url", &url, "get", "k"], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{url}: {err}");
        assert!(!err.contains("S3cret"), "{url}: {err}");
    }
    let refused = cachectl(
        &[
            "--url",
            &format!("redis://127.0.0.1:{port}?connect_timeout_ms=500"),
            "ping",
        ],
        None,
    );
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!err.contains("Os {") && !err.contains("kind:"), "{err}");
    // The scheme is case-insensitive in every parser alike.
    let upper = cachectl(
        &[
            "--url",
            &format!("REDIS://127.0.0.1:{port}?connect_timeout_ms=500"),
            "ping",
        ],
        None,
    );
    assert_eq!(
        code(&upper),
        3,
        "{}",
        String::from_utf8_lossy(&upper.stderr)
    );
}

#[test]
fn the_load_tool_reports_throughput_and_percentiles() {
    let server = RedisServer::start();
    let tiered = format!("{}/0?l1=8MiB", server.url());
    for url in [None, Some(server.url()), Some(tiered)] {
        let out = cachectl(
            &[
                "bench",
                "--duration",
                "1s",
                "--keys",
                "1000",
                "--concurrency",
                "8",
                "--mix",
                "get=70,set=20,get_many=5,incr=5",
            ],
            url.as_deref(),
        );
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
        let text = stdout(&out);
        for field in ["throughput", "ops/s", "p50", "p99", "p99.9", "errors 0"] {
            assert!(text.contains(field), "{field} missing:\n{text}");
        }
    }
    // The run cleared its own namespace.
    assert!(server.command("DBSIZE").starts_with(":0"));
    assert_eq!(code(&cachectl(&["bench", "--mix", "get=0"], None)), 2);
    // Issue 11, item 9: each of these used to panic or abort.
    let huge = "18446744073709551615";
    for args in [
        vec!["bench", "--duration", huge],
        vec!["bench", "--value-size", huge],
        vec!["bench", "--keys", huge],
        vec!["bench", "--value-size", "4611686018427387904"],
        vec!["bench", "--mix", "get=4294967295,set=1"],
        vec!["bench", "--duration", "0s"],
    ] {
        let out = cachectl(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    assert_eq!(code(&cachectl(&["bench", "--concurrency", "0"], None)), 2);
}

/// Issue 11, item 5: the load tool writes into a fresh namespace of its own
/// under the configured one and deletes only that: a user's keys in the same
/// namespace survive, and nothing of the run is left behind.
#[test]
fn the_load_tool_never_deletes_the_users_keys() {
    let server = RedisServer::start();
    let url = format!("{}/0?namespace=shop", server.url());
    for i in 0..100 {
        let out = cachectl(&["--url", &url, "set", &format!("order:{i}"), "kept"], None);
        assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = cachectl(
        &[
            "--url",
            &url,
            "bench",
            "--duration",
            "300ms",
            "--keys",
            "50",
            "--concurrency",
            "4",
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let out = cachectl(&["--url", &url, "keys", "*"], None);
    let mut listed: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    listed.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("order:{i}")).collect();
    want.sort();
    assert_eq!(listed, want, "exactly the user's keys remain");
}

/// `bench --plot --compare`: two runs on one SVG picture, well-formed, with
/// both axes labelled, a line per run and each run's percentiles written.
#[test]
fn the_load_tool_draws_two_runs_on_one_latency_picture() {
    let server = RedisServer::start();
    let folder = std::env::temp_dir().join(format!("cachectl-plot-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let svg = folder.join("latency.svg");
    let out = cachectl(
        &[
            "bench",
            "--duration",
            "1s",
            "--keys",
            "500",
            "--concurrency",
            "4",
            "--plot",
            svg.to_str().unwrap(),
            "--compare",
            &server.url(),
        ],
        None,
    );
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("latency picture:"));
    let text = std::fs::read_to_string(&svg).unwrap();
    let document = roxmltree::Document::parse(&text).expect("well-formed SVG");
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let lines = root
        .descendants()
        .filter(|n| n.tag_name().name() == "polyline")
        .filter(|n| {
            n.attribute("points")
                .is_some_and(|p| p.split(' ').count() > 200)
        })
        .count();
    assert_eq!(lines, 2, "one line of 251 points per run");
    let words: String = root
        .descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join("|");
    for needed in [
        "percentile (each step to the right is ten times rarer)",
        "latency, µs (log scale)",
        "90%",
        "99.9%",
        "memory (",
        "redis (",
        "p50 ",
        "p99.99 ",
    ] {
        assert!(
            words.contains(needed),
            "{needed:?} missing from the picture's text: {words}"
        );
    }
    std::fs::remove_dir_all(&folder).unwrap();
    // A bad path is refused before any load runs.
    let out = cachectl(&["bench", "--plot", "latency.png"], None);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains(".svg"));
    let out = cachectl(&["bench", "--compare-label", "x"], None);
    assert_eq!(code(&out), 2);
}
