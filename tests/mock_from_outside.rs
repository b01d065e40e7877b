//! The port's mock, used from a crate other than the port, as a domain
//! service's unit tests use it: expectations on keys, TTLs, call counts and
//! error paths.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache_port::{typed, Cache, CacheError, CacheExt, ErrorKind, MockCache};
use mockall::predicate::{always, eq};
use mockall::Sequence;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
}

/// A tiny domain service: depends on the port only.
struct Profiles {
    cache: Arc<dyn Cache>,
}

impl Profiles {
    const TTL: Duration = Duration::from_secs(300);

    async fn get(&self, id: u64) -> Result<Profile, CacheError> {
        self.cache
            .get_or_load(&format!("profile:{id}"), Some(Self::TTL), || async move {
                Ok(Profile {
                    id,
                    name: format!("user {id}"),
                })
            })
            .await
    }

    async fn rename_all(&self) -> Result<u64, CacheError> {
        self.cache.delete_pattern("profile:*").await
    }
}

#[tokio::test]
async fn a_miss_loads_and_stores_with_the_ttl() {
    let mut mock = MockCache::new();
    let mut seq = Sequence::new();
    mock.expect_get()
        .with(eq("profile:7"))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(None));
    mock.expect_set()
        .with(eq("profile:7"), always(), eq(Some(Profiles::TTL)))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, value, _| {
            let stored: Profile = typed::decode(&value).unwrap();
            assert_eq!(stored.name, "user 7");
            Ok(())
        });
    let service = Profiles {
        cache: Arc::new(mock),
    };
    assert_eq!(service.get(7).await.unwrap().id, 7);
}

#[tokio::test]
async fn a_hit_does_not_load_or_write() {
    let mut mock = MockCache::new();
    let cached = typed::encode(&Profile {
        id: 1,
        name: "cached".into(),
    })
    .unwrap();
    mock.expect_get()
        .times(1)
        .returning(move |_| Ok(Some(cached.clone())));
    mock.expect_set().never();
    let service = Profiles {
        cache: Arc::new(mock),
    };
    assert_eq!(service.get(1).await.unwrap().name, "cached");
}

#[tokio::test]
async fn an_undecodable_value_is_reloaded_and_overwritten() {
    let before = typed::decode_failures();
    let mut mock = MockCache::new();
    mock.expect_get()
        .returning(|_| Ok(Some(Bytes::from_static(b"\xc1 not msgpack"))));
    mock.expect_set().times(1).returning(|_, _, _| Ok(()));
    let service = Profiles {
        cache: Arc::new(mock),
    };
    assert_eq!(service.get(3).await.unwrap().name, "user 3");
    assert!(typed::decode_failures() > before);
}

#[tokio::test]
async fn a_backend_error_is_an_error_not_a_miss() {
    let mut mock = MockCache::new();
    mock.expect_get().returning(|_| {
        Err(CacheError::Unavailable {
            message: "connection refused".into(),
            source: None,
        })
    });
    mock.expect_set().never();
    let service = Profiles {
        cache: Arc::new(mock),
    };
    let err = service.get(2).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn invalidation_uses_the_pattern() {
    let mut mock = MockCache::new();
    mock.expect_delete_pattern()
        .with(eq("profile:*"))
        .times(1)
        .returning(|_| Ok(3));
    let service = Profiles {
        cache: Arc::new(mock),
    };
    assert_eq!(service.rename_all().await.unwrap(), 3);
}

/// A field added later with a default still reads entries written before it.
#[tokio::test]
async fn typed_values_survive_an_added_field() {
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct V2 {
        id: u64,
        name: String,
        #[serde(default)]
        email: Option<String>,
    }
    let cache = cache_moka::MokaConfig::default().build().unwrap();
    cache
        .set_typed(
            "p",
            &Profile {
                id: 9,
                name: "old".into(),
            },
            None,
        )
        .await
        .unwrap();
    let read: V2 = cache.get_typed("p").await.unwrap().unwrap();
    assert_eq!(
        read,
        V2 {
            id: 9,
            name: "old".into(),
            email: None
        }
    );
    // And a value of another shape is a codec error, not garbage.
    cache
        .set("raw", Bytes::from_static(b"plain text"), None)
        .await
        .unwrap();
    let err = cache.get_typed::<Profile>("raw").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Codec);
}
