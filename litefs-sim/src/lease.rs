//! The one in-memory lease shared by every node of the simulated cluster.

use std::sync::RwLock;

/// How one node sees the cluster right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// This node holds the lease: writes are accepted.
    Primary,
    /// Another node holds the lease; its name is what `.primary` shows.
    Replica { primary: String },
    /// Nobody holds the lease (LiteFS's "lost my primary"): read-only, no `.primary`.
    NoPrimary,
}

/// Node names plus the index of the current holder.
#[derive(Debug)]
pub struct Lease {
    nodes: Vec<String>,
    holder: RwLock<Option<usize>>,
}

impl Lease {
    pub fn new(nodes: Vec<String>, holder: Option<usize>) -> Lease {
        let holder = holder.filter(|&i| i < nodes.len());
        Lease {
            nodes,
            holder: RwLock::new(holder),
        }
    }

    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n == name)
    }

    pub fn name(&self, node: usize) -> &str {
        self.nodes.get(node).map(String::as_str).unwrap_or("?")
    }

    pub fn holder(&self) -> Option<usize> {
        // A poisoned lock still holds a valid Option<usize>.
        *self.holder.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn holder_name(&self) -> Option<&str> {
        self.holder().map(|i| self.name(i))
    }

    /// Moves the lease; returns the previous holder. Unknown indexes mean "none".
    pub fn set(&self, holder: Option<usize>) -> Option<usize> {
        let holder = holder.filter(|&i| i < self.nodes.len());
        let mut guard = self.holder.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut *guard, holder)
    }

    pub fn is_holder(&self, node: usize) -> bool {
        self.holder() == Some(node)
    }

    pub fn role(&self, node: usize) -> Role {
        match self.holder() {
            Some(h) if h == node => Role::Primary,
            Some(h) => Role::Replica {
                primary: self.name(h).to_string(),
            },
            None => Role::NoPrimary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_holder() {
        let l = Lease::new(vec!["n1".into(), "n2".into()], Some(0));
        assert_eq!(l.role(0), Role::Primary);
        assert_eq!(l.role(1), Role::Replica { primary: "n1".into() });
        assert_eq!(l.set(None), Some(0));
        assert_eq!(l.role(0), Role::NoPrimary);
        assert_eq!(l.set(Some(7)), None);
        assert_eq!(l.holder(), None);
    }
}
