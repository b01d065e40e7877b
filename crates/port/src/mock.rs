//! `MockCache`: a mockall mock of the port (feature `mock`).
//!
//! Written with `mock!` rather than `#[automock]` on the trait so that
//! [`Cache::get_now`] keeps its default (`None`: "not at hand, call
//! `get`") instead of being mocked: code under test that asks it first
//! (the tags view, the loader) then reaches the mocked `get`, and a test
//! needs no expectation for an optimisation it does not care about. Every
//! other method is mocked, as `#[automock]` did.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::cache::{Cache, KeyPages};
use crate::error::Result;
use crate::stats::Stats;
use crate::throttle::{Decision, Limit};
use crate::ttl::TtlState;

mockall::mock! {
    /// A mock of [`Cache`]: set expectations with `expect_<method>()`.
    /// `get_now` is not mocked: it answers `None`, so reads go to `get`.
    pub Cache {}

    #[async_trait]
    impl Cache for Cache {
        async fn get(&self, key: &str) -> Result<Option<Bytes>>;
        async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<()>;
        async fn delete(&self, key: &str) -> Result<bool>;
        async fn exists(&self, key: &str) -> Result<bool>;
        async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Bytes>>>;
        async fn exists_many(&self, keys: &[String]) -> Result<Vec<bool>>;
        async fn set_many(&self, items: Vec<(String, Bytes)>, ttl: Option<Duration>) -> Result<()>;
        async fn delete_many(&self, keys: &[String]) -> Result<u64>;
        async fn delete_pattern(&self, pattern: &str) -> Result<u64>;
        async fn keys(&self, pattern: &str) -> Result<Vec<String>>;
        async fn ttl(&self, key: &str) -> Result<TtlState>;
        async fn get_and_touch(&self, key: &str, ttl: Duration) -> Result<Option<Bytes>>;
        async fn expire(&self, key: &str, ttl: Duration) -> Result<bool>;
        async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> Result<bool>;
        async fn delete_if_equals(&self, key: &str, value: Bytes) -> Result<bool>;
        async fn incr(&self, key: &str, delta: i64, ttl_if_created: Option<Duration>) -> Result<i64>;
        async fn throttle(&self, key: &str, limit: Limit, cost: u32) -> Result<Decision>;
        async fn clear(&self) -> Result<()>;
        async fn stats(&self) -> Result<Stats>;
        async fn ping(&self) -> Result<Duration>;
        async fn close(&self) -> Result<()>;
        fn max_value_len(&self) -> usize;
        fn keys_stream(&self, pattern: &str) -> KeyPages;
    }
}
