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
//! all, each attempt within the command timeout, and on the pool's next
//! client ([`WalkClient`]): a client can stay silent after a reshard for
//! longer than all the attempts (seen: for over a minute, while the pool's
//! other clients answered).
//!
//! Every step is safe to send twice: `SCAN` with the same cursor, `CLUSTER
//! NODES` and `CLUSTER GETKEYSINSLOT` only read; `UNLINK` of a key leaves
//! the key gone however often it runs. What a repeat can change is
//! `delete_pattern`'s count: an `UNLINK` whose first answer was lost and
//! whose repeat finds the key gone counts 0, so the count can be below the
//! keys removed, never above (docs/SEMANTICS.md).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use fred::clients::{Client, Pool};
use fred::error::{Error as FredError, ErrorKind as FredKind};

/// Attempts per step of a cluster walk, the first included.
pub(crate) const WALK_ATTEMPTS: u32 = 3;

/// The longest a walk's step may take on a cluster: every attempt's
/// timeout (there are no pauses between attempts), and a margin so that
/// the last attempt's own timeout answers first.
pub(crate) fn step_deadline(command_timeout: Duration) -> Duration {
    command_timeout * WALK_ATTEMPTS + Duration::from_millis(100)
}

/// The pool client the walks of one store send their steps on: the same
/// one until it leaves a step unanswered, then the next one, for every
/// walk after. (Round robin per attempt is not enough: a walk over the
/// slots a reshard moved can take thousands of steps, and a silent client
/// met by a quarter of them cost a command timeout each: a run hung for
/// minutes.)
#[derive(Clone)]
pub(crate) struct WalkClient {
    pool: Pool,
    current: Arc<AtomicUsize>,
}

impl WalkClient {
    pub(crate) fn new(pool: Pool) -> Self {
        Self {
            pool,
            current: Arc::default(),
        }
    }

    /// The client steps go to now, and its place in the pool.
    pub(crate) fn client(&self) -> (usize, Client) {
        let i = self.current.load(Relaxed);
        let clients = self.pool.clients();
        (i, clients[i % clients.len()].clone())
    }

    /// Runs `step` on the current client until it answers, fails for a
    /// reason a repeat cannot cure, or has been tried [`WALK_ATTEMPTS`]
    /// times; each attempt within `command_timeout`. A client that left a
    /// step unanswered is passed over from then on.
    pub(crate) async fn step<T, F, Fut>(
        &self,
        command_timeout: Duration,
        mut step: F,
    ) -> Result<T, FredError>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, FredError>>,
    {
        let mut attempt = 1;
        loop {
            let (i, client) = self.client();
            let outcome = match tokio::time::timeout(command_timeout, step(client)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(FredError::new(
                    FredKind::Timeout,
                    "no answer within the command timeout",
                )),
            };
            match outcome {
                Err(e) if crate::errors::is_unanswered(&e) => {
                    // Only the first of several steps that met the silent
                    // client moves the walks on.
                    let _ = self
                        .current
                        .compare_exchange(i, i.wrapping_add(1), Relaxed, Relaxed);
                    if attempt == WALK_ATTEMPTS {
                        return Err(e);
                    }
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fred::prelude::Builder;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Four clients, never connected: the steps below do not use them.
    fn walker() -> WalkClient {
        WalkClient::new(Builder::default_centralized().build_pool(4).unwrap())
    }

    #[tokio::test]
    async fn an_unanswered_step_is_sent_again_on_the_next_client_which_later_steps_keep() {
        let walk = walker();
        let sent = AtomicU32::new(0);
        let answer = walk
            .step(ms(20), |_| async {
                if sent.fetch_add(1, SeqCst) + 1 < WALK_ATTEMPTS {
                    std::future::pending::<()>().await;
                }
                Ok::<_, FredError>("page")
            })
            .await;
        assert_eq!(answer.unwrap(), "page");
        assert_eq!(sent.load(SeqCst), WALK_ATTEMPTS);
        assert_eq!(walk.client().0, WALK_ATTEMPTS as usize - 1);
        // The next step goes straight to the client that answered.
        walk.step(ms(20), |_| async { Ok::<_, FredError>(()) })
            .await
            .unwrap();
        assert_eq!(walk.client().0, WALK_ATTEMPTS as usize - 1);

        let sent = AtomicU32::new(0);
        let answer: Result<(), _> = walk
            .step(ms(5), |_| async {
                sent.fetch_add(1, SeqCst);
                Err(FredError::new(FredKind::IO, "connection reset"))
            })
            .await;
        assert_eq!(answer.unwrap_err().kind(), &FredKind::IO);
        assert_eq!(sent.load(SeqCst), WALK_ATTEMPTS);
    }

    #[tokio::test]
    async fn a_step_the_server_refused_is_not_sent_again() {
        let walk = walker();
        let sent = AtomicU32::new(0);
        let answer: Result<(), _> = walk
            .step(ms(50), |_| async {
                sent.fetch_add(1, SeqCst);
                Err(FredError::new(FredKind::Auth, "NOPERM"))
            })
            .await;
        assert_eq!(answer.unwrap_err().kind(), &FredKind::Auth);
        assert_eq!(sent.load(SeqCst), 1);
        assert_eq!(walk.client().0, 0, "a refusal is no reason to move on");
    }
}
