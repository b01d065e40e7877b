//! Keyspaces (`cache_keyspace::Keyspace` over the adapter): typed values
//! round-trip with every codec, compressed and versioned; a value that does
//! not decode is a counted miss the loader replaces; values written before
//! keyspaces existed stay readable; no id reaches another keyspace's keys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_keyspace::{inspect, Json, Keyspace, RawBytes, Utf8};
use cache_loading::Loader;
use cache_port::typed::decode_failures;
use cache_port::CacheExt;
use serde::{Deserialize, Serialize};

use crate::Ctx;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Product {
    name: String,
    cents: u64,
    tags: Vec<String>,
    attributes: BTreeMap<String, String>,
}

fn product(n: usize) -> Product {
    Product {
        name: format!("lamp {n}"),
        cents: 1999,
        tags: (0..n).map(|i| format!("tag-{i}")).collect(),
        attributes: (0..n).map(|i| (format!("k{i}"), "x".repeat(20))).collect(),
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

pub async fn typed_values_round_trip_with_every_codec(cx: Ctx) {
    let cache = Arc::clone(&cx.cache);
    let ttl = Duration::from_secs(60);
    let msgpack = Keyspace::<u64, Product>::builder(Arc::clone(&cache), "p:msgpack")
        .ttl(ttl)
        .build()
        .unwrap();
    let json = Keyspace::<u64, Product>::builder(Arc::clone(&cache), "p:json")
        .codec(Json)
        .compress_above(256)
        .schema(3)
        .build()
        .unwrap();
    let raw = Keyspace::<str, Bytes>::builder(Arc::clone(&cache), "p:raw")
        .codec(RawBytes)
        .build()
        .unwrap();
    let text = Keyspace::<str, String>::builder(Arc::clone(&cache), "p:text")
        .codec(Utf8)
        .build()
        .unwrap();
    let (small, large) = (product(1), product(200));
    msgpack.set(&1, &small).await.unwrap();
    msgpack.set(&2, &large).await.unwrap();
    json.set(&1, &small).await.unwrap();
    json.set(&2, &large).await.unwrap();
    assert_eq!(
        msgpack.get_many(&[2, 3, 1]).await.unwrap(),
        [Some(large.clone()), None, Some(small.clone())]
    );
    assert_eq!(
        json.get_many(&[1, 2]).await.unwrap(),
        [Some(small.clone()), Some(large.clone())]
    );
    assert!(cache
        .ttl("p:msgpack:1")
        .await
        .unwrap()
        .remaining()
        .is_some());
    // The large JSON value is stored compressed, the header says so.
    let stored = cache.get("p:json:2").await.unwrap().unwrap();
    let header = inspect(&stored).unwrap().unwrap();
    assert_eq!(header.schema, 3);
    assert!(header.decompressed_len.unwrap() > 2 * stored.len());
    // Bytes that look like a header are stored framed, and read back as given.
    let tricky = Bytes::from_static(&[0xC1, b'K', 1, 2, 3]);
    raw.set("x", &tricky).await.unwrap();
    assert_eq!(raw.get("x").await.unwrap(), Some(tricky));
    text.set("é", &"été".to_owned()).await.unwrap();
    assert_eq!(text.get("é").await.unwrap().as_deref(), Some("été"));
    assert_eq!(
        cache.get("p:text:é").await.unwrap().unwrap(),
        Bytes::from("été")
    );
    assert_eq!(
        json.exists_many(&[2, 9, 1]).await.unwrap(),
        [true, false, true]
    );
    assert!(json.delete(&2).await.unwrap());
    assert_eq!(json.get(&2).await.unwrap(), None);
    assert_eq!(msgpack.delete_all().await.unwrap(), 2);
    assert_eq!(json.get(&1).await.unwrap(), Some(small));
}

pub async fn undecodable_values_are_counted_misses_that_the_loader_replaces(cx: Ctx) {
    let cache = Arc::clone(&cx.cache);
    let loader: Loader<Failure> = Loader::new(Arc::clone(&cache));
    let v2 = Keyspace::<u64, Product>::on_loader(loader.clone(), "p")
        .schema(2)
        .oldest_readable(2)
        .build()
        .unwrap();
    let v1 = Keyspace::<u64, Product>::on_loader(loader, "p")
        .schema(1)
        .build()
        .unwrap();
    let garbage = [
        Bytes::from_static(b"not msgpack at all \xff"),
        Bytes::from_static(&[0xC1, b'K']), // header cut short
        Bytes::from_static(&[0xC1, b'K', 9, 1, 0, 0]), // unknown format
        Bytes::from_static(&[0xC1, b'K', 1, 1, 1, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0]), // bomb
    ];
    for (i, stored) in garbage.iter().enumerate() {
        let key = v2.key(&(i as u64)).unwrap();
        cache.set(&key, stored.clone(), None).await.unwrap();
        let before = decode_failures();
        assert_eq!(v2.get(&(i as u64)).await.unwrap(), None, "garbage {i}");
        assert!(decode_failures() > before, "garbage {i} was not counted");
    }
    // A retired schema version: a miss, loaded again and overwritten.
    v1.set(&7, &product(1)).await.unwrap();
    assert_eq!(v2.get(&7).await.unwrap(), None);
    let fresh = product(2);
    let loaded = v2
        .get_or_load(&7, {
            let fresh = fresh.clone();
            || async move { Ok(fresh) }
        })
        .await
        .unwrap();
    assert_eq!(loaded, fresh);
    assert_eq!(v2.get(&7).await.unwrap(), Some(fresh.clone()));
    // And the older reader still reads the newer version's value.
    assert_eq!(v1.get(&7).await.unwrap(), Some(fresh));
}

pub async fn values_of_set_typed_and_the_loader_read_through_a_keyspace(cx: Ctx) {
    let cache = Arc::clone(&cx.cache);
    let products = Keyspace::<u64, Product>::builder(Arc::clone(&cache), "p")
        .build()
        .unwrap();
    cache.set_typed("p:1", &product(1), None).await.unwrap();
    let loader: Loader<Failure> = Loader::new(Arc::clone(&cache));
    let loaded = product(2);
    let answer: Product = loader
        .get_or_load("p:2", Some(Duration::from_secs(60)), {
            let loaded = loaded.clone();
            || async move { Ok(loaded) }
        })
        .await
        .unwrap();
    assert_eq!(answer, loaded);
    assert_eq!(
        products.get_many(&[1, 2]).await.unwrap(),
        [Some(product(1)), Some(loaded)]
    );
    // And the other way: an unversioned MessagePack keyspace writes what
    // `set_typed` writes.
    products.set(&3, &product(3)).await.unwrap();
    assert_eq!(
        cache.get_typed::<Product>("p:3").await.unwrap(),
        Some(product(3))
    );
}

pub async fn a_hostile_id_never_reaches_another_keyspace(cx: Ctx) {
    let cache = Arc::clone(&cx.cache);
    let products = Keyspace::<str, String>::builder(Arc::clone(&cache), "shop:product")
        .codec(Utf8)
        .build()
        .unwrap();
    let reviews = Keyspace::<str, String>::builder(Arc::clone(&cache), "shop:productx")
        .codec(Utf8)
        .build()
        .unwrap();
    reviews.set("1", &"review".to_owned()).await.unwrap();
    for id in ["1*", "1:reviews", "*", "[a-z]*", "{1}", "x\\*", "%2A", ""] {
        products.set(id, &id.to_owned()).await.unwrap();
    }
    for id in ["1*", "1:reviews", "*", "[a-z]*", "{1}", "x\\*", "%2A", ""] {
        assert_eq!(products.get(id).await.unwrap().as_deref(), Some(id));
    }
    // Deleting one keyspace's keys (by its pattern) leaves the other's.
    assert_eq!(products.delete_all().await.unwrap(), 8);
    assert_eq!(reviews.get("1").await.unwrap().as_deref(), Some("review"));
    assert_eq!(cache.keys("*").await.unwrap(), ["shop:productx:1"]);
}
