//! Servers a suite starts on first use and keeps until its run ends.

use std::sync::{Arc, Mutex};

use crate::{RedisCluster, RedisServer};

/// The query every conformance suite over Redis adds to its server's URL:
/// values up to 1 MiB (the suite writes large ones) and a command timeout
/// that a loaded machine never reaches.
pub const SUITE_OPTIONS: &str = "max_value_len=1048576&command_timeout_ms=5000";

/// `url` with [`SUITE_OPTIONS`] added to its query (a cluster's URL has one
/// already, naming its other nodes).
pub fn suite_url(url: &str) -> String {
    let joint = if url.contains('?') { '&' } else { '?' };
    format!("{url}{joint}{SUITE_OPTIONS}")
}

/// A server of either shape, for suites that run on both.
#[derive(Debug)]
pub enum AnyServer {
    /// One `redis-server`.
    Standalone(RedisServer),
    /// A local three-primary cluster.
    Cluster(RedisCluster),
}

impl AnyServer {
    /// Starts one `redis-server`.
    pub fn standalone() -> Self {
        Self::Standalone(RedisServer::start())
    }

    /// Starts a local three-primary cluster.
    pub fn cluster() -> Self {
        Self::Cluster(RedisCluster::start())
    }

    /// Its URL (`redis://…` or `redis-cluster://…`).
    pub fn url(&self) -> String {
        match self {
            Self::Standalone(server) => server.url(),
            Self::Cluster(cluster) => cluster.url(),
        }
    }
}

/// The servers a suite started, kept alive together: clones share them,
/// and the last one dropped stops them all (hand it to
/// `cache_conformance::main`, which drops it when the run ends).
#[derive(Debug, Clone, Default)]
pub struct Servers(Arc<Mutex<Vec<AnyServer>>>);

impl Servers {
    /// Starts a server with `start`, keeps it, and answers its URL.
    pub fn start(&self, start: fn() -> AnyServer) -> String {
        let server = start();
        let url = server.url();
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(server);
        url
    }
}
