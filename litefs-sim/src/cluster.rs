//! State shared by every mount of one sim process: backing store, lease,
//! lock table, counters, log.

use std::fmt::Display;
use std::path::{Path, PathBuf};

use crate::inodes::Inodes;
use crate::lease::Lease;
use crate::locks::LockTable;
use crate::log::EventLog;
use crate::pos::Positions;
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
}

/// Keeps log lines one-token-per-value even for odd file names.
fn log_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_whitespace() || c == '=' { '?' } else { c })
        .collect()
}

impl Cluster {
    pub fn new(backing: &Path, nodes: Vec<String>, holder: Option<usize>, log: EventLog) -> Cluster {
        let n = nodes.len();
        Cluster {
            backing: backing.to_path_buf(),
            lease: Lease::new(nodes, holder),
            locks: LockTable::new(),
            stats: Stats::new(n),
            log,
            inodes: Inodes::new(),
            pos: Positions::new(),
        }
    }

    /// Path of `name` in the backing store.
    pub fn path(&self, name: &str) -> PathBuf {
        self.backing.join(name)
    }

    pub fn node_name(&self, node: usize) -> &str {
        self.lease.name(node)
    }

    /// Moves the lease and logs the change.
    pub fn set_lease(&self, holder: Option<usize>) {
        let prev = self.lease.set(holder);
        let from = prev.map(|i| self.node_name(i)).unwrap_or("none");
        let to = holder.map(|i| self.node_name(i)).unwrap_or("none");
        self.log.event(&[("op", &"lease"), ("from", &from), ("to", &to)]);
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
        self.stats.refused(node);
        let mut fields = extra.to_vec();
        fields.push(("errno", &"EACCES"));
        self.record(node, op, file, "refused", &fields);
        Err(libc::EACCES)
    }

    pub fn accepted(&self, node: usize, op: &str, file: &str, extra: &[(&str, &dyn Display)]) {
        self.stats.accepted(node);
        self.record(node, op, file, "accepted", extra);
    }

    pub fn failed(&self, node: usize, op: &str, file: &str, errno: i32) {
        self.record(node, op, file, "failed", &[("errno", &errno)]);
    }
}
