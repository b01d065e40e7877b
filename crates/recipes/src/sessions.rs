//! Sliding sessions: a read keeps a session alive (one step), with a
//! maximum idle time and an absolute lifetime; every session of a user
//! destroyed with one write.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cache_keyspace::KeyRule;
use cache_port::typed::{decode, encode};
use cache_port::{Cache, CacheError, Result};
use cache_tags::TaggedCache;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A session's id: 128 bits from the operating system's random source, as
/// 32 hex digits. Unguessable, so it can be handed to a browser.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// A new random id; a failure of the OS's random source is a `Backend`
    /// error (never a predictable id).
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| CacheError::Backend {
            message: format!("no random session id: {e}"),
            source: None,
        })?;
        Ok(Self(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// An id as a client sent it back (a cookie): any text is accepted
    /// here, and a key built from it never leaves the session keyspace.
    pub fn from_client(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The id is a secret: `Debug` shows its first 4 digits only.
impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: String = self.0.chars().take(4).collect();
        write!(f, "SessionId({shown}…)")
    }
}

/// A session as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Session<V> {
    /// Its id.
    pub id: SessionId,
    /// Whose it is.
    pub user: String,
    /// When it was created (this process's clock at creation).
    pub created: SystemTime,
    /// What the application keeps in it.
    pub value: V,
}

#[derive(Serialize, Deserialize)]
struct Stored<V> {
    user: String,
    created_ms: u64,
    value: V,
}

/// Sessions over any cache: created with a random id, read (and kept
/// alive) in one step, destroyed one by one or all of a user's at once.
///
/// - Idle time: each read sets the session's TTL to `idle` from now, in the
///   same step as the read (`Cache::get_and_touch`: Redis `GETEX`, under
///   the key's lock in process, on L2 in a tiered cache). A session read at
///   least once per `idle` never expires while its lifetime lasts.
/// - Lifetime: a session ends `lifetime` after its creation however often
///   it is read: its TTL never runs past that, and a read after it finds
///   nothing (this process's clock decides, against the creation time the
///   session records).
/// - A user's sessions are tagged with the user (`cache-tags`), so
///   [`destroy_user`](Self::destroy_user) ends them all with one write.
pub struct SessionStore<V> {
    tags: TaggedCache,
    rule: KeyRule,
    idle: Duration,
    lifetime: Duration,
    values: PhantomData<fn() -> V>,
}

impl<V> Clone for SessionStore<V> {
    fn clone(&self) -> Self {
        Self {
            tags: self.tags.clone(),
            rule: self.rule.clone(),
            idle: self.idle,
            lifetime: self.lifetime,
            values: PhantomData,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl<V: Serialize + DeserializeOwned> SessionStore<V> {
    /// Sessions under `name` (a namespace), each ended after `idle` without
    /// a read and at most `lifetime` after its creation; a bad name or an
    /// idle time or lifetime the port refuses as a TTL is an error.
    pub fn new(
        cache: Arc<dyn Cache>,
        name: &str,
        idle: Duration,
        lifetime: Duration,
    ) -> Result<Self> {
        cache_port::Ttl::new(idle)?;
        cache_port::Ttl::new(lifetime)?;
        Ok(Self {
            tags: TaggedCache::new(cache),
            rule: KeyRule::new(name)?,
            idle,
            lifetime,
            values: PhantomData,
        })
    }

    fn key(&self, id: &SessionId) -> Result<String> {
        self.rule.key(id.as_str())
    }

    fn user_tag(user: &str) -> String {
        format!("user:{}", cache_keyspace::escape_id(user))
    }

    /// A new session of `user` holding `value`.
    pub async fn create(&self, user: &str, value: &V) -> Result<SessionId> {
        let id = SessionId::random()?;
        let stored = encode(&Stored {
            user: user.to_owned(),
            created_ms: now_ms(),
            value,
        })?;
        let ttl = self.idle.min(self.lifetime);
        self.tags
            .set(&self.key(&id)?, stored, Some(ttl), &[Self::user_tag(user)])
            .await?;
        Ok(id)
    }

    /// The session `id`, kept alive for another idle time; `None` once it
    /// ended (idle, lifetime, destroyed, or its user's sessions destroyed).
    pub async fn get(&self, id: &SessionId) -> Result<Option<Session<V>>> {
        let key = self.key(id)?;
        let Some(stored) = self.tags.get_and_touch(&key, self.idle).await? else {
            return Ok(None);
        };
        let stored: Stored<V> = match decode(&stored) {
            Ok(stored) => stored,
            Err(error) => {
                cache_port::typed::decode_failed(&key, &error);
                return Ok(None);
            }
        };
        let age = Duration::from_millis(now_ms().saturating_sub(stored.created_ms));
        let Some(left) = self.lifetime.checked_sub(age).filter(|l| !l.is_zero()) else {
            self.tags.delete(&key).await?;
            return Ok(None);
        };
        if left < self.idle {
            // The read gave it a whole idle time: take back what runs past
            // its lifetime.
            self.tags.cache().expire(&key, left).await?;
        }
        Ok(Some(Session {
            id: id.clone(),
            user: stored.user,
            created: UNIX_EPOCH + Duration::from_millis(stored.created_ms),
            value: stored.value,
        }))
    }

    /// Keeps `id` alive; says whether it still was.
    pub async fn touch(&self, id: &SessionId) -> Result<bool> {
        Ok(self.get(id).await?.is_some())
    }

    /// Ends `id`; says whether it was there.
    pub async fn destroy(&self, id: &SessionId) -> Result<bool> {
        self.tags.delete(&self.key(id)?).await
    }

    /// Ends every session of `user`, with one write whatever their number.
    pub async fn destroy_user(&self, user: &str) -> Result<()> {
        self.tags.delete_by_tag(&Self::user_tag(user)).await
    }
}

/// Revoked tokens (a JWT's `jti`, an API key's id), each remembered exactly
/// as long as the token would otherwise be valid: the deny-list never
/// grows past the tokens still alive.
#[derive(Clone)]
pub struct DenyList {
    cache: Arc<dyn Cache>,
    rule: KeyRule,
}

impl DenyList {
    /// A deny-list under `name` (a namespace).
    pub fn new(cache: Arc<dyn Cache>, name: &str) -> Result<Self> {
        Ok(Self {
            cache,
            rule: KeyRule::new(name)?,
        })
    }

    /// Revokes `token` until `expires_at`, when it would stop being valid
    /// anyway (a token already expired is not written).
    pub async fn revoke(&self, token: &str, expires_at: SystemTime) -> Result<()> {
        let Ok(left) = expires_at.duration_since(SystemTime::now()) else {
            return Ok(());
        };
        if left < Duration::from_millis(1) {
            return Ok(());
        }
        let ttl = left.min(cache_port::MAX_TTL);
        self.cache
            .set(&self.rule.key(token)?, bytes::Bytes::new(), Some(ttl))
            .await
    }

    /// Whether `token` is revoked.
    pub async fn is_revoked(&self, token: &str) -> Result<bool> {
        self.cache.exists(&self.rule.key(token)?).await
    }
}
