//! Shared helpers for the FUSE integration tests.
#![allow(dead_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use litefs_sim::harness::{Sim, SimOptions};

/// Skips (loudly) or fails (CI=true) when FUSE cannot be used.
#[macro_export]
macro_rules! require_fuse {
    () => {
        fn here() {}
        let name = std::any::type_name_of_val(&here);
        if !litefs_sim::harness::fuse_or_skip(name.strip_suffix("::here").unwrap_or(name)) {
            return;
        }
    };
}

/// Runs the tests that take it one at a time within this test binary. Halt
/// lock tests need it: any fork or spawn in the process (starting another
/// sim is one) closes inherited copies of the lock descriptor in the child,
/// which releases the halt lock, as on LiteFS.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn opts(nodes: &[&str]) -> SimOptions {
    SimOptions::new(nodes).bin(env!("CARGO_BIN_EXE_litefs-sim"))
}

pub fn start(nodes: &[&str]) -> Sim {
    Sim::start_with(opts(nodes)).expect("start litefs-sim")
}

pub fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// fcntl lock request on `fd`; returns 0 or the errno.
pub fn fcntl_lock(fd: i32, cmd: i32, typ: i32, start: i64, len: i64) -> i32 {
    // SAFETY: zeroed flock is valid; fd is owned by the caller.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start;
    fl.l_len = len;
    if unsafe { libc::fcntl(fd, cmd, &mut fl) } == 0 {
        0
    } else {
        errno()
    }
}

/// F_GETLK: `(type, pid)` of the blocking lock, or `(F_UNLCK, 0)`.
pub fn getlk(fd: i32, typ: i32, start: i64, len: i64) -> (i32, i32) {
    // SAFETY: as above.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = typ as i16;
    fl.l_whence = libc::SEEK_SET as i16;
    fl.l_start = start;
    fl.l_len = len;
    let rc = unsafe { libc::fcntl(fd, libc::F_GETLK, &mut fl) };
    assert_eq!(rc, 0, "F_GETLK errno {}", errno());
    (fl.l_type as i32, fl.l_pid)
}

/// A child process holding one fcntl lock until dropped.
pub struct LockHolder {
    pub pid: i32,
    release_w: i32,
    /// 0 if the child got the lock, else its errno.
    pub result: i32,
}

/// Forks a process that opens `path`, takes `typ` on `start..start+len`
/// with F_SETLK, reports, and holds it until the `LockHolder` is dropped.
/// The child only makes raw syscalls (safe after fork in a threaded process).
pub fn fork_lock_holder(path: &Path, typ: i32, start: i64, len: i64) -> LockHolder {
    fork_lock_holder_cmd(path, libc::F_SETLK, typ, start, len)
}

/// [`fork_lock_holder`] with any fcntl lock command (e.g. F_OFD_SETLKW).
pub fn fork_lock_holder_cmd(path: &Path, cmd: i32, typ: i32, start: i64, len: i64) -> LockHolder {
    let c = cpath(path);
    let mut report = [0i32; 2];
    let mut release = [0i32; 2];
    // SAFETY: plain pipe/fork; the child calls only async-signal-safe functions.
    unsafe {
        assert_eq!(libc::pipe(report.as_mut_ptr()), 0);
        assert_eq!(libc::pipe(release.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::close(report[0]);
            libc::close(release[1]);
            let fd = libc::open(c.as_ptr(), libc::O_RDWR);
            let mut res: i32 = if fd < 0 { *libc::__errno_location() } else { 0 };
            if fd >= 0 {
                let mut fl: libc::flock = std::mem::zeroed();
                fl.l_type = typ as i16;
                fl.l_whence = libc::SEEK_SET as i16;
                fl.l_start = start;
                fl.l_len = len;
                if libc::fcntl(fd, cmd, &mut fl) != 0 {
                    res = *libc::__errno_location();
                }
            }
            libc::write(report[1], &res as *const i32 as *const libc::c_void, 4);
            let mut b = 0u8;
            libc::read(release[0], &mut b as *mut u8 as *mut libc::c_void, 1);
            libc::_exit(0);
        }
        libc::close(report[1]);
        libc::close(release[0]);
        let mut res: i32 = -1;
        let n = libc::read(report[0], &mut res as *mut i32 as *mut libc::c_void, 4);
        libc::close(report[0]);
        assert_eq!(n, 4, "lock holder child died");
        LockHolder {
            pid,
            release_w: release[1],
            result: res,
        }
    }
}

impl LockHolder {
    /// SIGKILLs the child (the kernel then closes its descriptors) and reaps it.
    pub fn kill(self) {
        // SAFETY: our own child; Drop reaps it after the kill.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        // SAFETY: closing our pipe end lets the child exit; then reap it.
        unsafe {
            libc::close(self.release_w);
            let mut st = 0;
            libc::waitpid(self.pid, &mut st, 0);
        }
    }
}
