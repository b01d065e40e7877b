//! The spans of the tracing layer and of the loader: their fields and their
//! parents, captured by a subscriber of the test's own.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cache_loading::{LoadOptions, Loader, Origin};
use cache_observe::KeyField;
use cache_observe::TracingLayer;
use cache_port::{Cache, CacheError, MockCache};
use cache_store::layer::CacheStore;
use cache_store::CacheBuilder;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// One span as the test saw it: name, fields, parent's name.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: String,
    fields: HashMap<String, String>,
    parent: Option<String>,
    id: u64,
    parent_id: Option<u64>,
}

#[derive(Clone, Default)]
struct Capture {
    spans: Arc<Mutex<Vec<Seen>>>,
    events: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name().to_owned(),
            id: id.into_u64(),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields));
        if let Some(parent) = ctx.span(id).and_then(|s| s.parent()) {
            seen.parent = Some(parent.name().to_owned());
            seen.parent_id = Some(parent.id().into_u64());
        }
        self.spans.lock().unwrap().push(seen);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut spans = self.spans.lock().unwrap();
        if let Some(seen) = spans.iter_mut().rev().find(|s| s.id == id.into_u64()) {
            values.record(&mut Fields(&mut seen.fields));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = HashMap::new();
        event.record(&mut Fields(&mut fields));
        fields.insert("level".into(), event.metadata().level().to_string());
        self.events.lock().unwrap().push(fields);
    }
}

fn subscriber(capture: &Capture, filter: &str) -> impl Subscriber + Send + Sync {
    tracing_subscriber::registry()
        .with(EnvFilter::new(filter))
        .with(capture.clone())
}

#[test]
fn a_get_or_load_span_holds_the_get_the_load_and_the_set() {
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(&capture, "cache=debug"), || {
        common::runtime().block_on(async {
            let mock = common::one_value_mock();
            let cache: Arc<dyn Cache> = CacheBuilder::new(CacheStore::new(mock))
                .namespace("shop")
                .unwrap()
                .layer(TracingLayer::new("moka").namespace("shop"))
                .build();
            let loader: Loader<CacheError> = Loader::new(cache);
            let options = LoadOptions::default().with_ttl(Some(Duration::from_secs(60)));
            let first = loader
                .get_or_load_entry("product:7", options, || async { Ok("seven".to_owned()) })
                .await
                .unwrap();
            assert_eq!(first.origin, Origin::Loader);
            let second = loader
                .get_or_load_entry("product:7", options, || async { Ok("other".to_owned()) })
                .await
                .unwrap();
            assert_eq!(
                (second.value.as_str(), second.origin),
                ("seven", Origin::Cache)
            );
        });
    });
    let spans = capture.spans.lock().unwrap().clone();
    let roots: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.name == "cache.get_or_load")
        .collect();
    assert_eq!(roots.len(), 2, "{spans:#?}");
    assert_eq!(roots[0].fields["cache.origin"], "loader");
    assert_eq!(roots[1].fields["cache.origin"], "cache");
    assert!(roots.iter().all(|r| r.parent.is_none()));
    // The first call: the caller's get, the flight's second get, the load,
    // the write-back, every one a child of the first get_or_load.
    let children: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.parent_id == Some(roots[0].id))
        .collect();
    let names: Vec<String> = children
        .iter()
        .map(|s| {
            s.fields
                .get("db.operation.name")
                .cloned()
                .unwrap_or_else(|| s.name.clone())
        })
        .collect();
    assert_eq!(names, ["get", "get", "cache.load", "set"], "{spans:#?}");
    let load = children[2];
    assert_eq!(load.fields["cache.outcome"], "ok");
    let get = children[0];
    assert_eq!(get.name, "cache");
    assert_eq!(get.fields["otel.name"], "get");
    assert_eq!(get.fields["db.system.name"], "moka");
    assert_eq!(get.fields["db.namespace"], "shop");
    assert_eq!(get.fields["cache.batch_size"], "1");
    assert_eq!(get.fields["cache.outcome"], "miss");
    assert!(
        !get.fields.contains_key("cache.key"),
        "keys hidden by default"
    );
    assert_eq!(children[3].fields["cache.outcome"], "ok");
    // The second call: one get, a hit, under the second get_or_load.
    let hit: Vec<&Seen> = spans
        .iter()
        .filter(|s| s.parent_id == Some(roots[1].id))
        .collect();
    assert_eq!(hit.len(), 1);
    assert_eq!(hit[0].fields["cache.outcome"], "hit");
}

/// A read the store answers at once (`Store::get_now`: the moka store)
/// still gets its span when spans are on, with its outcome, once.
#[test]
fn a_read_answered_at_once_still_gets_its_span() {
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(&capture, "cache=debug"), || {
        common::runtime().block_on(async {
            let store = cache_moka::MokaConfig::default().build_store().unwrap();
            let cache: Arc<dyn Cache> = CacheBuilder::new(store)
                .namespace("shop")
                .unwrap()
                .layer(TracingLayer::new("moka").namespace("shop"))
                .build();
            cache.set("k", Bytes::from("v"), None).await.unwrap();
            assert_eq!(cache.get("k").await.unwrap(), Some(Bytes::from("v")));
            assert_eq!(cache.get("absent").await.unwrap(), None);
        });
    });
    let spans = capture.spans.lock().unwrap().clone();
    let gets: Vec<&str> = spans
        .iter()
        .filter(|s| s.fields.get("db.operation.name").map(String::as_str) == Some("get"))
        .map(|s| s.fields["cache.outcome"].as_str())
        .collect();
    assert_eq!(gets, ["hit", "miss"], "{spans:#?}");
}

/// Has "k" at hand under a watch that always holds, as a tiered cache has
/// an L1 hit; its `get` answers the same.
struct Watching;

impl cache_store::Store for Watching {
    async fn call(
        &self,
        request: cache_store::Request<'_>,
    ) -> cache_port::Result<cache_store::Reply> {
        match request {
            cache_store::Request::Get { key } => Ok(cache_store::Reply::Value(
                (key == "k").then(|| Bytes::from("v")),
            )),
            other => panic!("not expected here: {other:?}"),
        }
    }
    fn watch_now(&self, key: &str) -> Option<(Bytes, cache_port::Watch)> {
        struct Still;
        impl cache_port::Watched for Still {
            fn unchanged(&self, _: &cache_port::Stamp) -> bool {
                true
            }
        }
        let watch = cache_port::Watch::new(Arc::new(Still), cache_port::Stamp([0; 3]), None);
        (key == "k").then(|| (Bytes::from("v"), watch))
    }
    fn max_value_len(&self) -> usize {
        64
    }
}

/// A watch is taken by a read of the store (the tags view reads a tag's
/// version so): while DEBUG spans are wanted the tracing layer offers
/// none, so the read goes through a traced `get`, as with `get_now`;
/// without them it forwards the store's.
#[test]
fn no_watch_is_offered_while_spans_are_wanted() {
    let cache = || -> Arc<dyn Cache> {
        CacheBuilder::new(Watching)
            .layer(TracingLayer::new("tiered"))
            .build()
    };
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(&capture, "cache=debug"), || {
        assert!(cache().watch_now("k").is_none(), "spans wanted: no watch");
    });
    tracing::subscriber::with_default(subscriber(&capture, "cache=info"), || {
        assert!(
            cache().watch_now("k").is_some(),
            "no spans wanted: the store's watch"
        );
    });
}

fn failing_cache(keys: KeyField) -> Arc<dyn Cache> {
    let mut mock = MockCache::new();
    mock.expect_max_value_len().return_const(1024usize);
    mock.expect_get().returning(|_| {
        Err(CacheError::Unavailable {
            message: "connection refused".into(),
            source: None,
        })
    });
    mock.expect_set().returning(|_, _, _| Ok(()));
    CacheBuilder::new(CacheStore::new(mock))
        .layer(TracingLayer::new("redis").keys(keys))
        .build()
}

#[test]
fn an_outage_is_recorded_on_each_span_and_logged_once_per_interval() {
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(&capture, "cache=debug"), || {
        common::runtime().block_on(async {
            let cache = failing_cache(KeyField::Hidden);
            for _ in 0..1000 {
                cache.get("user:alice@example.com").await.unwrap_err();
            }
        });
    });
    let spans = capture.spans.lock().unwrap();
    assert_eq!(spans.len(), 1000);
    assert!(spans.iter().all(|s| s.fields["error.type"] == "unavailable"
        && s.fields["otel.status_code"] == "ERROR"
        && s.fields["cache.outcome"] == "error"));
    let events = capture.events.lock().unwrap();
    assert_eq!(events.len(), 1, "one line for 1000 failures: {events:#?}");
    assert_eq!(events[0]["level"], "WARN");
    assert_eq!(events[0]["error_type"], "unavailable");
    for text in spans
        .iter()
        .flat_map(|s| s.fields.values())
        .chain(events[0].values())
    {
        assert!(!text.contains("alice"), "a key was shown: {text}");
    }
}

#[test]
fn a_key_is_shown_only_at_trace_and_only_as_configured() {
    for (filter, keys, shown) in [
        ("cache=debug", KeyField::Hashed, None),
        ("cache=trace", KeyField::Hidden, None),
        (
            "cache=trace",
            KeyField::Truncated(5),
            Some("user:".to_owned()),
        ),
        (
            "cache=trace",
            KeyField::Hashed,
            Some(cache_port::report::key_digest("user:alice")),
        ),
    ] {
        let capture = Capture::default();
        tracing::subscriber::with_default(subscriber(&capture, filter), || {
            common::runtime().block_on(async {
                failing_cache(keys).get("user:alice").await.unwrap_err();
            });
        });
        let spans = capture.spans.lock().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(
            spans[0].fields.get("cache.key"),
            shown.as_ref(),
            "{filter} {keys:?}"
        );
    }
}

#[test]
fn without_a_subscriber_that_wants_spans_failures_are_still_logged_once() {
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(&capture, "cache=warn"), || {
        common::runtime().block_on(async {
            let cache = failing_cache(KeyField::Hidden);
            for _ in 0..100 {
                cache.get("k").await.unwrap_err();
            }
        });
    });
    assert!(capture.spans.lock().unwrap().is_empty());
    assert_eq!(capture.events.lock().unwrap().len(), 1);
}

/// A stored value that no longer decodes is logged with the key's digest,
/// never the key (the warning used to carry the key itself).
#[test]
fn a_value_that_no_longer_decodes_is_logged_without_its_key() {
    use cache_port::CacheExt;
    let capture = Capture::default();
    tracing::subscriber::with_default(subscriber(&capture, "cache=warn"), || {
        common::runtime().block_on(async {
            let mut mock = MockCache::new();
            mock.expect_max_value_len().return_const(1024usize);
            // Not MessagePack of a String: it fails to decode.
            mock.expect_get()
                .returning(|_| Ok(Some(Bytes::from_static(&[0xc1, 0xff]))));
            mock.expect_set().returning(|_, _, _| Ok(()));
            let cache: Arc<dyn Cache> = CacheBuilder::new(CacheStore::new(mock)).build();
            let value: String = cache
                .get_or_load("user:alice@example.com", None, || async {
                    Ok::<_, CacheError>("fresh".to_owned())
                })
                .await
                .unwrap();
            assert_eq!(value, "fresh");
        });
    });
    let events = capture.events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(
        events[0]["key_digest"],
        cache_port::report::key_digest("user:alice@example.com")
    );
    for text in events[0].values() {
        assert!(!text.contains("alice"), "the key was logged: {text}");
    }
}
