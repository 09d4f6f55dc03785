//! Support shared by the test binaries and the helper programs.

use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Opens `DB-lock` and takes LiteFS's halt lock on it (a POSIX write lock on
/// byte 72), as `litefs run -with-halt-lock-on` or litefs-go's WithHalt do.
/// The lock lasts as long as the returned file (and no other descriptor of
/// it is closed by this process).
pub fn take_halt_lock(db: &Path) -> std::io::Result<File> {
    let mut p = db.as_os_str().to_owned();
    p.push("-lock");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(p)?;
    // SAFETY: flock is plain data; fcntl on an open descriptor.
    let rc = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as i16;
        fl.l_whence = libc::SEEK_SET as i16;
        fl.l_start = 72;
        fl.l_len = 1;
        libc::fcntl(f.as_raw_fd(), libc::F_SETLKW, &fl)
    };
    if rc == 0 {
        Ok(f)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
