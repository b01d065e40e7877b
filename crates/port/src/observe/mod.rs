//! What the toolkit tells the outside: metric names, the throttle that keeps
//! an outage from flooding the logs, and how keys appear in spans.
//!
//! The layers that record are [`layer::Metered`](crate::layer::Metered)
//! (metrics, through the [`metrics`](https://docs.rs/metrics) facade) and
//! [`layer::Traced`](crate::layer::Traced) (one `tracing` span per
//! operation). The loader and the tiered cache record their own figures
//! under the names in [`names`]. With no metrics recorder and no tracing
//! subscriber installed, every one of them is a no-op.

mod key_field;
pub mod names;
mod throttle;

pub use key_field::{key_digest, KeyField};
pub use throttle::LogThrottle;
