//! The port's one error type and its matchable kinds.

use std::error::Error as StdError;
use std::time::Duration;

/// A boxed error kept as the source of a [`CacheError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The result of every port operation.
pub type Result<T, E = CacheError> = std::result::Result<T, E>;

/// Everything that can go wrong through the cache port.
///
/// Match on [`CacheError::kind`] for a stable, `Copy` classification, and ask
/// [`CacheError::is_retryable`] whether trying again can help. Variants that
/// wrap a lower-level failure keep it as their [`source`](StdError::source).
///
/// No variant ever carries a password or token: adapters redact credentials
/// before they build an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The key is empty or longer than [`MAX_KEY_LEN`](crate::MAX_KEY_LEN) bytes.
    #[error("invalid key: {reason}")]
    InvalidKey {
        /// Why the key was refused.
        reason: String,
    },
    /// The TTL is zero or longer than [`MAX_TTL`](crate::MAX_TTL).
    #[error("invalid TTL {ttl:?}: {reason}")]
    InvalidTtl {
        /// The TTL that was refused.
        ttl: Duration,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The glob pattern is refused by the shared validator.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as the caller gave it.
        pattern: String,
        /// Why it was refused.
        reason: String,
    },
    /// The value is larger than the limit that applies to it: the adapter's
    /// [`max_value_len`](crate::Cache::max_value_len), or, on a bounded
    /// in-process store where key and value share one entry's charge, what
    /// fits beside this key (a long or namespaced key leaves less room).
    #[error("value of {len} bytes is {} bytes over {which} of {limit} bytes", len - limit)]
    ValueTooLarge {
        /// The value's length in bytes.
        len: usize,
        /// The limit in bytes (less than `len`).
        limit: usize,
        /// Which limit: [`MAX_VALUE_LEN_LIMIT`](CacheError::MAX_VALUE_LEN_LIMIT)
        /// or [`ENTRY_LIMIT`](CacheError::ENTRY_LIMIT).
        which: &'static str,
    },
    /// `incr` found a value that is not a decimal 64-bit integer.
    #[error("value is not an integer or out of range")]
    NotAnInteger,
    /// `incr` would overflow a signed 64-bit integer.
    #[error("increment or decrement would overflow")]
    Overflow,
    /// A typed value could not be encoded or decoded.
    #[error("codec error: {source}")]
    Codec {
        /// The serializer's or deserializer's error.
        #[source]
        source: BoxError,
    },
    /// The backend did not answer within the configured time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// The port operation that timed out.
        operation: &'static str,
        /// The configured time limit.
        after: Duration,
        /// The client's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend cannot be reached (refused, closed or reset connection).
    #[error("cache backend unavailable: {message}")]
    Unavailable {
        /// What happened, without credentials.
        message: String,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A write that is not idempotent (`incr`, `set_if_absent`) was sent,
    /// or may have been, and then timed out or lost its connection: it may
    /// or may not have been applied. Not retryable: a blind retry could
    /// apply it twice (count a rate-limit hit twice, take a lock twice).
    /// Read the key to find out, or retry only if a double is harmless.
    #[error("{operation}: the outcome is unknown (it may or may not have been applied): {source}")]
    OutcomeUnknown {
        /// The port operation.
        operation: &'static str,
        /// The timeout or connection error, as the adapter reported it.
        #[source]
        source: Box<CacheError>,
    },
    /// The backend is full and refuses writes (Redis `maxmemory` with the
    /// `noeviction` policy answers OOM). Retryable: space may free up as
    /// entries expire or are deleted.
    #[error("cache backend is full: {message}")]
    Full {
        /// The server's message.
        message: String,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
    /// `keys` found more matching keys than the configured limit, and
    /// stopped collecting rather than hold them all in memory.
    #[error(
        "more than {limit} keys match; narrow the pattern, or raise the keys limit (keys_limit)"
    )]
    TooManyKeys {
        /// The configured limit.
        limit: usize,
    },
    /// The backend refused our credentials.
    #[error("authentication failed: {message}")]
    Auth {
        /// The server's message, without credentials.
        message: String,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend answered with an error of its own.
    #[error("cache backend error: {message}")]
    Backend {
        /// The server's message.
        message: String,
        /// The client's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The adapter was configured in a way it cannot work with.
    #[error("invalid cache configuration: {message}")]
    Config {
        /// What is wrong, without credentials.
        message: String,
    },
    /// The operation is not allowed by this adapter's configuration
    /// (for example `clear` without a namespace when flushing was not enabled).
    #[error("operation not allowed: {message}")]
    NotAllowed {
        /// Why the operation was refused.
        message: String,
    },
}

/// A stable, matchable classification of a [`CacheError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`CacheError::InvalidKey`].
    InvalidKey,
    /// See [`CacheError::InvalidTtl`].
    InvalidTtl,
    /// See [`CacheError::InvalidPattern`].
    InvalidPattern,
    /// See [`CacheError::ValueTooLarge`].
    ValueTooLarge,
    /// See [`CacheError::NotAnInteger`].
    NotAnInteger,
    /// See [`CacheError::Overflow`].
    Overflow,
    /// See [`CacheError::Codec`].
    Codec,
    /// See [`CacheError::Timeout`].
    Timeout,
    /// See [`CacheError::Unavailable`].
    Unavailable,
    /// See [`CacheError::OutcomeUnknown`].
    OutcomeUnknown,
    /// See [`CacheError::Full`].
    Full,
    /// See [`CacheError::TooManyKeys`].
    TooManyKeys,
    /// See [`CacheError::Auth`].
    Auth,
    /// See [`CacheError::Backend`].
    Backend,
    /// See [`CacheError::Config`].
    Config,
    /// See [`CacheError::NotAllowed`].
    NotAllowed,
}

impl CacheError {
    /// The kind of this error, for matching.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidKey { .. } => ErrorKind::InvalidKey,
            Self::InvalidTtl { .. } => ErrorKind::InvalidTtl,
            Self::InvalidPattern { .. } => ErrorKind::InvalidPattern,
            Self::ValueTooLarge { .. } => ErrorKind::ValueTooLarge,
            Self::NotAnInteger => ErrorKind::NotAnInteger,
            Self::Overflow => ErrorKind::Overflow,
            Self::Codec { .. } => ErrorKind::Codec,
            Self::Timeout { .. } => ErrorKind::Timeout,
            Self::Unavailable { .. } => ErrorKind::Unavailable,
            Self::OutcomeUnknown { .. } => ErrorKind::OutcomeUnknown,
            Self::Full { .. } => ErrorKind::Full,
            Self::TooManyKeys { .. } => ErrorKind::TooManyKeys,
            Self::Auth { .. } => ErrorKind::Auth,
            Self::Backend { .. } => ErrorKind::Backend,
            Self::Config { .. } => ErrorKind::Config,
            Self::NotAllowed { .. } => ErrorKind::NotAllowed,
        }
    }

    /// Whether trying the same call again later can succeed.
    ///
    /// True for timeouts, an unreachable backend and a full one; false for
    /// bad input, codec failures, refused credentials, configuration and
    /// server errors, and for a non-idempotent write whose outcome is
    /// unknown ([`ErrorKind::OutcomeUnknown`]): retrying it blindly could
    /// apply it twice.
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// Whether the error is the caller's fault (bad input), not the backend's.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::InvalidKey
                | ErrorKind::InvalidTtl
                | ErrorKind::InvalidPattern
                | ErrorKind::ValueTooLarge
        )
    }

    /// [`ValueTooLarge::which`](CacheError::ValueTooLarge) for a value over
    /// the adapter's [`max_value_len`](crate::Cache::max_value_len).
    pub const MAX_VALUE_LEN_LIMIT: &'static str = "this adapter's max_value_len";

    /// [`ValueTooLarge::which`](CacheError::ValueTooLarge) for a value that
    /// does not fit a bounded store's capacity beside its (stored) key.
    pub const ENTRY_LIMIT: &'static str = "what fits the store's capacity beside this key";

    /// A codec error around `source`.
    pub fn codec(source: impl Into<BoxError>) -> Self {
        Self::Codec {
            source: source.into(),
        }
    }
}

impl ErrorKind {
    /// The kind in snake case (`"timeout"`, `"invalid_key"`), as metrics
    /// and spans record it in `error.type`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::InvalidTtl => "invalid_ttl",
            ErrorKind::InvalidPattern => "invalid_pattern",
            ErrorKind::ValueTooLarge => "value_too_large",
            ErrorKind::NotAnInteger => "not_an_integer",
            ErrorKind::Overflow => "overflow",
            ErrorKind::Codec => "codec",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
            ErrorKind::Full => "full",
            ErrorKind::TooManyKeys => "too_many_keys",
            ErrorKind::Auth => "auth",
            ErrorKind::Backend => "backend",
            ErrorKind::Config => "config",
            ErrorKind::NotAllowed => "not_allowed",
        }
    }

    /// Whether an error of this kind can go away by itself.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::Full
        )
    }
}
