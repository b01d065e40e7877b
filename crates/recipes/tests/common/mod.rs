//! What the write-behind tests share: a repository that records its saves.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use cache_recipes::Repository;

/// A repository that records every save in order, and fails (all or
/// nothing) while `failing` is set.
#[derive(Default)]
pub struct Db {
    pub applied: Mutex<Vec<(String, Bytes)>>,
    pub failing: AtomicBool,
}

#[async_trait]
impl Repository for Db {
    type Error = String;

    async fn save_many(&self, items: &[(String, Bytes)]) -> Result<(), String> {
        if self.failing.load(SeqCst) {
            return Err("the database is down".into());
        }
        self.applied.lock().unwrap().extend(items.iter().cloned());
        Ok(())
    }
}
