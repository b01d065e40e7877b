//! Throwaway `redis-server` processes for tests.
//!
//! [`RedisServer::start`] picks a free loopback port, starts `redis-server`
//! bound to 127.0.0.1 with no persistence in a temporary folder of its own,
//! waits until it answers `PING`, and stops exactly that process when dropped.
//! [`RedisCluster::start`] does the same for a local three-primary cluster.
//! When `redis-server` is not installed, both panic with how to install it:
//! a Redis test never skips.
//!
//! A test process killed by a signal (SIGKILL, or SIGPIPE when its output
//! is piped into `head`) runs no `Drop`: its servers die with it all the
//! same, because each is started under `setpriv --pdeathsig KILL` (Linux's
//! parent-death signal; `setpriv` comes with util-linux, which every Debian
//! has) from one thread that lives as long as the process (the signal
//! follows the thread that spawned the child, and a test's own thread ends
//! before the servers it started for others). Without `setpriv` the server
//! starts plainly, and only `Drop` stops it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How to install the server, for the message of a failing test.
pub const INSTALL_HINT: &str = "redis-server is not installed. Install it with \
`apt-get update && apt-get install -y redis-server` (Debian/Ubuntu), or run \
`bash scripts/test-all.sh`, which installs it when missing.";

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Extra settings for a server.
#[derive(Clone, Default)]
pub struct ServerOptions {
    /// `requirepass`: the default user's password.
    pub password: Option<String>,
    /// ACL users, as `user` directives (`"alice on >secret ~* &* +@all"`).
    pub acl_users: Vec<String>,
    /// Start as a cluster node.
    pub cluster: bool,
    /// A cluster node's `cluster-node-timeout` in ms (default 5000): how
    /// long a primary may be unreachable before its replica takes over.
    pub cluster_node_timeout_ms: Option<u32>,
    /// Serve TLS only (`port 0`, `tls-port` on the free port).
    pub tls: Option<TlsServer>,
    /// Start as a replica of the server on this loopback port.
    pub replica_of: Option<u16>,
    /// Run as a sentinel (`--sentinel`) monitoring the primary on this
    /// loopback port under [`SENTINEL_SERVICE`].
    pub sentinel_of: Option<u16>,
}

/// The service name sentinels started here monitor.
pub const SENTINEL_SERVICE: &str = "mymaster";

/// The PEM files of a TLS-only server.
#[derive(Debug, Clone)]
pub struct TlsServer {
    /// The server's certificate (`tls-cert-file`).
    pub cert: PathBuf,
    /// Its key (`tls-key-file`).
    pub key: PathBuf,
    /// The CA that signs client certificates (`tls-ca-cert-file`).
    pub ca: PathBuf,
    /// `tls-auth-clients yes`: refuse clients without a certificate.
    pub require_client_cert: bool,
}

impl std::fmt::Debug for ServerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("acl_users", &self.acl_users.len())
            .field("cluster", &self.cluster)
            .field("tls", &self.tls)
            .field("replica_of", &self.replica_of)
            .field("sentinel_of", &self.sentinel_of)
            .finish()
    }
}

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

/// A local Redis Cluster of three primaries, each a [`RedisServer`].
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers and joins them with
    /// `redis-cli --cluster create`, then waits for `cluster_state:ok`.
    pub fn start() -> Self {
        Self::start_with(0, None)
    }

    /// Three primaries with `replicas` replicas each, and the given
    /// `cluster-node-timeout` (ms); waits until every replica is in sync.
    pub fn start_with(replicas: usize, node_timeout_ms: Option<u32>) -> Self {
        let nodes: Vec<RedisServer> = (0..3 * (1 + replicas))
            .map(|_| {
                RedisServer::start_with(ServerOptions {
                    cluster: true,
                    cluster_node_timeout_ms: node_timeout_ms,
                    ..Default::default()
                })
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas"])
            .arg(replicas.to_string())
            .arg("--cluster-yes")
            .output()
            .expect("redis-cli (installed with redis-server) must be on PATH");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !nodes
            .iter()
            .all(|n| n.command("CLUSTER INFO").contains("cluster_state:ok"))
        {
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok"
            );
            sleep(Duration::from_millis(100));
        }
        let synced = |n: &RedisServer| {
            let info = n.command("INFO replication");
            info.contains("role:master") || info.contains("master_link_status:up")
        };
        while !nodes.iter().all(synced) {
            assert!(Instant::now() < deadline, "the replicas never synced");
            sleep(Duration::from_millis(100));
        }
        RedisCluster { nodes }
    }

    /// The node on `port`, to kill or pause.
    pub fn node_mut(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
    }

    /// Ports of the nodes that are primaries now.
    pub fn primary_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.pid().is_some() && n.command("ROLE").contains("master"))
            .map(RedisServer::port)
            .collect()
    }

    /// The cluster node id of the node on `port`.
    pub fn node_id(&self, port: u16) -> String {
        let reply = self
            .nodes
            .iter()
            .find(|n| n.port() == port)
            .expect("a node of this cluster")
            .command("CLUSTER MYID");
        reply.lines().nth(1).unwrap_or_default().trim().to_owned()
    }

    /// Moves `slots` hash slots from the primary on `from` to the one on
    /// `to` with `redis-cli --cluster reshard` (keys migrate one slot at a
    /// time, with ASK redirections meanwhile). Blocks until done.
    pub fn reshard(&self, from: u16, to: u16, slots: u32) {
        let out = Command::new("redis-cli")
            .args(["--cluster", "reshard"])
            .arg(format!("127.0.0.1:{from}"))
            .arg("--cluster-from")
            .arg(self.node_id(from))
            .arg("--cluster-to")
            .arg(self.node_id(to))
            .arg("--cluster-slots")
            .arg(slots.to_string())
            .args(["--cluster-yes", "--cluster-pipeline", "10"])
            .output()
            .expect("redis-cli (installed with redis-server) must be on PATH");
        assert!(
            out.status.success(),
            "reshard failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    /// The nodes.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// `redis-cluster://127.0.0.1:P1?node=127.0.0.1:P2&node=127.0.0.1:P3`.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port());
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port()));
        }
        url
    }
}

/// A Sentinel deployment on loopback: a primary, a replica and three
/// sentinels (quorum 2, `down-after-milliseconds` 1000, failover timeout
/// 5 s), all stopped when dropped.
#[derive(Debug)]
pub struct RedisSentinel {
    primary: RedisServer,
    replica: RedisServer,
    sentinels: Vec<RedisServer>,
}

impl RedisSentinel {
    /// Starts them and waits until the replica is in sync and every
    /// sentinel knows the replica and the other sentinels.
    pub fn start() -> Self {
        let primary = RedisServer::start();
        let replica = RedisServer::start_with(ServerOptions {
            replica_of: Some(primary.port()),
            ..Default::default()
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !replica
            .command("INFO replication")
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica never synced");
            sleep(Duration::from_millis(50));
        }
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(ServerOptions {
                    sentinel_of: Some(primary.port()),
                    ..Default::default()
                })
            })
            .collect();
        for sentinel in &sentinels {
            loop {
                let ready = sentinel
                    .command(&format!("SENTINEL CKQUORUM {SENTINEL_SERVICE}"))
                    .contains("3 usable Sentinels")
                    && sentinel
                        .command(&format!("SENTINEL REPLICAS {SENTINEL_SERVICE}"))
                        .starts_with("*1");
                if ready {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sentinels never saw each other and the replica"
                );
                sleep(Duration::from_millis(100));
            }
        }
        RedisSentinel {
            primary,
            replica,
            sentinels,
        }
    }

    /// `redis-sentinel://127.0.0.1:S1/0?sentinelServiceName=mymaster&node=…`.
    pub fn url(&self) -> String {
        let mut url = format!(
            "redis-sentinel://127.0.0.1:{}/0?sentinelServiceName={SENTINEL_SERVICE}",
            self.sentinels[0].port()
        );
        for s in &self.sentinels[1..] {
            url.push_str(&format!("&node=127.0.0.1:{}", s.port()));
        }
        url
    }

    /// The server that started as the primary.
    pub fn primary(&mut self) -> &mut RedisServer {
        &mut self.primary
    }

    /// The server that started as the replica.
    pub fn replica(&self) -> &RedisServer {
        &self.replica
    }

    /// The port of the primary the sentinels name now.
    pub fn current_primary_port(&self) -> Option<u16> {
        let reply = self.sentinels[0].command(&format!(
            "SENTINEL GET-MASTER-ADDR-BY-NAME {SENTINEL_SERVICE}"
        ));
        // *2\r\n$9\r\n127.0.0.1\r\n$5\r\nPORT\r\n
        reply.lines().nth(4).and_then(|p| p.trim().parse().ok())
    }
}

/// `redis-server`, under `setpriv --pdeathsig KILL` where `setpriv` runs:
/// it is killed when the thread that spawns it ([`spawn_tied`]'s) ends.
fn server_command() -> Command {
    static SETPRIV: OnceLock<bool> = OnceLock::new();
    let setpriv = *SETPRIV.get_or_init(|| {
        Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !setpriv {
        return Command::new("redis-server");
    }
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "KILL", "redis-server"]);
    cmd
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from a thread that lives as long as the process, so that
/// a parent-death signal set for the child fires when the process ends,
/// not when the calling test's thread does.
fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("redis-harness-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in incoming {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the harness's spawner thread");
        requests
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("the harness's spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the harness's spawner thread is gone"))?
}

/// Panics with [`INSTALL_HINT`] when `redis-server` cannot be run.
pub fn require_redis_server() {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "{INSTALL_HINT}");
}

/// A loopback port free now (and, for a cluster node, its bus port too).
fn free_port(cluster: bool) -> u16 {
    loop {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        if !cluster {
            return port;
        }
        if port < 55535 && TcpListener::bind((LOOPBACK, port + 10000)).is_ok() {
            return port;
        }
    }
}

fn scratch_dir(port: u16) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "cache-redis-harness-{}-{port}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

fn raw_command(port: u16, password: Option<&str>, line: &str) -> std::io::Result<String> {
    let addr = SocketAddr::from((LOOPBACK, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut request = String::new();
    if let Some(pw) = password {
        request.push_str(&format!("AUTH {pw}\r\n"));
    }
    request.push_str(line);
    request.push_str("\r\nQUIT\r\n");
    stream.write_all(request.as_bytes())?;
    // A server closes the connection after QUIT; a sentinel (7.0) does not
    // know QUIT and answers it with an error line, which ends the reply.
    const SENTINEL_QUIT: &str = "-ERR unknown command 'QUIT'";
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        if String::from_utf8_lossy(&bytes).contains(SENTINEL_QUIT) && bytes.ends_with(b"\r\n") {
            break;
        }
    }
    let mut reply = String::from_utf8_lossy(&bytes).into_owned();
    if let Some(at) = reply.find(SENTINEL_QUIT) {
        reply.truncate(at);
    }
    if password.is_some() {
        // Drop the AUTH reply line.
        if let Some(rest) = reply.split_once("\r\n") {
            reply = rest.1.to_owned();
        }
    }
    Ok(reply)
}
