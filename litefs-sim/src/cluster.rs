//! State shared by every mount of one sim process: backing store, lease,
//! lock table, replication view, halt locks, counters, log.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::halt::HaltTable;
use crate::inodes::Inodes;
use crate::lease::Lease;
use crate::locks::LockTable;
use crate::log::EventLog;
use crate::names;
use crate::pos::Positions;
use crate::replication::Replication;
use crate::stats::Stats;

#[derive(Debug)]
pub struct Cluster {
    pub backing: PathBuf,
    pub lease: Lease,
    pub locks: LockTable,
    pub stats: Stats,
    pub log: EventLog,
    pub inodes: Inodes,
    pub pos: Positions,
    pub replication: Replication,
    pub halts: HaltTable,
}

/// Keeps log lines one-token-per-value even for odd file names.
fn log_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() || c == '=' { '?' } else { c })
        .collect()
}

impl Cluster {
    pub fn new(
        backing: &Path,
        nodes: Vec<String>,
        holder: Option<usize>,
        log: EventLog,
        halt_expiry: Duration,
    ) -> Cluster {
        let n = nodes.len();
        let connected = holder.is_some_and(|h| h < n);
        Cluster {
            backing: backing.to_path_buf(),
            lease: Lease::new(nodes, holder),
            locks: LockTable::new(),
            stats: Stats::new(n),
            log,
            inodes: Inodes::new(),
            pos: Positions::new(),
            replication: Replication::new(n, connected),
            halts: HaltTable::new(halt_expiry),
        }
    }

    /// Path of `name` in the backing store.
    pub fn path(&self, name: &str) -> PathBuf {
        self.backing.join(name)
    }

    pub fn node_name(&self, node: usize) -> &str {
        self.lease.name(node)
    }

    /// Moves the lease and logs the change. A held node taking the lease
    /// catches up first (LiteFS promotes only an up-to-date replica); halt
    /// locks were locks on the old primary and are gone.
    pub fn set_lease(&self, holder: Option<usize>) {
        self.replication.mark_synced(self.lease.holder());
        if let Some(h) = holder {
            self.release_node(h, "lease");
        }
        let prev = self.lease.set(holder);
        let from = prev.map(|i| self.node_name(i)).unwrap_or("none");
        let to = holder.map(|i| self.node_name(i)).unwrap_or("none");
        self.log.event(&[("op", &"lease"), ("from", &from), ("to", &to)]);
        self.halts_lease_moved();
    }

    /// `hold NODE`: freezes what the node shows of replication.
    pub fn hold_node(&self, node: usize) -> Result<(), String> {
        let name = self.node_name(node);
        if self.lease.is_holder(node) {
            return Err(format!("{name} holds the lease"));
        }
        self.replication.mark_synced(self.lease.holder());
        if !self.replication.hold(node, self.pos.snapshot()) {
            return Err(format!("{name} is held already"));
        }
        self.log.event(&[("node", &name), ("op", &"hold")]);
        Ok(())
    }

    /// `release NODE` (or a lease move to it): the node catches up.
    pub fn release_node(&self, node: usize, reason: &str) -> bool {
        self.replication.mark_synced(self.lease.holder());
        if !self.replication.release(node) {
            return false;
        }
        let name = self.node_name(node);
        self.log
            .event(&[("node", &name), ("op", &"release"), ("reason", &reason)]);
        true
    }

    /// `NAME-pos` as `node` sees it.
    pub fn pos_of(&self, node: usize, db: &str) -> (u64, u64) {
        self.replication
            .frozen_pos(node, db)
            .unwrap_or_else(|| self.pos.get(db))
    }

    /// `.lag` of `node` in ms; `None` before it ever caught up.
    pub fn lag_ms(&self, node: usize) -> Option<i64> {
        self.replication.lag_ms(node, self.lease.holder())
    }

    /// May `node` change database `db`? LiteFS: primary, or holds its halt lock.
    pub fn writable(&self, node: usize, db: &str) -> bool {
        self.lease.is_holder(node) || self.halts.node_holds(node, db)
    }

    /// Logs one filesystem event for `node`.
    pub fn record(&self, node: usize, op: &str, file: &str, result: &str, extra: &[(&str, &dyn Display)]) {
        let file = log_safe(file);
        let name = self.node_name(node);
        let mut fields: Vec<(&str, &dyn Display)> =
            vec![("node", &name), ("op", &op), ("file", &file), ("result", &result)];
        fields.extend_from_slice(extra);
        self.log.event(&fields);
    }

    /// Gate for a content-changing op on a database file. Refusals are
    /// counted and logged here; the caller logs the outcome of accepted ops
    /// with `accepted` or `failed`.
    pub fn guard(
        &self,
        node: usize,
        op: &str,
        file: &str,
        extra: &[(&str, &dyn Display)],
    ) -> Result<(), i32> {
        if self.lease.is_holder(node) {
            return Ok(());
        }
        if self.halts.node_holds(node, names::classify(file).1) {
            return Ok(());
        }
        self.stats.refused(node);
        let mut fields = extra.to_vec();
        fields.push(("errno", &"EACCES"));
        self.record(node, op, file, "refused", &fields);
        Err(libc::EACCES)
    }

    pub fn accepted(&self, node: usize, op: &str, file: &str, extra: &[(&str, &dyn Display)]) {
        self.stats.accepted(node);
        if self.lease.is_holder(node) {
            self.record(node, op, file, "accepted", extra);
        } else {
            // Only a halt lock lets a non-holder write.
            let mut fields = extra.to_vec();
            fields.push(("via", &"halt"));
            self.record(node, op, file, "accepted", &fields);
        }
    }

    pub fn failed(&self, node: usize, op: &str, file: &str, errno: i32) {
        self.record(node, op, file, "failed", &[("errno", &errno)]);
    }
}
