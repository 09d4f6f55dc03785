//! Holds LiteFS's halt lock (a POSIX write lock on byte 72 of `NAME-lock`)
//! like `litefs run -with-halt-lock-on` does, until stdin closes.
//! Usage: `halt-holder DB`; prints "locked" once held.

use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;

fn main() {
    let db = std::env::args().nth(1).expect("usage: halt-holder DB");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(format!("{db}-lock"))
        .unwrap();
    // SAFETY: flock is plain data; fcntl on an open descriptor.
    let rc = unsafe {
        let mut fl: libc::flock = std::mem::zeroed();
        fl.l_type = libc::F_WRLCK as i16;
        fl.l_whence = libc::SEEK_SET as i16;
        fl.l_start = 72;
        fl.l_len = 1;
        libc::fcntl(f.as_raw_fd(), libc::F_SETLKW, &fl)
    };
    assert_eq!(rc, 0, "fcntl: {}", std::io::Error::last_os_error());
    println!("locked");
    std::io::stdout().flush().unwrap();
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
