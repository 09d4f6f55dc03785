//! Signal plumbing: SIGINT/SIGTERM/SIGHUP handled by one thread via
//! sigwait, and a probe for "this blocked caller has a signal pending".

use std::io;

fn shutdown_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill a local sigset_t.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Call before spawning threads so that every thread inherits the mask and
/// only `wait_shutdown_signal` ever sees these signals.
pub fn block_shutdown_signals() -> io::Result<()> {
    let set = shutdown_set();
    // SAFETY: valid set pointer; old mask not needed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Blocks until SIGINT, SIGTERM or SIGHUP arrives; returns its number.
pub fn wait_shutdown_signal() -> i32 {
    let set = shutdown_set();
    let mut sig: libc::c_int = 0;
    loop {
        // SAFETY: valid set and out-pointer.
        let rc = unsafe { libc::sigwait(&set, &mut sig) };
        if rc == 0 {
            return sig;
        }
    }
}

fn mask_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

/// Does thread `tid` have an unblocked, non-ignored signal pending (or is it
/// gone)? Such a caller would get EINTR from a real blocking F_SETLKW.
pub fn thread_interrupted(tid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return true;
    };
    let pending = mask_field(&status, "SigPnd:") | mask_field(&status, "ShdPnd:");
    let blocked = mask_field(&status, "SigBlk:") | mask_field(&status, "SigIgn:");
    pending & !blocked != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_masks_and_sees_own_thread_quiet() {
        let s = "Name:\tx\nSigPnd:\t0000000000000100\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\n";
        assert_eq!(mask_field(s, "SigPnd:"), 0x100);
        assert_eq!(mask_field(s, "Nope:"), 0);
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert!(!thread_interrupted(tid));
        assert!(thread_interrupted(u32::MAX - 1));
    }
}
