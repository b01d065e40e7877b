//! Failures and their exit codes.

use std::process::ExitCode;

use cache_port::{CacheError, ErrorKind};

/// Why `cachectl` stopped.
#[derive(Debug)]
pub enum Failure {
    /// The cache answered with an error.
    Cache(CacheError),
    /// The command line asked for something refused before touching the cache.
    Usage(String),
    /// Something other than the cache (a metrics endpoint) cannot be reached.
    Unreachable(String),
}

impl From<CacheError> for Failure {
    fn from(e: CacheError) -> Self {
        Failure::Cache(e)
    }
}

/// A key was not found.
pub const NOT_FOUND: u8 = 1;
/// Bad input or configuration.
pub const BAD_INPUT: u8 = 2;
/// The cache cannot be reached.
pub const UNREACHABLE: u8 = 3;
/// Any other cache error.
pub const CACHE_ERROR: u8 = 4;

impl Failure {
    /// Prints the failure and gives its exit code.
    pub fn report(self) -> ExitCode {
        let (code, message) = match self {
            Failure::Usage(message) => (BAD_INPUT, message),
            Failure::Unreachable(message) => (UNREACHABLE, message),
            Failure::Cache(e) => {
                let code = match e.kind() {
                    k if e.is_invalid_input() || k == ErrorKind::Config => BAD_INPUT,
                    ErrorKind::Timeout | ErrorKind::Unavailable | ErrorKind::Auth => UNREACHABLE,
                    _ => CACHE_ERROR,
                };
                (code, e.to_string())
            }
        };
        eprintln!("cachectl: error: {message}");
        ExitCode::from(code)
    }
}
