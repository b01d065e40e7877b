//! Write-behind and write-through (`cache-recipes`) over the adapter: the
//! cache sees a write-behind write at once and the repository gets each
//! key's last value by shutdown; write-through leaves no cached copy newer
//! than the repository.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cache_recipes::{Repository, WriteBehind, WriteBehindConfig, WriteThrough};

use crate::Ctx;

#[derive(Default)]
struct Db(Mutex<Vec<(String, Bytes)>>);

#[async_trait]
impl Repository for Db {
    type Error = String;

    async fn save_many(&self, items: &[(String, Bytes)]) -> Result<(), String> {
        self.0.lock().unwrap().extend(items.iter().cloned());
        Ok(())
    }
}

pub async fn write_behind_shows_writes_at_once_and_saves_each_keys_last_value(cx: Ctx) {
    let db = Arc::new(Db::default());
    let config = WriteBehindConfig {
        batch: 10,
        delay: Duration::from_millis(10),
        ..WriteBehindConfig::default()
    };
    let behind = WriteBehind::new(Arc::clone(&db), Arc::clone(&cx.cache), config);
    for round in 1..=5u32 {
        for key in 0..20 {
            let value = Bytes::from(format!("{round}"));
            behind
                .write(&format!("wb:{key}"), value, None)
                .await
                .unwrap();
        }
    }
    assert_eq!(
        cx.cache.get("wb:7").await.unwrap(),
        Some(Bytes::from("5")),
        "the cache has the write at once"
    );
    behind.shutdown().await;
    let saved = db.0.lock().unwrap().clone();
    for key in 0..20 {
        let key = format!("wb:{key}");
        let rounds: Vec<u32> = saved
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| std::str::from_utf8(v).unwrap().parse().unwrap())
            .collect();
        assert!(rounds.windows(2).all(|w| w[0] < w[1]), "{key}: {rounds:?}");
        assert_eq!(rounds.last(), Some(&5), "{key}");
    }

    let through = WriteThrough::new(Arc::clone(&db), Arc::clone(&cx.cache));
    through.write("wb:7", Bytes::from("6")).await.unwrap();
    assert_eq!(cx.cache.get("wb:7").await.unwrap(), None);
    assert_eq!(db.0.lock().unwrap().last().unwrap().1, Bytes::from("6"));
}
