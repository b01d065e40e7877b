//! One `redis-server`: start, stop, kill, restart, pause.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::process::{free_port, raw_command, scratch_dir, server_command, spawn_tied};
use crate::{require_redis_server, ServerOptions, LOOPBACK, SENTINEL_SERVICE};

/// A `redis-server` this test started; stopped (SIGKILL) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    options: ServerOptions,
}

impl RedisServer {
    /// Starts a plain server on a free loopback port.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with `options` on a free loopback port.
    pub fn start_with(options: ServerOptions) -> Self {
        require_redis_server();
        for _ in 0..20 {
            let port = free_port(options.cluster);
            let mut server = RedisServer {
                child: None,
                port,
                dir: scratch_dir(port),
                options: options.clone(),
            };
            if server.spawn_and_wait().is_ok() {
                return server;
            }
            // Lost a race for the port: try another.
        }
        panic!("could not start redis-server on any free loopback port");
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://localhost:PORT` for a TLS
    /// server (the name its test certificates carry).
    pub fn url(&self) -> String {
        match self.options.tls {
            Some(_) => format!("rediss://localhost:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, with the same options.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.spawn_and_wait().is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come back on port {}",
                self.port
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal(Signal::SIGSTOP);
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal(Signal::SIGCONT);
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    pub fn command(&self, line: &str) -> String {
        raw_command(self.port, self.options.password.as_deref(), line)
            .unwrap_or_else(|e| panic!("{line:?} on port {}: {e}", self.port))
    }

    /// How many calls of `commands` the server has run (`INFO
    /// commandstats`; commands run by scripts count too), summed; every
    /// command's when `commands` is empty.
    pub fn calls(&self, commands: &[&str]) -> u64 {
        calls_in(&self.command("INFO commandstats"), commands)
    }

    fn signal(&self, signal: Signal) {
        let pid = self.pid().expect("the server is not running");
        kill(Pid::from_raw(pid as i32), signal).expect("signal redis-server");
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
        let mut cmd = server_command();
        if let Some(primary) = self.options.sentinel_of {
            // A sentinel needs a config file of its own, which it rewrites.
            let conf = self.dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n\
                     sentinel failover-timeout {SENTINEL_SERVICE} 5000\n\
                     sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
                    port = self.port,
                    dir = self.dir.display()
                ),
            )
            .map_err(|e| e.to_string())?;
            cmd.arg(&conf)
                .args(["--sentinel", "--daemonize", "no", "--loglevel", "warning"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            return self.spawn_and_ping(cmd);
        }
        match &self.options.tls {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(tls) => cmd
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args([
                    "--tls-auth-clients",
                    if tls.require_client_cert { "yes" } else { "no" },
                ]),
        };
        cmd.args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.options.password {
            cmd.args(["--requirepass", password]);
        }
        for user in &self.options.acl_users {
            // Each word its own argument: redis-server joins them into one line.
            cmd.arg("--user").args(user.split_whitespace());
        }
        if let Some(primary) = self.options.replica_of {
            cmd.args(["--replicaof", "127.0.0.1"])
                .arg(primary.to_string());
        }
        if self.options.cluster {
            let timeout = self.options.cluster_node_timeout_ms.unwrap_or(5000);
            cmd.args(["--cluster-enabled", "yes", "--cluster-node-timeout"])
                .arg(timeout.to_string())
                .args([
                    "--cluster-config-file",
                    &format!("nodes-{}.conf", self.port),
                ]);
        }
        self.spawn_and_ping(cmd)
    }

    /// Spawns `cmd` and waits until the process answers.
    fn spawn_and_ping(&mut self, cmd: Command) -> Result<(), String> {
        let mut child = spawn_tied(cmd).map_err(|e| format!("spawn redis-server: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("redis-server exited early: {status}"));
            }
            // A TLS server is ready when it accepts connections (the plain
            // PING below cannot speak TLS).
            let ready = match self.options.tls {
                Some(_) => TcpStream::connect((LOOPBACK, self.port)).is_ok(),
                None => raw_command(self.port, self.options.password.as_deref(), "PING")
                    .is_ok_and(|reply| reply.starts_with("+PONG")),
            };
            match ready {
                true => break,
                _ if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("redis-server did not answer PING within 10 s".into());
                }
                _ => sleep(Duration::from_millis(20)),
            }
        }
        self.child = Some(child);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            // A paused server must be thawed to die promptly on some kernels.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
        }
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The calls of `commands` (every command's when empty) in the text of an
/// `INFO commandstats` reply, summed.
pub fn calls_in(stats: &str, commands: &[&str]) -> u64 {
    stats
        .lines()
        .filter_map(|line| line.trim().strip_prefix("cmdstat_")?.split_once(":calls="))
        .filter(|(command, _)| commands.is_empty() || commands.contains(command))
        .filter_map(|(_, rest)| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod calls_tests {
    #[test]
    fn sums_the_named_commands_or_all() {
        let stats = "# Commandstats\r\ncmdstat_get:calls=3,usec=1\r\ncmdstat_mget:calls=4,usec=2\r\ncmdstat_config|resetstat:calls=1,usec=5\r\n";
        assert_eq!(super::calls_in(stats, &["get"]), 3);
        assert_eq!(super::calls_in(stats, &["get", "mget"]), 7);
        assert_eq!(super::calls_in(stats, &[]), 8);
        assert_eq!(super::calls_in(stats, &["set"]), 0);
    }
}
