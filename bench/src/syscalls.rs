//! `profile syscalls DIR`: what the filesystem calls behind one role check
//! cost on this machine (ns each), and the cheaper calls that could replace
//! them. Evidence for the write-path figures, not part of the table.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

fn ns(n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

pub fn run(dir: &Path, n: usize) {
    let db = dir.join("p.db");
    std::fs::write(&db, b"x").unwrap();
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
    let (cdir, cdb, cmarker) = (c(dir), c(&db), c(&dir.join(".primary")));
    let dirfd = unsafe { libc::open(cdir.as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
    let dbfd = unsafe { libc::open(cdb.as_ptr(), libc::O_RDONLY) };
    assert!(dirfd >= 0 && dbfd >= 0);
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let rows: Vec<(&str, f64)> = vec![
        (
            "getppid (syscall floor)",
            ns(n, || unsafe {
                libc::getppid();
            }),
        ),
        (
            "std: File::open(<mount>/.primary) -> ENOENT (what role::read_marker does)",
            ns(n, || {
                let _ = std::fs::File::open(dir.join(".primary"));
            }),
        ),
        (
            "std: fs::metadata(<mount>) (role::detect, absent marker)",
            ns(n, || {
                let _ = std::fs::metadata(dir);
            }),
        ),
        (
            "std: fs::metadata(<db>) (role::file_mode_role)",
            ns(n, || {
                let _ = std::fs::metadata(&db);
            }),
        ),
        (
            "libc open(abs path .primary) -> ENOENT",
            ns(n, || unsafe {
                libc::open(cmarker.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            }),
        ),
        (
            "libc faccessat(dirfd, \".primary\", F_OK) -> ENOENT",
            ns(n, || unsafe {
                libc::faccessat(dirfd, c".primary".as_ptr(), libc::F_OK, 0);
            }),
        ),
        (
            "libc stat(<mount>)",
            ns(n, || unsafe {
                libc::stat(cdir.as_ptr(), &mut st);
            }),
        ),
        (
            "libc stat(<db>)",
            ns(n, || unsafe {
                libc::stat(cdb.as_ptr(), &mut st);
            }),
        ),
        (
            "libc fstat(db fd)",
            ns(n, || unsafe {
                libc::fstat(dbfd, &mut st);
            }),
        ),
    ];
    unsafe {
        libc::close(dirfd);
        libc::close(dbfd);
    }
    for (what, t) in rows {
        println!("{t:8.0} ns  {what}");
    }
}
