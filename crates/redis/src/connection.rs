//! Building the fred pool from the configuration, and connecting it (at
//! once, or in the background with `lazy_connect`).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Weak;
use std::time::Duration;

use cache_port::Result;
use fred::prelude::{Builder, ClientLike, Config, Pool, ReconnectPolicy};
use fred::types::ConnectHandle;

use crate::config::RedisConfig;
use crate::errors::ErrorContext;

/// fred's builder configured as every connection of ours is (timeouts,
/// one attempt per command, endless reconnection), and the error context.
pub(crate) fn fred_builder(config: &RedisConfig) -> Result<(Builder, ErrorContext)> {
    config.validate()?;
    let errors = ErrorContext {
        command_timeout: config.command_timeout,
        secrets: config.secrets(),
    };
    #[allow(unused_mut)]
    let mut fred_config =
        Config::from_url(&config.server_url).map_err(|e| errors.map("connect", e))?;
    #[cfg(feature = "tls")]
    if config.is_tls() {
        if let Some(tls) = crate::tls::tls_config(&config.tls)? {
            fred_config.tls = Some(tls);
        }
    }
    let mut builder = Builder::from_config(fred_config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = config.connect_timeout;
            c.internal_command_timeout = config.connect_timeout;
            // A command whose connection dropped fails instead of being
            // sent again after reconnecting: a retried INCRBY would count twice.
            c.max_command_attempts = 1;
        })
        .with_performance_config(|p| p.default_command_timeout = config.command_timeout)
        .set_policy(ReconnectPolicy::new_constant(
            0,
            config.reconnect_delay.as_millis() as u32,
        ));
    Ok((builder, errors))
}

/// Whether the pool has connected once (always, unless `lazy_connect`).
#[derive(Default)]
pub(crate) struct Connected {
    pub(crate) up: AtomicBool,
    /// Why the last background attempt failed, scrubbed.
    pub(crate) last_error: std::sync::Mutex<Option<String>>,
}

/// The tasks that drive a client's connections. fred's `quit` returns
/// once `QUIT` is written; the sockets close some time later, when these
/// tasks end (fred's docs on `quit`). A `close` that returned before then
/// left sockets open after it (seen on CI: a Cluster store's `close`
/// returned with two of its six open; `tests/close_waits.rs`).
#[derive(Default)]
pub(crate) struct ConnectionTasks {
    /// Taken by the first `close`; a second one waits for the lock, so
    /// it returns no earlier than the first.
    handles: tokio::sync::Mutex<Vec<ConnectHandle>>,
}

impl ConnectionTasks {
    pub(crate) fn new(handles: Vec<ConnectHandle>) -> Self {
        Self {
            handles: tokio::sync::Mutex::new(handles),
        }
    }

    /// Waits, after a `quit`, until every connection task has ended, at
    /// most `bound` (a close waits; it does not hang on a task that keeps
    /// going).
    pub(crate) async fn ended(&self, bound: Duration) {
        let mut handles = self.handles.lock().await;
        let all = futures::future::join_all(handles.drain(..));
        let _ = tokio::time::timeout(bound, all).await;
    }
}

/// Connects `pool` in the background until it is up or the store is gone.
/// Returns the task that drives the pool's connections.
pub(crate) fn connect_in_background(
    pool: Pool,
    connected: Weak<Connected>,
    config: &RedisConfig,
) -> ConnectHandle {
    let errors = ErrorContext {
        command_timeout: config.command_timeout,
        secrets: config.secrets(),
    };
    let delay = config.reconnect_delay;
    let connection_task = pool.connect();
    tokio::spawn(async move {
        loop {
            let outcome = pool.wait_for_connect().await;
            let Some(state) = connected.upgrade() else {
                let _ = pool.quit().await;
                return;
            };
            match outcome {
                Ok(()) => {
                    state.up.store(true, Relaxed);
                    return;
                }
                Err(e) => {
                    let message = errors.map("connect", e).to_string();
                    *state.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(message);
                }
            }
            drop(state);
            tokio::time::sleep(delay).await;
        }
    });
    connection_task
}

/// Stops a pool that failed to start, without waiting for it.
pub(crate) fn stop(pool: Pool) {
    tokio::spawn(async move {
        let _ = pool.quit().await;
    });
}
