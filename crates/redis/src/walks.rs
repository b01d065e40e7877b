//! Walks of the key space: `SCAN` pages (every primary of a cluster, each
//! page sent again when its answer is lost), `keys`, `keys_stream`,
//! `delete_pattern` in `UNLINK` batches, and the second look at slots that
//! moved during a cluster walk (`migration.rs`).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use cache_port::{escape_glob, CacheError, KeyPages, Pattern, Result};
use fred::prelude::ClusterInterface;
use fred::prelude::{ClientLike, Error as FredError, Key as FredKey, KeysInterface, Value};
use fred::types::scan::Scanner;
use fred::types::CustomCommand;
use futures::{Stream, StreamExt};

use crate::migration;
use crate::store::RedisStore;
use crate::walk_retry;

/// `SCAN` of every primary, each to the end of its own cursor, addressed to
/// the server itself. (fred's `scan_cluster` addresses each node through
/// one of its hash slots: when that slot moves during a reshard, the
/// cursor's next page goes to another node, and the rest of the first
/// node's keys are never listed; found by `cluster_faults.rs`.)
///
/// Each page is asked for again when its answer is lost (`walk_retry.rs`).
pub(crate) fn cluster_scan(
    walker: walk_retry::WalkClient,
    matcher: String,
    count: u32,
    command_timeout: Duration,
) -> impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Send {
    let servers = walker
        .client()
        .1
        .cached_cluster_state()
        .map(|state| state.unique_primary_nodes())
        .unwrap_or_default();
    futures::stream::unfold((0usize, String::from("0")), move |(i, cursor)| {
        let (walker, servers, matcher) = (walker.clone(), servers.clone(), matcher.clone());
        async move {
            let server = servers.get(i)?;
            let args: Vec<Value> = vec![
                cursor.into(),
                "MATCH".into(),
                matcher.into(),
                "COUNT".into(),
                count.into(),
            ];
            let args = &args;
            let reply: std::result::Result<Value, FredError> = walker
                .step(command_timeout, move |client| async move {
                    client
                        .with_cluster_node(server)
                        .custom(CustomCommand::new_static("SCAN", None, false), args.clone())
                        .await
                })
                .await;
            Some(match reply.and_then(scan_reply) {
                Ok((next, keys)) if next == "0" => (Ok(keys), (i + 1, "0".into())),
                Ok((next, keys)) => (Ok(keys), (i, next)),
                // The stream ends after an error.
                Err(e) => (Err(e), (servers.len(), "0".into())),
            })
        }
    })
}

/// `SCAN`'s reply: the next cursor and a page of keys.
pub(crate) fn scan_reply(value: Value) -> std::result::Result<(String, Vec<FredKey>), FredError> {
    let bad = || FredError::new(fred::error::ErrorKind::Protocol, "unexpected SCAN reply");
    let Value::Array(mut parts) = value else {
        return Err(bad());
    };
    if parts.len() != 2 {
        return Err(bad());
    }
    let keys = parts.pop().ok_or_else(bad)?;
    let cursor = parts.pop().and_then(|c| c.as_string()).ok_or_else(bad)?;
    let Value::Array(keys) = keys else {
        return Err(bad());
    };
    let keys = keys
        .into_iter()
        .map(|k| k.as_bytes().map(FredKey::from).ok_or_else(bad))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((cursor, keys))
}

impl RedisStore {
    /// SCAN pages of keys under `scope` whose rest matches `pattern`, from
    /// every primary. Each page holds at most about `scan_count` keys; the
    /// next one is fetched when the previous is dropped.
    pub(crate) fn scan_pages(
        &self,
        scope: &str,
        pattern: &Pattern,
    ) -> impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Send {
        // The scope is a literal prefix: a namespace holding `*?[]\` must
        // not match its look-alikes.
        let matcher = format!("{}{}", escape_glob(scope), pattern.as_str());
        let count = self.shared.config.scan_count;
        let client = self.pool().next();
        if client.is_clustered() {
            let timeout = self.shared.config.command_timeout;
            return cluster_scan(self.shared.walker.clone(), matcher, count, timeout).boxed();
        }
        client
            .scan(matcher, Some(count), None)
            .map(|page| page.map(|mut page| page.take_results().unwrap_or_default()))
            .boxed()
    }

    /// How long the next SCAN page may take: the command timeout, and on a
    /// cluster every attempt's (`walk_retry.rs`). fred's SCAN stream does
    /// not end on a dead connection, it waits: this bounds it.
    pub(crate) fn page_deadline(&self) -> Duration {
        let timeout = self.shared.config.command_timeout;
        if self.clustered() {
            walk_retry::step_deadline(timeout)
        } else {
            timeout
        }
    }

    /// The next SCAN page, within [`Self::page_deadline`].
    pub(crate) async fn next_page(
        &self,
        pages: &mut (impl Stream<Item = std::result::Result<Vec<FredKey>, FredError>> + Unpin),
        operation: &'static str,
    ) -> Result<Option<Vec<FredKey>>> {
        let after = self.page_deadline();
        match tokio::time::timeout(after, pages.next()).await {
            Ok(None) => Ok(None),
            Ok(Some(page)) => page.map(Some).map_err(self.err(operation)),
            Err(_) => Err(CacheError::Timeout {
                operation,
                after,
                source: None,
            }),
        }
    }

    /// `UNLINK` of one batch; on a cluster, where a batch may span slots,
    /// one `UNLINK` per key, all queued at once (one write per node, as
    /// `get_many`'s `GET`s), each sent again if its answer is lost
    /// (`walk_retry.rs`).
    pub(crate) async fn unlink(&self, keys: Vec<FredKey>) -> std::result::Result<u64, FredError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let client = self.pool().next();
        if !client.is_clustered() {
            return client.unlink(keys).await;
        }
        let (walker, timeout) = (&self.shared.walker, self.shared.config.command_timeout);
        let unlinks = keys.iter().map(|key| {
            walker.step(timeout, move |client| async move {
                client.unlink::<u64, _>(key.clone()).await
            })
        });
        let counts = futures::future::try_join_all(unlinks).await?;
        Ok(counts.iter().sum())
    }

    pub(crate) async fn delete_pattern(
        &self,
        scope: &str,
        pattern: &Pattern,
        op: &'static str,
    ) -> Result<u64> {
        let before = self.slot_map(op).await?;
        let mut pages = std::pin::pin!(self.scan_pages(scope, pattern));
        let mut removed = 0;
        while let Some(keys) = self.next_page(&mut pages, op).await? {
            removed += self.unlink(keys).await.map_err(self.err(op))?;
        }
        let missed = self
            .missed_by_walk(before, scope, pattern, u64::MAX, op)
            .await?;
        let missed = missed.into_iter().map(FredKey::from).collect();
        removed += self.unlink(missed).await.map_err(self.err(op))?;
        Ok(removed)
    }

    /// On a cluster, every primary's account of its slots (see
    /// `migration.rs`); nothing elsewhere.
    pub(crate) async fn slot_map(&self, op: &'static str) -> Result<Option<migration::SlotMap>> {
        let client = self.pool().next();
        if !client.is_clustered() {
            return Ok(None);
        }
        let timeout = self.shared.config.command_timeout;
        self.shared
            .walker
            .step(timeout, |client| async move {
                migration::SlotMap::read(&client).await
            })
            .await
            .map(Some)
            .map_err(self.err(op))
    }

    /// The keys under `scope` matching `pattern` in the slots that moved
    /// (or were moving) while a walk that began with `before` ran: what the
    /// walk may have missed. Whole store keys, scope included.
    pub(crate) async fn missed_by_walk(
        &self,
        before: Option<migration::SlotMap>,
        scope: &str,
        pattern: &Pattern,
        limit: u64,
        op: &'static str,
    ) -> Result<Vec<String>> {
        let Some(before) = before else {
            return Ok(Vec::new());
        };
        let after = self.slot_map(op).await?.unwrap_or_default();
        let mut found = Vec::new();
        for (slot, servers) in migration::unstable_slots(&before, &after) {
            for server in servers {
                let server = &server;
                let keys = self
                    .shared
                    .walker
                    .step(
                        self.shared.config.command_timeout,
                        move |client| async move {
                            migration::keys_in_slot(&client, server, slot, limit.min(1 << 30)).await
                        },
                    )
                    .await
                    .map_err(self.err(op))?;
                found.extend(keys.into_iter().filter(|key| {
                    key.strip_prefix(scope)
                        .is_some_and(|rest| pattern.matches(rest))
                }));
            }
        }
        Ok(found)
    }

    pub(crate) async fn keys(
        &self,
        scope: &str,
        pattern: &Pattern,
        limit: usize,
    ) -> Result<Vec<String>> {
        let before = self.slot_map("keys").await?;
        let mut pages = std::pin::pin!(self.scan_pages(scope, pattern));
        let mut found = Vec::new();
        while let Some(keys) = self.next_page(&mut pages, "keys").await? {
            found.extend(
                keys.iter()
                    .filter_map(|k| k.as_str()?.strip_prefix(scope).map(str::to_owned)),
            );
            // SCAN may repeat a key, so a page can only overshoot: dedup
            // before deciding, and stop holding pages past the limit.
            if found.len() > limit {
                found.sort_unstable();
                found.dedup();
                if found.len() > limit {
                    return Err(CacheError::TooManyKeys { limit });
                }
            }
        }
        let missed = self
            .missed_by_walk(before, scope, pattern, limit as u64 + 1, "keys")
            .await?;
        found.extend(
            missed
                .iter()
                .filter_map(|k| k.strip_prefix(scope).map(str::to_owned)),
        );
        // SCAN may return a key twice (when the table is resized under it),
        // and a key listed again from its slot is there twice.
        found.sort_unstable();
        found.dedup();
        if found.len() > limit {
            return Err(CacheError::TooManyKeys { limit });
        }
        Ok(found)
    }

    /// `SCAN MATCH … COUNT` pages (every primary of a cluster), each within
    /// the command timeout, as they come: one page in memory at a time.
    ///
    /// On a cluster, the slots that moved during the walk are listed again
    /// as a last page (see `migration.rs`), as `keys` does.
    pub(crate) fn key_pages(&self, scope: String, pattern: Pattern) -> KeyPages {
        if !self.shared.connected.up.load(Relaxed) {
            return Box::pin(futures::stream::once(std::future::ready(Err(
                self.not_connected_yet()
            ))));
        }
        if !self.clustered() {
            return self.walk_pages(scope, pattern);
        }
        let store = self.clone();
        Box::pin(
            futures::stream::once(async move {
                let before = match store.slot_map("keys_stream").await {
                    Ok(before) => before,
                    Err(e) => return futures::stream::once(std::future::ready(Err(e))).boxed(),
                };
                // After an error the stream ends there: no last page.
                let failed = Arc::new(AtomicBool::new(false));
                let noted = Arc::clone(&failed);
                let walk = store
                    .walk_pages(scope.clone(), pattern.clone())
                    .inspect(move |page| {
                        if page.is_err() {
                            noted.store(true, Relaxed);
                        }
                    });
                let last = futures::stream::once(async move {
                    if failed.load(Relaxed) {
                        return None;
                    }
                    let missed = store
                        .missed_by_walk(before, &scope, &pattern, u64::MAX, "keys_stream")
                        .await;
                    Some(missed.map(|missed| {
                        missed
                            .iter()
                            .filter_map(|k| k.strip_prefix(&*scope).map(str::to_owned))
                            .collect()
                    }))
                })
                .filter_map(std::future::ready);
                walk.chain(last).boxed()
            })
            .flatten(),
        )
    }

    /// The walk of `key_pages`, without the second look at moved slots.
    pub(crate) fn walk_pages(&self, scope: String, pattern: Pattern) -> KeyPages {
        let pages = Box::pin(self.scan_pages(&scope, &pattern));
        let errors = self.shared.errors.clone();
        let after = self.page_deadline();
        Box::pin(futures::stream::unfold(Some(pages), move |pages| {
            let (errors, scope) = (errors.clone(), scope.clone());
            async move {
                let mut pages = pages?;
                let failed = |error| Some((Err(error), None));
                match tokio::time::timeout(after, pages.next()).await {
                    Ok(None) => None,
                    Ok(Some(Ok(keys))) => {
                        let keys = keys
                            .iter()
                            .filter_map(|k| k.as_str()?.strip_prefix(&*scope).map(str::to_owned))
                            .collect();
                        Some((Ok(keys), Some(pages)))
                    }
                    Ok(Some(Err(e))) => failed(errors.map("keys_stream", e)),
                    Err(_) => failed(CacheError::Timeout {
                        operation: "keys_stream",
                        after,
                        source: None,
                    }),
                }
            }
        }))
    }
}
