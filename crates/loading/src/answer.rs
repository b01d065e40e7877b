//! What a loader call answers: a value and where it came from, or why not.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_port::CacheError;

/// What a [`Loader`](crate::Loader) call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError<E> {
    /// The cache failed in a way that is not a miss (a fail-open layer turns
    /// outages into misses), the options were refused (`Config`), or the
    /// loaded value could not be encoded; shared by every caller of the
    /// flight.
    #[error(transparent)]
    Cache(Arc<CacheError>),
    /// The loader failed. Every caller that waited for this flight gets the
    /// same error, shared.
    #[error("the loader failed: {0}")]
    Load(Arc<E>),
    /// The loader did not answer within the hard timeout, and there was no
    /// stale value to serve instead.
    #[error("the loader did not answer within {after:?}")]
    Timeout {
        /// The hard timeout.
        after: Duration,
    },
}

/// Where a value given by
/// [`Loader::get_or_load_entry`](crate::Loader::get_or_load_entry) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The cache, fresh.
    Cache,
    /// The loader, for this call (or for the flight this call joined).
    Loader,
    /// A value past its expiry (or remembered by the loader), served by
    /// fail-safe instead of a fresh one, for the reason given.
    Stale(StaleReason),
}

/// Why fail-safe served a stale value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StaleReason {
    /// The loader failed.
    LoaderFailed,
    /// The loader did not answer within the hard timeout.
    HardTimeout,
    /// The loader did not answer within the soft timeout; it goes on in the
    /// background and will update the cache.
    SoftTimeout,
    /// The loader failed a moment ago and rests (the fail-safe throttle).
    LoaderResting,
    /// The cache could not be read or written; the value is the last one
    /// this loader saw.
    CacheUnavailable,
}

/// A value and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Loaded<T> {
    /// The value.
    pub value: T,
    /// Where it comes from.
    pub origin: Origin,
}

impl<T> Loaded<T> {
    /// Whether fail-safe served it in place of a fresh value.
    pub fn is_stale(&self) -> bool {
        matches!(self.origin, Origin::Stale(_))
    }
}

/// What a flight answers: the value's encoded bytes, or why there are none.
/// `Ok(None)`: a batch flight's loader did not return this key.
pub(crate) type Outcome<E> = Result<Option<Bytes>, Failure<E>>;

/// A flight's failure, cloneable so that every waiter gets it.
pub(crate) enum Failure<E> {
    Cache(Arc<CacheError>),
    Load(Arc<E>),
    Timeout(Duration),
}

impl<E> Clone for Failure<E> {
    fn clone(&self) -> Self {
        match self {
            Failure::Cache(e) => Failure::Cache(Arc::clone(e)),
            Failure::Load(e) => Failure::Load(Arc::clone(e)),
            Failure::Timeout(after) => Failure::Timeout(*after),
        }
    }
}

impl<E> Failure<E> {
    pub(crate) fn into_error(self) -> LoadError<E> {
        match self {
            Failure::Cache(e) => LoadError::Cache(e),
            Failure::Load(e) => LoadError::Load(e),
            Failure::Timeout(after) => LoadError::Timeout { after },
        }
    }

    pub(crate) fn stale_reason(&self) -> StaleReason {
        match self {
            Failure::Cache(_) => StaleReason::CacheUnavailable,
            Failure::Load(_) => StaleReason::LoaderFailed,
            Failure::Timeout(_) => StaleReason::HardTimeout,
        }
    }
}
