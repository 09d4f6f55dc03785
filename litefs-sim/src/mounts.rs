//! Mounting one FUSE session per node, and unmounting that always succeeds.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{BackgroundSession, Config, MountOption, Session, SessionACL};

use crate::cluster::Cluster;
use crate::fs::NodeFs;

/// A live mount; its worker threads run until the mount goes away.
#[derive(Debug)]
pub struct Mount {
    pub node: String,
    pub path: PathBuf,
    _session: BackgroundSession,
}

/// Mounts node `node` at `path` with `threads` FUSE worker threads.
pub fn mount_node(
    cluster: Arc<Cluster>,
    node: usize,
    path: &Path,
    threads: usize,
    allow_other: bool,
) -> io::Result<Mount> {
    let name = cluster.node_name(node).to_string();
    let mut cfg = Config::default();
    cfg.mount_options = vec![
        MountOption::FSName(format!("litefs-sim-{name}")),
        MountOption::NoAtime,
    ];
    // Several workers with their own /dev/fuse clone: one slow request does
    // not hold up the other writers.
    cfg.n_threads = Some(threads.max(1));
    cfg.clone_fd = true;
    if allow_other {
        cfg.acl = SessionACL::All;
    }
    let session = Session::new(NodeFs::new(node, cluster), path, &cfg)?;
    Ok(Mount {
        node: name,
        path: path.to_path_buf(),
        _session: session.spawn()?,
    })
}

fn umount2(path: &Path, flags: libc::c_int) -> io::Result<()> {
    let c =
        CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Unmounts `path`; if busy, detaches it lazily (`umount -l`). Not mounted
/// counts as success.
pub fn unmount(path: &Path) -> io::Result<()> {
    if !is_mounted(path) {
        return Ok(());
    }
    match umount2(path, 0) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        Err(_) => umount2(path, libc::MNT_DETACH),
    }
}

/// Undoes the octal escapes of /proc/self/mountinfo (`\040` for space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).ok();
            if let Some(v) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Is something mounted exactly at `path`?
pub fn is_mounted(path: &Path) -> bool {
    let target = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| Path::new(&unescape(mp)) == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_parsing() {
        assert_eq!(unescape("/a\\040b"), "/a b");
        assert_eq!(unescape("/plain"), "/plain");
        assert!(is_mounted(Path::new("/")));
        assert!(!is_mounted(Path::new("/definitely/not/a/mount")));
    }
}
