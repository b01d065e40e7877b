//! `cachectl`: operate a cache through the port.
//!
//! With no arguments it demonstrates every port operation on the embedded
//! default (no server needed); `--url` (or `CACHE_URL`) points it at Redis.
//! Subcommands run single operations for people operating a cache, and
//! `bench` loads any cache URL and reports throughput and latency percentiles.
//!
//! Exit codes: 0 success; 1 the key was not found (`get`, `ttl`);
//! 2 bad input or configuration; 3 the cache is unreachable (timeout,
//! connection, credentials); 4 any other cache error.

mod args;
mod bench;
mod demo;
mod exit;
mod ops;
mod output;
mod plot;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command.clone().unwrap_or(Command::Demo) {
        Command::Demo => demo::run(&cli).await,
        Command::Bench(settings) => bench::run(&cli, settings).await,
        Command::Stats(settings) => watch::run(&cli, settings).await,
        op => ops::run(&cli, op).await,
    };
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
