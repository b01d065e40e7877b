//! A local Redis Cluster of three primaries (with replicas, resharding).

use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{RedisServer, ServerOptions};

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
