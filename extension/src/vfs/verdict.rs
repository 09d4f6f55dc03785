//! Reusing a role verdict. `role::detect` never caches: the write gate asks
//! it afresh at every write lock. Two callers may instead reuse a "may
//! write" verdict this file reached moments ago; this is the only place that
//! says which, and for how long.
//!
//! - The authorizer, for [`AUTHORIZER_REUSE`]: a write it lets through on a
//!   reused verdict still meets the gate at the lock, so reuse only moves
//!   where a stale "may write" is caught (SQLITE_READONLY at the lock
//!   instead of SQLITE_AUTH at prepare). Saves one `.primary` lookup per
//!   prepared write on the primary.
//! - The auto-checkpoint right after this connection's own commit, for
//!   [`CHECKPOINT_REUSE`]: the commit passed the gate that long ago at most.
//!
//! A "may not write" verdict is never reused.

use std::time::{Duration, Instant};

/// How long the authorizer may reuse the file's last "may write".
pub const AUTHORIZER_REUSE: Duration = Duration::from_millis(100);
/// How long a checkpoint may reuse it.
pub const CHECKPOINT_REUSE: Duration = Duration::from_millis(1);

/// When a role check for one file last allowed writes.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecentVerdict(Option<Instant>);

impl RecentVerdict {
    /// Records a fresh verdict; "may not write" forgets the last one.
    pub fn record(&mut self, may_write: bool) {
        self.0 = may_write.then(Instant::now);
    }

    /// Whether writes were allowed within `reuse`.
    pub fn allowed_within(&self, reuse: Duration) -> bool {
        self.0.is_some_and(|t| t.elapsed() < reuse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recent_may_write_is_reused() {
        let mut v = RecentVerdict::default();
        assert!(!v.allowed_within(AUTHORIZER_REUSE));
        v.record(true);
        assert!(v.allowed_within(AUTHORIZER_REUSE));
        std::thread::sleep(CHECKPOINT_REUSE * 2);
        assert!(!v.allowed_within(CHECKPOINT_REUSE));
        v.record(false);
        assert!(!v.allowed_within(AUTHORIZER_REUSE));
    }
}
