//! Durable write-behind on a Redis Stream: a writer process killed with
//! SIGKILL loses nothing it acknowledged, and another instance flushes what
//! it left (its unflushed writes and the batch it was saving); a graceful
//! stop through a repository outage saves each write exactly once, in each
//! key's order; a full log pushes back; Redis Cluster works.
//!
//! The killed writer is this test binary run again as a child, its
//! `durable_writer_child` test in writer mode (`DURABLE_CHILD_URL` set); run
//! plainly, that test checks a graceful writer's saves on its own server.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use cache_port::Cache;
use cache_recipes::{DurableConfig, DurableWriteBehind, DurableWriteError, Repository};
use cache_redis::{RedisConfig, RedisWriteLog};
use cache_redis_harness::{RedisCluster, RedisServer};
use cache_store::write_log::WriteLog;

mod common;
use common::Db;

/// Saves to a file, one `key=value` line per item, synced before the save
/// returns; in writer mode it then says `SAVED` and dawdles, so that the
/// parent kills it between a save and its acknowledgement.
struct FileDb {
    file: Mutex<std::fs::File>,
    dawdle: Option<Duration>,
}

#[async_trait]
impl Repository for FileDb {
    type Error = std::io::Error;

    async fn save_many(&self, items: &[(String, Bytes)]) -> Result<(), std::io::Error> {
        {
            let mut file = self.file.lock().unwrap();
            let mut lines = String::new();
            for (key, value) in items {
                lines.push_str(&format!("{key}={}\n", std::str::from_utf8(value).unwrap()));
            }
            file.write_all(lines.as_bytes())?;
            file.sync_data()?;
        }
        if let Some(dawdle) = self.dawdle {
            println!("SAVED {}", items.len());
            tokio::time::sleep(dawdle).await;
        }
        Ok(())
    }
}

fn moka() -> Arc<dyn Cache> {
    Arc::new(cache_moka::MokaConfig::default().build().unwrap())
}

async fn log(url: &str, name: &str) -> Arc<dyn WriteLog> {
    RedisWriteLog::connect(&RedisConfig::from_url(url).unwrap(), name)
        .await
        .unwrap()
}

fn number(value: &[u8]) -> u64 {
    std::str::from_utf8(value).unwrap().parse().unwrap()
}

/// What `db` saved, in order, the values as numbers.
fn saved(db: &Db) -> Vec<(String, u64)> {
    db.applied
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), number(v)))
        .collect()
}

/// Parses `key=value` lines; a torn last line (the process died writing
/// it, so that save never returned) is left out.
fn file_saves(path: &std::path::Path) -> Vec<(String, u64)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let whole = text.rfind('\n').map_or("", |end| &text[..end]);
    whole
        .lines()
        .map(|line| {
            let (key, value) = line.split_once('=').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// Per key, the values in save order never go back (a key's writes reach
/// the repository in order; a batch saved again after a crash repeats the
/// same values); returns the last value of each key.
fn check_key_order(saves: &[(String, u64)]) -> HashMap<String, u64> {
    let mut last: HashMap<String, u64> = HashMap::new();
    for (key, value) in saves {
        if let Some(&before) = last.get(key) {
            assert!(*value >= before, "{key}: {value} saved after {before}");
        }
        last.insert(key.clone(), *value);
    }
    last
}

/// The first integer of a raw RESP reply (`:n`).
fn first_integer(raw: &str) -> u64 {
    raw.lines()
        .find_map(|line| line.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no integer in {raw:?}"))
        .trim()
        .parse()
        .unwrap()
}

const CHILD_KEYS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_writer_child() {
    let (url, saves, server) = match std::env::var("DURABLE_CHILD_URL") {
        Ok(url) => (url, std::env::var("DURABLE_CHILD_SAVES").unwrap(), None),
        Err(_) => {
            let server = RedisServer::start();
            let saves = std::env::temp_dir().join(format!("durable-child-{}", std::process::id()));
            (
                server.url(),
                saves.to_string_lossy().into_owned(),
                Some(server),
            )
        }
    };
    let writer_mode = server.is_none();
    let file = std::fs::File::create(&saves).unwrap();
    let db = Arc::new(FileDb {
        file: Mutex::new(file),
        dawdle: writer_mode.then_some(Duration::from_millis(300)),
    });
    let config = DurableConfig {
        batch: 20,
        delay: Duration::from_millis(10),
        lease: Duration::from_millis(600),
        ..DurableConfig::default()
    };
    let behind = DurableWriteBehind::new(db, moka(), log(&url, "orders").await, config);
    let start = Instant::now();
    let count = if writer_mode { u64::MAX } else { 300 };
    let mut out = std::io::stdout();
    for i in 0..count {
        if start.elapsed() > Duration::from_secs(60) {
            panic!("the writer was not killed within 60 s");
        }
        let key = format!("k{}", i % CHILD_KEYS);
        behind
            .write(&key, Bytes::from(i.to_string()), None)
            .await
            .unwrap();
        if writer_mode {
            writeln!(out, "ACK {i}").unwrap();
        }
    }
    // Plain mode: a graceful stop leaves every key's last value saved.
    let flushed = behind.shutdown().await;
    let last = check_key_order(&file_saves(std::path::Path::new(&saves)));
    for k in 0..CHILD_KEYS {
        let newest = (0..300).filter(|i| i % CHILD_KEYS == k).max().unwrap();
        assert_eq!(last.get(&format!("k{k}")), Some(&newest));
    }
    assert_eq!(flushed.writes, 300, "{flushed:?}");
    let _ = std::fs::remove_file(&saves);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_nothing_acknowledged_and_another_instance_flushes_what_it_left() {
    let server = RedisServer::start();
    let saves = std::env::temp_dir().join(format!("durable-killed-{}", std::process::id()));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durable_writer_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DURABLE_CHILD_URL", server.url())
        .env("DURABLE_CHILD_SAVES", &saves)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Reads the child's acknowledgements; kills it with SIGKILL at the
    // first save it reports after 2,000 acknowledged writes (it is then in
    // the 300 ms between a save and its acknowledgement).
    let reader = std::thread::spawn(move || {
        let mut acked: Vec<u64> = Vec::new();
        let mut killed = false;
        let started = Instant::now();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line.strip_prefix("ACK ") {
                acked.push(i.parse().unwrap());
            } else if line.starts_with("SAVED") && acked.len() >= 2_000 && !killed {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
            if !killed && started.elapsed() > Duration::from_secs(60) {
                child.kill().unwrap();
                panic!("the child acknowledged {} writes in 60 s", acked.len());
            }
        }
        child.wait().unwrap();
        assert!(killed, "the child ended on its own");
        acked
    });
    let acked = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    let stream = "{orders}:writes";
    let left = first_integer(&server.command(&format!("XLEN {stream}")));
    // XPENDING's summary: the count first.
    let pending = first_integer(&server.command(&format!("XPENDING {stream} flushers")));
    assert!(left > 0, "the dead writer left nothing unflushed");
    assert!(pending > 0, "the dead flusher had no batch in flight");

    // Another instance takes over once the dead one's lease ran out.
    let db = Arc::new(Db::default());
    let config = DurableConfig {
        delay: Duration::from_millis(10),
        lease: Duration::from_millis(600),
        ..DurableConfig::default()
    };
    let taker = DurableWriteBehind::new(
        Arc::clone(&db),
        moka(),
        log(&server.url(), "orders").await,
        config,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while taker.unflushed().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "the log was not flushed in 30 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let flushed = taker.shutdown().await;
    assert_eq!(
        flushed.writes, left,
        "the taker flushed what the dead writer left"
    );

    // The dead writer's saves, then the taker's: nothing acknowledged lost.
    let mut all = file_saves(&saves);
    let by_child = all.len();
    all.extend(saved(&db));
    let last = check_key_order(&all);
    let mut newest_acked: HashMap<String, u64> = HashMap::new();
    for &i in &acked {
        let slot = newest_acked
            .entry(format!("k{}", i % CHILD_KEYS))
            .or_default();
        *slot = (*slot).max(i);
    }
    for (key, newest) in &newest_acked {
        let saved = last.get(key).copied();
        // An unacknowledged write logged just before the kill may be newer.
        assert!(
            saved >= Some(*newest),
            "{key}: acknowledged {newest}, saved {saved:?}"
        );
    }
    println!(
        "acknowledged {} writes; at the kill {left} unflushed, {pending} in flight; \
         the dead writer saved {by_child} items, the taker {} in {} batches",
        acked.len(),
        db.applied.lock().unwrap().len(),
        flushed.batches
    );
    let _ = std::fs::remove_file(&saves);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_through_an_outage_saves_each_write_once_in_key_order() {
    let server = RedisServer::start();
    let db = Arc::new(Db::default());
    db.failing.store(true, SeqCst);
    let config = DurableConfig {
        batch: 16,
        delay: Duration::from_millis(10),
        lease: Duration::from_millis(500),
        backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(40),
        ..DurableConfig::default()
    };
    // Two instances share the log; one flushes at a time.
    let a = Arc::new(DurableWriteBehind::new(
        Arc::clone(&db),
        moka(),
        log(&server.url(), "o").await,
        config,
    ));
    let b = Arc::new(DurableWriteBehind::new(
        Arc::clone(&db),
        moka(),
        log(&server.url(), "o").await,
        config,
    ));
    let writers: Vec<_> = (0..8u64)
        .map(|w| {
            let behind = Arc::clone(if w % 2 == 0 { &a } else { &b });
            tokio::spawn(async move {
                // Each writer owns 5 keys; values count up (writer-tagged).
                let mut last = HashMap::new();
                for n in 0..150u64 {
                    let key = format!("w{w}k{}", n % 5);
                    let value = w * 1_000_000 + n;
                    behind
                        .write(&key, Bytes::from(value.to_string()), None)
                        .await
                        .unwrap();
                    last.insert(key, value);
                }
                last
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    db.failing.store(false, SeqCst);
    let mut newest = HashMap::new();
    for writer in writers {
        newest.extend(writer.await.unwrap());
    }
    let a = Arc::into_inner(a).unwrap();
    let b = Arc::into_inner(b).unwrap();
    let (fa, fb) = (a.shutdown().await, b.shutdown().await);
    let saves: Vec<(String, u64)> = saved(&db);
    // Exactly once: per key, each value saved once, in increasing order.
    let mut seen = HashMap::new();
    for (key, value) in &saves {
        if let Some(before) = seen.insert(key.clone(), *value) {
            assert!(*value > before, "{key}: {value} saved after {before}");
        }
    }
    assert_eq!(
        seen, newest,
        "every key's last acknowledged value is saved last"
    );
    assert_eq!(fa.writes + fb.writes, 1_200, "{fa:?} {fb:?}");
    assert!(
        fa.retries + fb.retries > 0,
        "the outage was retried: {fa:?} {fb:?}"
    );
    assert_eq!(first_integer(&server.command("XLEN {o}:writes")), 0);
}

/// A repository that never finishes a save (the flusher stays busy).
struct Stuck;

#[async_trait]
impl Repository for Stuck {
    type Error = String;

    async fn save_many(&self, _: &[(String, Bytes)]) -> Result<(), String> {
        std::future::pending().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_refuses_try_write_and_the_cache_is_untouched() {
    let server = RedisServer::start();
    let cache = moka();
    let config = DurableConfig {
        capacity: 5,
        ..DurableConfig::default()
    };
    let behind = DurableWriteBehind::new(
        Arc::new(Stuck),
        Arc::clone(&cache),
        log(&server.url(), "f").await,
        config,
    );
    for i in 0..5 {
        behind
            .try_write(&format!("k{i}"), Bytes::from("v"), None)
            .await
            .unwrap();
    }
    match behind.try_write("k5", Bytes::from("v"), None).await {
        Err(DurableWriteError::Full(5)) => {}
        other => panic!("expected Full(5), got {other:?}"),
    }
    assert_eq!(cache.get("k5").await.unwrap(), None);
    assert_eq!(behind.unflushed().await.unwrap(), 5);
    // A writer that waits does not get in either.
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        behind.write("k5", Bytes::from("v"), None),
    )
    .await;
    assert!(waited.is_err(), "write got into a full log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_log_name_with_braces_is_refused() {
    let server = RedisServer::start();
    let config = RedisConfig::from_url(&server.url()).unwrap();
    for name in ["", "a{b", "a}b"] {
        let error = RedisWriteLog::connect(&config, name).await.unwrap_err();
        assert_eq!(error.kind(), cache_port::ErrorKind::InvalidKey, "{name:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_write_behind_runs_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let db = Arc::new(Db::default());
    let config = DurableConfig {
        delay: Duration::from_millis(10),
        ..DurableConfig::default()
    };
    let log = log(&cluster.url(), "orders").await;
    let behind = DurableWriteBehind::new(Arc::clone(&db), moka(), log, config);
    for i in 0..200u64 {
        behind
            .write(&format!("k{}", i % 20), Bytes::from(i.to_string()), None)
            .await
            .unwrap();
    }
    let flushed = behind.shutdown().await;
    assert_eq!(flushed.writes, 200);
    let last = check_key_order(&saved(&db));
    for k in 0..20u64 {
        assert_eq!(last[&format!("k{k}")], 180 + k);
    }
}

/// A server frozen for a second (SIGSTOP) under 4 writers: writes made
/// meanwhile fail as `NotLogged` (unknown outcome, the cache untouched),
/// the flusher waits it out, and every acknowledged write reaches the
/// repository: each key ends at its last acknowledged value or a later
/// write whose outcome was unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_frozen_server() {
    let server = RedisServer::start();
    let url = format!("{}?command_timeout_ms=200", server.url());
    let db = Arc::new(Db::default());
    let config = DurableConfig {
        delay: Duration::from_millis(10),
        lease: Duration::from_millis(2_000),
        ..DurableConfig::default()
    };
    let behind = Arc::new(DurableWriteBehind::new(
        Arc::clone(&db),
        moka(),
        log(&url, "f").await,
        config,
    ));
    let start = Instant::now();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let behind = Arc::clone(&behind);
            tokio::spawn(async move {
                // Per key: the last acknowledged value, and the writes of
                // unknown outcome after it.
                let (mut acked, mut unknown, mut refused) =
                    (HashMap::new(), HashMap::<String, Vec<u64>>::new(), 0u64);
                let mut n = 0u64;
                while start.elapsed() < Duration::from_millis(2_500) {
                    n += 1;
                    let key = format!("w{w}k{}", n % 5);
                    let value = w * 1_000_000 + n;
                    match behind
                        .write(&key, Bytes::from(value.to_string()), None)
                        .await
                    {
                        Ok(()) => {
                            unknown.remove(&key);
                            acked.insert(key, value);
                        }
                        Err(DurableWriteError::NotLogged(_)) => {
                            refused += 1;
                            unknown.entry(key).or_default().push(value);
                        }
                        Err(other) => panic!("{other}"),
                    }
                }
                (acked, unknown, refused)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(700)).await;
    server.pause();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    server.resume();
    let (mut acked, mut unknown, mut refused) = (HashMap::new(), HashMap::new(), 0);
    for writer in writers {
        let (a, u, r) = writer.await.unwrap();
        acked.extend(a);
        unknown.extend(u);
        refused += r;
    }
    let behind = Arc::into_inner(behind).unwrap();
    let flushed = behind.shutdown().await;
    assert!(refused > 0, "no write failed while the server was frozen");
    let saves: Vec<(String, u64)> = saved(&db);
    let last = check_key_order(&saves);
    for (key, value) in &acked {
        let saved = last.get(key).copied().unwrap_or(0);
        let later_unknown = unknown.get(key).is_some_and(|u| u.contains(&saved));
        assert!(
            saved == *value || later_unknown,
            "{key}: acknowledged {value}, saved {saved}"
        );
    }
    println!(
        "{} keys; {refused} writes refused while frozen; {} saved in {} batches",
        acked.len(),
        flushed.writes,
        flushed.batches
    );
}
