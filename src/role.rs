//! Role detection: the one place that decides whether this node may write.
//!
//! Used alike by the authorizer (prepare time), the VFS write gate (lock
//! time) and the SQL functions. Every call looks afresh: nothing is cached.

use crate::error::RefusalReason;
use crate::halt_lock;
use crate::settings::Marker;
use std::ffi::{CStr, CString};
use std::io::{ErrorKind, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::FromRawFd;
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

/// The paths a role check looks at, as C strings made once: the VFS keeps one
/// per open file, so a check costs two system calls on the primary (look up
/// `.primary`, stat the database) and no allocation.
#[derive(Debug, Clone)]
pub struct Target {
    mount: PathBuf,
    mount_c: CString,
    marker_c: CString,
    db: Option<(PathBuf, CString)>,
}

impl Target {
    pub fn new(mount: &Path, db: Option<&Path>) -> Target {
        Target {
            mount: mount.to_path_buf(),
            mount_c: c_path(mount),
            marker_c: c_path(&mount.join(".primary")),
            db: db.map(|d| (d.to_path_buf(), c_path(d))),
        }
    }
}

/// A path as a C string; one with a NUL byte (never from SQLite or a
/// validated setting) becomes "", which every lookup reports as missing.
fn c_path(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// Looks at the mount now and decides the role.
pub fn detect(p: Probe<'_>) -> Role {
    detect_target(&Target::new(p.mount, p.db), p.marker, p.require_fuse)
}

/// [`detect`] with prepared paths.
pub fn detect_target(t: &Target, marker: Marker, require_fuse: bool) -> Role {
    if require_fuse {
        match is_fuse_c(&t.mount_c) {
            Ok(true) => {}
            Ok(false) => {
                return Role::NotRunning(format!(
                    "{} is not a FUSE mount (LiteFS is not mounted there; writing would create a local file LiteFS later hides)",
                    t.mount.display()
                ))
            }
            Err(e) => return not_running(&t.mount, &e),
        }
    }
    let halt = || t.db.as_ref().is_some_and(|(db, _)| halt_lock::is_held(db));
    match read_marker(&t.marker_c) {
        Ok(Some(host)) => match marker {
            Marker::Replica => Role::Replica {
                primary: (!host.is_empty()).then_some(host),
                halt_lock: halt(),
            },
            Marker::Primary => file_mode_role(t),
        },
        Ok(None) => match marker {
            Marker::Replica => file_mode_role(t),
            Marker::Primary => match mount_is_dir(t) {
                Some(not_running) => not_running,
                None => Role::Replica {
                    primary: None,
                    halt_lock: halt(),
                },
            },
        },
        Err(e) => not_running(&t.mount, &e),
    }
}

/// `.primary` content, trimmed; None when the file does not exist.
fn read_marker(path: &CStr) -> std::io::Result<Option<String>> {
    MARKER_LOOKUPS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: a valid C string; the descriptor is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(e)
        };
    }
    // SAFETY: `fd` was just opened and is owned here.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut buf = Vec::new();
    file.take(MAX_PRIMARY_LEN).read_to_end(&mut buf)?;
    Ok(Some(String::from_utf8_lossy(&buf).trim().to_string()))
}

/// None when the mount is a directory; otherwise why LiteFS is not running.
fn mount_is_dir(t: &Target) -> Option<Role> {
    match stat(&t.mount_c) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => None,
        Ok(_) => Some(Role::NotRunning(format!(
            "mount directory {} is not a directory",
            t.mount.display()
        ))),
        Err(e) => Some(not_running(&t.mount, &e)),
    }
}

/// On a node that looks like the primary, LiteFS's file mode has the last
/// word: 0444 means "not the primary" (a replica that lost its primary).
fn file_mode_role(t: &Target) -> Role {
    let Some((db, db_c)) = &t.db else {
        return mount_is_dir(t).unwrap_or(Role::Primary);
    };
    match stat(db_c) {
        Ok(st) if st.st_mode & 0o222 == 0 => {
            if halt_lock::is_held(db) {
                return Role::Replica {
                    primary: None,
                    halt_lock: true,
                };
            }
            Role::ReadOnlyFile(db.clone())
        }
        Ok(_) => Role::Primary,
        // The database is open, so its file exists wherever LiteFS is
        // mounted: a missing file means the mount went away underneath.
        // (Only now, on the failure path, is the mount itself looked at, to
        // say which of the two went away.)
        Err(e) if e.kind() == ErrorKind::NotFound => mount_is_dir(t).unwrap_or_else(|| {
            Role::NotRunning(format!(
                "database file {} is missing from the mount (LiteFS stopped?)",
                db.display()
            ))
        }),
        Err(e) => not_running(&t.mount, &e),
    }
}

fn stat(path: &CStr) -> std::io::Result<libc::stat> {
    // SAFETY: stat is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid C string and a writable stat buffer.
    if unsafe { libc::stat(path.as_ptr(), &mut st) } == 0 {
        Ok(st)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn not_running(mount: &Path, e: &std::io::Error) -> Role {
    let what = match e.kind() {
        ErrorKind::NotFound => "not found".to_string(),
        _ => e.to_string(),
    };
    Role::NotRunning(format!("mount directory {} {what}", mount.display()))
}

/// Whether `path` is on a FUSE filesystem (statfs).
fn is_fuse_c(path: &CStr) -> std::io::Result<bool> {
    let mut st: libc::statfs = unsafe_zeroed_statfs();
    // SAFETY: a valid C string and a writable statfs.
    let rc = unsafe { libc::statfs(path.as_ptr(), &mut st) };
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
