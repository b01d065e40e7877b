//! Sending a step of a cluster walk again when its answer never came.
//!
//! `keys`, `keys_stream` and `delete_pattern` walk a cluster in many steps:
//! `SCAN` pages node by node, `CLUSTER NODES` before and after, `CLUSTER
//! GETKEYSINSLOT` for the slots that moved, one `UNLINK` per key. While
//! slots move (`redis-cli --cluster reshard`), fred rebuilds a node's
//! connections after a `MOVED`, and a command in flight on the connection
//! it replaces can go unanswered until the command timeout (seen in
//! `tests/cluster_reshard.rs`: about one call in a thousand, of every kind).
//! A single `get` that times out is the caller's to retry; a walk of
//! hundreds of steps would fail often enough to be useless during a
//! reshard, which is when an operator runs it. So each step that timed out
//! or lost its connection is sent again, up to [`WALK_ATTEMPTS`] times in
//! all, each attempt within the command timeout, and each on the pool's
//! next client: a connection that stopped answering during a reshard can
//! stay silent for longer than all the attempts (seen: one client's
//! connection to the node the slots left, while the pool's other clients
//! answered).
//!
//! Every step is safe to send twice: `SCAN` with the same cursor, `CLUSTER
//! NODES` and `CLUSTER GETKEYSINSLOT` only read; `UNLINK` of a key leaves
//! the key gone however often it runs. What a repeat can change is
//! `delete_pattern`'s count: an `UNLINK` whose first answer was lost and
//! whose repeat finds the key gone counts 0, so the count can be below the
//! keys removed, never above (docs/SEMANTICS.md).

use std::future::Future;
use std::time::Duration;

use fred::error::{Error as FredError, ErrorKind as FredKind};

/// Attempts per step of a cluster walk, the first included.
pub(crate) const WALK_ATTEMPTS: u32 = 3;

/// The longest a walk's step may take on a cluster: every attempt's
/// timeout (there are no pauses between attempts), and a margin so that
/// the last attempt's own timeout answers first.
pub(crate) fn step_deadline(command_timeout: Duration) -> Duration {
    command_timeout * WALK_ATTEMPTS + Duration::from_millis(100)
}

/// Runs `step` until it answers, fails for a reason a repeat cannot cure,
/// or has been tried [`WALK_ATTEMPTS`] times; each attempt within
/// `command_timeout`.
pub(crate) async fn step<T, F, Fut>(command_timeout: Duration, mut step: F) -> Result<T, FredError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FredError>>,
{
    let mut attempt = 1;
    loop {
        let outcome = match tokio::time::timeout(command_timeout, step()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(FredError::new(
                FredKind::Timeout,
                "no answer within the command timeout",
            )),
        };
        match outcome {
            Err(e) if attempt < WALK_ATTEMPTS && crate::errors::is_unanswered(&e) => attempt += 1,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test]
    async fn an_unanswered_step_is_sent_again_up_to_the_attempts() {
        let sent = AtomicU32::new(0);
        let answer = step(ms(20), || async {
            if sent.fetch_add(1, SeqCst) + 1 < WALK_ATTEMPTS {
                std::future::pending::<()>().await;
            }
            Ok::<_, FredError>("page")
        })
        .await;
        assert_eq!(answer.unwrap(), "page");
        assert_eq!(sent.load(SeqCst), WALK_ATTEMPTS);

        let sent = AtomicU32::new(0);
        let answer: Result<(), _> = step(ms(5), || async {
            sent.fetch_add(1, SeqCst);
            Err(FredError::new(FredKind::IO, "connection reset"))
        })
        .await;
        assert_eq!(answer.unwrap_err().kind(), &FredKind::IO);
        assert_eq!(sent.load(SeqCst), WALK_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_step_the_server_refused_is_not_sent_again() {
        let sent = AtomicU32::new(0);
        let answer: Result<(), _> = step(ms(50), || async {
            sent.fetch_add(1, SeqCst);
            Err(FredError::new(FredKind::Auth, "NOPERM"))
        })
        .await;
        assert_eq!(answer.unwrap_err().kind(), &FredKind::Auth);
        assert_eq!(sent.load(SeqCst), 1);
    }
}
