//! Inode numbers for root-level names, shared by all mounts.
//!
//! Numbers are never reused: an unlinked name gets a fresh number when it
//! comes back, so a mount that still caches the old dentry revalidates it.

use std::collections::HashMap;
use std::sync::Mutex;

pub const ROOT: u64 = 1;
pub const PRIMARY: u64 = 2;
pub const LAG: u64 = 3;
const FIRST_FREE: u64 = 16;

#[derive(Debug)]
struct Inner {
    by_name: HashMap<String, u64>,
    by_ino: HashMap<u64, String>,
    next: u64,
}

#[derive(Debug)]
pub struct Inodes {
    inner: Mutex<Inner>,
}

impl Default for Inodes {
    fn default() -> Self {
        Self::new()
    }
}

impl Inodes {
    pub fn new() -> Inodes {
        let mut by_name = HashMap::new();
        let mut by_ino = HashMap::new();
        for (name, ino) in [(crate::names::PRIMARY, PRIMARY), (crate::names::LAG, LAG)] {
            by_name.insert(name.to_string(), ino);
            by_ino.insert(ino, name.to_string());
        }
        Inodes {
            inner: Mutex::new(Inner {
                by_name,
                by_ino,
                next: FIRST_FREE,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number for `name`, allocating one on first sight.
    pub fn ino_for(&self, name: &str) -> u64 {
        let mut inner = self.lock();
        if let Some(&ino) = inner.by_name.get(name) {
            return ino;
        }
        let ino = inner.next;
        inner.next += 1;
        inner.by_name.insert(name.to_string(), ino);
        inner.by_ino.insert(ino, name.to_string());
        ino
    }

    pub fn name_of(&self, ino: u64) -> Option<String> {
        self.lock().by_ino.get(&ino).cloned()
    }

    /// After unlink: the next file with this name is a different inode, and
    /// the old number resolves no more (memory stays bounded by live names).
    pub fn forget_name(&self, name: &str) {
        let mut inner = self.lock();
        if let Some(ino) = inner.by_name.get(name).copied() {
            if ino >= FIRST_FREE {
                inner.by_name.remove(name);
                inner.by_ino.remove(&ino);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_stable_until_forgotten() {
        let i = Inodes::new();
        let a = i.ino_for("app.db");
        assert_eq!(i.ino_for("app.db"), a);
        assert_eq!(i.ino_for(".primary"), PRIMARY);
        i.forget_name("app.db");
        let b = i.ino_for("app.db");
        assert_ne!(a, b);
        assert_eq!(i.name_of(a), None);
        assert_eq!(i.name_of(b).as_deref(), Some("app.db"));
    }
}
