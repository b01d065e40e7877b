//! Single operations.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use cache_composition::{build_cache, CacheConfig};
use cache_port::{Cache, TtlState};
use cache_tags::TaggedCache;

use crate::args::{Cli, Command, TagCommand};
use crate::exit::{Failure, NOT_FOUND};
use crate::output;

/// What the configuration builds, for the first line of a report.
pub fn describe(config: &CacheConfig) -> String {
    match config.tier() {
        Some(_) => format!("{} with an in-process L1", config.adapter()),
        None => config.adapter().to_owned(),
    }
}

/// The configuration the command line (or `CACHE_URL`) names.
pub fn config(cli: &Cli) -> Result<CacheConfig, Failure> {
    Ok(match &cli.url {
        Some(url) if !url.trim().is_empty() => CacheConfig::from_url(url.trim())?,
        _ => CacheConfig::default(),
    })
}

/// Connects to the configured cache.
pub async fn connect(config: &CacheConfig) -> Result<Arc<dyn Cache>, Failure> {
    Ok(build_cache(config).await?)
}

/// Runs one operation and prints its answer.
pub async fn run(cli: &Cli, command: Command) -> Result<ExitCode, Failure> {
    if let Command::Clear { yes: false } = command {
        return Err(Failure::Usage(
            "clear deletes every key in the namespace: add --yes to confirm".into(),
        ));
    }
    let cache = connect(&config(cli)?).await?;
    match command {
        Command::Demo | Command::Bench(_) | Command::Stats(_) => {
            unreachable!("these have their own entry points")
        }
        // Through the tagged view: an untagged value reads as stored, a
        // tagged one without its header, an invalidated one as missing.
        Command::Get { key } => match TaggedCache::new(Arc::clone(&cache)).get(&key).await? {
            Some(v) => println!("{}", output::value(&v)),
            None => {
                println!("(nil)");
                return Ok(ExitCode::from(NOT_FOUND));
            }
        },
        Command::Set {
            key,
            value,
            ttl,
            tags,
        } => {
            let tagged = TaggedCache::new(Arc::clone(&cache));
            tagged.set(&key, Bytes::from(value), ttl, &tags).await?;
            println!("OK");
        }
        Command::Tag(TagCommand::Invalidate { tags }) => {
            TaggedCache::new(Arc::clone(&cache))
                .delete_by_tags(&tags)
                .await?;
            println!("OK");
        }
        Command::Tag(TagCommand::Show { tag }) => {
            match TaggedCache::new(Arc::clone(&cache))
                .tag_version(&tag)
                .await?
            {
                Some(version) => println!("{version:016x}"),
                None => {
                    println!("(none)");
                    return Ok(ExitCode::from(NOT_FOUND));
                }
            }
        }
        Command::Del { keys } => println!("{}", cache.delete_many(&keys).await?),
        Command::Ttl { key } => {
            let state = cache.ttl(&key).await?;
            println!("{}", output::ttl(state));
            if state == TtlState::Missing {
                return Ok(ExitCode::from(NOT_FOUND));
            }
        }
        Command::Incr { key, by, ttl } => println!("{}", cache.incr(&key, by, ttl).await?),
        Command::Keys { pattern } => {
            let mut keys = cache.keys(&pattern).await?;
            keys.sort();
            for key in keys {
                println!("{key}");
            }
        }
        Command::DeletePattern { pattern } => println!("{}", cache.delete_pattern(&pattern).await?),
        Command::Clear { .. } => {
            cache.clear().await?;
            println!("OK");
        }
        Command::Ping => println!("PONG {}", output::duration(cache.ping().await?)),
    }
    Ok(ExitCode::SUCCESS)
}
