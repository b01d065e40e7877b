//! Walking a cluster's keys while slots move (`redis-cli --cluster
//! reshard`, a rebalance).
//!
//! `SCAN` runs node by node. A key that migrates from a node not yet
//! scanned to one already scanned is seen by neither, so `keys` and
//! `delete_pattern` could miss a key that existed throughout. The cure:
//! read every primary's view of its slots (`CLUSTER NODES`, the `myself`
//! line, which alone shows migrations in progress) before and after the
//! walk; the slots that were migrating or changed owner in between are
//! "unstable", and their keys are listed again with `CLUSTER GETKEYSINSLOT`
//! on every node involved, the source before the target (keys only move
//! from source to target, so one that moves meanwhile is found on the
//! target). A stable cluster costs one `CLUSTER NODES` per primary before
//! and after the walk.

use std::collections::BTreeMap;

use fred::clients::Client;
use fred::prelude::{ClusterInterface, Error as FredError};
use fred::types::config::Server;

const SLOTS: usize = 16384;

/// One primary's account of its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeView {
    id: String,
    server: Server,
    /// Slot ranges it serves.
    ranges: Vec<(u16, u16)>,
    /// Slots it is migrating away, and to whom (node id).
    migrating: Vec<(u16, String)>,
    /// Slots it is importing, and from whom (node id).
    importing: Vec<(u16, String)>,
}

/// Every primary's account, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct SlotMap {
    nodes: Vec<NodeView>,
}

impl SlotMap {
    /// Reads the `myself` line of every primary fred knows.
    pub(crate) async fn read(client: &Client) -> Result<Self, FredError> {
        let Some(state) = client.cached_cluster_state() else {
            return Ok(Self::default());
        };
        let mut nodes = Vec::new();
        for server in state.unique_primary_nodes() {
            let text: String = client.with_cluster_node(&server).cluster_nodes().await?;
            if let Some(view) = text
                .lines()
                .find(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("myself")))
                .and_then(parse_myself)
            {
                nodes.push(view);
            }
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(Self { nodes })
    }

    fn server_of(&self, id: &str) -> Option<&Server> {
        self.nodes.iter().find(|n| n.id == id).map(|n| &n.server)
    }

    fn owners(&self) -> Vec<Option<usize>> {
        let mut owners = vec![None; SLOTS];
        for (i, node) in self.nodes.iter().enumerate() {
            for (from, to) in &node.ranges {
                for slot in *from..=*to {
                    owners[slot as usize] = Some(i);
                }
            }
        }
        owners
    }
}

/// The slots whose keys a walk between `before` and `after` may have
/// missed, each with the servers to list it on, sources first.
pub(crate) fn unstable_slots(before: &SlotMap, after: &SlotMap) -> BTreeMap<u16, Vec<Server>> {
    let mut unstable: BTreeMap<u16, Vec<Server>> = BTreeMap::new();
    let mut add = |slot: u16, servers: Vec<Option<&Server>>| {
        let entry = unstable.entry(slot).or_default();
        for server in servers.into_iter().flatten() {
            if !entry.contains(server) {
                entry.push(server.clone());
            }
        }
    };
    for map in [before, after] {
        for node in &map.nodes {
            for (slot, to) in &node.migrating {
                add(*slot, vec![Some(&node.server), map.server_of(to)]);
            }
            for (slot, from) in &node.importing {
                add(*slot, vec![map.server_of(from), Some(&node.server)]);
            }
        }
    }
    let (old, new) = (before.owners(), after.owners());
    for slot in 0..SLOTS {
        let was = old[slot].map(|i| &before.nodes[i]);
        let is = new[slot].map(|i| &after.nodes[i]);
        if was.map(|n| &n.id) != is.map(|n| &n.id) {
            add(
                slot as u16,
                vec![was.map(|n| &n.server), is.map(|n| &n.server)],
            );
        }
    }
    unstable
}

/// Every key of `slot` on `server` (at most `limit`).
pub(crate) async fn keys_in_slot(
    client: &Client,
    server: &Server,
    slot: u16,
    limit: u64,
) -> Result<Vec<String>, FredError> {
    client
        .with_cluster_node(server)
        .cluster_get_keys_in_slot(slot, limit)
        .await
}

/// `<id> <ip:port@cport[,hostname]> <flags> <primary> <ping> <pong> <epoch>
/// <link> <slot> …`, slots as `a`, `a-b`, `[a->-id]`, `[a-<-id]`.
fn parse_myself(line: &str) -> Option<NodeView> {
    let fields: Vec<&str> = line.split(' ').collect();
    let id = (*fields.first()?).to_owned();
    let address = fields.get(1)?.split(['@', ',']).next()?;
    let (host, port) = address.rsplit_once(':')?;
    let server = Server::new(host, port.parse().ok()?);
    let mut view = NodeView {
        id,
        server,
        ranges: Vec::new(),
        migrating: Vec::new(),
        importing: Vec::new(),
    };
    for slot in fields.iter().skip(8) {
        if let Some(marker) = slot.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            if let Some((s, to)) = marker.split_once("->-") {
                view.migrating.push((s.parse().ok()?, to.to_owned()));
            } else if let Some((s, from)) = marker.split_once("-<-") {
                view.importing.push((s.parse().ok()?, from.to_owned()));
            }
        } else if let Some((a, b)) = slot.split_once('-') {
            view.ranges.push((a.parse().ok()?, b.parse().ok()?));
        } else if !slot.is_empty() {
            let s = slot.parse().ok()?;
            view.ranges.push((s, s));
        }
    }
    Some(view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(line: &str) -> NodeView {
        parse_myself(line).unwrap()
    }

    #[test]
    fn the_myself_line_is_read_with_its_migrations() {
        let v = view("aaa 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-99 150 [100->-bbb] [200-<-ccc]");
        assert_eq!(v.server, Server::new("127.0.0.1", 30001));
        assert_eq!(v.ranges, vec![(0, 99), (150, 150)]);
        assert_eq!(v.migrating, vec![(100, "bbb".to_owned())]);
        assert_eq!(v.importing, vec![(200, "ccc".to_owned())]);
    }

    #[test]
    fn moved_and_migrating_slots_are_unstable_sources_first() {
        let before = SlotMap {
            nodes: vec![
                view("aaa 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-10 [11->-bbb]"),
                view("bbb 127.0.0.1:3@4 myself,master - 0 0 1 connected 12-20 [11-<-aaa]"),
            ],
        };
        let after = SlotMap {
            nodes: vec![
                view("aaa 127.0.0.1:1@2 myself,master - 0 0 1 connected 0-9"),
                view("bbb 127.0.0.1:3@4 myself,master - 0 0 1 connected 10-20"),
            ],
        };
        let unstable = unstable_slots(&before, &after);
        let (a, b) = (Server::new("127.0.0.1", 1), Server::new("127.0.0.1", 3));
        assert_eq!(unstable.keys().copied().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(unstable[&10], vec![a.clone(), b.clone()]);
        assert_eq!(unstable[&11], vec![a, b]);
        assert!(unstable_slots(&after, &after).is_empty());
    }
}
