//! Processes and ports: the tied spawn, free loopback ports, scratch
//! folders, raw commands.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use crate::{INSTALL_HINT, LOOPBACK};

/// `redis-server`, under `setpriv --pdeathsig KILL` where `setpriv` runs:
/// it is killed when the thread that spawns it ([`spawn_tied`]'s) ends.
pub(crate) fn server_command() -> Command {
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
pub(crate) fn spawn_tied(cmd: Command) -> std::io::Result<Child> {
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
pub(crate) fn free_port(cluster: bool) -> u16 {
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

pub(crate) fn scratch_dir(port: u16) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "cache-redis-harness-{}-{port}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

pub(crate) fn raw_command(
    port: u16,
    password: Option<&str>,
    line: &str,
) -> std::io::Result<String> {
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
