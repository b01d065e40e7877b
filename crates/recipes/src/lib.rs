//! Recipes: the workloads services run on a cache, exact on every adapter.
//!
//! A [`RateLimiter`] limits subjects (an IP, a user, an API key) to a
//! [`Quota`]: GCRA (smooth, exact, one key per subject), one atomic step
//! per check (`Cache::throttle`: a script with the server's clock on
//! Redis, under the key's lock in process), single-slot keys (Redis
//! Cluster), never answered from a tiered cache's L1.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use cache_recipes::{Quota, RateLimiter};
//!
//! let cache: Arc<dyn cache_port::Cache> =
//!     Arc::new(cache_moka::MokaConfig::default().build().unwrap()); // any adapter
//! // 5 logins a minute per user, 2 at once.
//! let quota = Quota::per(5, Duration::from_secs(60)).unwrap().burst(2).unwrap();
//! let logins = RateLimiter::new(cache, "limit:login", quota).unwrap();
//!
//! assert!(logins.check("ann").await.unwrap().allowed);
//! assert!(logins.check("ann").await.unwrap().allowed);
//! let third = logins.check("ann").await.unwrap();
//! assert!(!third.allowed);
//! assert!(third.retry_after <= Duration::from_secs(12)); // one interval: 60 s / 5
//! assert!(logins.check("bob").await.unwrap().allowed); // every subject its own
//! # });
//! ```
//!
//! docs/RECIPES.md lists the recipes, one page each under docs/recipes/
//! with the rules, the measured accuracy and cost.

mod durable;
mod rate_limit;
mod sessions;
mod write_behind;

pub use cache_port::{Decision, Limit, Quota, Window};
pub use durable::{DurableConfig, DurableFlushed, DurableWriteBehind, DurableWriteError};
pub use rate_limit::RateLimiter;
pub use sessions::{DenyList, Session, SessionId, SessionStore};
pub use write_behind::{
    Flushed, Full, Repository, WriteBehind, WriteBehindConfig, WriteThrough, WriteThroughError,
};

/// docs/recipes/RATE_LIMITS.md, whose examples run as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/recipes/RATE_LIMITS.md")]
pub struct RateLimitsDoc;

/// docs/recipes/SESSIONS.md, whose examples run as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/recipes/SESSIONS.md")]
pub struct SessionsDoc;

/// docs/recipes/DENY_LIST.md, whose examples run as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/recipes/DENY_LIST.md")]
pub struct DenyListDoc;

/// docs/recipes/WRITE_BEHIND.md, whose examples run as this crate's doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/recipes/WRITE_BEHIND.md")]
pub struct WriteBehindDoc;
