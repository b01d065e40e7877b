//! A short tour of the port on the embedded adapter: `cargo run -p cache-moka --example tour`.

use std::sync::Arc;
use std::time::Duration;

use cache_moka::MokaConfig;
use cache_port::Cache;

#[tokio::main]
async fn main() -> Result<(), cache_port::CacheError> {
    let cache: Arc<dyn Cache> = Arc::new(MokaConfig::default().namespace("tour").build()?);
    cache
        .set("greeting", "hello".into(), Some(Duration::from_secs(60)))
        .await?;
    println!("get greeting      -> {:?}", cache.get("greeting").await?);
    println!("ttl greeting      -> {:?}", cache.ttl("greeting").await?);
    println!(
        "incr visits       -> {}",
        cache.incr("visits", 1, None).await?
    );
    println!(
        "set_if_absent     -> {}",
        cache.set_if_absent("lock", "me".into(), None).await?
    );
    println!("keys *            -> {:?}", cache.keys("*").await?);
    println!("delete_pattern g* -> {}", cache.delete_pattern("g*").await?);
    println!("stats             -> {:?}", cache.stats().await?);
    Ok(())
}
