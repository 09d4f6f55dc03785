//! Read consistency for one connection's database file, set by three
//! pragmas: a read floor (`litefs_min_txid`: every later read transaction
//! waits, up to `litefs_wait_ms`, until this node's TXID reaches it) and
//! bounded staleness (`litefs_max_lag_ms`: a read on a node further behind
//! than that is refused). Safe Rust; the files and the clock come in through
//! `Outside`, so the waits are tested without sleeping.
//!
//! The check runs before SQLite takes a read lock (see `Guard::before_read`):
//! a read transaction held open on a replica stops replication there, so a
//! wait that held one could never end well.
//!
//! Cost: with no floor and no lag limit, or with a floor already reached
//! (the highest TXID seen is remembered: positions only move forward), the
//! check is two integer comparisons — no file read, no system call.

use super::seams::Outside;
use crate::error::Error;
use crate::position::{Lag, Position};
use crate::role::Role;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default and largest `litefs_wait_ms`.
pub(super) const DEFAULT_WAIT_MS: u64 = 5_000;
pub(super) const MAX_WAIT_MS: u64 = 60_000;
/// Largest `litefs_max_lag_ms` (LiteFS's `.lag` is a 32-bit value).
pub(super) const MAX_LAG_MS: u64 = i32::MAX as u64 - 1;
/// Polling starts this often and backs off to [`LONGEST_PAUSE`] (as
/// `litefs_wait_txid` does).
const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(16);

/// One connection's read-consistency settings for one database, and what
/// it remembers.
#[derive(Debug, Clone)]
pub(super) struct ReadFloor {
    /// `PRAGMA litefs_min_txid`; 0 is off.
    pub min_txid: u64,
    /// `PRAGMA litefs_wait_ms`.
    pub wait_ms: u64,
    /// `PRAGMA litefs_max_lag_ms`; 0 is off.
    pub max_lag_ms: u64,
    /// The highest TXID this file has read in `NAME-pos`.
    pub seen: u64,
    /// The last refusal's message (with the `litefs_guard:` prefix).
    pub last_refusal: Option<String>,
    /// `NAME-pos` and `.lag` of this database (empty for a file that is not
    /// a main database: its pragmas never reach here).
    pos_path: PathBuf,
    lag_path: PathBuf,
}

impl ReadFloor {
    /// Off, with the default wait. `mount` and `db` name the files to read.
    pub(super) fn new(mount: &Path, db: Option<&Path>) -> ReadFloor {
        let (pos_path, lag_path) = match db {
            Some(db) => {
                let mut name = db.file_name().unwrap_or_default().to_os_string();
                name.push("-pos");
                (mount.join(name), mount.join(".lag"))
            }
            None => (PathBuf::new(), PathBuf::new()),
        };
        ReadFloor {
            min_txid: 0,
            wait_ms: DEFAULT_WAIT_MS,
            max_lag_ms: 0,
            seen: 0,
            last_refusal: None,
            pos_path,
            lag_path,
        }
    }

    /// Nothing to check: no lag limit, and no floor or one already reached.
    #[inline(always)]
    pub(super) fn quiet(&self) -> bool {
        self.min_txid <= self.seen && self.max_lag_ms == 0
    }

    /// Back to the defaults (the remembered TXID stays: it is a fact).
    pub(super) fn reset(&mut self) {
        self.min_txid = 0;
        self.wait_ms = DEFAULT_WAIT_MS;
        self.max_lag_ms = 0;
    }

    /// Waits for the floor, then checks the lag. `role` is asked only to
    /// name the primary in a refusal.
    pub(super) fn check<S: Outside>(
        &mut self,
        out: &S,
        db: &Path,
        role: &dyn Fn() -> Role,
    ) -> Result<(), Error> {
        if self.min_txid > self.seen {
            self.wait_for_floor(out, db, role)?;
        }
        if self.max_lag_ms > 0 {
            self.check_lag(out, db, role)?;
        }
        Ok(())
    }

    fn wait_for_floor<S: Outside>(
        &mut self,
        out: &S,
        db: &Path,
        role: &dyn Fn() -> Role,
    ) -> Result<(), Error> {
        let start = out.now();
        let deadline = start + Duration::from_millis(self.wait_ms);
        let mut pause = FIRST_PAUSE;
        loop {
            let read = out.position(&self.pos_path);
            if let Ok(p) = &read {
                self.seen = self.seen.max(p.txid);
                if self.seen >= self.min_txid {
                    return Ok(());
                }
            }
            if out.interrupted() {
                return Err(Error::FloorInterrupted {
                    db: db.to_path_buf(),
                    floor: self.min_txid,
                });
            }
            let now = out.now();
            if now >= deadline {
                let local = match read {
                    Ok(p) => format!("at {p} (TXID {})", p.txid),
                    Err(u) => format!(
                        "at an unknown position (cannot read {}: {})",
                        u.path.display(),
                        u.why
                    ),
                };
                return Err(Error::FloorNotReached {
                    db: db.to_path_buf(),
                    floor: self.min_txid,
                    local,
                    waited_ms: (now - start).as_millis() as u64,
                    primary: primary_said(&role()),
                });
            }
            out.sleep(pause.min(deadline - now));
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    }

    fn check_lag<S: Outside>(&self, out: &S, db: &Path, role: &dyn Fn() -> Role) -> Result<(), Error> {
        let host = || match role() {
            Role::Replica { primary: Some(h), .. } => h,
            Role::Primary => "(this node)".into(),
            _ => "(unknown: none reachable)".into(),
        };
        let behind = match out.lag(&self.lag_path) {
            Ok(Lag::Millis(ms)) if ms <= self.max_lag_ms as i64 => return Ok(()),
            Ok(Lag::Millis(ms)) => format!("replica is {ms} ms behind primary {}", host()),
            Ok(Lag::NeverCaughtUp) => format!(
                "replica has not caught up with primary {} since it started",
                host()
            ),
            Err(u) => format!(
                "replication lag unknown (cannot read {}: {})",
                u.path.display(),
                u.why
            ),
        };
        Err(Error::TooStale {
            db: db.to_path_buf(),
            behind,
            limit: self.max_lag_ms,
        })
    }
}

/// Who the primary is, as a refusal says it.
fn primary_said(role: &Role) -> String {
    match role {
        Role::Primary => "this node is the primary".into(),
        Role::Replica { primary: Some(h), .. } => format!("the primary is {h}"),
        Role::Replica { primary: None, .. } | Role::ReadOnlyFile(_) => {
            "this node is a replica and no primary is reachable".into()
        }
        Role::NotRunning(why) => format!("LiteFS is not running: {why}"),
    }
}

/// A TXID as `PRAGMA litefs_min_txid` takes it: a decimal integer from 0 up,
/// or a position `TXID/CHECKSUM` as `litefs_position()` returns it (its
/// checksum is not compared).
pub(super) fn parse_txid(v: &str) -> Option<u64> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return v.parse().ok();
    }
    Position::parse(v).map(|p| p.txid)
}

/// Milliseconds from 0 to `max`, as a decimal integer.
pub(super) fn parse_ms(v: &str, max: u64) -> Option<u64> {
    let v = v.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n <= max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_the_pragmas_take() {
        assert_eq!(parse_txid("42"), Some(42));
        assert_eq!(parse_txid(" 0 "), Some(0));
        assert_eq!(parse_txid("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_txid("0000000000000027/83b05248774ce767"), Some(0x27));
        for bad in [
            "",
            "-1",
            "+1",
            "1.5",
            "abc",
            "0x10",
            "18446744073709551616",
            "27/1",
        ] {
            assert_eq!(parse_txid(bad), None, "{bad:?}");
        }
        assert_eq!(parse_ms("60000", MAX_WAIT_MS), Some(60_000));
        assert_eq!(parse_ms("0", MAX_WAIT_MS), Some(0));
        for bad in ["60001", "-1", "", "1e3", "5s"] {
            assert_eq!(parse_ms(bad, MAX_WAIT_MS), None, "{bad:?}");
        }
    }

    #[test]
    fn paths_of_the_files_read() {
        let f = ReadFloor::new(Path::new("/litefs"), Some(Path::new("/litefs/app.db")));
        assert_eq!(f.pos_path, Path::new("/litefs/app.db-pos"));
        assert_eq!(f.lag_path, Path::new("/litefs/.lag"));
        assert!(f.quiet());
    }
}
