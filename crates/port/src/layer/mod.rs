//! Layers: wrappers that add one cross-cutting concern to any [`Cache`](crate::Cache).

mod counted;

pub use counted::Counted;
