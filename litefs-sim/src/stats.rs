//! Per-node counters of guarded writes, queryable over the control channel.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
struct NodeCounters {
    accepted: AtomicU64,
    refused: AtomicU64,
}

#[derive(Debug)]
pub struct Stats {
    nodes: Vec<NodeCounters>,
}

impl Stats {
    pub fn new(n: usize) -> Stats {
        Stats {
            nodes: (0..n).map(|_| NodeCounters::default()).collect(),
        }
    }

    pub fn accepted(&self, node: usize) {
        if let Some(c) = self.nodes.get(node) {
            c.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn refused(&self, node: usize) {
        if let Some(c) = self.nodes.get(node) {
            c.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (accepted, refused) for one node.
    pub fn get(&self, node: usize) -> (u64, u64) {
        self.nodes
            .get(node)
            .map(|c| {
                (
                    c.accepted.load(Ordering::Relaxed),
                    c.refused.load(Ordering::Relaxed),
                )
            })
            .unwrap_or((0, 0))
    }

    /// `n1.accepted=3 n1.refused=0 n2.accepted=0 n2.refused=1`
    pub fn render(&self, names: &[String]) -> String {
        let mut out = String::new();
        for (i, name) in names.iter().enumerate() {
            let (a, r) = self.get(i);
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{name}.accepted={a} {name}.refused={r}");
        }
        out
    }
}
