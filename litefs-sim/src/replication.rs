//! What each node has caught up to: the position its `NAME-pos` shows and
//! the lag its `.lag` shows.
//!
//! The backing store is shared, so every node always reads the newest bytes;
//! replication is instant unless a node is *held* (control command `hold`).
//! A held node's `NAME-pos` stays at the positions it had when held, and its
//! lag grows from that moment. Lag also grows on every replica while nobody
//! holds the lease, counted from the last moment each was in sync; a node
//! that was never in sync (started with no lease) shows LiteFS's
//! "never caught up" value.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Positions (TXID, checksum) of every database at one moment.
pub type Snapshot = HashMap<String, (u64, u64)>;

#[derive(Debug, Default)]
struct NodeSync {
    /// Positions frozen by `hold`.
    held: Option<Snapshot>,
    /// Last moment this node was in sync; `None`: never.
    synced_at: Option<Instant>,
}

#[derive(Debug)]
pub struct Replication {
    nodes: Mutex<Vec<NodeSync>>,
}

impl NodeSync {
    fn in_sync(&self, me: usize, holder: Option<usize>) -> bool {
        holder == Some(me) || (holder.is_some() && self.held.is_none())
    }
}

impl Replication {
    /// `connected`: a lease holder exists at start, so every node is in sync.
    pub fn new(nodes: usize, connected: bool) -> Replication {
        let now = Instant::now();
        let v = (0..nodes)
            .map(|_| NodeSync {
                held: None,
                synced_at: connected.then_some(now),
            })
            .collect();
        Replication { nodes: Mutex::new(v) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NodeSync>> {
        // Plain data; a poisoned guard is still consistent.
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records "in sync now" for every node that is, before a change of
    /// lease or hold may take that away.
    pub fn mark_synced(&self, holder: Option<usize>) {
        let now = Instant::now();
        for (i, n) in self.lock().iter_mut().enumerate() {
            if n.in_sync(i, holder) {
                n.synced_at = Some(now);
            }
        }
    }

    /// Freezes `node` at `snapshot`; false if it was held already.
    pub fn hold(&self, node: usize, snapshot: Snapshot) -> bool {
        match self.lock().get_mut(node) {
            Some(n) if n.held.is_none() => {
                n.held = Some(snapshot);
                true
            }
            _ => false,
        }
    }

    /// Lets `node` catch up; false if it was not held.
    pub fn release(&self, node: usize) -> bool {
        self.lock().get_mut(node).and_then(|n| n.held.take()).is_some()
    }

    pub fn is_held(&self, node: usize) -> bool {
        self.lock().get(node).is_some_and(|n| n.held.is_some())
    }

    pub fn held_nodes(&self) -> Vec<usize> {
        let nodes = self.lock();
        (0..nodes.len()).filter(|&i| nodes[i].held.is_some()).collect()
    }

    /// The frozen position of `db` on a held node; `None` if not held.
    pub fn frozen_pos(&self, node: usize, db: &str) -> Option<(u64, u64)> {
        let nodes = self.lock();
        let held = nodes.get(node)?.held.as_ref()?;
        Some(held.get(db).copied().unwrap_or((0, 0)))
    }

    /// Lag in ms; `None` before the node was ever in sync.
    pub fn lag_ms(&self, node: usize, holder: Option<usize>) -> Option<i64> {
        let nodes = self.lock();
        let n = nodes.get(node)?;
        if n.in_sync(node, holder) {
            return Some(0);
        }
        let ms = n.synced_at?.elapsed().as_millis();
        Some(ms.min(i32::MAX as u128) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn hold_freezes_and_lag_grows() {
        let r = Replication::new(2, true);
        assert_eq!(r.lag_ms(1, Some(0)), Some(0));
        let mut snap = Snapshot::new();
        snap.insert("a".into(), (3, 9));
        r.mark_synced(Some(0));
        assert!(r.hold(1, snap.clone()));
        assert!(!r.hold(1, snap));
        assert_eq!(r.frozen_pos(1, "a"), Some((3, 9)));
        assert_eq!(r.frozen_pos(1, "b"), Some((0, 0)));
        assert_eq!(r.frozen_pos(0, "a"), None);
        std::thread::sleep(Duration::from_millis(15));
        assert!(r.lag_ms(1, Some(0)).unwrap() >= 15);
        assert_eq!(r.lag_ms(0, Some(0)), Some(0));
        assert_eq!(r.held_nodes(), vec![1]);
        assert!(r.release(1) && !r.release(1));
        assert_eq!(r.lag_ms(1, Some(0)), Some(0));
    }

    #[test]
    fn no_primary_lag_and_never_synced() {
        let r = Replication::new(2, false);
        assert_eq!(r.lag_ms(1, None), None);
        let r = Replication::new(2, true);
        r.mark_synced(Some(0));
        std::thread::sleep(Duration::from_millis(5));
        assert!(r.lag_ms(0, None).unwrap() >= 5);
    }
}
