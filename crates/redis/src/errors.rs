//! fred's errors as the port's kinds, with every secret scrubbed.

use std::fmt;
use std::time::Duration;

use cache_port::CacheError;
use fred::error::{Error as FredError, ErrorKind as FredKind};

/// What the error mapping needs to know about the adapter.
#[derive(Clone, Default)]
pub(crate) struct ErrorContext {
    pub(crate) command_timeout: Duration,
    /// Passwords that must never appear in a message.
    pub(crate) secrets: Vec<String>,
}

impl fmt::Debug for ErrorContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorContext")
            .field("command_timeout", &self.command_timeout)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .finish()
    }
}

/// fred's error with secrets scrubbed, kept as the port error's source.
#[derive(Debug)]
pub struct RedisClientError {
    kind: FredKind,
    details: String,
}

impl fmt::Display for RedisClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.details)
    }
}

impl std::error::Error for RedisClientError {}

impl RedisClientError {
    /// fred's classification of the error.
    pub fn fred_kind(&self) -> &FredKind {
        &self.kind
    }
}

impl ErrorContext {
    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        self.secrets.iter().fold(text.to_owned(), |acc, secret| {
            acc.replace(secret.as_str(), "***")
        })
    }

    /// Maps fred's error from a start (connect, authenticate, subscribe,
    /// arm tracking) that has `bound` to finish. fred's own connection
    /// timeout is set to the same bound as the timer round the whole start,
    /// and when both fire in one tick fred's error can come first: a start
    /// that ran out of time is `Unavailable` (`unanswered`) whichever timer
    /// said so, never a `Timeout` that names the command timeout.
    pub(crate) fn map_start(
        &self,
        operation: &'static str,
        error: FredError,
        unanswered: impl FnOnce() -> CacheError,
    ) -> CacheError {
        match error.kind() {
            FredKind::Timeout => unanswered(),
            _ => self.map(operation, error),
        }
    }

    /// Maps fred's error for `operation` into the port's kinds.
    pub(crate) fn map(&self, operation: &'static str, error: FredError) -> CacheError {
        let details = self.scrub(&humanize(error.details()));
        let source = || -> Option<cache_port::BoxError> {
            Some(Box::new(RedisClientError {
                kind: error.kind().clone(),
                details: details.clone(),
            }))
        };
        if let Some(problem) = tls_problem(error.details()) {
            // A certificate that does not verify will not verify on retry:
            // a configuration error, said in words.
            return CacheError::Config {
                message: format!("{operation}: TLS: {problem}"),
            };
        }
        match error.kind() {
            FredKind::Timeout => CacheError::Timeout {
                operation,
                after: self.command_timeout,
                source: source(),
            },
            FredKind::IO
            | FredKind::Canceled
            | FredKind::Routing
            | FredKind::Cluster
            | FredKind::Sentinel
            | FredKind::Backpressure => CacheError::Unavailable {
                message: format!("{operation}: {details}"),
                source: source(),
            },
            FredKind::Auth => CacheError::Auth {
                message: details.clone(),
                source: source(),
            },
            FredKind::Config | FredKind::Url => CacheError::Config { message: details },
            // With one write attempt per command, fred gives up on a command
            // the cluster redirected (MOVED/ASK) instead of writing it again:
            // it was not run. Retryable, and retried by the store.
            FredKind::Unknown if details.contains(TOO_MANY_ATTEMPTS) => CacheError::Unavailable {
                message: format!("{operation}: {UNRUN_REDIRECT}"),
                source: source(),
            },
            // A multi-key command (a slot's MGET) while its slot migrates,
            // with some keys moved: refused, not run; retried by the store.
            _ if details.starts_with("TRYAGAIN") => CacheError::Unavailable {
                message: format!("{operation}: {UNRUN_REDIRECT}"),
                source: source(),
            },
            // fred reports a command that lost its connection (or found none)
            // with kind Unknown; only its words tell.
            FredKind::Unknown if is_connection_loss(&details) => CacheError::Unavailable {
                message: format!("{operation}: {details}"),
                source: source(),
            },
            // maxmemory with noeviction: "OOM command not allowed when used
            // memory > 'maxmemory'".
            _ if details.starts_with("OOM") || details.contains(" OOM ") => CacheError::Full {
                message: format!("{operation}: {details}"),
                source: source(),
            },
            _ if details.contains("value is not an integer or out of range") => {
                CacheError::NotAnInteger
            }
            _ if details.contains("increment or decrement would overflow") => CacheError::Overflow,
            _ => CacheError::Backend {
                message: format!("{operation}: {details} ({:?})", error.kind()),
                source: source(),
            },
        }
    }
}

/// fred's words for a command it would have to write a second time.
const TOO_MANY_ATTEMPTS: &str = "Too many failed write attempts";
/// Ours, for a command the cluster redirected and fred did not follow.
const UNRUN_REDIRECT: &str =
    "the cluster redirected the command (MOVED/ASK) while moving slots; it was not run";

/// Whether fred's `error` is a command that may not have reached the server
/// or whose answer was lost: a timeout, a lost, replaced or missing
/// connection, a redirect fred did not follow. Only a command that is safe
/// to send twice may be sent again after one of these.
pub(crate) fn is_unanswered(error: &FredError) -> bool {
    match error.kind() {
        FredKind::Timeout | FredKind::IO | FredKind::Canceled | FredKind::Routing => true,
        FredKind::Unknown => {
            error.details().contains(TOO_MANY_ATTEMPTS) || is_connection_loss(error.details())
        }
        _ => false,
    }
}

/// Whether `error` is a command the cluster redirected and that was not run
/// (safe to send again, whatever the command).
pub(crate) fn is_unrun_redirect(error: &CacheError) -> bool {
    matches!(error, CacheError::Unavailable { message, .. } if message.ends_with(UNRUN_REDIRECT))
}

/// What a rustls handshake failure means, in words, from the `Debug` text
/// fred passes on; `None` when `details` is no certificate problem.
fn tls_problem(details: &str) -> Option<&'static str> {
    const PROBLEMS: &[(&str, &str)] = &[
        (
            "UnknownIssuer",
            "the server's certificate is not signed by a trusted CA (give the CA with tls_ca_file)",
        ),
        (
            "NotValidForName",
            "the server's certificate does not name the host in the URL",
        ),
        ("Expired", "the server's certificate has expired"),
        ("NotValidYet", "the server's certificate is not valid yet"),
        ("Revoked", "the server's certificate was revoked"),
        (
            "CertificateRequired",
            "the server requires a client certificate (tls_cert_file and tls_key_file)",
        ),
        (
            "BadCertificate",
            "the server refused the client certificate",
        ),
        (
            "UnknownCA",
            "the server does not trust the client certificate's CA",
        ),
        ("InvalidCertificate", "the server's certificate is invalid"),
    ];
    if !(details.contains("InvalidCertificate") || details.contains("AlertReceived")) {
        return None;
    }
    PROBLEMS
        .iter()
        .find(|(marker, _)| details.contains(marker))
        .map(|(_, words)| *words)
}

/// fred's details with Rust's `Debug` text of an I/O error
/// (`Os { code: 104, kind: ConnectionReset, message: "Connection reset by
/// peer" }`) turned into words (`Connection reset by peer (os error 104)`).
fn humanize(details: &str) -> String {
    let Some(start) = details.find("Os { code: ") else {
        return custom_io(details);
    };
    let rest = &details[start + "Os { code: ".len()..];
    let code: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let message = rest
        .split_once("message: \"")
        .and_then(|(_, m)| m.split_once('"'))
        .map(|(m, _)| m);
    let Some(end) = rest.find('}') else {
        return details.to_owned();
    };
    let words = match message {
        Some(m) => format!("{m} (os error {code})"),
        None => format!("os error {code}"),
    };
    format!("{}{words}{}", &details[..start], &rest[end + 1..])
}

/// `Custom { kind: K, error: "words" }` as `words`.
fn custom_io(details: &str) -> String {
    match details.find("Custom { kind: ") {
        Some(start) => {
            let rest = &details[start..];
            let words = rest
                .split_once("error: \"")
                .and_then(|(_, m)| m.split_once('"'))
                .map(|(m, _)| m.to_owned());
            match (words, rest.find('}')) {
                (Some(words), Some(end)) => {
                    format!("{}{words}{}", &details[..start], &rest[end + 1..])
                }
                _ => details.to_owned(),
            }
        }
        None => details.to_owned(),
    }
}

/// fred's words for a command that could not reach a server.
fn is_connection_loss(details: &str) -> bool {
    const SIGNS: &[&str] = &[
        "Failed to route command",
        "Connection closed",
        "connection closed",
        "Broken pipe",
        "reset by peer",
        "Canceled",
        // A command whose response channel fred dropped while it rebuilt
        // its connections (a cluster resync): its fate is unknown.
        "channel closed",
    ];
    SIGNS.iter().any(|sign| details.contains(sign))
}

#[cfg(test)]
mod tests {
    use super::{humanize, ErrorContext};
    use cache_port::{CacheError, ErrorKind};
    use fred::error::{Error as FredError, ErrorKind as FredKind};
    use std::time::Duration;

    /// CI failure of 2026-12-06: a silent server's start failed with
    /// `Timeout` ("connect timed out after 2s", the command timeout) when
    /// fred's connection timer fired in the same tick as ours.
    #[test]
    fn a_start_that_ran_out_of_time_is_unavailable_whichever_timer_fired() {
        let errors = ErrorContext {
            command_timeout: Duration::from_secs(2),
            secrets: vec![],
        };
        let unanswered = || CacheError::Unavailable {
            message: "could not connect within 500ms".into(),
            source: None,
        };
        let timed_out = FredError::new(FredKind::Timeout, "Request timed out.");
        let err = errors.map_start("connect", timed_out, unanswered);
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.to_string().contains("within 500ms"), "{err}");
        // Other failures keep their kinds: a wrong password stays `Auth`.
        let refused = FredError::new(FredKind::Auth, "WRONGPASS");
        let err = errors.map_start("connect", refused, unanswered);
        assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    }

    #[test]
    fn io_errors_read_as_words() {
        assert_eq!(
            humanize(
                r#"Os { code: 104, kind: ConnectionReset, message: "Connection reset by peer" }"#
            ),
            "Connection reset by peer (os error 104)"
        );
        assert_eq!(
            humanize(
                r#"IO: Os { code: 111, kind: ConnectionRefused, message: "Connection refused" } at x"#
            ),
            "IO: Connection refused (os error 111) at x"
        );
        assert_eq!(
            humanize(r#"Custom { kind: InvalidData, error: "bad frame" }"#),
            "bad frame"
        );
        assert_eq!(humanize("plain words"), "plain words");
    }
}
