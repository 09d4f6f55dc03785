//! LiteFS's HALT lock: a POSIX write lock on byte 72 of `NAME-lock`. A
//! replica holding it may write (LiteFS forwards the change to the primary).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Byte offset LiteFS uses for the halt lock.
pub const HALT_BYTE: i64 = 72;

/// `NAME-lock` for database `NAME`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push("-lock");
    PathBuf::from(s)
}

/// Descriptors of the `-lock` files asked about, kept open for the life of
/// the process: closing any descriptor of a file drops every POSIX lock this
/// process holds on it, so opening and closing one per check would release
/// the application's own halt lock.
static OPEN: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

/// Whether anyone — another process, or this one through any descriptor —
/// holds the halt lock of `db`. Any failure to ask counts as "not held".
pub fn is_held(db: &Path) -> bool {
    let path = lock_path(db);
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    let fd = match open.iter().find(|(p, _)| *p == path) {
        Some((_, f)) => f.as_raw_fd(),
        None => {
            // O_NONBLOCK and O_NOCTTY: a FIFO or a terminal in its place
            // must not block or become ours; only a regular file (LiteFS's
            // is one) is kept and asked.
            let Ok(f) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(&path)
            else {
                return false;
            };
            if !f.metadata().is_ok_and(|m| m.file_type().is_file()) {
                return false;
            }
            let fd = f.as_raw_fd();
            open.push((path, f));
            fd
        }
    };
    // Open-file-description locks see traditional POSIX locks held by this
    // very process too, which F_GETLK would not report.
    match query(fd, libc::F_OFD_GETLK) {
        Some(held) => held,
        None => query(fd, libc::F_GETLK).unwrap_or(false),
    }
}

fn query(fd: i32, cmd: i32) -> Option<bool> {
    // SAFETY: flock is plain old data; all-zero is valid (l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = HALT_BYTE;
    fl.l_len = 1;
    // SAFETY: `fd` is open for the duration of the call; `fl` is a valid flock.
    let rc = unsafe { libc::fcntl(fd, cmd, &mut fl) };
    (rc == 0).then_some(fl.l_type != libc::F_UNLCK as i16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_fifo_in_place_of_the_lock_file_never_blocks() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("app.db");
        let fifo = std::ffi::CString::new(lock_path(&db).as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(is_held(&db));
        });
        let held = rx.recv_timeout(std::time::Duration::from_secs(1));
        assert_eq!(held, Ok(false));
    }
}
