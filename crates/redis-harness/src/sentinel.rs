//! A Sentinel deployment: a primary, a replica and three sentinels.

use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::{RedisServer, ServerOptions, SENTINEL_SERVICE};

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
