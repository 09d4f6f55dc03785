//! The policy of a guarded file, in plain Rust: the write gate, IMMEDIATE
//! escalation (WAL: at the xShmBarrier; rollback mode: xLock(SHARED) →
//! RESERVED), the WAL rule, the backstop hook-up, the translation of
//! LiteFS's EACCES into SQLITE_READONLY, the hot-journal refusal, the
//! dead-mount error and the end-of-write bookkeeping.
//!
//! No raw pointers here. A [`Guard`] talks to the file below it through
//! [`BaseFile`] and to everything else (the role lookup, the connection's
//! busy handler and autocommit state, the evidence of its main database
//! file, SQLite's log, errno) through [`Outside`]. The trampolines pass the
//! real ones (`base.rs`, `outside.rs`); the tests below pass fakes. Both
//! traits are generic parameters, monomorphised: no dynamic dispatch or
//! allocation is added to an I/O call.

use super::backstop::{Backstop, Evidence};
use super::floor::{self, ReadFloor};
use super::locks::{WalLocks, WAL_CKPT_LOCK, WAL_NREADER, WAL_READ_LOCK0, WAL_WRITE_LOCK};
pub(super) use super::seams::{BaseFile, Outside};
use super::verdict::{RecentVerdict, AUTHORIZER_REUSE, CHECKPOINT_REUSE};
use super::Kind;
use crate::error::Error;
use crate::halt_lock;
use crate::role::Marker;
use crate::role::{self, Role};
use crate::settings::Settings;
use crate::wal_rule;
use libsqlite3_sys as ffi;
use std::ffi::c_int;
use std::path::{Path, PathBuf};

#[path = "forward.rs"]
mod forward;

/// What a `PRAGMA` reaching the main database file comes to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PragmaAnswer {
    /// Not one of the guard's: SQLite (and the base VFS) handle it.
    NotOurs,
    /// One of the guard's, handled: this text is its result.
    Handled(String),
}

/// A guard pragma: its value (None to read it) in, its result text out.
type PragmaFn = fn(&mut Guard, Option<&str>) -> Result<String, Error>;

/// The guard's own pragmas, one function each.
const PRAGMAS: &[(&str, PragmaFn)] = &[
    ("litefs_min_txid", Guard::pragma_min_txid),
    ("litefs_wait_ms", Guard::pragma_wait_ms),
    ("litefs_max_lag_ms", Guard::pragma_max_lag_ms),
    ("litefs_forward", Guard::forward_pragma),
];

/// One numeric read setting: `value` (None: just read it) parsed into
/// `slot`, or the error naming the pragma and what it takes; answers the
/// value in force.
fn read_setting(
    slot: &mut u64,
    value: Option<&str>,
    name: &'static str,
    parse: impl Fn(&str) -> Option<u64>,
    expected: &'static str,
) -> Result<String, Error> {
    if let Some(v) = value {
        *slot = parse(v).ok_or_else(|| Error::BadPragma {
            name,
            value: v.to_string(),
            expected,
        })?;
    }
    Ok(slot.to_string())
}

/// What an open file copies from the settings its VFS wrapper was made with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rules {
    marker: Marker,
    require_fuse: bool,
    /// Escalate plain BEGIN (LITEFS_GUARD_IMMEDIATE).
    immediate: bool,
    /// Wait for the write lock in the fair line (LITEFS_GUARD_FAIR_WAIT).
    fair_wait: bool,
    /// Refuse leaving WAL (LITEFS_GUARD_WAL).
    keep_wal: bool,
    /// Forward writes by default (LITEFS_GUARD_FORWARD).
    forward: bool,
    /// SQL may switch forwarding (LITEFS_GUARD_FORWARD_PRAGMA).
    forward_pragma: bool,
    /// LITEFS_GUARD_HALT_TIMEOUT_MS.
    halt_timeout_ms: u64,
}

impl Rules {
    pub(super) fn of(s: &Settings) -> Rules {
        Rules {
            marker: s.marker,
            require_fuse: s.require_fuse,
            immediate: s.immediate,
            fair_wait: s.fair_wait,
            keep_wal: s.keep_wal,
            forward: s.forward,
            forward_pragma: s.forward_pragma,
            halt_timeout_ms: s.halt_timeout_ms,
        }
    }
}

/// The guard's state for one open file, and its rules.
pub(super) struct Guard {
    kind: Kind,
    rules: Rules,
    db_path: PathBuf,
    /// What the role check looks at, prepared once for this file.
    target: role::Target,
    read_only: bool,
    /// SQLite mapped the wal-index: the database is in WAL mode.
    shm_mapped: bool,
    wal: WalLocks,
    /// Rollback mode: the guard took RESERVED for SQLite (escalation).
    guard_reserved: bool,
    /// Rollback mode: escalation declined for this SHARED lock.
    rollback_declined: bool,
    /// The last role verdict for this file (see `verdict`).
    verdict: RecentVerdict,
    /// The lock level SQLite holds on the base file (main database).
    lock: c_int,
    /// A `PRAGMA journal_mode` away from WAL passed the WAL rule (LITEFS_GUARD_WAL=0).
    leaving_wal: bool,
    /// Whether the next write must be vouched for (see `backstop`).
    backstop: Backstop,
    /// Read floor and staleness limit (main database; see `floor`).
    read: ReadFloor,
    /// The read check passed at xLock(SHARED) for the read transaction
    /// being started: its read mark (WAL mode) needs no second one.
    read_checked: bool,
    /// The read check refused at the barrier (before a forwarded
    /// transaction's halt lock): the read mark answers this.
    read_refused: Option<c_int>,
    /// Write forwarding (see `forward`).
    fwd: forward::Forwarding,
}

thread_local! {
    /// The database whose `-journal` this thread just closed inside a write
    /// transaction that had passed the gate: DELETE mode deletes it next,
    /// in the same call. Taken by that delete, or replaced by the next close.
    static CLOSED_JOURNAL: std::cell::RefCell<Option<PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Whether the last error looks like a FUSE daemon that went away (a live
/// lock conflict gives EAGAIN/EACCES, or no errno at all).
fn mount_may_be_dead(errno: i32) -> bool {
    [libc::ENOTCONN, libc::EIO, libc::ENODEV, libc::ESTALE].contains(&errno)
}

/// May the `-journal` or `-wal` of this guarded database be deleted now?
/// Deleting one is part of a write transaction (DELETE journal mode) or of
/// the last close after a checkpoint, both already vouched for on a node
/// that may write; on any other node the files stay as they are.
pub(super) fn vouch_delete<S: Outside>(
    db: PathBuf,
    mount: &Path,
    journal: bool,
    rules: Rules,
    out: &S,
) -> Result<(), c_int> {
    let just_closed = CLOSED_JOURNAL
        .with(|c| c.borrow_mut().take())
        .is_some_and(|p| journal && p == db);
    if just_closed {
        return Ok(());
    }
    Guard::new(Kind::Journal, db, mount, true, rules).gate(out)
}

/// May a new file be created at `path` in this mount now (role of the mount
/// alone: the file is not there yet)?
pub(super) fn vouch_create<S: Outside>(
    mount: &Path,
    path: &Path,
    rules: Rules,
    out: &S,
) -> Result<(), c_int> {
    let mut g = Guard::new(Kind::Journal, path.to_path_buf(), mount, true, rules);
    g.target = role::Target::new(mount, None);
    g.gate(out)
}

impl Guard {
    pub(super) fn new(kind: Kind, db_path: PathBuf, mount: &Path, read_only: bool, rules: Rules) -> Guard {
        Guard {
            kind,
            rules,
            target: role::Target::new(mount, Some(&db_path)),
            backstop: Backstop::default(),
            read: ReadFloor::new(mount, (kind == Kind::MainDb).then_some(db_path.as_path())),
            read_checked: false,
            read_refused: None,
            db_path,
            read_only,
            shm_mapped: false,
            wal: WalLocks::default(),
            guard_reserved: false,
            rollback_declined: false,
            verdict: RecentVerdict::default(),
            lock: ffi::SQLITE_LOCK_NONE,
            leaving_wal: false,
            fwd: forward::Forwarding {
                on: rules.forward,
                ..Default::default()
            },
        }
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    pub(super) fn db_path(&self) -> &Path {
        &self.db_path
    }

    fn role<S: Outside>(&self, out: &S) -> Role {
        out.role(&self.target, self.rules.marker, self.rules.require_fuse)
    }

    /// The execution-time gate: Ok when this node may write now.
    fn gate<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        // A deliberately broken build, only for proving the failover tests can fail.
        if cfg!(feature = "test-no-gate") {
            return Ok(());
        }
        let role = self.role(out);
        self.note(role.may_write());
        match role.refusal() {
            None => Ok(()),
            Some(why) => {
                let e = Error::WriteRefused {
                    db: self.db_path.clone(),
                    why,
                };
                out.log(e.code(), &e);
                Err(e.code())
            }
        }
    }

    /// Whether this file's connection is inside an explicit transaction and
    /// may be escalated at all.
    fn escalation_candidate<S: Outside>(&self, out: &S) -> bool {
        self.kind == Kind::MainDb && !self.read_only && self.rules.immediate && out.in_explicit_transaction()
    }

    /// Whether this file waits for the write lock in the fair line.
    #[inline(always)]
    pub(super) fn fair(&self) -> bool {
        self.rules.fair_wait && self.kind == Kind::MainDb && !self.read_only
    }

    /// The base file's WAL write lock is held for this file (by SQLite, or
    /// by the guard on its behalf).
    #[inline(always)]
    fn base_write_held(&self) -> bool {
        self.wal.guard_write || self.wal.sqlite_write
    }

    /// Tells the line when this file took or let go the base write lock
    /// (it held it `before`): guarded writers mark the line while they
    /// hold it and wake its front as they let go.
    #[inline(always)]
    fn fair_track<S: Outside>(&self, out: &S, before: bool) {
        let now = self.base_write_held();
        if now == before || !self.fair() {
            return;
        }
        if now {
            out.fair_join(&self.db_path);
            out.fair_held();
        } else {
            out.fair_released();
        }
    }

    /// When the mount under an open file is gone, the unix VFS reports every
    /// failing shm lock as "busy" and SQLite retries for about ten seconds
    /// before a "locking protocol" error. Say what it is, at once.
    fn dead_mount_error<S: Outside>(&self, out: &S) -> Option<c_int> {
        match self.role(out) {
            Role::NotRunning(why) => {
                let e = Error::MountGone {
                    db: self.db_path.clone(),
                    why,
                };
                out.log(e.code(), &e);
                Some(e.code())
            }
            _ => None,
        }
    }

    /// What the backstop asks before a write it has no evidence for.
    #[inline(always)]
    fn vouch<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        let mut backstop = std::mem::take(&mut self.backstop);
        let r = backstop.check(&mut out.evidence(), &mut || self.gate(out));
        self.backstop = backstop;
        r
    }

    /// The base write lock is held after a passed gate: evidence for the
    /// transaction's writes.
    #[inline(always)]
    fn granted<S: Outside>(&self, out: &S) {
        out.evidence().grant();
    }

    /// The write transaction on this database ended (or may have).
    #[inline(always)]
    fn end_of_write<S: Outside>(&mut self, out: &S) {
        out.evidence().revoke();
        self.backstop.arm();
    }

    /// Records a role verdict (the gate's, or the authorizer's own).
    pub(super) fn note(&mut self, may_write: bool) {
        self.verdict.record(may_write);
    }

    /// Whether the authorizer may reuse this file's last verdict.
    pub(super) fn recently_allowed(&self) -> bool {
        self.verdict.allowed_within(AUTHORIZER_REUSE)
    }

    /// Before the base file is opened with `flags`: opening a journal to
    /// write it starts a write transaction (or plays back a hot journal):
    /// never on a node that may not write. Asked before the file is created,
    /// so nothing is left behind.
    pub(super) fn before_open<S: Outside>(&mut self, out: &S, flags: c_int) -> Result<(), c_int> {
        if self.kind == Kind::Journal && flags & ffi::SQLITE_OPEN_READWRITE != 0 {
            if let Err(rc) = self.vouch(out) {
                if flags & ffi::SQLITE_OPEN_CREATE == 0 {
                    let db = self.db_path.clone();
                    out.log(rc, &Error::HotJournal { db });
                }
                return Err(rc);
            }
        }
        Ok(())
    }

    /// The file is about to close: let go of the escalated write lock (an
    /// in-process leak otherwise) and remember a vouched journal for the
    /// delete that follows in DELETE mode.
    pub(super) fn closing<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S) {
        let held = self.base_write_held();
        self.wal.release(&mut |o, n, fl| base.shm_lock(o, n, fl));
        self.fair_track(out, held);
        self.forward_done(out);
        if self.kind == Kind::Journal {
            let vouched = out.evidence().holds().then(|| self.db_path.clone());
            CLOSED_JOURNAL.with(|c| *c.borrow_mut() = vouched);
        }
    }

    /// LiteFS refuses writes on a replica with EACCES at the FUSE layer, which
    /// SQLite reports as "disk I/O error" in WAL mode. Say what it really is.
    #[inline(always)]
    fn translate<S: Outside>(&mut self, out: &S, rc: c_int) -> c_int {
        if rc == ffi::SQLITE_OK || rc & 0xff != ffi::SQLITE_IOERR {
            return rc;
        }
        let errno = out.errno();
        if ![libc::EACCES, libc::EROFS, libc::EPERM].contains(&errno) {
            return rc;
        }
        match self.gate(out) {
            Ok(()) => rc,
            Err(readonly) => readonly,
        }
    }

    /// The backstop's question before `buf` is written at `off`.
    #[inline(always)]
    fn before_write<S: Outside>(&mut self, out: &S, buf: &[u8], off: i64) -> Result<(), c_int> {
        let n = buf.len();
        let bytes = |len: usize| &buf[..len.min(n)];
        let mut backstop = std::mem::take(&mut self.backstop);
        let mut ev = out.evidence();
        let r = match self.kind {
            Kind::MainDb => backstop.check(&mut ev, &mut || self.gate(out)),
            Kind::Journal => {
                // SQLite ends a transaction in PERSIST and EXCLUSIVE mode by
                // zeroing the header's first 28 bytes (zeroJournalHdr). A new
                // header is longer (a sector) and never all zero: its magic may
                // be zero until synced, but it holds the sector and page sizes.
                let cleared = off == 0 && (1..=28).contains(&n) && bytes(28).iter().all(|b| *b == 0);
                backstop.journal_write(&mut ev, off, n as i64, cleared, &mut || self.gate(out))
            }
            Kind::Wal => {
                // A frame header (24 bytes after the 32-byte WAL header) whose
                // "database size" field is set marks a commit.
                let commit = n == 24 && off >= 32 && bytes(8)[4..8] != [0, 0, 0, 0];
                // A forwarded transaction's lock must still be held as it commits.
                if commit {
                    if let Err(rc) = self.halt_check(out) {
                        self.backstop = backstop;
                        return Err(rc);
                    }
                }
                backstop.wal_write(&mut ev, off, n as i64, commit, &mut || self.gate(out))
            }
        };
        self.backstop = backstop;
        r
    }

    #[inline(always)]
    pub(super) fn write<B: BaseFile, S: Outside>(
        &mut self,
        base: &mut B,
        out: &S,
        buf: &[u8],
        off: i64,
    ) -> c_int {
        if let Err(rc) = self.before_write(out, buf, off) {
            return rc;
        }
        let rc = base.write(buf, off);
        self.translate(out, rc)
    }

    #[inline(always)]
    pub(super) fn truncate<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S, size: i64) -> c_int {
        if self.kind == Kind::Journal && size == 0 {
            // TRUNCATE mode ends a write transaction this way; an empty
            // journal is a cold one.
            self.end_of_write(out);
        } else if let Err(rc) = self.vouch(out) {
            return rc;
        }
        let rc = base.truncate(size);
        self.translate(out, rc)
    }

    #[inline(always)]
    pub(super) fn sync<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S, flags: c_int) -> c_int {
        let rc = base.sync(flags);
        self.translate(out, rc)
    }

    /// Bytes 18 and 19 of the header are 2 in a WAL database.
    #[inline(always)]
    pub(super) fn in_wal_mode<B: BaseFile>(&self, base: &mut B) -> bool {
        // A mapped wal-index answers without a read (on LiteFS, a FUSE round trip).
        if self.shm_mapped {
            return true;
        }
        let mut hdr = [0u8; 2];
        let rc = base.read(&mut hdr, 18);
        rc == ffi::SQLITE_OK && hdr == [2, 2]
    }

    #[inline(always)]
    pub(super) fn lock<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S, level: c_int) -> c_int {
        if self.kind != Kind::MainDb {
            return base.lock(level);
        }
        let rc = match level {
            ffi::SQLITE_LOCK_RESERVED => {
                // The rollback-journal write gate (the WAL one is in xShmLock).
                if !self.guard_reserved {
                    if let Err(rc) = self.forward_at_write_lock(out, false) {
                        return rc;
                    }
                    if let Err(rc) = self.gate(out) {
                        return rc;
                    }
                }
                let rc = base.lock(level);
                if rc == ffi::SQLITE_OK {
                    self.granted(out);
                }
                rc
            }
            ffi::SQLITE_LOCK_SHARED => {
                // A read transaction starts (rollback mode; in WAL mode only
                // the connection's first, see `shm_lock`): the read floor.
                if self.lock == ffi::SQLITE_LOCK_NONE {
                    if let Err(rc) = self.before_read(out) {
                        return rc;
                    }
                    self.read_checked = true;
                    if self.fwd.on && !self.shm_mapped && !self.in_wal_mode(base) {
                        // Rollback mode: the read lock is next.
                        self.forward_before_read(out);
                    }
                }
                let rc = base.lock(level);
                if rc != ffi::SQLITE_OK
                    || self.rollback_declined
                    || self.guard_reserved
                    || !self.escalation_candidate(out)
                {
                    rc
                } else {
                    self.lock = ffi::SQLITE_LOCK_SHARED;
                    self.escalate_rollback(base, out)
                }
            }
            ffi::SQLITE_LOCK_EXCLUSIVE => {
                if self.in_wal_mode(base) {
                    // In WAL mode SQLite locks the database file exclusively to
                    // checkpoint and delete the WAL as the last connection
                    // closes (or to leave WAL). On a node that may not write,
                    // "busy" makes it skip that quietly and leave the files
                    // alone. (In locking_mode=EXCLUSIVE it is taken at the first
                    // read, with no wal-index mapped: reads go on; the
                    // backstop watches its writes.)
                    if self.shm_mapped
                        && self.wal.read_slot.is_none()
                        && !self.leaving_wal
                        && self.gate(out).is_err()
                    {
                        return ffi::SQLITE_BUSY;
                    }
                } else if self.lock < ffi::SQLITE_LOCK_RESERVED && !self.guard_reserved {
                    // Straight from SHARED to EXCLUSIVE: SQLite is about to
                    // play back a hot journal into the database.
                    if self.gate(out).is_err() {
                        let e = Error::HotJournal {
                            db: self.db_path.clone(),
                        };
                        out.log(e.code(), &e);
                        return e.code();
                    }
                    let rc = base.lock(level);
                    if rc == ffi::SQLITE_OK {
                        // Playing back the hot journal writes the database.
                        self.granted(out);
                    }
                    return rc;
                }
                base.lock(level)
            }
            _ => base.lock(level),
        };
        if rc == ffi::SQLITE_OK {
            self.lock = self.lock.max(level);
        }
        rc
    }

    /// Rollback-journal escalation: holding SHARED, also take RESERVED so a
    /// plain BEGIN behaves like BEGIN IMMEDIATE. While RESERVED is busy, drop to
    /// NONE between busy-handler calls so the current writer can commit.
    fn escalate_rollback<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S) -> c_int {
        // Never on a WAL database: RESERVED would then be held for good.
        if self.in_wal_mode(base) {
            return ffi::SQLITE_OK;
        }
        if !self.role(out).may_write() {
            self.rollback_declined = true;
            return ffi::SQLITE_OK;
        }
        let mut waited = false;
        loop {
            match base.lock(ffi::SQLITE_LOCK_RESERVED) {
                ffi::SQLITE_OK => {
                    // Nobody else can be writing now, so a journal is hot: let
                    // SQLite roll it back as a plain deferred transaction. And
                    // after queueing for the lock, the role may have changed.
                    if out.journal_exists(&self.db_path) || (waited && self.gate(out).is_err()) {
                        base.unlock(ffi::SQLITE_LOCK_SHARED);
                        self.rollback_declined = true;
                    } else {
                        self.guard_reserved = true;
                        self.lock = ffi::SQLITE_LOCK_RESERVED;
                        self.note(true);
                        self.granted(out);
                    }
                    return ffi::SQLITE_OK;
                }
                ffi::SQLITE_BUSY => {
                    waited = true;
                    base.unlock(ffi::SQLITE_LOCK_NONE);
                    let retry = out.busy();
                    let rc = base.lock(ffi::SQLITE_LOCK_SHARED);
                    if rc != ffi::SQLITE_OK {
                        self.lock = ffi::SQLITE_LOCK_NONE;
                        return rc;
                    }
                    if !retry {
                        // The application's timeout ran out: stay deferred, as stock would.
                        self.rollback_declined = true;
                        return ffi::SQLITE_OK;
                    }
                }
                _ => {
                    self.rollback_declined = true;
                    return ffi::SQLITE_OK;
                }
            }
        }
    }

    #[inline(always)]
    pub(super) fn unlock<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S, level: c_int) -> c_int {
        if self.kind == Kind::MainDb && level <= ffi::SQLITE_LOCK_SHARED {
            // A transaction ended: whatever it was allowed ends with it.
            self.end_of_write(out);
            self.guard_reserved = false;
            self.leaving_wal = false;
            if level == ffi::SQLITE_LOCK_NONE {
                self.rollback_declined = false;
                self.read_checked = false;
                // Safety net: a transaction that failed before taking a read
                // slot must not leave the escalated write lock behind.
                let held = self.base_write_held();
                self.wal.release_if_idle(&mut |o, n, fl| base.shm_lock(o, n, fl));
                self.fair_track(out, held);
            }
        }
        let rc = base.unlock(level);
        self.lock = self.lock.min(level);
        if self.kind == Kind::MainDb && level == ffi::SQLITE_LOCK_NONE {
            // No read lock left — only now: LiteFS's release of the halt
            // lock waits for every lock on the database, this SHARED one too.
            self.forward_done(out);
        }
        rc
    }

    /// `PRAGMA name=value` reached the main database (SQLITE_FCNTL_PRAGMA):
    /// the guard's own pragmas (see [`PRAGMAS`]), then the WAL rule. Err is
    /// the refusal or a bad value, for SQLite to show.
    pub(super) fn pragma<S: Outside>(
        &mut self,
        out: &S,
        name: Option<&str>,
        value: Option<&str>,
    ) -> Result<PragmaAnswer, Error> {
        if self.kind != Kind::MainDb {
            return Ok(PragmaAnswer::NotOurs);
        }
        if let Some((ours, f)) = name.and_then(|n| PRAGMAS.iter().find(|(p, _)| p.eq_ignore_ascii_case(n))) {
            if out.shared_cache() {
                return Err(Error::PragmaSharedCache(ours));
            }
            return f(self, value).map(PragmaAnswer::Handled);
        }
        if let Some(e) = wal_rule::check_pragma(self.rules.keep_wal, name, value) {
            out.log(e.code(), &e);
            return Err(e);
        }
        if name.is_some_and(|n| n.eq_ignore_ascii_case("journal_mode"))
            && value.is_some_and(|v| !v.trim().eq_ignore_ascii_case("wal"))
        {
            self.leaving_wal = true;
        }
        Ok(PragmaAnswer::NotOurs)
    }

    /// `PRAGMA litefs_min_txid [= TXID or TXID/CHECKSUM]`: the read floor.
    fn pragma_min_txid(&mut self, value: Option<&str>) -> Result<String, Error> {
        read_setting(
            &mut self.read.min_txid,
            value,
            "litefs_min_txid",
            floor::parse_txid,
            "pass a TXID (an integer from 0 up; 0 turns the floor off) or a position \
             TXID/CHECKSUM as litefs_position() returns it",
        )
    }

    /// `PRAGMA litefs_wait_ms [= ms]`: how long a read waits for the floor.
    fn pragma_wait_ms(&mut self, value: Option<&str>) -> Result<String, Error> {
        read_setting(
            &mut self.read.wait_ms,
            value,
            "litefs_wait_ms",
            |v| floor::parse_ms(v, floor::MAX_WAIT_MS),
            "pass an integer from 0 to 60000 (milliseconds)",
        )
    }

    /// `PRAGMA litefs_max_lag_ms [= ms]`: bounded staleness.
    fn pragma_max_lag_ms(&mut self, value: Option<&str>) -> Result<String, Error> {
        read_setting(
            &mut self.read.max_lag_ms,
            value,
            "litefs_max_lag_ms",
            |v| floor::parse_ms(v, floor::MAX_LAG_MS),
            "pass an integer from 0 (off) to 2147483646 (milliseconds)",
        )
    }

    /// A second connection shares this file (shared cache): per-connection
    /// read settings cannot hold; back to the defaults.
    pub(super) fn forget_read_settings(&mut self) {
        self.read.reset();
    }

    /// The last read this file refused (floor or staleness), as logged.
    pub(super) fn last_refusal(&self) -> Option<&str> {
        self.read.last_refusal.as_deref()
    }

    /// Before a read transaction takes its lock: the read floor and the
    /// staleness limit. Free when neither is set or the floor was reached.
    #[inline(always)]
    fn before_read<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        if self.read.quiet() {
            return Ok(());
        }
        self.before_read_checked(out)
    }

    #[cold]
    fn before_read_checked<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        let (target, rules) = (&self.target, self.rules);
        let role = || out.role(target, rules.marker, rules.require_fuse);
        match self.read.check(out, &self.db_path, &role) {
            Ok(()) => Ok(()),
            Err(e) => {
                out.log(e.code(), &e);
                self.read.last_refusal = Some(e.message());
                Err(e.code())
            }
        }
    }

    /// SQLITE_FCNTL_COMMIT_PHASETWO: sent at every commit, in every locking mode.
    pub(super) fn committed<S: Outside>(&mut self, out: &S) {
        if self.kind == Kind::MainDb {
            self.end_of_write(out);
        }
    }

    /// A file control that grows or writes the file (size hint, atomic write).
    pub(super) fn growing<S: Outside>(&mut self, out: &S) -> Result<(), c_int> {
        self.vouch(out)
    }

    /// The base xShmMap answered `rc`.
    pub(super) fn shm_mapped(&mut self, rc: c_int) {
        if rc == ffi::SQLITE_OK {
            self.shm_mapped = true;
        }
    }

    #[inline(always)]
    pub(super) fn shm_lock<B: BaseFile, S: Outside>(
        &mut self,
        base: &mut B,
        out: &S,
        offset: c_int,
        n: c_int,
        flags: c_int,
    ) -> c_int {
        let unlock = flags & ffi::SQLITE_SHM_UNLOCK != 0;
        let writing = self.wal.read_slot.is_some();
        // A WAL read transaction takes a read mark, shared, holding none:
        // the read floor, before it. (SQLite holds the database file's SHARED
        // lock for as long as it is in WAL mode, so xLock does not see each
        // read transaction; the read mark, which LiteFS needs to replicate, it does.)
        if !unlock
            && !writing
            && n == 1
            && flags & ffi::SQLITE_SHM_SHARED != 0
            && (WAL_READ_LOCK0..WAL_READ_LOCK0 + WAL_NREADER).contains(&offset)
            // Checked at this transaction's xLock(SHARED) or barrier already? (Taken: once.)
            && !std::mem::take(&mut self.read_checked)
        {
            if let Err(rc) = self
                .read_refused
                .take()
                .map_or_else(|| self.before_read(out), Err)
            {
                self.drop_unused_write_lock(base, out);
                return rc;
            }
        }
        let read_mark = !unlock
            && !writing
            && n == 1
            && flags & ffi::SQLITE_SHM_SHARED != 0
            && (WAL_READ_LOCK0..WAL_READ_LOCK0 + WAL_NREADER).contains(&offset);
        if !unlock && writing && offset == WAL_WRITE_LOCK && n == 1 {
            // A write transaction: forwarding takes (or checks) the halt lock.
            // Outside an explicit transaction SQLite retries this request
            // after dropping its read lock when answered "busy".
            let explicit = out.in_explicit_transaction();
            if let Err(rc) = self.forward_at_write_lock(out, !explicit) {
                return rc;
            }
        }
        let held = self.base_write_held();
        let fair = self.fair();
        // The lock state is moved out so the gate may borrow the rest of `self`.
        let mut wal = std::mem::take(&mut self.wal);
        let rc = wal.shm_lock(
            &mut |o, n, fl| base.shm_lock(o, n, fl),
            offset,
            n,
            flags,
            &mut || {
                // A checkpoint right after this connection's own commit (the
                // auto-checkpoint) reuses the commit's fresh verdict.
                let just_checked = offset == WAL_CKPT_LOCK && self.verdict.allowed_within(CHECKPOINT_REUSE);
                if just_checked {
                    return Ok(());
                }
                self.gate(out)?;
                // A write transaction's write lock: after the older waiters.
                // Not inside an explicit transaction: SQLite does not wait
                // for a lock its open read transaction asks for (a deferred
                // upgrade), so standing aside would only make it fail.
                if offset == WAL_WRITE_LOCK
                    && fair
                    && !out.in_explicit_transaction()
                    && out.fair_stand_aside()
                {
                    return Err(ffi::SQLITE_BUSY);
                }
                Ok(())
            },
        );
        // The gate was asked (a write transaction's write lock, or a
        // checkpoint) and the base lock is held: evidence.
        let gated = !unlock
            && rc == ffi::SQLITE_OK
            && n == 1
            && ((offset == WAL_WRITE_LOCK && writing)
                || (offset == WAL_CKPT_LOCK && flags & ffi::SQLITE_SHM_EXCLUSIVE != 0));
        let writer_done =
            unlock && n == 1 && (offset == WAL_WRITE_LOCK || offset == WAL_CKPT_LOCK) && !wal.guard_write;
        self.wal = wal;
        // Only the shared read mark's own release counts (not the exclusive
        // read-mark update or recovery inside the begin of a read).
        let read_mark_released = unlock && writing && flags & ffi::SQLITE_SHM_SHARED != 0;
        if read_mark_released
            && self.wal.read_slot.is_none()
            && !self.wal.sqlite_write
            && !self.wal.guard_write
        {
            // This connection's read lock is gone: so is a forwarded
            // transaction (LiteFS's release waits for every WAL lock).
            self.forward_done(out);
        }
        if writer_done {
            // A WAL write transaction or checkpoint ended.
            self.end_of_write(out);
        } else if gated {
            self.granted(out);
        }
        self.fair_track(out, held);
        if fair && rc == ffi::SQLITE_BUSY && !unlock && writing && offset == WAL_WRITE_LOCK && n == 1 {
            // SQLite drops its read lock and calls the busy handler: its
            // sleep is spent in line.
            out.fair_join(&self.db_path);
            out.fair_busy();
        }
        if read_mark && rc != ffi::SQLITE_OK {
            // No read transaction after all (SQLite retries a busy one from
            // the barrier, which takes the lock again if it should).
            self.drop_unused_write_lock(base, out);
        }
        if rc == ffi::SQLITE_BUSY && mount_may_be_dead(out.errno()) {
            return self.dead_mount_error(out).unwrap_or(rc);
        }
        rc
    }

    /// A read transaction that does not start must not leave behind the
    /// write lock the guard took for it (escalation, or the fair wait's
    /// turn): SQLite holds no read lock to release then, and in WAL mode
    /// there is no unlock to NONE, so it would stay held until the
    /// connection's next transaction.
    fn drop_unused_write_lock<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S) {
        let held = self.base_write_held();
        self.wal.release_if_idle(&mut |o, n, fl| base.shm_lock(o, n, fl));
        self.fair_track(out, held);
    }

    /// The first shm call of every WAL read transaction, made while SQLite reads
    /// the wal-index header: the place to take the write lock for a plain BEGIN
    /// (see the README's "IMMEDIATE for plain BEGIN").
    #[inline(always)]
    pub(super) fn shm_barrier<B: BaseFile, S: Outside>(&mut self, base: &mut B, out: &S) {
        if self.wal.read_slot.is_none()
            && !self.wal.guard_write
            && !self.wal.sqlite_write
            && self.forward_wanted(out)
        {
            // Before the read lock: the read floor first (never wait for it
            // holding the halt lock; a refused read must not take it), then
            // a forwarded transaction's halt lock.
            match self.before_read(out) {
                Ok(()) => {
                    self.read_checked = true;
                    self.forward_before_read(out);
                }
                Err(rc) => {
                    // Answered at the read mark, without a second wait.
                    self.read_refused = Some(rc);
                    self.read_checked = false;
                }
            }
        }
        let held = self.base_write_held();
        if self.fair() && !held && self.wal.read_slot.is_none() && out.fair_take_turn() {
            // This connection's sleep ended at the front of the line with
            // the lock free: take it now, before the read snapshot (no
            // BUSY_SNAPSHOT), for the write SQLite is retrying.
            if self.role(out).may_write()
                && base.shm_lock(
                    WAL_WRITE_LOCK,
                    1,
                    ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_EXCLUSIVE,
                ) == ffi::SQLITE_OK
            {
                self.note(true);
                self.wal.guard_write = true;
                self.granted(out);
            } else {
                out.fair_missed();
            }
        }
        if self.wal.may_escalate() && self.escalation_candidate(out) {
            if self.role(out).may_write() {
                self.note(true);
                let fair = self.fair();
                if fair {
                    out.fair_join(&self.db_path);
                }
                // The lock state is moved out so the closures may use `self`.
                let mut wal = std::mem::take(&mut self.wal);
                let turn_used = std::cell::Cell::new(false);
                let got = wal.escalate(
                    &mut |o, n, fl| base.shm_lock(o, n, fl),
                    &mut || {
                        // A turn is taken, not given away (and used once).
                        if fair && out.fair_take_turn() {
                            turn_used.set(true);
                        }
                        fair && !turn_used.get() && out.fair_stand_aside()
                    },
                    &mut || {
                        if turn_used.replace(false) {
                            out.fair_missed();
                        }
                        if fair {
                            out.fair_busy();
                        }
                        out.busy()
                    },
                    &mut || self.gate(out).is_ok(),
                );
                self.wal = wal;
                if got {
                    self.granted(out);
                }
            } else {
                self.note(false);
                self.wal.declined = true;
            }
        }
        self.fair_track(out, held);
        base.shm_barrier();
    }

    pub(super) fn shm_unmap<B: BaseFile, S: Outside>(
        &mut self,
        base: &mut B,
        out: &S,
        delete: c_int,
    ) -> c_int {
        let held = self.base_write_held();
        self.wal.release(&mut |o, n, fl| base.shm_lock(o, n, fl));
        self.fair_track(out, held);
        self.wal.read_slot = None;
        self.shm_mapped = false;
        let rc = base.shm_unmap(delete);
        self.forward_done(out);
        rc
    }
}

/// The policy against a fake base file and a fake outside: no SQLite, no mount.
#[cfg(all(test, not(feature = "test-no-gate")))]
mod tests {
    use super::*;
    use crate::litefs_files::Unreadable;
    use crate::position::{Lag, Position};
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    const LOCK_EXCL: c_int = ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_EXCLUSIVE;
    const UNLOCK_EXCL: c_int = ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE;
    const LOCK_SH: c_int = ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_SHARED;
    const SHARED: c_int = ffi::SQLITE_LOCK_SHARED;
    const RESERVED: c_int = ffi::SQLITE_LOCK_RESERVED;
    const EXCLUSIVE: c_int = ffi::SQLITE_LOCK_EXCLUSIVE;

    /// A base file that records what it was asked.
    #[derive(Default)]
    struct FakeBase {
        /// The lock level held on the file.
        level: c_int,
        /// Every xLock level asked for (granted or not).
        locks: Vec<c_int>,
        /// So many RESERVED requests are busy before one is granted.
        reserved_busy: u32,
        /// Bytes 18 and 19 say WAL.
        wal_header: bool,
        shm: Vec<(c_int, c_int, c_int)>,
        /// So many exclusive WAL write-lock requests are busy first.
        write_lock_busy: u32,
        /// Every shm lock is busy (a dead mount looks like this).
        shm_busy: bool,
        barriers: u32,
        writes: Vec<(i64, usize)>,
        /// What xWrite and xSync answer.
        io_rc: c_int,
    }

    impl BaseFile for FakeBase {
        fn lock(&mut self, level: c_int) -> c_int {
            self.locks.push(level);
            if level == RESERVED && self.reserved_busy > 0 {
                self.reserved_busy -= 1;
                return ffi::SQLITE_BUSY;
            }
            self.level = self.level.max(level);
            ffi::SQLITE_OK
        }
        fn unlock(&mut self, level: c_int) -> c_int {
            self.level = self.level.min(level);
            ffi::SQLITE_OK
        }
        fn read(&mut self, buf: &mut [u8], off: i64) -> c_int {
            assert_eq!((off, buf.len()), (18, 2));
            buf.fill(if self.wal_header { 2 } else { 1 });
            ffi::SQLITE_OK
        }
        fn write(&mut self, buf: &[u8], off: i64) -> c_int {
            self.writes.push((off, buf.len()));
            self.io_rc
        }
        fn truncate(&mut self, _size: i64) -> c_int {
            ffi::SQLITE_OK
        }
        fn sync(&mut self, _flags: c_int) -> c_int {
            self.io_rc
        }
        fn shm_lock(&mut self, offset: c_int, n: c_int, flags: c_int) -> c_int {
            self.shm.push((offset, n, flags));
            if self.shm_busy && flags & ffi::SQLITE_SHM_LOCK != 0 {
                return ffi::SQLITE_BUSY;
            }
            if offset == WAL_WRITE_LOCK && flags == LOCK_EXCL && self.write_lock_busy > 0 {
                self.write_lock_busy -= 1;
                return ffi::SQLITE_BUSY;
            }
            ffi::SQLITE_OK
        }
        fn shm_barrier(&mut self) {
            self.barriers += 1;
        }
        fn shm_unmap(&mut self, _delete: c_int) -> c_int {
            ffi::SQLITE_OK
        }
    }

    impl FakeBase {
        fn write_lock_requests(&self) -> usize {
            self.shm
                .iter()
                .filter(|&&(o, _, f)| o == WAL_WRITE_LOCK && f == LOCK_EXCL)
                .count()
        }
    }

    /// The outside: a role, a connection's state, a busy handler, evidence.
    struct Fake {
        role: RefCell<Role>,
        explicit: bool,
        /// The busy handler says "retry" this many times, then gives up.
        busy_retries: u32,
        busy_calls: Cell<u32>,
        evidence: Rc<Cell<bool>>,
        logs: RefCell<Vec<(c_int, String)>>,
        journal: bool,
        errno: i32,
        lookups: Cell<u32>,
        /// `NAME-pos`'s TXID (None: unreadable), and a later one from a time on.
        pos: Cell<Option<u64>>,
        pos_later: Cell<Option<(Duration, u64)>>,
        /// `.lag` (None: unreadable).
        lag: Cell<Option<Lag>>,
        pos_reads: Cell<u32>,
        lag_reads: Cell<u32>,
        /// The fake clock: time since `t0`, moved only by `sleep`.
        t0: Instant,
        clock: Cell<Duration>,
        interrupt: Cell<bool>,
        shared: bool,
        halt: RefCell<FakeHalt>,
        fair: RefCell<FakeFair>,
    }

    /// A fake seat in the fair line: what it answers, what it was told.
    #[derive(Default)]
    struct FakeFair {
        /// Older waiters stand in line (for so many more asks).
        aside: u32,
        /// The seat holds the turn.
        turn: bool,
        /// A sleep of the busy handler gives the turn.
        turn_on_sleep: bool,
        armed: bool,
        told: Vec<&'static str>,
    }

    /// A fake halt lock (LiteFS's, node-wide: the role sees it held).
    #[derive(Default)]
    struct FakeHalt {
        held: bool,
        takes: u32,
        gives: u32,
        /// What the next take answers instead of granting it.
        refuse: Option<halt_lock::AcquireError>,
        /// Why it is lost, once lost.
        lost: Option<String>,
        txid: u64,
    }

    struct FakeEv(Rc<Cell<bool>>);

    impl Evidence for FakeEv {
        fn holds(&self) -> bool {
            self.0.get()
        }
        fn grant(&mut self) {
            self.0.set(true)
        }
        fn revoke(&mut self) {
            self.0.set(false)
        }
    }

    impl Outside for Fake {
        type Evidence = FakeEv;
        fn role(&self, _: &role::Target, _: Marker, _: bool) -> Role {
            self.lookups.set(self.lookups.get() + 1);
            match self.role.borrow().clone() {
                Role::Replica { primary, .. } => Role::Replica {
                    primary,
                    halt_lock: self.halt.borrow().held && self.halt.borrow().lost.is_none(),
                },
                r => r,
            }
        }
        fn in_explicit_transaction(&self) -> bool {
            self.explicit
        }
        fn busy(&self) -> bool {
            self.busy_calls.set(self.busy_calls.get() + 1);
            let mut f = self.fair.borrow_mut();
            if std::mem::take(&mut f.armed) && f.turn_on_sleep {
                // The sleep was spent in line and ended at the front.
                f.turn = true;
                f.aside = 0;
            }
            self.busy_calls.get() <= self.busy_retries
        }
        fn evidence(&self) -> FakeEv {
            FakeEv(self.evidence.clone())
        }
        fn log(&self, rc: c_int, e: &Error) {
            self.logs.borrow_mut().push((rc, e.to_string()));
        }
        fn journal_exists(&self, _: &Path) -> bool {
            self.journal
        }
        fn errno(&self) -> i32 {
            self.errno
        }
        fn position(&self, path: &Path) -> Result<Position, Unreadable> {
            assert_eq!(path, Path::new("/litefs/app.db-pos"));
            self.pos_reads.set(self.pos_reads.get() + 1);
            if let Some((at, txid)) = self.pos_later.get() {
                if self.clock.get() >= at {
                    self.pos.set(Some(txid));
                }
            }
            match self.pos.get() {
                Some(txid) => Ok(Position { txid, checksum: 1 }),
                None => Err(Unreadable {
                    path: path.to_path_buf(),
                    why: "it does not exist".into(),
                }),
            }
        }
        fn lag(&self, path: &Path) -> Result<Lag, Unreadable> {
            assert_eq!(path, Path::new("/litefs/.lag"));
            self.lag_reads.set(self.lag_reads.get() + 1);
            self.lag.get().ok_or_else(|| Unreadable {
                path: path.to_path_buf(),
                why: "it does not exist".into(),
            })
        }
        fn now(&self) -> Instant {
            self.t0 + self.clock.get()
        }
        fn sleep(&self, d: Duration) {
            self.clock.set(self.clock.get() + d);
        }
        fn interrupted(&self) -> bool {
            self.interrupt.get()
        }
        fn shared_cache(&self) -> bool {
            self.shared
        }
        fn halt_take(&self, _: &Path, _: std::time::Duration) -> Result<(), halt_lock::AcquireError> {
            let mut h = self.halt.borrow_mut();
            assert!(!h.held, "taken twice");
            h.takes += 1;
            if let Some(e) = h.refuse.take() {
                return Err(e);
            }
            h.held = true;
            Ok(())
        }
        fn halt_lost(&self) -> Option<String> {
            let h = self.halt.borrow();
            h.held.then(|| h.lost.clone()).flatten()
        }
        fn halt_give_back(&self) {
            let mut h = self.halt.borrow_mut();
            if h.held {
                h.held = false;
                h.lost = None;
                h.gives += 1;
            }
        }
        fn txid(&self, _: &Path) -> Option<u64> {
            Some(self.halt.borrow().txid)
        }
        fn fair_join(&self, db: &Path) {
            assert_eq!(db, Path::new("/litefs/app.db"));
            self.fair.borrow_mut().told.push("join");
        }
        fn fair_stand_aside(&self) -> bool {
            let mut f = self.fair.borrow_mut();
            let aside = f.aside > 0 && !f.turn;
            if aside {
                f.aside -= 1;
                f.told.push("aside");
            }
            aside
        }
        fn fair_busy(&self) {
            let mut f = self.fair.borrow_mut();
            f.armed = true;
            f.told.push("busy");
        }
        fn fair_take_turn(&self) -> bool {
            std::mem::take(&mut self.fair.borrow_mut().turn)
        }
        fn fair_missed(&self) {
            self.fair.borrow_mut().told.push("missed");
        }
        fn fair_held(&self) {
            self.fair.borrow_mut().told.push("held");
        }
        fn fair_released(&self) {
            self.fair.borrow_mut().told.push("released");
        }
    }

    fn primary() -> Fake {
        Fake {
            role: RefCell::new(Role::Primary),
            explicit: false,
            busy_retries: 0,
            busy_calls: Cell::new(0),
            evidence: Rc::default(),
            logs: RefCell::default(),
            journal: false,
            errno: 0,
            lookups: Cell::new(0),
            pos: Cell::new(Some(0)),
            pos_later: Cell::new(None),
            lag: Cell::new(Some(Lag::Millis(0))),
            pos_reads: Cell::new(0),
            lag_reads: Cell::new(0),
            t0: Instant::now(),
            clock: Cell::new(Duration::ZERO),
            interrupt: Cell::new(false),
            shared: false,
            halt: RefCell::default(),
            fair: RefCell::default(),
        }
    }

    fn replica() -> Fake {
        let out = primary();
        *out.role.borrow_mut() = Role::Replica {
            primary: Some("node-a".into()),
            halt_lock: false,
        };
        out
    }

    fn rules(keep_wal: bool) -> Rules {
        Rules {
            marker: Marker::OnReplicas,
            require_fuse: false,
            immediate: true,
            fair_wait: true,
            keep_wal,
            forward: false,
            forward_pragma: true,
            halt_timeout_ms: 5000,
        }
    }

    fn guard(kind: Kind) -> Guard {
        Guard::new(
            kind,
            "/litefs/app.db".into(),
            Path::new("/litefs"),
            false,
            rules(true),
        )
    }

    /// A main database in WAL mode inside a read transaction (read slot 3).
    fn wal_reader(base: &mut FakeBase, out: &Fake) -> Guard {
        let mut g = guard(Kind::MainDb);
        g.shm_mapped(ffi::SQLITE_OK);
        assert_eq!(g.lock(base, out, SHARED), ffi::SQLITE_OK);
        g.shm_barrier(base, out);
        assert_eq!(g.shm_lock(base, out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        g
    }

    #[test]
    fn a_replica_refuses_the_reserved_lock_and_logs_it() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(g.lock(&mut base, &out, RESERVED), ffi::SQLITE_READONLY);
        assert_eq!(base.locks, [SHARED], "RESERVED never reached the base file");
        let logs = out.logs.borrow();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].0, ffi::SQLITE_READONLY);
        assert!(
            logs[0].1.contains("/litefs/app.db") && logs[0].1.contains("node-a"),
            "{}",
            logs[0].1
        );
        assert!(!out.evidence.get());
    }

    #[test]
    fn a_replica_refuses_the_wal_write_lock_and_logs_it() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = wal_reader(&mut base, &out);
        let rc = g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL);
        assert_eq!(rc, ffi::SQLITE_READONLY);
        assert_eq!(base.write_lock_requests(), 0);
        assert_eq!(out.logs.borrow().len(), 1);
        assert_eq!(out.logs.borrow()[0].0, ffi::SQLITE_READONLY);
        // The same lock without a read slot (recovery) passes: replicas run it.
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert!(out.logs.borrow().is_empty());
    }

    #[test]
    fn a_checkpoint_on_a_replica_is_busy_and_the_last_close_leaves_the_wal() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        g.shm_mapped(ffi::SQLITE_OK);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_CKPT_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(g.lock(&mut base, &out, EXCLUSIVE), ffi::SQLITE_BUSY);
        assert_eq!(base.locks, [SHARED]);
        assert!(base.shm.is_empty());
    }

    #[test]
    fn plain_begin_on_the_primary_takes_the_wal_write_lock_at_the_barrier_waiting_via_the_busy_handler() {
        let mut base = FakeBase {
            write_lock_busy: 2,
            ..Default::default()
        };
        let out = Fake {
            explicit: true,
            busy_retries: 5,
            ..primary()
        };
        let mut g = wal_reader(&mut base, &out);
        assert_eq!(base.barriers, 1, "the base barrier still runs");
        assert_eq!(base.write_lock_requests(), 3, "busy twice, then granted");
        assert_eq!(out.busy_calls.get(), 2);
        assert!(out.evidence.get(), "the held write lock is evidence");
        // SQLite's own write lock is then answered without the base.
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(base.write_lock_requests(), 3);
        // Commit: SQLite lets go; so does the guard, exactly once.
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL),
            ffi::SQLITE_OK
        );
        let unlocks = base
            .shm
            .iter()
            .filter(|c| **c == (WAL_WRITE_LOCK, 1, UNLOCK_EXCL))
            .count();
        assert_eq!(unlocks, 1);
        assert!(!out.evidence.get(), "the write transaction ended");
    }

    #[test]
    fn plain_begin_stays_deferred_when_the_busy_handler_gives_up_or_outside_a_transaction() {
        let mut base = FakeBase {
            write_lock_busy: 10,
            ..Default::default()
        };
        let out = Fake {
            explicit: true,
            busy_retries: 1,
            ..primary()
        };
        wal_reader(&mut base, &out);
        assert_eq!(out.busy_calls.get(), 2);
        assert!(!out.evidence.get());
        // Autocommit: no escalation at all.
        let (mut base, out) = (FakeBase::default(), primary());
        wal_reader(&mut base, &out);
        assert_eq!(base.write_lock_requests(), 0);
        assert_eq!(out.lookups.get(), 0);
    }

    #[test]
    fn a_replica_declines_wal_escalation_without_error() {
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                ..replica()
            },
        );
        wal_reader(&mut base, &out);
        assert_eq!(base.write_lock_requests(), 0);
        assert!(out.logs.borrow().is_empty(), "reads go on quietly");
    }

    #[test]
    fn rollback_escalation_takes_reserved_for_plain_begin() {
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                ..primary()
            },
        );
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(base.level, RESERVED);
        assert!(out.evidence.get());
        let looked = out.lookups.get();
        // SQLite's own RESERVED later is no second lookup.
        assert_eq!(g.lock(&mut base, &out, RESERVED), ffi::SQLITE_OK);
        assert_eq!(out.lookups.get(), looked);
    }

    #[test]
    fn rollback_escalation_waits_through_the_busy_handler_at_none() {
        let mut base = FakeBase {
            reserved_busy: 2,
            ..Default::default()
        };
        let out = Fake {
            explicit: true,
            busy_retries: 5,
            ..primary()
        };
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(out.busy_calls.get(), 2);
        assert_eq!(base.locks, [SHARED, RESERVED, SHARED, RESERVED, SHARED, RESERVED]);
        assert_eq!(base.level, RESERVED);
        assert!(out.evidence.get());
    }

    #[test]
    fn rollback_escalation_declines_on_a_wal_header() {
        let mut base = FakeBase {
            wal_header: true,
            ..Default::default()
        };
        let out = Fake {
            explicit: true,
            ..primary()
        };
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(base.locks, [SHARED], "RESERVED would be held for good");
        assert!(!out.evidence.get());
    }

    #[test]
    fn rollback_escalation_declines_with_a_hot_journal() {
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                journal: true,
                ..primary()
            },
        );
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(base.locks, [SHARED, RESERVED]);
        assert_eq!(base.level, SHARED, "RESERVED given back for SQLite's rollback");
        assert!(!out.evidence.get());
        // Declined for this SHARED lock: a second SHARED does not try again.
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(base.locks.len(), 3);
    }

    #[test]
    fn shared_to_exclusive_without_reserved_on_a_replica_is_a_refused_hot_journal() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(g.lock(&mut base, &out, EXCLUSIVE), ffi::SQLITE_READONLY_ROLLBACK);
        assert_eq!(base.locks, [SHARED]);
        let logs = out.logs.borrow();
        assert_eq!(logs.last().unwrap().0, ffi::SQLITE_READONLY_ROLLBACK);
        assert!(logs.last().unwrap().1.contains("hot journal"));
        // On the primary the playback goes ahead, and is evidence.
        let (mut base, out) = (FakeBase::default(), primary());
        let mut g = guard(Kind::MainDb);
        g.lock(&mut base, &out, SHARED);
        assert_eq!(g.lock(&mut base, &out, EXCLUSIVE), ffi::SQLITE_OK);
        assert!(out.evidence.get());
    }

    #[test]
    fn unlock_to_shared_ends_the_write() {
        let (mut base, out) = (FakeBase::default(), primary());
        let mut g = guard(Kind::MainDb);
        g.lock(&mut base, &out, SHARED);
        assert_eq!(g.lock(&mut base, &out, RESERVED), ffi::SQLITE_OK);
        assert!(out.evidence.get());
        assert_eq!(g.write(&mut base, &out, &[1; 16], 4096), ffi::SQLITE_OK);
        assert_eq!(g.unlock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert!(!out.evidence.get(), "evidence revoked");
        assert_eq!(base.level, SHARED);
        // The next write is armed again: without evidence it is looked up.
        let looked = out.lookups.get();
        assert_eq!(g.write(&mut base, &out, &[1; 16], 4096), ffi::SQLITE_OK);
        assert_eq!(out.lookups.get(), looked + 1);
    }

    #[test]
    fn the_backstop_refuses_a_write_without_evidence_on_a_replica() {
        for kind in [Kind::MainDb, Kind::Journal, Kind::Wal] {
            let (mut base, out) = (FakeBase::default(), replica());
            let mut g = guard(kind);
            assert_eq!(
                g.write(&mut base, &out, &[7; 24], 512),
                ffi::SQLITE_READONLY,
                "{kind:?}"
            );
            assert_eq!(g.truncate(&mut base, &out, 100), ffi::SQLITE_READONLY, "{kind:?}");
            assert_eq!(g.growing(&out), Err(ffi::SQLITE_READONLY), "{kind:?}");
            assert!(base.writes.is_empty());
        }
        // With evidence (the gate passed at the lock) no lookup is made.
        let (mut base, out) = (FakeBase::default(), replica());
        out.evidence.set(true);
        let mut g = guard(Kind::Wal);
        assert_eq!(g.write(&mut base, &out, &[7; 24], 32), ffi::SQLITE_OK);
        assert_eq!(out.lookups.get(), 0);
        // On the primary, one lookup vouches for the transaction.
        let (mut base, out) = (FakeBase::default(), primary());
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.write(&mut base, &out, &[7; 24], 512), ffi::SQLITE_OK);
        assert_eq!(g.write(&mut base, &out, &[7; 24], 1024), ffi::SQLITE_OK);
        assert_eq!(out.lookups.get(), 1);
        assert!(out.evidence.get());
    }

    #[test]
    fn a_journal_opened_for_writing_on_a_replica_is_refused_and_a_hot_one_is_said_so() {
        let out = replica();
        let rw = ffi::SQLITE_OPEN_READWRITE;
        assert_eq!(
            guard(Kind::Journal).before_open(&out, rw),
            Err(ffi::SQLITE_READONLY)
        );
        assert!(out.logs.borrow().last().unwrap().1.contains("hot journal"));
        let out = replica();
        assert_eq!(
            guard(Kind::Journal).before_open(&out, rw | ffi::SQLITE_OPEN_CREATE),
            Err(ffi::SQLITE_READONLY)
        );
        assert!(!out.logs.borrow().iter().any(|l| l.1.contains("hot journal")));
        assert_eq!(
            guard(Kind::Journal).before_open(&out, ffi::SQLITE_OPEN_READONLY),
            Ok(())
        );
        assert_eq!(guard(Kind::Journal).before_open(&primary(), rw), Ok(()));
    }

    #[test]
    fn eacces_from_litefs_is_translated_to_readonly_on_a_replica_only() {
        let io = ffi::SQLITE_IOERR_WRITE;
        let run = |out: Fake| {
            out.evidence.set(true);
            let mut base = FakeBase {
                io_rc: io,
                ..Default::default()
            };
            let mut g = guard(Kind::Wal);
            (
                g.write(&mut base, &out, &[1; 8], 4096),
                g.sync(&mut base, &out, 0),
            )
        };
        let readonly = ffi::SQLITE_READONLY;
        assert_eq!(
            run(Fake {
                errno: libc::EACCES,
                ..replica()
            }),
            (readonly, readonly)
        );
        assert_eq!(
            run(Fake {
                errno: libc::EROFS,
                ..replica()
            }),
            (readonly, readonly)
        );
        assert_eq!(
            run(Fake {
                errno: libc::EPERM,
                ..replica()
            }),
            (readonly, readonly)
        );
        assert_eq!(
            run(Fake {
                errno: libc::EIO,
                ..replica()
            }),
            (io, io)
        );
        assert_eq!(
            run(Fake {
                errno: libc::EACCES,
                ..primary()
            }),
            (io, io)
        );
    }

    #[test]
    fn a_busy_shm_lock_on_a_dead_mount_says_so_at_once() {
        let dead = || Fake {
            errno: libc::ENOTCONN,
            ..primary()
        };
        let out = dead();
        *out.role.borrow_mut() = Role::NotRunning("gone".into());
        let mut base = FakeBase {
            shm_busy: true,
            ..Default::default()
        };
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_CANTOPEN);
        assert!(out.logs.borrow()[0].1.contains("gone"));
        // A live conflict (no errno of a dead mount) stays busy.
        let out = Fake { errno: 0, ..dead() };
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_BUSY);
        // A dead-looking errno with LiteFS up stays busy too.
        assert_eq!(g.shm_lock(&mut base, &dead(), 3, 1, LOCK_SH), ffi::SQLITE_BUSY);
    }

    #[test]
    fn journal_mode_pragmas_leaving_wal_are_refused() {
        let out = primary();
        let mut g = guard(Kind::MainDb);
        let e = g.pragma(&out, Some("journal_mode"), Some("DELETE")).unwrap_err();
        assert_eq!(e.code(), ffi::SQLITE_ERROR);
        assert!(e.message().contains("journal_mode=DELETE refused"));
        assert_eq!(out.logs.borrow().len(), 1, "logged");
        assert!(g.pragma(&out, Some("journal_mode"), Some("wal")).is_ok());
        assert!(g.pragma(&out, Some("journal_mode"), None).is_ok(), "a query");
        assert!(g.pragma(&out, Some("locking_mode"), Some("exclusive")).is_err());
        // Not the main database: not asked.
        assert!(guard(Kind::Wal)
            .pragma(&out, Some("journal_mode"), Some("delete"))
            .is_ok());
    }

    #[test]
    fn leaving_wal_when_allowed_lets_the_exclusive_lock_through() {
        let allowed = |pragma: bool| {
            let (mut base, out) = (FakeBase::default(), replica());
            let mut g = Guard::new(
                Kind::MainDb,
                "/litefs/app.db".into(),
                Path::new("/litefs"),
                false,
                rules(false),
            );
            g.shm_mapped(ffi::SQLITE_OK);
            if pragma {
                assert!(g.pragma(&out, Some("journal_mode"), Some("delete")).is_ok());
            }
            g.lock(&mut base, &out, SHARED);
            g.lock(&mut base, &out, EXCLUSIVE)
        };
        assert_eq!(allowed(true), ffi::SQLITE_OK);
        assert_eq!(allowed(false), ffi::SQLITE_BUSY);
    }

    #[test]
    fn a_failed_transaction_does_not_keep_the_escalated_write_lock() {
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                ..primary()
            },
        );
        let mut g = guard(Kind::MainDb);
        g.shm_mapped(ffi::SQLITE_OK);
        g.lock(&mut base, &out, SHARED);
        g.shm_barrier(&mut base, &out);
        assert_eq!(base.write_lock_requests(), 1);
        // No read slot was taken; the database lock goes.
        g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
        assert_eq!(base.shm.last(), Some(&(WAL_WRITE_LOCK, 1, UNLOCK_EXCL)));
        assert_eq!(g.shm_unmap(&mut base, &out, 0), ffi::SQLITE_OK);
        assert_eq!(base.shm.len(), 2, "released exactly once");
    }

    fn set(g: &mut Guard, out: &Fake, name: &str, value: &str) -> String {
        match g.pragma(out, Some(name), Some(value)) {
            Ok(PragmaAnswer::Handled(v)) => v,
            other => panic!("{name}={value}: {other:?}"),
        }
    }

    fn get(g: &mut Guard, out: &Fake, name: &str) -> String {
        match g.pragma(out, Some(name), None) {
            Ok(PragmaAnswer::Handled(v)) => v,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn the_read_pragmas_read_back_and_refuse_bad_values() {
        let out = primary();
        let mut g = guard(Kind::MainDb);
        assert_eq!(get(&mut g, &out, "litefs_min_txid"), "0");
        assert_eq!(get(&mut g, &out, "LITEFS_WAIT_MS"), "5000");
        assert_eq!(get(&mut g, &out, "litefs_max_lag_ms"), "0");
        assert_eq!(set(&mut g, &out, "litefs_min_txid", "42"), "42");
        assert_eq!(
            set(
                &mut g,
                &out,
                "litefs_min_txid",
                "0000000000000027/83b05248774ce767"
            ),
            "39"
        );
        assert_eq!(set(&mut g, &out, "litefs_wait_ms", "60000"), "60000");
        assert_eq!(set(&mut g, &out, "litefs_max_lag_ms", "1000"), "1000");
        for (name, bad) in [
            ("litefs_min_txid", "-1"),
            ("litefs_min_txid", "soon"),
            ("litefs_wait_ms", "60001"),
            ("litefs_wait_ms", "1.5"),
            ("litefs_max_lag_ms", "-5"),
        ] {
            let e = g.pragma(&out, Some(name), Some(bad)).unwrap_err();
            assert_eq!(e.code(), ffi::SQLITE_ERROR);
            let m = e.message();
            assert!(
                m.starts_with(&format!("litefs_guard: PRAGMA {name} = \"{bad}\" is not valid: ")),
                "{m}"
            );
        }
        // A refused value changes nothing.
        assert_eq!(get(&mut g, &out, "litefs_min_txid"), "39");
        assert_eq!(get(&mut g, &out, "litefs_wait_ms"), "60000");
        // Others are SQLite's.
        assert_eq!(
            g.pragma(&out, Some("user_version"), Some("3")),
            Ok(PragmaAnswer::NotOurs)
        );
        // Shared cache: refused.
        let shared = Fake {
            shared: true,
            ..primary()
        };
        let e = g.pragma(&shared, Some("litefs_min_txid"), Some("1")).unwrap_err();
        assert!(e.message().contains("shared-cache"), "{}", e.message());
        g.forget_read_settings();
        assert_eq!(get(&mut g, &out, "litefs_min_txid"), "0");
    }

    #[test]
    fn no_floor_and_a_floor_reached_cost_no_reads() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
        wal_reader(&mut base, &out);
        assert_eq!(
            (out.pos_reads.get(), out.lag_reads.get(), out.lookups.get()),
            (0, 0, 0)
        );
        // A floor: one read reaches it; the next reads are free.
        out.pos.set(Some(7));
        set(&mut g, &out, "litefs_min_txid", "5");
        for _ in 0..3 {
            assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
            g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
        }
        assert_eq!(out.pos_reads.get(), 1);
        // Raised past what was seen: one read again.
        set(&mut g, &out, "litefs_min_txid", "7");
        g.lock(&mut base, &out, SHARED);
        g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
        assert_eq!(out.pos_reads.get(), 1, "7 was seen already");
        assert_eq!(out.lookups.get(), 0, "no role lookup on a read");
        assert_eq!(out.clock.get(), Duration::ZERO, "no wait");
    }

    #[test]
    fn a_read_waits_for_the_floor_before_its_lock_then_proceeds() {
        let (mut base, out) = (FakeBase::default(), replica());
        out.pos.set(Some(3));
        out.pos_later.set(Some((Duration::from_millis(30), 10)));
        let mut g = guard(Kind::MainDb);
        set(&mut g, &out, "litefs_min_txid", "10");
        set(&mut g, &out, "litefs_wait_ms", "200");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(base.locks, [SHARED]);
        let waited = out.clock.get();
        assert!(
            waited >= Duration::from_millis(30) && waited < Duration::from_millis(50),
            "{waited:?}"
        );
        assert!(
            out.pos_reads.get() > 2 && out.pos_reads.get() < 12,
            "polled: {}",
            out.pos_reads.get()
        );
        assert_eq!(out.busy_calls.get(), 0, "the busy handler is not the wait");
        assert!(out.logs.borrow().is_empty());
        // A read already open (SHARED held) is never made to wait.
        set(&mut g, &out, "litefs_min_txid", "99");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(out.clock.get(), waited);
    }

    #[test]
    fn a_floor_not_reached_in_time_refuses_the_read_without_its_lock() {
        let (mut base, out) = (FakeBase::default(), replica());
        out.pos.set(Some(3));
        let mut g = guard(Kind::MainDb);
        set(&mut g, &out, "litefs_min_txid", "10");
        set(&mut g, &out, "litefs_wait_ms", "200");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_LOCKED);
        assert!(base.locks.is_empty(), "no read lock was taken");
        assert_eq!(out.clock.get(), Duration::from_millis(200), "exactly the wait");
        let logs = out.logs.borrow();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].0, ffi::SQLITE_LOCKED);
        assert_eq!(
            logs[0].1,
            "read of /litefs/app.db refused: this node is at 0000000000000003/0000000000000001 \
             (TXID 3), below the read floor TXID 10 (PRAGMA litefs_min_txid), after waiting 200 ms \
             (PRAGMA litefs_wait_ms); the primary is node-a"
        );
        assert_eq!(
            g.last_refusal(),
            Some(format!("litefs_guard: {}", logs[0].1).as_str())
        );
        assert_eq!(
            out.lookups.get(),
            1,
            "the primary is looked up for the message only"
        );
        drop(logs);
        // Unreadable position, no wait: at once, and said.
        out.pos.set(None);
        set(&mut g, &out, "litefs_wait_ms", "0");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_LOCKED);
        assert!(out.logs.borrow()[1]
            .1
            .contains("at an unknown position (cannot read /litefs/app.db-pos: it does not exist)"));
        assert_eq!(out.clock.get(), Duration::from_millis(200));
        // 0 turns it off.
        set(&mut g, &out, "litefs_min_txid", "0");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
    }

    #[test]
    fn a_wal_read_waits_before_its_read_mark() {
        let (mut base, out) = (FakeBase::default(), replica());
        out.pos.set(Some(3));
        let mut g = guard(Kind::MainDb);
        g.shm_mapped(ffi::SQLITE_OK);
        assert_eq!(
            g.lock(&mut base, &out, SHARED),
            ffi::SQLITE_OK,
            "first read, no floor yet"
        );
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        g.shm_lock(
            &mut base,
            &out,
            3,
            1,
            ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_SHARED,
        );
        base.shm.clear();
        set(&mut g, &out, "litefs_min_txid", "4");
        set(&mut g, &out, "litefs_wait_ms", "50");
        g.shm_barrier(&mut base, &out);
        assert_eq!(g.shm_lock(&mut base, &out, 4, 1, LOCK_SH), ffi::SQLITE_LOCKED);
        assert!(base.shm.is_empty(), "no read mark taken");
        assert_eq!(g.wal.read_slot, None);
        assert_eq!(out.clock.get(), Duration::from_millis(50));
        // Replication reaches the floor: the next read goes through.
        out.pos.set(Some(4));
        assert_eq!(g.shm_lock(&mut base, &out, 4, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(g.wal.read_slot, Some(4));
        // Other shm locks (write lock, exclusive read marks) are not reads.
        let reads = out.pos_reads.get();
        set(&mut g, &out, "litefs_min_txid", "9");
        g.shm_lock(
            &mut base,
            &out,
            4,
            1,
            ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_SHARED,
        );
        g.shm_lock(&mut base, &out, 5, 1, LOCK_EXCL);
        g.shm_lock(&mut base, &out, WAL_CKPT_LOCK, 1, LOCK_EXCL);
        assert_eq!(out.pos_reads.get(), reads);
    }

    #[test]
    fn an_interrupt_ends_the_wait() {
        let (mut base, out) = (FakeBase::default(), replica());
        out.pos.set(Some(3));
        out.interrupt.set(true);
        let mut g = guard(Kind::MainDb);
        set(&mut g, &out, "litefs_min_txid", "10");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_INTERRUPT);
        assert_eq!(out.clock.get(), Duration::ZERO);
    }

    #[test]
    fn a_replica_too_far_behind_refuses_reads_at_once_and_recovers() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        set(&mut g, &out, "litefs_max_lag_ms", "1000");
        out.lag.set(Some(Lag::Millis(1500)));
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_LOCKED);
        assert_eq!(
            out.logs.borrow()[0].1,
            "read of /litefs/app.db refused: replica is 1500 ms behind primary node-a; limit 1000 ms \
             (PRAGMA litefs_max_lag_ms)"
        );
        assert_eq!(out.clock.get(), Duration::ZERO, "no wait");
        out.lag.set(Some(Lag::NeverCaughtUp));
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_LOCKED);
        assert!(out.logs.borrow()[1]
            .1
            .contains("has not caught up with primary node-a since it started"));
        out.lag.set(None);
        assert_eq!(
            g.lock(&mut base, &out, SHARED),
            ffi::SQLITE_LOCKED,
            "unknown lag is too much"
        );
        out.lag.set(Some(Lag::Millis(1000)));
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(out.lag_reads.get(), 4, "one .lag read per read transaction");
        assert_eq!(out.pos_reads.get(), 0);
        // The primary reads 0 there: one read, no role lookup.
        let (mut base, out) = (FakeBase::default(), primary());
        let mut g = guard(Kind::MainDb);
        set(&mut g, &out, "litefs_max_lag_ms", "1");
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!((out.lag_reads.get(), out.lookups.get()), (1, 0));
    }

    #[test]
    fn one_check_per_read_transaction_at_the_first_read_in_wal_mode() {
        let (mut base, out) = (FakeBase::default(), replica());
        let mut g = guard(Kind::MainDb);
        set(&mut g, &out, "litefs_max_lag_ms", "100");
        g.shm_mapped(ffi::SQLITE_OK);
        // The connection's first read: xLock(SHARED), then its read mark.
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(out.lag_reads.get(), 1);
        g.shm_lock(
            &mut base,
            &out,
            3,
            1,
            ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_SHARED,
        );
        // Later reads: SHARED stays held (WAL), only the read mark.
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(out.lag_reads.get(), 2);
    }

    // Write forwarding (`forward.rs`).

    fn forwarding(kind: Kind) -> Guard {
        let mut r = rules(true);
        r.forward = true;
        Guard::new(kind, "/litefs/app.db".into(), Path::new("/litefs"), false, r)
    }

    fn wal_begin(g: &mut Guard, base: &mut FakeBase, out: &Fake) {
        g.shm_mapped(ffi::SQLITE_OK);
        g.shm_barrier(base, out);
    }

    const UNLOCK_SH: c_int = ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_SHARED;

    #[test]
    fn the_forward_pragma_reads_and_switches_per_file() {
        let out = replica();
        let mut g = guard(Kind::MainDb);
        assert_eq!(
            g.pragma(&out, Some("litefs_forward"), None).unwrap(),
            PragmaAnswer::Handled("0".into())
        );
        for (v, want) in [
            ("ON", "1"),
            ("off", "0"),
            ("1", "1"),
            ("'no'", "0"),
            ("true", "1"),
        ] {
            assert_eq!(
                g.pragma(&out, Some("LITEFS_FORWARD"), Some(v)).unwrap(),
                PragmaAnswer::Handled(want.into()),
                "{v}"
            );
        }
        let e = g.pragma(&out, Some("litefs_forward"), Some("maybe")).unwrap_err();
        assert_eq!(e.code(), ffi::SQLITE_ERROR);
        assert!(e.message().contains("use ON or OFF"), "{}", e.message());
        assert_eq!(
            g.pragma(&out, Some("litefs_forward"), None).unwrap(),
            PragmaAnswer::Handled("1".into())
        );
        // The default comes from the settings; other pragmas are not answered.
        let mut g = forwarding(Kind::MainDb);
        assert_eq!(
            g.pragma(&out, Some("litefs_forward"), None).unwrap(),
            PragmaAnswer::Handled("1".into())
        );
        assert_eq!(
            g.pragma(&out, Some("cache_size"), Some("10")).unwrap(),
            PragmaAnswer::NotOurs
        );
    }

    #[test]
    fn an_autocommit_write_is_sent_round_and_takes_the_halt_lock_before_its_read_lock() {
        let mut base = FakeBase::default();
        let out = Fake {
            busy_retries: 5,
            ..replica()
        };
        out.halt.borrow_mut().txid = 0x27;
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        assert_eq!(out.halt.borrow().takes, 0, "an autocommit read takes nothing");
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        // The write lock, read lock held: sent round, nothing taken yet.
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(out.halt.borrow().takes, 0);
        assert_eq!(base.write_lock_requests(), 0);
        // SQLite drops its read lock and starts again: the barrier takes it.
        g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH);
        assert_eq!(out.halt.borrow().gives, 0);
        g.shm_barrier(&mut base, &out);
        assert_eq!(out.halt.borrow().takes, 1, "taken before the read lock");
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK,
            "the gate sees the halt lock held"
        );
        assert!(out.evidence.get());
        // The WAL's commit frame checks the lock is still held.
        let mut wal = guard(Kind::Wal);
        let commit_frame = [
            0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(wal.write(&mut base, &out, &commit_frame, 32), ffi::SQLITE_OK);
        // Commit: the write lock goes, then the read lock, then the halt lock.
        g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL);
        assert_eq!(out.halt.borrow().gives, 0, "not while the read lock is held");
        g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH);
        assert_eq!(out.halt.borrow().gives, 1);
        assert_eq!(g.forwarded_txid(), Some(0x27));
        assert_eq!(
            g.read.min_txid, 0x27,
            "the read floor rises to the forwarded write"
        );
        // The next autocommit read takes nothing.
        g.shm_barrier(&mut base, &out);
        assert_eq!(out.halt.borrow().takes, 1);
        assert!(out.logs.borrow().is_empty(), "{:?}", out.logs.borrow());
    }

    #[test]
    fn without_a_busy_handler_the_halt_lock_is_taken_at_the_write_lock() {
        let mut base = FakeBase::default();
        let out = replica();
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(out.halt.borrow().takes, 1);
        g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL);
        g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH);
        assert_eq!(out.halt.borrow().gives, 1);
    }

    #[test]
    fn an_explicit_transaction_takes_the_halt_lock_at_the_barrier_and_escalates() {
        let mut base = FakeBase::default();
        let out = Fake {
            explicit: true,
            ..replica()
        };
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        assert_eq!(out.halt.borrow().takes, 1);
        assert_eq!(base.write_lock_requests(), 1, "IMMEDIATE under the halt lock");
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(base.write_lock_requests(), 1);
        g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL);
        assert_eq!(out.halt.borrow().gives, 0);
        g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH);
        assert_eq!(out.halt.borrow().gives, 1, "after the read lock, exactly once");
        // Closing later releases nothing more.
        g.closing(&mut base, &out);
        assert_eq!(out.halt.borrow().gives, 1);
    }

    #[test]
    fn without_forwarding_or_a_known_primary_a_replica_refuses_as_before() {
        for (fwd, primary) in [(false, true), (true, false)] {
            let mut base = FakeBase::default();
            let out = Fake {
                busy_retries: 5,
                ..replica()
            };
            if !primary {
                *out.role.borrow_mut() = Role::Replica {
                    primary: None,
                    halt_lock: false,
                };
            }
            let mut g = if fwd {
                forwarding(Kind::MainDb)
            } else {
                guard(Kind::MainDb)
            };
            wal_begin(&mut g, &mut base, &out);
            g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
            assert_eq!(
                g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
                ffi::SQLITE_READONLY,
                "forward={fwd} primary known={primary}"
            );
            assert_eq!(out.halt.borrow().takes, 0);
            assert_eq!(out.busy_calls.get(), 0, "not sent round");
        }
        // On the primary forwarding takes nothing.
        let (mut base, out) = (FakeBase::default(), primary());
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(out.halt.borrow().takes, 0);
    }

    #[test]
    fn a_halt_lock_not_granted_in_time_is_busy_and_leaves_nothing_held() {
        // Explicit: the barrier's failure is the write lock's answer; reads go on.
        let mut base = FakeBase::default();
        let out = Fake {
            explicit: true,
            ..replica()
        };
        out.halt.borrow_mut().refuse = Some(halt_lock::AcquireError::Timeout);
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        assert_eq!(base.write_lock_requests(), 0, "no escalation without it");
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(out.halt.borrow().takes, 1, "one wait, not two");
        assert!(out.logs.borrow()[0].1.contains("not granted within 5000 ms"));
        g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH);
        assert_eq!(out.halt.borrow().gives, 0);
        assert!(!out.halt.borrow().held);
        // Failed (no primary reachable): SQLITE_READONLY.
        let (mut base, out) = (FakeBase::default(), replica());
        out.halt.borrow_mut().refuse = Some(halt_lock::AcquireError::Failed("EIO".into()));
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_READONLY
        );
        assert_eq!(base.write_lock_requests(), 0);
    }

    #[test]
    fn busy_handler_retries_share_one_halt_timeout() {
        let mut base = FakeBase::default();
        let out = replica();
        let mut g = forwarding(Kind::MainDb);
        g.rules.halt_timeout_ms = 200;
        wal_begin(&mut g, &mut base, &out);
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        out.halt.borrow_mut().refuse = Some(halt_lock::AcquireError::Timeout);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(out.halt.borrow().takes, 1);
        // Past the deadline, a retry waits only a short slice (the lock may
        // be free by now; here it is not): never a second full bound.
        g.fwd.deadline = Some(std::time::Instant::now() - std::time::Duration::from_millis(1));
        out.halt.borrow_mut().refuse = Some(halt_lock::AcquireError::Timeout);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(out.halt.borrow().takes, 2, "one short slice");
        assert!(
            g.fwd.deadline.unwrap() < std::time::Instant::now(),
            "the budget is not renewed"
        );
        // Long after it, a new write waits again (and here gets it).
        g.fwd.deadline = Some(std::time::Instant::now() - std::time::Duration::from_millis(500));
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(out.halt.borrow().takes, 3);
        assert_eq!(g.fwd.deadline, None);
    }

    #[test]
    fn a_lost_halt_lock_fails_the_commit_before_its_commit_frame() {
        let mut base = FakeBase::default();
        let out = Fake {
            explicit: true,
            ..replica()
        };
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        let mut wal = guard(Kind::Wal);
        assert_eq!(
            wal.write(&mut base, &out, &[0; 24], 32),
            ffi::SQLITE_OK,
            "a plain frame"
        );
        out.halt.borrow_mut().lost = Some("is no longer held".into());
        let commit_frame = [
            0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let writes = base.writes.len();
        assert_eq!(
            wal.write(&mut base, &out, &commit_frame, 4152),
            ffi::SQLITE_READONLY
        );
        assert_eq!(
            base.writes.len(),
            writes,
            "the commit frame never reached the file"
        );
        assert!(out.logs.borrow().last().unwrap().1.contains("no longer held"));
        // Rollback: the read lock goes and the lock is given back once.
        g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL);
        g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH);
        assert_eq!(out.halt.borrow().gives, 1);
        // Lost before the write lock: refused there.
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                ..replica()
            },
        );
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        g.shm_lock(&mut base, &out, 3, 1, LOCK_SH);
        out.halt.borrow_mut().lost = Some("forked".into());
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_READONLY
        );
    }

    #[test]
    fn the_halt_lock_goes_on_close_unmap_and_unlock() {
        for end in 0..3 {
            let mut base = FakeBase::default();
            let out = Fake {
                explicit: true,
                ..replica()
            };
            let mut g = forwarding(Kind::MainDb);
            g.lock(&mut base, &out, SHARED);
            wal_begin(&mut g, &mut base, &out);
            assert!(out.halt.borrow().held);
            match end {
                0 => g.closing(&mut base, &out),
                1 => {
                    g.shm_unmap(&mut base, &out, 0);
                }
                _ => {
                    g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
                }
            }
            assert_eq!(out.halt.borrow().gives, 1, "end {end}");
        }
    }

    #[test]
    fn rollback_mode_takes_it_before_shared_or_at_reserved_and_gives_it_back_at_none() {
        // Explicit: before SHARED.
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                ..replica()
            },
        );
        let mut g = forwarding(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(out.halt.borrow().takes, 1);
        assert_eq!(base.level, RESERVED, "escalated under the halt lock");
        assert_eq!(g.lock(&mut base, &out, RESERVED), ffi::SQLITE_OK);
        g.unlock(&mut base, &out, SHARED);
        assert_eq!(out.halt.borrow().gives, 0);
        g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
        assert_eq!(out.halt.borrow().gives, 1);
        // Autocommit: at RESERVED (the pager keeps SHARED while it retries).
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                busy_retries: 5,
                ..replica()
            },
        );
        let mut g = forwarding(Kind::MainDb);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        assert_eq!(out.halt.borrow().takes, 0);
        assert_eq!(g.lock(&mut base, &out, RESERVED), ffi::SQLITE_OK);
        assert_eq!(out.halt.borrow().takes, 1);
        assert_eq!(out.busy_calls.get(), 0);
        g.unlock(&mut base, &out, ffi::SQLITE_LOCK_NONE);
        assert_eq!(out.halt.borrow().gives, 1);
    }

    #[test]
    fn a_read_the_floor_refuses_never_takes_the_halt_lock() {
        let mut base = FakeBase::default();
        let out = Fake {
            explicit: true,
            ..replica()
        };
        let mut g = forwarding(Kind::MainDb);
        g.read.min_txid = 5;
        g.read.wait_ms = 0;
        wal_begin(&mut g, &mut base, &out);
        assert_eq!(out.halt.borrow().takes, 0, "not taken for a read that is refused");
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_LOCKED);
        assert_eq!(out.pos_reads.get(), 1, "one wait, not two");
        assert!(!out.halt.borrow().held);
    }

    #[test]
    fn only_the_read_marks_own_release_gives_the_halt_lock_back() {
        let mut base = FakeBase::default();
        let out = Fake {
            explicit: true,
            ..replica()
        };
        let mut g = forwarding(Kind::MainDb);
        wal_begin(&mut g, &mut base, &out);
        assert!(out.halt.borrow().held);
        // walTryBeginRead updating a read mark: exclusive, then released.
        assert_eq!(g.shm_lock(&mut base, &out, 4, 1, LOCK_EXCL), ffi::SQLITE_OK);
        assert_eq!(g.shm_lock(&mut base, &out, 4, 1, UNLOCK_EXCL), ffi::SQLITE_OK);
        assert!(out.halt.borrow().held, "kept through the read mark update");
        assert_eq!(g.shm_lock(&mut base, &out, 4, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(g.shm_lock(&mut base, &out, 4, 1, UNLOCK_SH), ffi::SQLITE_OK);
        assert_eq!(out.halt.borrow().gives, 1, "given back with the read mark");
    }

    #[test]
    fn forwarding_cannot_be_switched_from_sql_when_the_setting_says_so() {
        let out = replica();
        let mut g = forwarding(Kind::MainDb);
        g.rules.forward_pragma = false;
        let e = g.pragma(&out, Some("litefs_forward"), Some("OFF")).unwrap_err();
        assert!(
            e.message().contains("LITEFS_GUARD_FORWARD_PRAGMA=0"),
            "{}",
            e.message()
        );
        assert_eq!(
            g.pragma(&out, Some("litefs_forward"), None).unwrap(),
            PragmaAnswer::Handled("1".into()),
            "reading it still works; the setting stays"
        );
    }

    // The fair wait (see `fairwait`): what the policy tells the line and
    // when it stands aside.

    fn told(out: &Fake) -> Vec<&'static str> {
        std::mem::take(&mut out.fair.borrow_mut().told)
    }

    #[test]
    fn a_write_transaction_marks_the_line_while_it_holds_the_lock() {
        let (mut base, out) = (FakeBase::default(), primary());
        let mut g = wal_reader(&mut base, &out);
        assert!(told(&out).is_empty(), "a read tells the line nothing");
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(told(&out), ["join", "held"]);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(told(&out), ["released"]);
    }

    #[test]
    fn a_busy_write_lock_arms_the_busy_handlers_sleep() {
        let mut base = FakeBase {
            write_lock_busy: 1,
            ..Default::default()
        };
        let out = primary();
        let mut g = wal_reader(&mut base, &out);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(told(&out), ["join", "busy"]);
        assert!(out.fair.borrow().armed);
    }

    #[test]
    fn behind_older_waiters_a_write_lock_request_is_busy_without_asking_the_base() {
        let (mut base, out) = (FakeBase::default(), primary());
        out.fair.borrow_mut().aside = 1;
        let mut g = wal_reader(&mut base, &out);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_BUSY
        );
        assert_eq!(base.write_lock_requests(), 0, "never asked");
        assert_eq!(told(&out), ["aside", "join", "busy"]);
        // On a replica the refusal comes first: nobody waits for a lock it may not take.
        let out = replica();
        out.fair.borrow_mut().aside = 1;
        let mut g = wal_reader(&mut base, &out);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_READONLY
        );
        assert!(told(&out).is_empty());
    }

    #[test]
    fn a_deferred_transactions_upgrade_never_stands_aside() {
        // LITEFS_GUARD_IMMEDIATE=0, BEGIN; SELECT; UPDATE: SQLite will not
        // wait for this lock, so it is asked for as without the line.
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                ..primary()
            },
        );
        out.fair.borrow_mut().aside = 1;
        let mut r = rules(true);
        r.immediate = false;
        let mut g = Guard::new(
            Kind::MainDb,
            "/litefs/app.db".into(),
            Path::new("/litefs"),
            false,
            r,
        );
        g.shm_mapped(ffi::SQLITE_OK);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        g.shm_barrier(&mut base, &out);
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(told(&out), ["join", "held"]);
    }

    #[test]
    fn the_turn_takes_the_write_lock_before_the_read_snapshot_of_the_retry() {
        let (mut base, out) = (FakeBase::default(), primary());
        out.fair.borrow_mut().turn = true;
        // An autocommit write retried after its sleep ended at the front.
        let mut g = wal_reader(&mut base, &out);
        assert_eq!(base.write_lock_requests(), 1, "taken at the barrier");
        let barrier_at = base.shm.iter().position(|c| c.0 == WAL_WRITE_LOCK).unwrap();
        let read_at = base.shm.iter().position(|c| c.0 == 3).unwrap();
        assert!(barrier_at < read_at, "before the read mark: {:?}", base.shm);
        assert_eq!(told(&out), ["join", "held"]);
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, LOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(base.write_lock_requests(), 1, "SQLite's request answered from it");
        assert_eq!(
            g.shm_lock(&mut base, &out, WAL_WRITE_LOCK, 1, UNLOCK_EXCL),
            ffi::SQLITE_OK
        );
        assert_eq!(told(&out), ["released"]);
        assert_eq!(
            base.shm
                .iter()
                .filter(|c| **c == (WAL_WRITE_LOCK, 1, UNLOCK_EXCL))
                .count(),
            1
        );
    }

    #[test]
    fn a_turn_whose_retry_turns_out_not_to_write_lets_the_lock_go_with_its_read() {
        let (mut base, out) = (FakeBase::default(), primary());
        out.fair.borrow_mut().turn = true;
        let mut g = wal_reader(&mut base, &out);
        told(&out);
        assert_eq!(g.shm_lock(&mut base, &out, 3, 1, UNLOCK_SH), ffi::SQLITE_OK);
        assert_eq!(told(&out), ["released"]);
        assert!(!g.wal.guard_write);
    }

    #[test]
    fn a_refused_read_lets_go_of_the_write_lock_taken_for_it() {
        // The retry's read (after the turn, or an escalated plain BEGIN) is
        // refused by the read floor: no read lock to release later, so the
        // write lock goes now.
        for (explicit, turn) in [(false, true), (true, false)] {
            let (mut base, out) = (
                FakeBase::default(),
                Fake {
                    explicit,
                    pos: Cell::new(Some(5)),
                    ..primary()
                },
            );
            out.fair.borrow_mut().turn = turn;
            let mut g = guard(Kind::MainDb);
            g.shm_mapped(ffi::SQLITE_OK);
            // WAL mode keeps SHARED: later read transactions start at the barrier.
            assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
            g.read_checked = false;
            g.pragma(&out, Some("litefs_min_txid"), Some("10")).unwrap();
            g.pragma(&out, Some("litefs_wait_ms"), Some("0")).unwrap();
            g.shm_barrier(&mut base, &out);
            assert!(g.wal.guard_write, "taken at the barrier ({explicit}, {turn})");
            assert_ne!(g.shm_lock(&mut base, &out, 3, 1, LOCK_SH), ffi::SQLITE_OK);
            assert!(!g.wal.guard_write, "({explicit}, {turn})");
            assert_eq!(
                base.shm
                    .iter()
                    .filter(|c| **c == (WAL_WRITE_LOCK, 1, UNLOCK_EXCL))
                    .count(),
                1
            );
            let told: Vec<_> = told(&out).into_iter().filter(|t| *t != "join").collect();
            assert_eq!(told, ["held", "released"]);
        }
    }

    #[test]
    fn a_turn_that_finds_the_lock_busy_is_missed_and_holds_nothing() {
        let mut base = FakeBase {
            write_lock_busy: 1,
            ..Default::default()
        };
        let out = primary();
        out.fair.borrow_mut().turn = true;
        let g = wal_reader(&mut base, &out);
        assert!(!g.wal.guard_write);
        assert_eq!(told(&out), ["missed"]);
        // A replica does not take its turn at all.
        let (mut base, out) = (FakeBase::default(), replica());
        out.fair.borrow_mut().turn = true;
        let _g = wal_reader(&mut base, &out);
        assert_eq!(base.write_lock_requests(), 0);
        assert_eq!(told(&out), ["missed"]);
    }

    #[test]
    fn plain_begin_waits_in_line_and_asks_for_the_lock_when_its_turn_comes() {
        let (mut base, out) = (
            FakeBase::default(),
            Fake {
                explicit: true,
                busy_retries: 5,
                ..primary()
            },
        );
        {
            let mut f = out.fair.borrow_mut();
            f.aside = 100;
            f.turn_on_sleep = true;
        }
        let g = wal_reader(&mut base, &out);
        assert!(g.wal.guard_write);
        assert_eq!(base.write_lock_requests(), 1, "asked once, at its turn");
        assert_eq!(out.busy_calls.get(), 1);
        assert_eq!(told(&out), ["join", "aside", "busy", "join", "held"]);
    }

    #[test]
    fn without_fair_wait_the_line_is_never_told() {
        let mut base = FakeBase {
            write_lock_busy: 1,
            ..Default::default()
        };
        let out = Fake {
            explicit: true,
            busy_retries: 5,
            ..primary()
        };
        out.fair.borrow_mut().aside = 100;
        let mut r = rules(true);
        r.fair_wait = false;
        let mut g = Guard::new(
            Kind::MainDb,
            "/litefs/app.db".into(),
            Path::new("/litefs"),
            false,
            r,
        );
        g.shm_mapped(ffi::SQLITE_OK);
        assert_eq!(g.lock(&mut base, &out, SHARED), ffi::SQLITE_OK);
        g.shm_barrier(&mut base, &out);
        assert!(g.wal.guard_write);
        assert!(told(&out).is_empty());
    }
}
