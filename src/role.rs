//! Role detection: the one place that decides whether this node may write.
//!
//! Used alike by the authorizer (prepare time), the VFS write gate (lock
//! time) and the SQL functions. Every call looks afresh: nothing is cached.

use crate::error::RefusalReason;
use crate::halt_lock;
use crate::settings::Marker;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// statfs magic of a FUSE filesystem.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// `.primary` holds a hostname; anything longer is not LiteFS's file.
const MAX_PRIMARY_LEN: u64 = 4096;

/// What one look at the mount found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    /// `primary` is the primary's hostname when one is known.
    Replica {
        primary: Option<String>,
        halt_lock: bool,
    },
    /// The file mode says "not primary" although `.primary` is absent.
    ReadOnlyFile(PathBuf),
    NotRunning(String),
}

impl Role {
    /// Whether LiteFS would let this node write: the primary, or a replica
    /// holding the halt lock.
    pub fn may_write(&self) -> bool {
        matches!(self, Role::Primary | Role::Replica { halt_lock: true, .. })
    }

    pub fn is_primary(&self) -> bool {
        matches!(self, Role::Primary)
    }

    /// The primary's hostname, when this node is a replica that knows it.
    pub fn primary_host(&self) -> Option<&str> {
        match self {
            Role::Replica { primary, .. } => primary.as_deref(),
            _ => None,
        }
    }

    /// Why a write is refused; None when writes are allowed.
    pub fn refusal(&self) -> Option<RefusalReason> {
        if self.may_write() {
            return None;
        }
        Some(match self {
            Role::Replica { primary: Some(h), .. } => RefusalReason::Replica(h.clone()),
            Role::Replica { primary: None, .. } => RefusalReason::ReplicaNoPrimary,
            Role::ReadOnlyFile(p) => RefusalReason::ReadOnlyFile(p.clone()),
            Role::NotRunning(why) => RefusalReason::NotRunning(why.clone()),
            Role::Primary => unreachable!("the primary may write"),
        })
    }

    /// "primary", "replica" or "not_running", as `litefs_config()` reports it.
    pub fn name(&self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica { .. } | Role::ReadOnlyFile(_) => "replica",
            Role::NotRunning(_) => "not_running",
        }
    }
}

/// What to look at.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub mount: &'a Path,
    pub marker: Marker,
    pub require_fuse: bool,
    /// The database the question is about, when there is one: its mode and
    /// its halt lock are part of the answer.
    pub db: Option<&'a Path>,
}

/// How many times `.primary` was looked up (for benchmarks and tests).
static MARKER_LOOKUPS: AtomicU64 = AtomicU64::new(0);

pub fn marker_lookups() -> u64 {
    MARKER_LOOKUPS.load(Ordering::Relaxed)
}

/// Looks at the mount now and decides the role.
pub fn detect(p: Probe<'_>) -> Role {
    if p.require_fuse {
        match is_fuse(p.mount) {
            Ok(true) => {}
            Ok(false) => {
                return Role::NotRunning(format!(
                    "{} is not a FUSE mount (LiteFS is not mounted there; writing would create a local file LiteFS later hides)",
                    p.mount.display()
                ))
            }
            Err(e) => return not_running(p.mount, &e),
        }
    }
    match read_marker(p.mount) {
        Ok(Some(host)) => match p.marker {
            Marker::Replica => Role::Replica {
                primary: (!host.is_empty()).then_some(host),
                halt_lock: p.db.is_some_and(halt_lock::is_held),
            },
            Marker::Primary => file_mode_role(p),
        },
        Ok(None) => {
            // Absent marker: tell "LiteFS not mounted" apart from "no marker".
            match std::fs::metadata(p.mount) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Role::NotRunning(format!(
                        "mount directory {} is not a directory",
                        p.mount.display()
                    ))
                }
                Err(e) => return not_running(p.mount, &e),
            }
            match p.marker {
                Marker::Replica => file_mode_role(p),
                Marker::Primary => Role::Replica {
                    primary: None,
                    halt_lock: p.db.is_some_and(halt_lock::is_held),
                },
            }
        }
        Err(e) => not_running(p.mount, &e),
    }
}

/// `.primary` content, trimmed; None when the file does not exist.
fn read_marker(mount: &Path) -> std::io::Result<Option<String>> {
    MARKER_LOOKUPS.fetch_add(1, Ordering::Relaxed);
    let path = mount.join(".primary");
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut buf = Vec::new();
    file.take(MAX_PRIMARY_LEN).read_to_end(&mut buf)?;
    Ok(Some(String::from_utf8_lossy(&buf).trim().to_string()))
}

/// On a node that looks like the primary, LiteFS's file mode has the last
/// word: 0444 means "not the primary" (a replica that lost its primary).
fn file_mode_role(p: Probe<'_>) -> Role {
    use std::os::unix::fs::PermissionsExt;
    if let Some(db) = p.db {
        match std::fs::metadata(db) {
            Ok(m) if m.permissions().mode() & 0o222 == 0 => {
                if halt_lock::is_held(db) {
                    return Role::Replica {
                        primary: None,
                        halt_lock: true,
                    };
                }
                return Role::ReadOnlyFile(db.to_path_buf());
            }
            Ok(_) => {}
            // The database is open, so its file exists wherever LiteFS is
            // mounted: a missing file means the mount went away underneath.
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Role::NotRunning(format!(
                    "database file {} is missing from the mount (LiteFS stopped?)",
                    db.display()
                ))
            }
            Err(e) => return not_running(p.mount, &e),
        }
    }
    Role::Primary
}

fn not_running(mount: &Path, e: &std::io::Error) -> Role {
    let what = match e.kind() {
        ErrorKind::NotFound => "not found".to_string(),
        _ => e.to_string(),
    };
    Role::NotRunning(format!("mount directory {} {what}", mount.display()))
}

/// Whether `path` is on a FUSE filesystem (statfs).
pub fn is_fuse(path: &Path) -> std::io::Result<bool> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    let mut st: libc::statfs = unsafe_zeroed_statfs();
    // SAFETY: `c` is a valid C string and `st` a writable statfs.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64 == FUSE_SUPER_MAGIC)
}

fn unsafe_zeroed_statfs() -> libc::statfs {
    // SAFETY: statfs is plain old data; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn probe(mount: &Path, marker: Marker, db: Option<&Path>) -> Role {
        detect(Probe {
            mount,
            marker,
            require_fuse: false,
            db,
        })
    }

    #[test]
    fn absent_marker_is_primary() {
        let d = tempdir();
        assert_eq!(probe(&d, Marker::Replica, None), Role::Primary);
    }

    #[test]
    fn marker_names_primary() {
        let d = tempdir();
        std::fs::write(d.join(".primary"), "node-a\n").unwrap();
        let r = probe(&d, Marker::Replica, None);
        assert_eq!(
            r,
            Role::Replica {
                primary: Some("node-a".into()),
                halt_lock: false
            }
        );
        assert!(!r.may_write());
        assert_eq!(
            r.refusal().unwrap().to_string(),
            "this node is a replica; the primary is node-a"
        );
    }

    #[test]
    fn primary_convention() {
        let d = tempdir();
        assert!(!probe(&d, Marker::Primary, None).may_write());
        std::fs::write(d.join(".primary"), "").unwrap();
        assert_eq!(probe(&d, Marker::Primary, None), Role::Primary);
    }

    #[test]
    fn missing_mount_is_not_running() {
        let d = tempdir().join("gone");
        let r = probe(&d, Marker::Replica, None);
        assert!(
            matches!(r, Role::NotRunning(ref m) if m.contains("not found")),
            "{r:?}"
        );
        assert!(!r.may_write());
    }

    #[test]
    fn read_only_file_is_not_primary() {
        let d = tempdir();
        let db = d.join("app.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
        let r = probe(&d, Marker::Replica, Some(&db));
        assert_eq!(r, Role::ReadOnlyFile(db.clone()));
        assert!(!r.may_write());
    }

    #[test]
    fn open_database_missing_from_mount_is_not_running() {
        let d = tempdir();
        let r = probe(&d, Marker::Replica, Some(&d.join("app.db")));
        assert!(
            matches!(r, Role::NotRunning(ref m) if m.contains("missing from the mount")),
            "{r:?}"
        );
    }

    #[test]
    fn require_fuse_refuses_plain_dir() {
        let d = tempdir();
        let r = detect(Probe {
            mount: &d,
            marker: Marker::Replica,
            require_fuse: true,
            db: None,
        });
        assert!(
            matches!(r, Role::NotRunning(ref m) if m.contains("not a FUSE mount")),
            "{r:?}"
        );
    }

    fn tempdir() -> PathBuf {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "litefs-guard-role-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
