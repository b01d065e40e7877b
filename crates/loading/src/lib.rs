//! Resilient loading: cache-aside that survives stampedes, outages and slow
//! loaders, over any cache.
//!
//! [`CacheExt::get_or_load`](cache_port::CacheExt::get_or_load) lets every caller
//! that misses call the loader: 500 callers of one cold key make 500 calls
//! to the database. A [`Loader`] makes them one: per key, within a process,
//! the first caller that misses loads, and the others wait for its result
//! (or its error). Flights of different keys never wait for each other.
//! [`LoadOptions`] add, per call or as the loader's defaults: TTL jitter,
//! negative caching, fail-safe (serve stale when loading fails), soft and
//! hard loader timeouts, eager refresh, and a stampede lock across
//! processes. docs/LOADING.md explains each with a runnable example.
//!
//! Background work (a load that outlives its soft timeout, an eager
//! refresh, releasing an abandoned lock) is spawned on the current tokio
//! runtime; outside one, it is not done (the load is awaited or dropped).
//!
//! This crate depends on the port alone of the toolkit's crates: a loader
//! takes any `Arc<dyn Cache>` (`scripts/check-invariants.sh`). Its files, one
//! concern each: [`Loader`] and its calls (`loader.rs`), the flight that
//! single-flights a key (`flight.rs`), batch loading (`batch.rs`), eager
//! refresh (`refresh.rs`), fail-safe's last known values (`fail_safe.rs`,
//! `memory.rs`), the stampede lock (`lock.rs`), the options (`options.rs`),
//! what a call answers (`answer.rs`), and its metrics and span
//! (`observe.rs`, [`names`]). The stored header with the logical expiry is
//! the port's [`envelope`](cache_port::typed::envelope), beside the codec
//! that reads through it.

mod answer;
mod batch;
mod fail_safe;
mod flight;
mod loader;
mod lock;
mod memory;
pub mod names;
mod observe;
mod options;
mod refresh;
#[cfg(test)]
mod tests;

pub use self::answer::{LoadError, Loaded, Origin, StaleReason};
pub use self::loader::{Loader, LoaderBuilder};
pub use self::lock::LOCK_SUFFIX;
pub use self::options::{FailSafe, LoadOptions, StampedeLock};

/// How many keys a loader remembers for fail-safe by default.
pub const DEFAULT_MEMORY: usize = 10_000;
