//! The main job: every port operation, once, with its answer.

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;

use crate::args::Cli;
use crate::exit::Failure;
use crate::ops;
use crate::output::{duration, maybe_value, stats_table, ttl, value};

/// The namespace the demo works in when none is configured, so that it never
/// touches anything else on a shared server.
pub const DEMO_NAMESPACE: &str = "cachectl-demo";

/// Runs the demonstration.
pub async fn run(cli: &Cli) -> Result<ExitCode, Failure> {
    let config = ops::config(cli)?.default_namespace(DEMO_NAMESPACE)?;
    println!("cachectl demo on {config}\n");
    let cache = ops::connect(&config).await?;
    let show = |op: &str, answer: String| println!("  {op:<44} -> {answer}");
    let minute = Some(Duration::from_secs(60));

    show("ping", duration(cache.ping().await?));
    cache
        .set("user:1", Bytes::from_static(b"Ada"), minute)
        .await?;
    show("set user:1 = \"Ada\" (ttl 60s)", "OK".into());
    show(
        "get user:1",
        maybe_value(cache.get("user:1").await?.as_deref()),
    );
    show(
        "get user:404",
        maybe_value(cache.get("user:404").await?.as_deref()),
    );
    show("exists user:1", cache.exists("user:1").await?.to_string());
    show("ttl user:1", ttl(cache.ttl("user:1").await?));
    cache
        .set("user:1", Bytes::from_static(b"Ada L."), None)
        .await?;
    show(
        "set user:1 = \"Ada L.\" (no ttl: replaces it)",
        ttl(cache.ttl("user:1").await?),
    );
    show(
        "expire user:1 30s",
        cache
            .expire("user:1", Duration::from_secs(30))
            .await?
            .to_string(),
    );
    let items = vec![
        ("user:2".to_owned(), Bytes::from_static(b"Grace")),
        ("user:3".to_owned(), Bytes::from_static(b"Edsger")),
        ("{cart:9}:items".to_owned(), Bytes::from_static(b"3")),
    ];
    cache.set_many(items, minute).await?;
    show("set_many user:2, user:3, {cart:9}:items", "OK".into());
    let keys: Vec<String> = ["user:3", "user:404", "user:2"].map(String::from).to_vec();
    let many = cache.get_many(&keys).await?;
    show(
        "get_many user:3, user:404, user:2",
        many.iter()
            .map(|v| maybe_value(v.as_deref()))
            .collect::<Vec<_>>()
            .join(", "),
    );
    show(
        "set_if_absent lock:job = \"worker-1\"",
        cache
            .set_if_absent("lock:job", Bytes::from_static(b"worker-1"), minute)
            .await?
            .to_string(),
    );
    show(
        "set_if_absent lock:job = \"worker-2\"",
        cache
            .set_if_absent("lock:job", Bytes::from_static(b"worker-2"), minute)
            .await?
            .to_string(),
    );
    show(
        "incr visits (ttl 60s on create)",
        cache.incr("visits", 1, minute).await?.to_string(),
    );
    show(
        "incr visits by 41",
        cache.incr("visits", 41, minute).await?.to_string(),
    );
    match cache.incr("user:1", 1, None).await {
        Ok(n) => show("incr user:1 (not a number)", n.to_string()),
        Err(e) => show("incr user:1 (not a number)", format!("error: {e}")),
    }
    let mut listed = cache.keys("user:*").await?;
    listed.sort();
    show("keys user:*", listed.join(", "));
    show(
        "keys {cart:9}:* (hash tags are literal)",
        cache.keys("{cart:9}:*").await?.join(", "),
    );
    match cache.keys("user:[").await {
        Ok(k) => show("keys user:[ (unclosed class)", format!("{k:?}")),
        Err(e) => show(
            "keys user:[ (unclosed class)",
            format!("refused: {}", e.kind_name()),
        ),
    }
    show(
        "delete_pattern user:[23]",
        cache.delete_pattern("user:[23]").await?.to_string(),
    );
    show("delete user:1", cache.delete("user:1").await?.to_string());
    let gone: Vec<String> = ["lock:job", "user:1"].map(String::from).to_vec();
    show(
        "delete_many lock:job, user:1",
        cache.delete_many(&gone).await?.to_string(),
    );
    show(
        "get visits",
        value(&cache.get("visits").await?.unwrap_or_default()),
    );
    let stats = cache.stats().await?;
    cache.clear().await?;
    show(
        "clear (the namespace only)",
        format!("{} keys left", cache.keys("*").await?.len()),
    );
    println!("\nstats (before clear):\n{}", stats_table(&stats));
    Ok(ExitCode::SUCCESS)
}

/// A short name for an error's kind.
trait KindName {
    fn kind_name(&self) -> String;
}

impl KindName for cache_port::CacheError {
    fn kind_name(&self) -> String {
        format!("{:?}", self.kind())
    }
}
