//! What a test may ask of a server: options, TLS files.

use std::path::PathBuf;

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
    /// loopback port under [`SENTINEL_SERVICE`](crate::SENTINEL_SERVICE).
    pub sentinel_of: Option<u16>,
}

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
