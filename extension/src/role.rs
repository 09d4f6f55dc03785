//! Role detection: the one place that decides whether this node may write.
//!
//! Used alike by the authorizer (prepare time), the VFS write gate (lock
//! time) and the SQL functions. [`detect`] looks afresh on every call and
//! caches nothing; where a caller may reuse a fresh answer, and for how
//! long, is decided in one place: `vfs/verdict.rs`.

use crate::halt_lock;
use std::ffi::{CStr, CString};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// statfs magic of a FUSE filesystem.
const FUSE_SUPER_MAGIC: i64 = 0x6573_5546;
/// `.primary` holds a hostname; anything longer is not LiteFS's file.
const MAX_PRIMARY_LEN: usize = 4096;

/// Where the `.primary` marker file is present (`LITEFS_GUARD_MARKER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// `replica`, LiteFS's own meaning and the default: `.primary` is present
    /// on replicas and names the primary.
    OnReplicas,
    /// `primary`, opt-in for deployments with their own election: a marker
    /// present on the primary means "this is the primary".
    OnPrimary,
}

impl Marker {
    pub fn as_str(self) -> &'static str {
        match self {
            Marker::OnReplicas => "replica",
            Marker::OnPrimary => "primary",
        }
    }
}

/// Why the guard will not let this node write.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    #[error("this node is a replica; the primary is {0}")]
    Replica(String),
    #[error("this node is a replica and no primary is known (LiteFS has lost its primary)")]
    ReplicaNoPrimary,
    #[error("this node is not the primary (the database file {0} has no write permission, as LiteFS shows it on replicas)")]
    ReadOnlyFile(PathBuf),
    #[error("LiteFS is not running: {0}")]
    NotRunning(String),
}

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
    detect_with(&mut SysMarker, t, marker, require_fuse)
}

/// [`detect_target`] with the `.primary` system calls passed in.
fn detect_with<I: MarkerIo>(io: &mut I, t: &Target, marker: Marker, require_fuse: bool) -> Role {
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
    match read_marker_with(io, t) {
        Ok(Some(host)) => match marker {
            Marker::OnReplicas => Role::Replica {
                primary: (!host.is_empty()).then_some(host),
                halt_lock: halt(),
            },
            Marker::OnPrimary => file_mode_role(t),
        },
        Ok(None) => match marker {
            Marker::OnReplicas => file_mode_role(t),
            Marker::OnPrimary => match mount_is_dir(t) {
                Some(not_running) => not_running,
                None => Role::Replica {
                    primary: None,
                    halt_lock: halt(),
                },
            },
        },
        Err(why) => Role::NotRunning(why),
    }
}

/// The system calls a `.primary` lookup makes. Passed in so the decision can
/// be tested with answers only FUSE gives (a handle that opens but whose
/// `read` says ENOENT) and without blocking on odd files.
pub(crate) trait MarkerIo {
    type File;
    /// Opens without blocking (a FIFO or a device must not hang the caller).
    fn open(&mut self, path: &CStr) -> std::io::Result<Self::File>;
    /// The opened file's type bits (`st_mode & S_IFMT`).
    fn file_type(&mut self, f: &Self::File) -> std::io::Result<libc::mode_t>;
    fn read(&mut self, f: &Self::File, buf: &mut [u8]) -> std::io::Result<usize>;
}

/// The real system calls.
pub(crate) struct SysMarker;

impl MarkerIo for SysMarker {
    type File = OwnedFd;

    fn open(&mut self, path: &CStr) -> std::io::Result<OwnedFd> {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
        // writer. O_NOCTTY: a terminal never becomes ours. No O_NOFOLLOW: a
        // symlinked `.primary` is followed, and the file it leads to must
        // pass the same checks.
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
        // SAFETY: a valid C string; the descriptor is owned below.
        let fd = unsafe { libc::open(path.as_ptr(), flags) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn file_type(&mut self, f: &OwnedFd) -> std::io::Result<libc::mode_t> {
        // SAFETY: stat is plain old data; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: an open descriptor and a writable stat buffer.
        if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } == 0 {
            Ok(st.st_mode & libc::S_IFMT)
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    fn read(&mut self, f: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: an open descriptor and a writable buffer of that length.
        let n = unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

/// What a file that is not a regular file is, for the refusal message.
pub(crate) fn file_type_name(kind: libc::mode_t) -> &'static str {
    match kind {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFDIR => "a directory",
        libc::S_IFSOCK => "a socket",
        _ => "not a regular file",
    }
}

/// `.primary` content, trimmed; None when the file does not exist. Err is
/// why LiteFS is not running (or why the file is not LiteFS's).
///
/// The decision, over any [`MarkerIo`]:
/// - ENOENT from `open`, `fstat` or `read` means "absent". Real LiteFS keeps
///   a cached handle on a replica that has just lost its primary: `open`
///   succeeds and then `fstat`/`read` say ENOENT. That is a replica with no
///   known primary, never "LiteFS is not running".
/// - Only a regular file is LiteFS's `.primary` (a FUSE file is one); a
///   FIFO, device, directory or socket is refused, never read.
/// - At most [`MAX_PRIMARY_LEN`] bytes are read, into a fixed buffer; a
///   longer file is refused.
fn read_marker_with<I: MarkerIo>(io: &mut I, t: &Target) -> Result<Option<String>, String> {
    MARKER_LOOKUPS.fetch_add(1, Ordering::Relaxed);
    let path = &t.marker_c;
    let shown = || t.mount.join(".primary").display().to_string();
    let failed = |e: std::io::Error| Err(not_running_reason(&t.mount, &e));
    let file = match io.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return failed(e),
    };
    match io.file_type(&file) {
        Ok(libc::S_IFREG) => {}
        Ok(kind) => {
            return Err(format!(
                "{} is {}, not LiteFS's .primary file",
                shown(),
                file_type_name(kind)
            ))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return failed(e),
    }
    // One byte more than allowed, to tell "exactly full" from "too long".
    let mut buf = [0u8; MAX_PRIMARY_LEN + 1];
    let mut len = 0;
    while len < buf.len() {
        match io.read(&file, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n.min(buf.len() - len),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return failed(e),
        }
    }
    if len > MAX_PRIMARY_LEN {
        return Err(format!(
            "{} holds more than {MAX_PRIMARY_LEN} bytes, not LiteFS's .primary file (a host name)",
            shown()
        ));
    }
    Ok(Some(String::from_utf8_lossy(&buf[..len]).trim().to_string()))
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
    Role::NotRunning(not_running_reason(mount, e))
}

fn not_running_reason(mount: &Path, e: &std::io::Error) -> String {
    let what = match e.kind() {
        ErrorKind::NotFound => "not found".to_string(),
        _ => e.to_string(),
    };
    format!("mount directory {} {what}", mount.display())
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
    use std::ffi::OsStr;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    fn probe(mount: &Path, marker: Marker, db: Option<&Path>) -> Role {
        detect(Probe {
            mount,
            marker,
            require_fuse: false,
            db,
        })
    }

    fn not_running_with(r: &Role, needle: &str) -> bool {
        matches!(r, Role::NotRunning(m) if m.contains(needle))
    }

    /// `probe` on another thread: a lookup that blocks fails the test
    /// within a second instead of hanging it.
    fn probe_within_a_second(mount: &Path) -> Role {
        let mount = mount.to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(probe(&mount, Marker::OnReplicas, None));
        });
        rx.recv_timeout(Duration::from_secs(1))
            .expect("detect() blocked on .primary")
    }

    fn read_only(path: &Path) {
        std::fs::write(path, b"").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }

    #[test]
    fn absent_marker_is_primary() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(probe(d.path(), Marker::OnReplicas, None), Role::Primary);
    }

    #[test]
    fn marker_names_primary() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".primary"), "node-a\n").unwrap();
        let r = probe(d.path(), Marker::OnReplicas, None);
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
        let d = tempfile::tempdir().unwrap();
        assert!(!probe(d.path(), Marker::OnPrimary, None).may_write());
        std::fs::write(d.path().join(".primary"), "").unwrap();
        assert_eq!(probe(d.path(), Marker::OnPrimary, None), Role::Primary);
    }

    #[test]
    fn missing_mount_is_not_running() {
        let d = tempfile::tempdir().unwrap();
        let r = probe(&d.path().join("gone"), Marker::OnReplicas, None);
        assert!(not_running_with(&r, "not found"), "{r:?}");
        assert!(!r.may_write());
    }

    #[test]
    fn read_only_file_is_not_primary() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        read_only(&db);
        let r = probe(d.path(), Marker::OnReplicas, Some(&db));
        assert_eq!(r, Role::ReadOnlyFile(db.clone()));
        assert!(!r.may_write());
    }

    #[test]
    fn open_database_missing_from_mount_is_not_running() {
        let d = tempfile::tempdir().unwrap();
        let r = probe(d.path(), Marker::OnReplicas, Some(&d.path().join("app.db")));
        assert!(not_running_with(&r, "missing from the mount"), "{r:?}");
    }

    #[test]
    fn require_fuse_refuses_plain_dir() {
        let d = tempfile::tempdir().unwrap();
        let r = detect(Probe {
            mount: d.path(),
            marker: Marker::OnReplicas,
            require_fuse: true,
            db: None,
        });
        assert!(not_running_with(&r, "not a FUSE mount"), "{r:?}");
    }

    #[test]
    fn fifo_marker_never_blocks() {
        let d = tempfile::tempdir().unwrap();
        let fifo = c_path(&d.path().join(".primary"));
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let r = probe_within_a_second(d.path());
        let want = format!(
            "{} is a FIFO, not LiteFS's .primary file",
            d.path().join(".primary").display()
        );
        assert_eq!(r, Role::NotRunning(want));
        assert_eq!(
            r.refusal().unwrap().to_string(),
            format!(
                "LiteFS is not running: {}/.primary is a FIFO, not LiteFS's .primary file",
                d.path().display()
            )
        );
    }

    #[test]
    fn directory_marker_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".primary")).unwrap();
        let r = probe_within_a_second(d.path());
        assert!(
            not_running_with(&r, "/.primary is a directory, not LiteFS's"),
            "{r:?}"
        );
    }

    #[test]
    fn device_marker_is_refused_through_a_symlink() {
        // A symlinked `.primary` is followed; what it leads to is checked.
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.path().join(".primary")).unwrap();
        let r = probe_within_a_second(d.path());
        assert!(
            not_running_with(&r, "/.primary is a character device, not LiteFS's"),
            "{r:?}"
        );
    }

    #[test]
    fn symlink_to_a_regular_marker_is_followed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("elsewhere"), "node-c\n").unwrap();
        std::os::unix::fs::symlink(d.path().join("elsewhere"), d.path().join(".primary")).unwrap();
        assert_eq!(
            probe(d.path(), Marker::OnReplicas, None).primary_host(),
            Some("node-c")
        );
    }

    #[test]
    fn huge_marker_is_refused_without_reading_it_all() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(".primary");
        std::fs::write(&p, "h".repeat(MAX_PRIMARY_LEN)).unwrap();
        let host = probe(d.path(), Marker::OnReplicas, None);
        assert_eq!(host.primary_host().map(str::len), Some(MAX_PRIMARY_LEN));
        std::fs::write(&p, "h".repeat(MAX_PRIMARY_LEN + 1)).unwrap();
        let r = probe(d.path(), Marker::OnReplicas, None);
        assert!(
            not_running_with(&r, "/.primary holds more than 4096 bytes"),
            "{r:?}"
        );
        // Sparse: 1 GiB never written, so reading it all would show.
        std::fs::File::options()
            .write(true)
            .open(&p)
            .and_then(|f| f.set_len(1 << 30))
            .unwrap();
        let r = probe_within_a_second(d.path());
        assert!(not_running_with(&r, "holds more than 4096 bytes"), "{r:?}");
    }

    #[test]
    fn paths_that_are_not_utf8_work() {
        let d = tempfile::tempdir().unwrap();
        let mount = d.path().join(OsStr::from_bytes(b"lite\xfffs"));
        std::fs::create_dir(&mount).unwrap();
        let db = mount.join(OsStr::from_bytes(b"app\xfe.db"));
        read_only(&db);
        assert_eq!(
            probe(&mount, Marker::OnReplicas, Some(&db)),
            Role::ReadOnlyFile(db.clone())
        );
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(probe(&mount, Marker::OnReplicas, Some(&db)), Role::Primary);
        std::fs::write(mount.join(".primary"), "node-b\n").unwrap();
        assert_eq!(
            probe(&mount, Marker::OnReplicas, Some(&db)).primary_host(),
            Some("node-b")
        );
    }

    type ReadFn = Box<dyn FnMut(&mut [u8]) -> std::io::Result<usize>>;

    /// Answers LiteFS's FUSE can give and a plain filesystem cannot.
    struct Fake {
        open: Result<(), i32>,
        file_type: Result<libc::mode_t, i32>,
        read: ReadFn,
        reads: usize,
    }

    fn fake(read: impl FnMut(&mut [u8]) -> std::io::Result<usize> + 'static) -> Fake {
        Fake {
            open: Ok(()),
            file_type: Ok(libc::S_IFREG),
            read: Box::new(read),
            reads: 0,
        }
    }

    impl MarkerIo for Fake {
        type File = ();

        fn open(&mut self, _: &CStr) -> std::io::Result<()> {
            self.open.map_err(std::io::Error::from_raw_os_error)
        }

        fn file_type(&mut self, _: &()) -> std::io::Result<libc::mode_t> {
            self.file_type.map_err(std::io::Error::from_raw_os_error)
        }

        fn read(&mut self, _: &(), buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            (self.read)(buf)
        }
    }

    fn enoent(_: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::from_raw_os_error(libc::ENOENT))
    }

    /// From the text `chunks`, one per read, then end of file.
    fn chunks(parts: &'static [&'static str]) -> impl FnMut(&mut [u8]) -> std::io::Result<usize> {
        let mut i = 0;
        move |buf| {
            let Some(part) = parts.get(i) else {
                return Ok(0);
            };
            i += 1;
            if part.is_empty() {
                return Err(std::io::Error::from_raw_os_error(libc::EINTR));
            }
            buf[..part.len()].copy_from_slice(part.as_bytes());
            Ok(part.len())
        }
    }

    #[test]
    fn lost_primary_cached_handle_reads_as_absent() {
        // LiteFS on a replica that has just lost its primary: `.primary`
        // still opens (a cached handle) but reading it says ENOENT, and the
        // database shows mode 0444.
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        read_only(&db);
        let t = Target::new(d.path(), Some(&db));
        let r = detect_with(&mut fake(enoent), &t, Marker::OnReplicas, false);
        assert_eq!(r, Role::ReadOnlyFile(db.clone()));
        assert_eq!(r.name(), "replica");
        assert!(!r.may_write() && !r.is_primary());
        // The same with fstat answering ENOENT.
        let mut f = fake(enoent);
        f.file_type = Err(libc::ENOENT);
        assert_eq!(
            detect_with(&mut f, &t, Marker::OnReplicas, false),
            Role::ReadOnlyFile(db.clone())
        );
        assert_eq!(f.reads, 0);
        // Under the `primary` marker convention, absent means "not primary".
        let r = detect_with(&mut fake(enoent), &t, Marker::OnPrimary, false);
        assert_eq!(
            r,
            Role::Replica {
                primary: None,
                halt_lock: false
            }
        );
    }

    #[test]
    fn marker_read_path() {
        let d = tempfile::tempdir().unwrap();
        let t = Target::new(d.path(), None);
        let read = |f: &mut Fake| read_marker_with(f, &t);
        assert_eq!(read(&mut fake(enoent)), Ok(None));
        // Short reads are joined and EINTR is retried.
        let mut f = fake(chunks(&["no", "", "de-", "b\n"]));
        assert_eq!(read(&mut f), Ok(Some("node-b".into())));
        assert_eq!(f.reads, 5);
        // Other errors are reported with the mount.
        let mut f = fake(enoent);
        f.open = Err(libc::ENOTCONN);
        let e = read(&mut f).unwrap_err();
        assert!(
            e.starts_with(&format!("mount directory {} ", d.path().display())),
            "{e}"
        );
        assert!(e.contains("not connected"), "{e}");
        let mut f = fake(|_: &mut [u8]| Err(std::io::Error::from_raw_os_error(libc::EIO)));
        assert!(read(&mut f).unwrap_err().contains("Input/output error"));
        // A socket is not read at all.
        let mut f = fake(enoent);
        f.file_type = Ok(libc::S_IFSOCK);
        assert!(read(&mut f)
            .unwrap_err()
            .ends_with(".primary is a socket, not LiteFS's .primary file"));
        assert_eq!(f.reads, 0);
    }

    #[test]
    fn endless_marker_stops_after_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let t = Target::new(d.path(), None);
        // A file that never ends, one byte per read: the read stops one byte
        // past the limit.
        let mut f = fake(|buf: &mut [u8]| {
            buf[0] = b'x';
            Ok(1)
        });
        let e = read_marker_with(&mut f, &t).unwrap_err();
        assert!(e.contains("holds more than 4096 bytes"), "{e}");
        assert_eq!(f.reads, MAX_PRIMARY_LEN + 1);
        // A read that claims more than it was given cannot overrun either.
        let mut f = fake(|buf: &mut [u8]| Ok(buf.len() * 2));
        assert!(read_marker_with(&mut f, &t).is_err());
        assert_eq!(f.reads, 1);
    }
}
