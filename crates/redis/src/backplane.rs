//! `RedisBackplane`: the tiered cache's backplane on Redis pub/sub.
//!
//! One publishing client and one subscriber connection (pub/sub needs its
//! own), configured like the store's (timeouts, endless reconnection,
//! secrets scrubbed). The subscriber reports on itself: an error on its
//! connection is `Down`; a reconnection is followed by a resubscription,
//! and only once that is done by `Up` (notices published in between are
//! lost: the tiered cache flushes its L1 at `Up`). A message that does not
//! decode is `Unreadable`; falling behind fred's own buffer is `Down` +
//! `Up`.

use std::sync::Arc;
use std::time::Duration;

use cache_port::{CacheError, Result};
use cache_store::backplane::{Backplane, BackplaneEvent, Notice};
use fred::clients::SubscriberClient;
use fred::prelude::{Client, ClientLike, EventInterface, PubsubInterface};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::config::RedisConfig;
use crate::connection::{fred_builder, ConnectionTasks};
use crate::errors::ErrorContext;

/// The default channel: one per Redis database the tiered caches share.
pub const DEFAULT_CHANNEL: &str = "cache-tiered:invalidations";

/// A backplane on Redis pub/sub. Build it with [`RedisBackplane::connect`]
/// and hand it to `cache_tiered::TieredConfig::build`.
pub struct RedisBackplane {
    publisher: Client,
    subscriber: SubscriberClient,
    channel: String,
    errors: ErrorContext,
    events: broadcast::Sender<BackplaneEvent>,
    watcher: tokio::task::JoinHandle<()>,
    /// What `close` waits for after `QUIT`.
    connections: Arc<ConnectionTasks>,
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisBackplane {
    fn drop(&mut self) {
        self.watcher.abort();
        quit_in_background(self.publisher.clone(), self.subscriber.clone());
    }
}

/// Quits a backplane's two connections.
pub(crate) async fn quit(client: Client, subscriber: SubscriberClient) {
    let _ = client.quit().await;
    let _ = subscriber.quit().await;
}

/// [`quit`] from a `Drop`, which cannot await: on the current runtime, if
/// there is one.
pub(crate) fn quit_in_background(client: Client, subscriber: SubscriberClient) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(quit(client, subscriber));
    }
}

/// A subscription to a backplane's events: each as sent, and `Down` +
/// `Up` for those a lagging subscriber missed.
pub(crate) fn subscription(
    receiver: broadcast::Receiver<BackplaneEvent>,
) -> BoxStream<'static, BackplaneEvent> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        use tokio::sync::broadcast::error::RecvError;
        let events = match receiver.recv().await {
            Ok(event) => vec![event],
            Err(RecvError::Lagged(_)) => vec![BackplaneEvent::Down, BackplaneEvent::Up],
            Err(RecvError::Closed) => return None,
        };
        Some((futures::stream::iter(events), receiver))
    })
    .flatten()
    .boxed()
}

impl RedisBackplane {
    /// Connects to the server of `config` (its namespace is not used) and
    /// subscribes to `channel`, within the connect timeout.
    pub async fn connect(config: &RedisConfig, channel: &str) -> Result<Arc<Self>> {
        let (mut builder, errors) = fred_builder(config)?;
        // fred drops messages when its channel (32 by default) lags, and a
        // lag costs every L1 a flush: room for bursts of notices.
        builder.with_performance_config(|p| p.broadcast_channel_capacity = 4096);
        let connect_error = |e| errors.map("connect", e);
        let publisher = builder.build().map_err(connect_error)?;
        let subscriber = builder.build_subscriber_client().map_err(connect_error)?;
        let timeout = config.connect_timeout;
        let connect = async {
            let tasks = vec![publisher.init().await?, subscriber.init().await?];
            // Listen before subscribing: fred's channels drop what comes
            // before a receiver exists, and a notice right after `connect`
            // returns would otherwise be lost until the watcher first runs.
            // After `init`: the first connection counts as a reconnection.
            let channels = Channels::of(&subscriber);
            subscriber
                .subscribe(channel.to_owned())
                .await
                .map(|()| (channels, tasks))
        };
        let unanswered = || CacheError::Unavailable {
            message: format!(
                "backplane: could not subscribe at {} within {timeout:?}",
                config.redacted_url()
            ),
            source: None,
        };
        let (channels, tasks) = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(armed)) => armed,
            Ok(Err(e)) => return Err(errors.map_start("connect", e, unanswered)),
            Err(_) => return Err(unanswered()),
        };
        let (events, _) = broadcast::channel(4096);
        let watcher = tokio::spawn(watch(
            subscriber.clone(),
            channels,
            channel.to_owned(),
            events.clone(),
        ));
        Ok(Arc::new(Self {
            publisher,
            subscriber,
            channel: channel.to_owned(),
            errors,
            events,
            watcher,
            connections: Arc::new(ConnectionTasks::new(tasks)),
        }))
    }
}

/// fred's notification channels the watcher reads, taken before the
/// subscription so that no notice published after it is missed.
struct Channels {
    messages: broadcast::Receiver<fred::types::Message>,
    errors: broadcast::Receiver<(fred::error::Error, Option<fred::types::config::Server>)>,
    reconnections: broadcast::Receiver<fred::types::config::Server>,
}

impl Channels {
    fn of(subscriber: &SubscriberClient) -> Self {
        Self {
            messages: subscriber.message_rx(),
            errors: subscriber.error_rx(),
            reconnections: subscriber.reconnect_rx(),
        }
    }
}

/// Turns the subscriber's messages, errors and reconnections into events.
async fn watch(
    subscriber: SubscriberClient,
    channels: Channels,
    channel: String,
    events: broadcast::Sender<BackplaneEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    let Channels {
        mut messages,
        mut errors,
        mut reconnections,
    } = channels;
    let send = |event| {
        let _ = events.send(event);
    };
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) if *message.channel == *channel => {
                    send(match message.value.as_bytes().and_then(Notice::decode) {
                        Some(notice) => BackplaneEvent::Notice(notice),
                        None => BackplaneEvent::Unreadable,
                    });
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    send(BackplaneEvent::Down);
                    send(BackplaneEvent::Up);
                }
                Err(RecvError::Closed) => return,
            },
            error = errors.recv() => match error {
                Ok(_) | Err(RecvError::Lagged(_)) => send(BackplaneEvent::Down),
                Err(RecvError::Closed) => return,
            },
            reconnected = reconnections.recv() => match reconnected {
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    send(BackplaneEvent::Down);
                    // Up only once the subscription is back: notices are
                    // delivered again from then on.
                    while let Err(error) = subscriber.subscribe(channel.clone()).await {
                        tracing::warn!(%error, "backplane: resubscription failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    send(BackplaneEvent::Up);
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

impl Backplane for RedisBackplane {
    fn close(&self) -> BoxFuture<'static, ()> {
        self.watcher.abort();
        let (connections, bound) = (Arc::clone(&self.connections), self.errors.command_timeout);
        let quit = quit(self.publisher.clone(), self.subscriber.clone());
        Box::pin(async move {
            quit.await;
            connections.ended(bound).await;
        })
    }

    fn publish(&self, notice: &Notice) -> BoxFuture<'static, Result<()>> {
        let (publisher, channel, errors) = (
            self.publisher.clone(),
            self.channel.clone(),
            self.errors.clone(),
        );
        let message = notice.encode();
        Box::pin(async move {
            publisher
                .publish::<i64, _, _>(channel, message)
                .await
                .map(|_receivers| ())
                .map_err(|e| errors.map("publish", e))
        })
    }

    fn subscribe(&self) -> BoxStream<'static, BackplaneEvent> {
        subscription(self.events.subscribe())
    }
}
