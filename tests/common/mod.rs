//! Helpers shared by the port's integration tests.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cache_port::MockCache;

/// A mock store of a single value: `get` answers what the last `set` wrote
/// (whatever the key), so a loader's miss, load and write-back can be
/// watched without a real adapter.
pub fn one_value_mock() -> MockCache {
    let stored: Arc<Mutex<Option<Bytes>>> = Arc::default();
    let mut mock = MockCache::new();
    mock.expect_max_value_len().return_const(1024usize);
    let read = Arc::clone(&stored);
    mock.expect_get()
        .returning(move |_| Ok(read.lock().unwrap().clone()));
    mock.expect_set().returning(move |_, v, _| {
        *stored.lock().unwrap() = Some(v);
        Ok(())
    });
    mock
}

/// A one-thread runtime with timers: the recorder or subscriber a test
/// installs for its thread sees every task.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}
