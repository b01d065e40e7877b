//! Single operations.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use cache_composition::{build_cache, CacheConfig};
use cache_port::{Cache, TtlState};

use crate::args::{Cli, Command};
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
        Command::Get { key } => match cache.get(&key).await? {
            Some(v) => println!("{}", output::value(&v)),
            None => {
                println!("(nil)");
                return Ok(ExitCode::from(NOT_FOUND));
            }
        },
        Command::Set { key, value, ttl } => {
            cache.set(&key, Bytes::from(value), ttl).await?;
            println!("OK");
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
