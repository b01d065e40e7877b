//! Layers: wrappers that add one cross-cutting concern to any [`Cache`](crate::Cache).

mod counted;
mod fail_open;

pub use counted::Counted;
pub use fail_open::FailOpen;
