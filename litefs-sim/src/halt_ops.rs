//! What the halt lock does to the cluster: requests through `NAME-lock`
//! decided against the lease, holds turned into locks in front of the
//! primary's writers, and every change logged (`op=halt`).

use std::time::Instant;

use crate::cluster::Cluster;
use crate::halt::{Acquire, HaltOwner, Handoff, Holder};
use crate::lease::Role;
use crate::locks::Done;

/// SQLite's RESERVED byte in the database file: a rollback-journal writer
/// needs a write lock on it.
const RESERVED_BYTE: u64 = 0x4000_0001;
/// WAL_WRITE_LOCK in `-shm`: a WAL writer needs a write lock on it.
const WAL_WRITE_BYTE: u64 = 120;
/// Tag of the blocker locks; one holder per database, so one tag will do.
const BLOCKER_TAG: u64 = 0;

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EIO => "EIO",
        libc::ENOLCK => "ENOLCK",
        libc::EINTR => "EINTR",
        _ => "other",
    }
}

impl Cluster {
    fn halt_event(&self, node: usize, db: &str, result: &str, extra: &[(&str, &dyn std::fmt::Display)]) {
        self.record(node, "halt", &format!("{db}-lock"), result, extra);
    }

    /// F_SETLKW write on byte 72 of `db`-lock through handle `fh` of `node`.
    /// `done` answers the caller, now or when the lock is handed over.
    pub fn halt_acquire(&self, node: usize, fh: u64, db: &str, tid: u32, done: Done) {
        match self.lease.role(node) {
            // LiteFS: acquiring on the primary is a no-op.
            Role::Primary => {
                self.halt_event(node, db, "noop", &[]);
                done(Ok(()))
            }
            // LiteFS: with no primary to ask it fails at once.
            Role::NoPrimary => {
                self.halt_event(node, db, "error", &[("errno", &"EIO")]);
                done(Err(libc::EIO))
            }
            Role::Replica { .. } => match self.halts.acquire(db, HaltOwner { node, fh }, tid, done) {
                Acquire::Granted(done) => {
                    self.halt_granted(db, node);
                    done(Ok(()))
                }
                Acquire::Queued => self.halt_event(node, db, "waiting", &[]),
                Acquire::Refused => self.halt_event(node, db, "error", &[("errno", &"ENOLCK")]),
            },
        }
    }

    /// A new hold: the primary's writers now wait (SQLITE_BUSY) until it ends.
    fn halt_granted(&self, db: &str, node: usize) {
        if let Some(primary) = self.lease.holder() {
            self.locks
                .block_node(db, primary, BLOCKER_TAG, RESERVED_BYTE, RESERVED_BYTE);
            self.locks.block_node(
                &format!("{db}-shm"),
                primary,
                BLOCKER_TAG,
                WAL_WRITE_BYTE,
                WAL_WRITE_BYTE,
            );
        }
        self.halt_event(node, db, "acquired", &[]);
    }

    /// `unblock`: false when the hold passes straight to a queued request,
    /// so the primary's waiting writers never slip in between.
    fn halt_ended(&self, db: &str, h: &Holder, result: &str, reason: &str, unblock: bool) {
        if unblock {
            self.locks.unblock(db, BLOCKER_TAG);
            self.locks.unblock(&format!("{db}-shm"), BLOCKER_TAG);
        }
        let held_ms = h.since.elapsed().as_millis();
        self.halt_event(
            h.owner.node,
            db,
            result,
            &[("reason", &reason), ("held_ms", &held_ms)],
        );
    }

    fn halt_handoffs(&self, handoffs: Vec<Handoff>, result: &str, reason: &str) {
        for h in handoffs {
            self.halt_ended(&h.db, &h.released, result, reason, h.next.is_none());
            if let Some((owner, done)) = h.next {
                self.halt_granted(&h.db, owner.node);
                done(Ok(()));
            }
        }
    }

    /// F_UNLCK, or a flush/release of the handle (close, dup'd copy closed,
    /// process death): LiteFS releases on any flush of that handle.
    pub fn halt_release_handle(&self, node: usize, fh: u64, reason: &str) {
        let (handoffs, cancelled) = self.halts.release_handle(HaltOwner { node, fh });
        for done in cancelled {
            done(Err(libc::EINTR));
        }
        self.halt_handoffs(handoffs, "released", reason);
    }

    /// Periodic: expire old holds, answer EINTR to interrupted waiters.
    pub fn halt_tick(&self, interrupted: impl Fn(u32) -> bool) {
        let expired = self.halts.expire(Instant::now());
        self.halt_handoffs(expired, "expired", "ttl");
        for p in self.halts.cancel_interrupted(interrupted) {
            self.halt_event(
                p.owner.node,
                &p.db,
                "error",
                &[("errno", &errno_name(libc::EINTR))],
            );
            (p.done)(Err(libc::EINTR));
        }
    }

    /// After a lease move: holds are lost, queued requests decided afresh.
    pub(crate) fn halts_lease_moved(&self) {
        let (held, waiters) = self.halts.drop_all();
        for (db, h) in &held {
            self.halt_ended(db, h, "lost", "lease", true);
        }
        for p in waiters {
            self.halt_acquire(p.owner.node, p.owner.fh, &p.db, p.tid, p.done);
        }
    }
}
