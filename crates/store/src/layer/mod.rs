//! Layers: each wraps a [`Store`](crate::Store) and gives a store, adding one
//! cross-cutting concern to any adapter.
//!
//! A layer is a type that implements [`Store`](crate::Store) over an inner
//! store, matching the operations it cares about and forwarding the rest, and
//! a [`Layer`] value that builds it, for
//! [`CacheBuilder::layer`](crate::CacheBuilder::layer). Each lives in a file
//! of its own with its own tests:
//!
//! | layer | concern |
//! |---|---|
//! | [`Namespaced`] | keys under a [`Namespace`](cache_port::Namespace) |
//! | [`Counted`] | the `stats()` counters (added by every builder) |
//! | [`FailOpen`] | an outage reads as a counted, logged miss, by choice |
//! | [`CacheStore`] | any `Cache` (a mock, another stack) as a store |
//! | [`Either`] | what `Option<L>` gives: a layer turned on or off by configuration |
//!
//! The metrics and tracing layers are `cache-observe`'s (`Metered`,
//! `Traced`): layers like these, in a crate of their own, so that a stack
//! without them compiles no metrics or tracing machinery of theirs.

mod cache_as_store;
mod counted;
mod fail_open;
mod namespaced;
mod optional;

pub use cache_as_store::CacheStore;
pub use counted::{Counted, CountedLayer};
pub use fail_open::{FailOpen, FailOpenHandle, FailOpenLayer};
pub use namespaced::{Namespaced, NamespacedLayer};
pub use optional::Either;

/// Builds a layer over an inner store, as tower's `Layer` builds a service.
pub trait Layer<S> {
    /// The store the layer gives.
    type Store: crate::Store;

    /// Wraps `inner`.
    fn layer(self, inner: S) -> Self::Store;
}
