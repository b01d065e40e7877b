//! `RedisTracking`: the tiered cache's backplane on Redis client tracking,
//! so that every write Redis sees reaches every instance's L1: another
//! service's, `redis-cli`'s, an `EXPIRE` from elsewhere, an eviction under
//! `maxmemory`, `FLUSHDB`/`FLUSHALL`.
//!
//! Why RESP2 with a redirect, and not fred's RESP3 `start_tracking`: fred
//! 10.1's RESP3 parser drops the null invalidation Redis sends on a flush
//! (`router/responses.rs` keeps only an array of keys), so a `FLUSHDB`
//! would go unseen. Over RESP2 the invalidations arrive as messages on
//! `__redis__:invalidate` on a subscriber connection, where fred reads the
//! null as an invalidation with no keys: everything.
//!
//! Two connections: `listener` subscribes to `__redis__:invalidate`;
//! `tracker` runs `CLIENT TRACKING on REDIRECT <listener's id> BCAST PREFIX
//! <namespace> PREFIX <heartbeat prefix>` and writes the heartbeats. BCAST
//! costs the server no memory per key (no tracking table) and tells of
//! every key under the prefixes, whoever wrote it.
//!
//! Losses, and how each is seen:
//! - Either connection drops: tracking (or its redirect target) is gone on
//!   the server. `Down` at once; once both are back, the listener
//!   resubscribes, tracking is armed again towards the listener's new id,
//!   and only then `Up` (the tiered cache flushes L1 at `Up`).
//! - fred's invalidation channel falls behind (it drops messages when it
//!   lags): `Down` + `Up`, a flush.
//! - Anything silent (tracking switched off on the server, a half-open
//!   connection): heartbeats write and delete a key under the tracked
//!   heartbeat prefix, so an instance's own heartbeat comes back only
//!   through the whole path (write, tracking, redirect, subscriber); the
//!   tiered cache stops serving from L1 when it does not.
//!
//! Redis Cluster is refused for now: tracking there needs a pair of
//! connections per primary, re-armed at every topology change (and fred's
//! `start_tracking` in BCAST mode arms one node only).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cache_port::{CacheError, Result};
use cache_store::backplane::{Backplane, BackplaneEvent, Invalidation, Notice};
use fred::clients::SubscriberClient;
use fred::interfaces::TrackingInterface;
use fred::prelude::PubsubInterface;
use fred::prelude::{Client, ClientInterface, ClientLike, EventInterface};
use fred::types::config::Server;
use fred::types::scripts::Script;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::backplane::{quit, quit_in_background, subscription};
use crate::config::RedisConfig;
use crate::connection::{fred_builder, ConnectionTasks};
use crate::errors::ErrorContext;

/// The sender of the notices Redis itself sends (no instance has it: an
/// instance id is random, and 0 is reserved here).
pub const SERVER_SENDER: u64 = 0;

/// Where the heartbeat keys live, outside every namespace.
const HEARTBEAT_ROOT: &str = "cache-tiered:heartbeat:";

/// The channel Redis publishes invalidations on in RESP2.
const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// A heartbeat: the key written and deleted at once, so that Redis tells
/// the tracking listener of it and no key stays behind (a user's
/// `DBSIZE` after a run finds nothing of ours).
const HEARTBEAT_TOUCH: &str = r"
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[1])
return 1";

/// A backplane on Redis client tracking. Build it with
/// [`RedisTracking::connect`] and hand it to
/// `cache_tiered::TieredConfig::build`.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let server = cache_redis_harness::RedisServer::start(); // a throwaway redis-server
/// use futures::StreamExt;
/// use cache_redis::{RedisConfig, RedisTracking, SERVER_SENDER};
/// use cache_store::backplane::{Backplane, BackplaneEvent, Invalidation, Notice};
///
/// let config = RedisConfig::from_url(&server.url()).unwrap();
/// // Track the keys a tiered cache in namespace `shop` writes.
/// let tracking = RedisTracking::connect(&config, "shop:").await.unwrap();
/// let mut events = tracking.subscribe();
/// server.command("SET shop:price 12"); // any client's write
/// server.command("SET elsewhere 1");   // outside the prefix: not told
/// let told = Notice { sender: SERVER_SENDER, what: Invalidation::Keys(vec!["shop:price".into()]) };
/// assert_eq!(events.next().await, Some(BackplaneEvent::Notice(told)));
/// // Hand it to `cache_tiered::TieredConfig::build` as the backplane.
/// # });
/// ```
pub struct RedisTracking {
    tracker: Client,
    listener: SubscriberClient,
    /// `cache-tiered:heartbeat:<this backplane's random tag>:`.
    heartbeat_prefix: String,
    errors: ErrorContext,
    events: broadcast::Sender<BackplaneEvent>,
    /// The last heartbeat number each sender published (the invalidation
    /// of its key carries no value).
    beats: Arc<Mutex<HashMap<u64, u64>>>,
    /// [`HEARTBEAT_TOUCH`].
    heartbeat: Script,
    watcher: tokio::task::JoinHandle<()>,
    /// What `close` waits for after `QUIT`.
    connections: Arc<ConnectionTasks>,
}

impl std::fmt::Debug for RedisTracking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTracking")
            .field("heartbeat_prefix", &self.heartbeat_prefix)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisTracking {
    fn drop(&mut self) {
        self.watcher.abort();
        quit_in_background(self.tracker.clone(), self.listener.clone());
    }
}

/// What the two connections are armed with.
#[derive(Clone)]
struct Arming {
    tracker: Client,
    listener: SubscriberClient,
    prefixes: Vec<String>,
}

impl Arming {
    /// Subscribes the listener and points the tracker's tracking at it.
    async fn arm(&self) -> std::result::Result<(), fred::error::Error> {
        self.listener.subscribe(INVALIDATE_CHANNEL).await?;
        let id = self
            .listener
            .connection_ids()
            .into_values()
            .next()
            .ok_or_else(|| {
                fred::error::Error::new(
                    fred::error::ErrorKind::Unknown,
                    "the invalidation listener has no connection",
                )
            })?;
        // Off first: Redis refuses to change BCAST or its prefixes while on.
        let _: fred::types::Value = self
            .tracker
            .client_tracking(
                "off",
                None,
                Vec::<String>::new(),
                false,
                false,
                false,
                false,
            )
            .await?;
        let _: fred::types::Value = self
            .tracker
            .client_tracking(
                "on",
                Some(id),
                self.prefixes.clone(),
                true,
                false,
                false,
                false,
            )
            .await?;
        Ok(())
    }
}

impl RedisTracking {
    /// Connects to the server of `config` and tracks every key that starts
    /// with `prefix` (a namespace's `shop:`; `""` for every key), within
    /// the connect timeout. Refused on a Redis Cluster, and by a server
    /// that refuses `CLIENT TRACKING` (managed Redis may): use the pub/sub
    /// backplane (`RedisBackplane`) there.
    pub async fn connect(config: &RedisConfig, prefix: &str) -> Result<Arc<Self>> {
        let (mut builder, errors) = fred_builder(config)?;
        if builder
            .get_config()
            .is_some_and(|c| c.server.is_clustered())
        {
            return Err(CacheError::Config {
                message: "client tracking (coherence=tracking) is not supported on a Redis Cluster yet; use coherence=pubsub".into(),
            });
        }
        // fred drops invalidations when its channel lags (we flush then):
        // room for bursts of writes.
        builder.with_performance_config(|p| p.broadcast_channel_capacity = 4096);
        let connect_error = |e| errors.map("connect", e);
        let tracker = builder.build().map_err(connect_error)?;
        let listener = builder.build_subscriber_client().map_err(connect_error)?;
        let heartbeat_prefix = format!("{HEARTBEAT_ROOT}{:016x}:", fastrand::u64(..));
        let prefixes = tracked_prefixes(prefix, &heartbeat_prefix)?;
        let arming = Arming {
            tracker: tracker.clone(),
            listener: listener.clone(),
            prefixes,
        };
        let timeout = config.connect_timeout;
        let connect = async {
            let tasks = vec![tracker.init().await?, listener.init().await?];
            // Listen before arming: fred's channels drop what comes before
            // a receiver exists, and a write right after `connect` returns
            // would otherwise go untold until the watcher first runs (a
            // doctest hung on a loaded CI machine so). After `init`: the
            // first connection counts as a reconnection in fred.
            let channels = Channels::of(&arming);
            arming.arm().await.map(|()| (channels, tasks))
        };
        let unanswered = || CacheError::Unavailable {
            message: format!(
                "client tracking: could not arm it at {} within {timeout:?}",
                config.redacted_url()
            ),
            source: None,
        };
        let (channels, tasks) = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(armed)) => armed,
            Ok(Err(e)) => {
                let _ = tracker.quit().await;
                let _ = listener.quit().await;
                return Err(match errors.map_start("client tracking", e, unanswered) {
                    // The server refused: say what to do instead.
                    CacheError::Backend { message, source } => CacheError::Backend {
                        message: format!("{message}; where the server refuses CLIENT TRACKING, use coherence=pubsub (RedisBackplane)"),
                        source,
                    },
                    other => other,
                });
            }
            Err(_) => {
                let _ = tracker.quit().await;
                let _ = listener.quit().await;
                return Err(unanswered());
            }
        };
        let (events, _) = broadcast::channel(4096);
        let beats = Arc::new(Mutex::new(HashMap::new()));
        let watcher = tokio::spawn(watch(
            arming,
            channels,
            heartbeat_prefix.clone(),
            Arc::clone(&beats),
            events.clone(),
        ));
        Ok(Arc::new(Self {
            tracker,
            listener,
            heartbeat_prefix,
            errors,
            events,
            beats,
            heartbeat: Script::from_lua(HEARTBEAT_TOUCH),
            watcher,
            connections: Arc::new(ConnectionTasks::new(tasks)),
        }))
    }
}

/// The prefixes to track: the keys' and the heartbeats'. Redis refuses
/// overlapping prefixes; an empty key prefix tracks every key (the
/// heartbeats included), so it stands alone.
fn tracked_prefixes(prefix: &str, heartbeat_prefix: &str) -> Result<Vec<String>> {
    if prefix.is_empty() {
        return Ok(Vec::new());
    }
    if prefix.starts_with(HEARTBEAT_ROOT) || HEARTBEAT_ROOT.starts_with(prefix) {
        return Err(CacheError::Config {
            message: format!(
                "client tracking: a key prefix that overlaps {HEARTBEAT_ROOT} (where the heartbeats live) cannot be tracked; choose another namespace"
            ),
        });
    }
    Ok(vec![prefix.to_owned(), heartbeat_prefix.to_owned()])
}

/// What one invalidation message means: heartbeats of senders on this
/// backplane, keys changed, or (no keys: the null invalidation of a flush)
/// everything.
fn events_of(
    keys: Vec<String>,
    heartbeat_prefix: &str,
    beats: &Mutex<HashMap<u64, u64>>,
) -> Vec<BackplaneEvent> {
    if keys.is_empty() {
        return vec![BackplaneEvent::Notice(Notice {
            sender: SERVER_SENDER,
            what: Invalidation::Clear {
                scope: String::new(),
            },
        })];
    }
    let mut events = Vec::new();
    let mut changed = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some(sender) = key.strip_prefix(heartbeat_prefix) {
            let sender = u64::from_str_radix(sender, 16).ok();
            let beat = sender.and_then(|s| beats.lock().ok()?.get(&s).copied());
            if let (Some(sender), Some(beat)) = (sender, beat) {
                events.push(BackplaneEvent::Notice(Notice {
                    sender,
                    what: Invalidation::Heartbeat(beat),
                }));
            }
        } else if !key.starts_with(HEARTBEAT_ROOT) {
            // (Another backplane's heartbeats show only when every key is
            // tracked; they change nothing here.)
            changed.push(key);
        }
    }
    if !changed.is_empty() {
        events.push(BackplaneEvent::Notice(Notice {
            sender: SERVER_SENDER,
            what: Invalidation::Keys(changed),
        }));
    }
    events
}

/// fred's notification channels the watcher reads, taken before tracking
/// is armed so that nothing told after arming is missed.
struct Channels {
    invalidations: broadcast::Receiver<fred::types::client::Invalidation>,
    listener_errors: broadcast::Receiver<(fred::error::Error, Option<Server>)>,
    tracker_errors: broadcast::Receiver<(fred::error::Error, Option<Server>)>,
    listener_back: broadcast::Receiver<Server>,
    tracker_back: broadcast::Receiver<Server>,
}

impl Channels {
    fn of(arming: &Arming) -> Self {
        Self {
            invalidations: arming.listener.invalidation_rx(),
            listener_errors: arming.listener.error_rx(),
            tracker_errors: arming.tracker.error_rx(),
            listener_back: arming.listener.reconnect_rx(),
            tracker_back: arming.tracker.reconnect_rx(),
        }
    }
}

/// Turns invalidations, errors and reconnections into events, and arms
/// tracking again after every reconnection.
async fn watch(
    arming: Arming,
    channels: Channels,
    heartbeat_prefix: String,
    beats: Arc<Mutex<HashMap<u64, u64>>>,
    events: broadcast::Sender<BackplaneEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let Channels {
        mut invalidations,
        mut listener_errors,
        mut tracker_errors,
        mut listener_back,
        mut tracker_back,
    } = channels;
    let send = |event| {
        let _ = events.send(event);
    };
    loop {
        let reconnected = tokio::select! {
            invalidation = invalidations.recv() => match invalidation {
                Ok(invalidation) => {
                    let keys = invalidation
                        .keys
                        .iter()
                        .map(|k| String::from_utf8_lossy(k.as_bytes()).into_owned())
                        .collect();
                    for event in events_of(keys, &heartbeat_prefix, &beats) {
                        send(event);
                    }
                    false
                }
                Err(RecvError::Lagged(_)) => {
                    send(BackplaneEvent::Down);
                    send(BackplaneEvent::Up);
                    false
                }
                Err(RecvError::Closed) => break,
            },
            error = listener_errors.recv() => match error {
                Ok(_) | Err(RecvError::Lagged(_)) => { send(BackplaneEvent::Down); false }
                Err(RecvError::Closed) => break,
            },
            error = tracker_errors.recv() => match error {
                Ok(_) | Err(RecvError::Lagged(_)) => { send(BackplaneEvent::Down); false }
                Err(RecvError::Closed) => break,
            },
            back = listener_back.recv() => match back {
                Ok(_) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            },
            back = tracker_back.recv() => match back {
                Ok(_) | Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => break,
            },
        };
        if reconnected {
            send(BackplaneEvent::Down);
            // Up only once tracking points at the listener again: from
            // then on every invalidation is delivered.
            while let Err(error) = arming.arm().await {
                tracing::warn!(%error, "client tracking: arming it again failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            send(BackplaneEvent::Up);
        }
    }
    // fred closed a channel (its client is gone): nothing more will be
    // told, so L1 must not serve.
    send(BackplaneEvent::Down);
}

impl Backplane for RedisTracking {
    fn sees_every_write(&self) -> bool {
        true
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        self.watcher.abort();
        let (connections, bound) = (Arc::clone(&self.connections), self.errors.command_timeout);
        let quit = quit(self.tracker.clone(), self.listener.clone());
        Box::pin(async move {
            quit.await;
            connections.ended(bound).await;
        })
    }

    /// A heartbeat writes and deletes a key under the tracked heartbeat
    /// prefix in one script call (Redis's invalidation of the key brings it
    /// back; nothing stays behind); every other notice is Redis's to send.
    fn publish(&self, notice: &Notice) -> BoxFuture<'static, Result<()>> {
        let Invalidation::Heartbeat(beat) = notice.what else {
            return Box::pin(std::future::ready(Ok(())));
        };
        if let Ok(mut beats) = self.beats.lock() {
            beats.insert(notice.sender, beat);
        }
        let key = format!("{}{:016x}", self.heartbeat_prefix, notice.sender);
        let (tracker, errors, script) = (
            self.tracker.clone(),
            self.errors.clone(),
            self.heartbeat.clone(),
        );
        Box::pin(async move {
            script
                .evalsha_with_reload::<i64, _, _>(&tracker, key, beat.to_string())
                .await
                .map(|_| ())
                .map_err(|e| errors.map("heartbeat", e))
        })
    }

    fn subscribe(&self) -> BoxStream<'static, BackplaneEvent> {
        subscription(self.events.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_never_overlap() {
        let hb = "cache-tiered:heartbeat:00000000000000ab:";
        assert_eq!(
            tracked_prefixes("shop:", hb).unwrap(),
            vec!["shop:".to_owned(), hb.to_owned()]
        );
        assert!(tracked_prefixes("", hb).unwrap().is_empty(), "every key");
        for overlapping in ["cache-tiered:", "cache-tiered:heartbeat:x:", "c"] {
            assert!(
                matches!(
                    tracked_prefixes(overlapping, hb),
                    Err(CacheError::Config { .. })
                ),
                "{overlapping}"
            );
        }
    }

    #[test]
    fn an_invalidation_becomes_heartbeats_keys_or_a_flush() {
        let hb = "cache-tiered:heartbeat:00000000000000ab:";
        let beats = Mutex::new(HashMap::from([(0x7, 41)]));
        let events = events_of(
            vec![
                "shop:a".into(),
                format!("{hb}0000000000000007"),
                "cache-tiered:heartbeat:00000000000000cd:0000000000000009".into(),
                format!("{hb}0000000000000008"), // a beat not published here
                "shop:b".into(),
            ],
            hb,
            &beats,
        );
        assert_eq!(
            events,
            vec![
                BackplaneEvent::Notice(Notice {
                    sender: 7,
                    what: Invalidation::Heartbeat(41)
                }),
                BackplaneEvent::Notice(Notice {
                    sender: SERVER_SENDER,
                    what: Invalidation::Keys(vec!["shop:a".into(), "shop:b".into()])
                }),
            ]
        );
        // The null invalidation of FLUSHDB / FLUSHALL: everything.
        assert_eq!(
            events_of(Vec::new(), hb, &beats),
            vec![BackplaneEvent::Notice(Notice {
                sender: SERVER_SENDER,
                what: Invalidation::Clear {
                    scope: String::new()
                }
            })]
        );
    }
}
