//! The backplane: how instances of a tiered cache tell each other which
//! keys to drop from their in-process tier.
//!
//! A [`Notice`] names its sender (an instance ignores its own) and what
//! changed: keys, a pattern under a scope, a whole scope, or a heartbeat (an
//! instance's own, which proves its channel still delivers). Messages are
//! small and versioned; one that does not decode is treated as a possible
//! loss (the receiver flushes), never guessed at.
//!
//! A backplane also reports on itself ([`BackplaneEvent::Down`] and
//! [`Up`](BackplaneEvent::Up)): between the two, notices may have been lost,
//! so a receiver stops serving from its in-process tier at `Down` and
//! flushes it at `Up`. `cache-redis` implements it on Redis pub/sub;
//! [`LocalBackplane`] within one process.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::StreamExt;

use cache_port::Result;

/// What changed, in store keys (namespace prefixes included).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Invalidation {
    /// These keys changed.
    Keys(Vec<String>),
    /// Keys under `scope` whose rest matches `pattern` were deleted.
    Pattern {
        /// The key prefix.
        scope: String,
        /// The Redis glob pattern, matched against the rest.
        pattern: String,
    },
    /// Every key under `scope` was deleted (the empty scope: all).
    Clear {
        /// The key prefix.
        scope: String,
    },
    /// The sender's heartbeat number `n`: no key changed.
    Heartbeat(u64),
}

/// One message on the backplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The sending instance's random id.
    pub sender: u64,
    /// What changed.
    pub what: Invalidation,
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackplaneEvent {
    /// A notice (possibly the subscriber's own).
    Notice(Notice),
    /// A message that does not decode (another version?): what it
    /// invalidates is unknown.
    Unreadable,
    /// The channel broke: notices may be lost from now on.
    Down,
    /// The channel works again: every notice from now on arrives; those
    /// sent since `Down` may be lost.
    Up,
}

/// A channel between the instances of a tiered cache.
pub trait Backplane: Send + Sync + 'static {
    /// Sends `notice` to every subscriber (the sender's own included).
    fn publish(&self, notice: &Notice) -> BoxFuture<'static, Result<()>>;

    /// The events of a new subscription, from now on.
    fn subscribe(&self) -> BoxStream<'static, BackplaneEvent>;

    /// Whether the backplane itself learns of every write to the shared
    /// store, whoever made it (Redis client tracking): then a writer need
    /// not publish what it changed, only its heartbeats. The default, for a
    /// channel that carries only what is published on it: `false`.
    fn sees_every_write(&self) -> bool {
        false
    }

    /// Closes its connections and stops its tasks, returning once they are
    /// gone (a tiered cache's `close`). The default, for a backplane with
    /// nothing to close, does nothing.
    fn close(&self) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// The wire format's version: the first byte of every message.
const VERSION: u8 = b'1';

impl Notice {
    /// The message bytes: `1|<sender, 16 hex>|<kind>|<fields>`, each field
    /// `<byte length>:<bytes>` so that keys may hold any character.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        out.push(VERSION);
        out.extend_from_slice(format!("|{:016x}|", self.sender).as_bytes());
        let field = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(format!("{}:", s.len()).as_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        match &self.what {
            Invalidation::Keys(keys) => {
                out.extend_from_slice(b"k|");
                for key in keys {
                    field(&mut out, key);
                }
            }
            Invalidation::Pattern { scope, pattern } => {
                out.extend_from_slice(b"p|");
                field(&mut out, scope);
                field(&mut out, pattern);
            }
            Invalidation::Clear { scope } => {
                out.extend_from_slice(b"c|");
                field(&mut out, scope);
            }
            Invalidation::Heartbeat(n) => out.extend_from_slice(format!("h|{n}").as_bytes()),
        }
        out
    }

    /// Reads a message written by [`encode`](Self::encode); `None` for
    /// anything else.
    pub fn decode(message: &[u8]) -> Option<Self> {
        let rest = message.strip_prefix(&[VERSION, b'|'])?;
        let (sender, rest) = (rest.get(..16)?, rest.get(16..)?);
        let sender = u64::from_str_radix(std::str::from_utf8(sender).ok()?, 16).ok()?;
        let rest = rest.strip_prefix(b"|")?;
        let (kind, mut fields) = (rest.first()?, rest.get(1..)?.strip_prefix(b"|")?);
        let mut next = || -> Option<Option<String>> {
            if fields.is_empty() {
                return Some(None);
            }
            let colon = fields.iter().position(|b| *b == b':')?;
            let len: usize = std::str::from_utf8(&fields[..colon]).ok()?.parse().ok()?;
            let text = fields.get(colon + 1..colon + 1 + len)?;
            let text = String::from_utf8(text.to_vec()).ok()?;
            fields = &fields[colon + 1 + len..];
            Some(Some(text))
        };
        let what = match kind {
            b'k' => {
                let mut keys = Vec::new();
                while let Some(key) = next()? {
                    keys.push(key);
                }
                Invalidation::Keys(keys)
            }
            b'p' => {
                let (scope, pattern) = (next()??, next()??);
                next()?.is_none().then_some(())?;
                Invalidation::Pattern { scope, pattern }
            }
            b'c' => {
                let scope = next()??;
                next()?.is_none().then_some(())?;
                Invalidation::Clear { scope }
            }
            b'h' => Invalidation::Heartbeat(std::str::from_utf8(fields).ok()?.parse().ok()?),
            _ => return None,
        };
        Some(Notice { sender, what })
    }
}

/// A backplane within one process (tests, several tiered caches over one
/// in-process L2): a broadcast channel. [`cut`](Self::cut) and
/// [`restore`](Self::restore) simulate a broken channel.
#[derive(Clone)]
pub struct LocalBackplane {
    sender: tokio::sync::broadcast::Sender<Event>,
    cut: Arc<AtomicBool>,
}

#[derive(Clone)]
enum Event {
    Message(Arc<Vec<u8>>),
    Down,
    Up,
}

impl Default for LocalBackplane {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBackplane {
    /// A channel with room for 4,096 undelivered messages per subscriber (a
    /// subscriber that falls further behind sees `Down` then `Up`).
    pub fn new() -> Self {
        Self {
            sender: tokio::sync::broadcast::channel(4096).0,
            cut: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Breaks the channel: subscribers see `Down`, and messages are lost
    /// until [`restore`](Self::restore).
    pub fn cut(&self) {
        self.cut.store(true, SeqCst);
        let _ = self.sender.send(Event::Down);
    }

    /// Mends the channel: subscribers see `Up`.
    pub fn restore(&self) {
        self.cut.store(false, SeqCst);
        let _ = self.sender.send(Event::Up);
    }

    /// Loses every message from now on without telling anyone (a
    /// half-open connection): only heartbeats can notice.
    pub fn cut_silently(&self) {
        self.cut.store(true, SeqCst);
    }

    /// Delivers messages again, without telling anyone.
    pub fn restore_silently(&self) {
        self.cut.store(false, SeqCst);
    }
}

impl Backplane for LocalBackplane {
    fn publish(&self, notice: &Notice) -> BoxFuture<'static, Result<()>> {
        if !self.cut.load(SeqCst) {
            let _ = self.sender.send(Event::Message(Arc::new(notice.encode())));
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn subscribe(&self) -> BoxStream<'static, BackplaneEvent> {
        let receiver = self.sender.subscribe();
        futures::stream::unfold(receiver, |mut receiver| async move {
            use tokio::sync::broadcast::error::RecvError;
            let events = match receiver.recv().await {
                Ok(Event::Message(bytes)) => vec![match Notice::decode(&bytes) {
                    Some(notice) => BackplaneEvent::Notice(notice),
                    None => BackplaneEvent::Unreadable,
                }],
                Ok(Event::Down) => vec![BackplaneEvent::Down],
                Ok(Event::Up) => vec![BackplaneEvent::Up],
                // Fell behind: messages were lost.
                Err(RecvError::Lagged(_)) => vec![BackplaneEvent::Down, BackplaneEvent::Up],
                Err(RecvError::Closed) => return None,
            };
            Some((futures::stream::iter(events), receiver))
        })
        .flatten()
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_round_trips() {
        let odd = "a|b:c\n1:x|é".to_owned();
        for what in [
            Invalidation::Keys(vec!["k".into(), odd.clone(), String::new()]),
            Invalidation::Keys(vec![]),
            Invalidation::Pattern {
                scope: "shop:".into(),
                pattern: "user:*|?".into(),
            },
            Invalidation::Clear { scope: odd },
            Invalidation::Clear {
                scope: String::new(),
            },
            Invalidation::Heartbeat(u64::MAX),
        ] {
            let notice = Notice {
                sender: 0xdead_beef,
                what,
            };
            assert_eq!(Notice::decode(&notice.encode()), Some(notice));
        }
    }

    #[test]
    fn anything_else_does_not_decode() {
        let good = Notice {
            sender: 1,
            what: Invalidation::Pattern {
                scope: "s".into(),
                pattern: "p".into(),
            },
        }
        .encode();
        for n in 0..good.len() {
            assert_eq!(Notice::decode(&good[..n]), None, "cut at {n}");
        }
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"1:x");
        assert_eq!(Notice::decode(&trailing), None);
        for bad in [
            &b"2|0000000000000001|c|0:"[..],
            b"",
            b"1|zz|c|0:",
            b"1|0000000000000001|x|",
        ] {
            assert_eq!(Notice::decode(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_local_backplane_delivers_and_reports_cuts() {
        let backplane = LocalBackplane::new();
        let mut events = backplane.subscribe();
        let notice = Notice {
            sender: 7,
            what: Invalidation::Keys(vec!["k".into()]),
        };
        backplane.publish(&notice).await.unwrap();
        assert_eq!(
            events.next().await,
            Some(BackplaneEvent::Notice(notice.clone()))
        );
        backplane.cut();
        backplane.publish(&notice).await.unwrap(); // lost
        backplane.restore();
        assert_eq!(events.next().await, Some(BackplaneEvent::Down));
        assert_eq!(events.next().await, Some(BackplaneEvent::Up));
    }
}
