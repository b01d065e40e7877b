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

mod cluster;
mod keeper;
mod options;
mod process;
mod sentinel;
mod server;

pub use cluster::RedisCluster;
pub use keeper::{suite_url, AnyServer, Servers, SUITE_OPTIONS};
pub use options::{ServerOptions, TlsServer};
pub use process::require_redis_server;
pub use sentinel::RedisSentinel;
pub use server::{calls_in, RedisServer};

/// How to install the server, for the message of a failing test.
pub const INSTALL_HINT: &str = "redis-server is not installed. Install it with \
`apt-get update && apt-get install -y redis-server` (Debian/Ubuntu), or run \
`bash scripts/test-all.sh`, which installs it when missing.";

/// This process's open sockets (Linux: `/proc/self/fd`), for tests that
/// check a closed or dropped client gave its connections back.
pub fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

pub(crate) const LOOPBACK: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

/// The service name sentinels started here monitor.
pub const SENTINEL_SERVICE: &str = "mymaster";
