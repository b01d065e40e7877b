//! A test process killed by a signal runs no `Drop`: the servers it
//! started must die with it all the same, not linger on their ports.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use cache_redis_harness::RedisServer;

/// Set in the child process this test starts.
const CHILD: &str = "CACHE_REDIS_HARNESS_CHILD";
const NAME: &str = "a_server_dies_with_a_test_process_killed_by_a_signal";

/// Whether `pid` runs (a zombie waiting for its reaper does not).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|state| !state.trim_start().starts_with(['Z', 'X']))
    })
}

#[test]
fn a_server_dies_with_a_test_process_killed_by_a_signal() {
    if std::env::var_os(CHILD).is_some() {
        // The child: start a server from this (test) thread, say its pid,
        // and wait to be killed.
        let server = RedisServer::start();
        println!("server pid {}", server.pid().unwrap());
        sleep(Duration::from_secs(60));
        drop(server);
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let pid: u32 = stdout
        .lines()
        .map_while(Result::ok)
        // libtest writes "test <name> ... " before the test's own output.
        .find_map(|line| {
            let (_, pid) = line.split_once("server pid ")?;
            Some(pid.trim().parse().unwrap())
        })
        .expect("the child started no server");
    assert!(runs(pid), "the child's server {pid} does not run");
    // SIGKILL: no destructor, no exit handler runs in the child.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while runs(pid) {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("redis-server {pid} outlived its test process (killed by SIGKILL) by 5 s");
        }
        sleep(Duration::from_millis(20));
    }
}
