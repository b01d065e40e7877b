//! Schema evolution through a keyspace: a value written (compressed) by one
//! version of a struct is read by the next, and the other way; a version
//! bump with `oldest_readable` makes old entries misses on purpose.

use std::sync::Arc;

use cache_keyspace::{Json, Keyspace};
use cache_port::Cache;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProductV1 {
    name: String,
    description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ProductV2 {
    name: String,
    description: String,
    #[serde(default)]
    stock: u32,
}

fn moka() -> Arc<dyn Cache> {
    Arc::new(cache_moka::MokaConfig::default().build().unwrap())
}

fn v1() -> ProductV1 {
    ProductV1 {
        name: "lamp".into(),
        description: "a lamp that lights ".repeat(50),
    }
}

#[tokio::test]
async fn a_compressed_value_of_one_version_is_read_by_the_next_and_back() {
    // The same steps with each codec.
    steps(moka(), cache_keyspace::MsgPack).await;
    steps(moka(), Json).await;
}

async fn steps<C>(cache: Arc<dyn Cache>, codec: C)
where
    C: cache_keyspace::Codec<ProductV1>
        + cache_keyspace::Codec<ProductV2>
        + cache_keyspace::Named
        + Clone,
{
    let writer_v1 = Keyspace::<u64, ProductV1>::builder(Arc::clone(&cache), "p")
        .codec(codec.clone())
        .schema(1)
        .compress_above(256)
        .build()
        .unwrap();
    let reader_v2 = Keyspace::<u64, ProductV2>::builder(Arc::clone(&cache), "p")
        .codec(codec.clone())
        .schema(2)
        .compress_above(256)
        .build()
        .unwrap();
    writer_v1.set(&1, &v1()).await.unwrap();
    let stored = cache.get("p:1").await.unwrap().unwrap();
    let header = cache_keyspace::inspect(&stored).unwrap().unwrap();
    assert_eq!(header.schema, 1);
    assert!(header.decompressed_len.is_some(), "stored compressed");
    let read = reader_v2.get(&1).await.unwrap().unwrap();
    assert_eq!(
        read,
        ProductV2 {
            name: v1().name,
            description: v1().description,
            stock: 0
        }
    );
    // A newer writer's value is read by the older reader (a rolling deploy).
    reader_v2
        .set(&2, &ProductV2 { stock: 3, ..read })
        .await
        .unwrap();
    assert_eq!(writer_v1.get(&2).await.unwrap(), Some(v1()));
    // Version 3 retires everything before version 2: a miss on purpose.
    let strict_v3 = Keyspace::<u64, ProductV2>::builder(Arc::clone(&cache), "p")
        .codec(codec)
        .schema(3)
        .oldest_readable(2)
        .build()
        .unwrap();
    assert_eq!(strict_v3.get(&1).await.unwrap(), None);
    assert_eq!(strict_v3.get(&2).await.unwrap().unwrap().stock, 3);
}

#[tokio::test]
async fn an_oldest_readable_newer_than_the_schema_is_a_config_error() {
    let error = Keyspace::<u64, ProductV2>::builder(moka(), "p")
        .schema(1)
        .oldest_readable(2)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), cache_port::ErrorKind::Config);
}
