//! Where a file lives: whether a database SQLite opens is one the guard
//! watches, decided by the file's identity, not by how its path is spelled.
//!
//! A symlink, a hard link, a bind mount, `/proc/self/fd/N`, `..` or a
//! relative path all name the same file as `<mount>/app.db`; each must be
//! guarded like it. So besides the path prefix, a file is guarded when its
//! directory *is* the mount directory (device and inode), when the file *is*
//! one of the files at the mount's root (device and inode), or when it lives
//! on the mount's own filesystem (LiteFS's FUSE mount has a device of its
//! own). The mount directory is looked at afresh on every open, so a mount
//! that appears after loading, or whose path now resolves elsewhere, counts.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A guarded database: the mount it belongs to and its path inside the mount
/// (where LiteFS keeps its `NAME-lock` and `NAME-pos` files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub mount: PathBuf,
    pub db: PathBuf,
}

/// Which mount guards the database at `path`. `resolved` is the configured
/// mount directory as resolved when the settings were read, `given` as
/// configured (looked at afresh here); with none configured each database's
/// own directory is its mount.
pub fn locate(resolved: Option<&Path>, given: Option<&Path>, path: &Path) -> Option<Located> {
    let Some(resolved) = resolved else {
        return path.parent().map(|m| Located {
            mount: m.to_path_buf(),
            db: path.to_path_buf(),
        });
    };
    // `a/../b` starts with `a` component by component without being in it
    // (SQLite before 3.37 keeps `..` in full paths): identity decides those.
    let plain = !path.components().any(|c| c == std::path::Component::ParentDir);
    if plain && path.starts_with(resolved) {
        return Some(Located {
            mount: resolved.to_path_buf(),
            db: path.to_path_buf(),
        });
    }
    let mount = given.unwrap_or(resolved);
    let found = |db: PathBuf| {
        Some(Located {
            mount: mount.to_path_buf(),
            db,
        })
    };
    if plain && path.starts_with(mount) {
        return found(path.to_path_buf());
    }
    // The mount must exist for anything else to be inside it.
    let m = std::fs::metadata(mount).ok()?;
    let name = path.file_name()?;
    if let Some(parent) = path.parent() {
        if std::fs::metadata(parent).is_ok_and(|p| same(&p, &m)) {
            return found(mount.join(name));
        }
    }
    let st = std::fs::metadata(path).ok()?;
    if st.dev() != m.dev() {
        // Hard links and bind mounts keep the device: another device is
        // another file.
        return None;
    }
    if let Some(entry) = entry_with_identity(mount, &st) {
        return found(mount.join(entry));
    }
    // A file on the mount's own filesystem, reached some other way.
    let parent_dev = mount
        .parent()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|p| p.dev());
    (parent_dev != Some(m.dev())).then(|| Located {
        mount: mount.to_path_buf(),
        db: path.to_path_buf(),
    })
}

/// The database a `-journal` or `-wal` file belongs to.
pub fn database_of(path: &Path, suffix: &str) -> PathBuf {
    let b = path.as_os_str().as_bytes();
    let b = b.strip_suffix(suffix.as_bytes()).unwrap_or(b);
    PathBuf::from(OsStr::from_bytes(b))
}

fn same(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// The name of the entry at the mount's root that is this very file.
fn entry_with_identity(mount: &Path, st: &std::fs::Metadata) -> Option<std::ffi::OsString> {
    std::fs::read_dir(mount)
        .ok()?
        .filter_map(Result::ok)
        .find(|e| {
            e.metadata()
                .is_ok_and(|m| m.file_type().is_file() && same(&m, st))
        })
        .map(|e| e.file_name())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn inside_the_mount_by_prefix() {
        let d = dir();
        let m = d.path().join("m");
        let l = locate(Some(&m), None, &m.join("app.db")).unwrap();
        assert_eq!(l.db, m.join("app.db"));
    }

    #[test]
    fn outside_files_are_not_guarded() {
        let d = dir();
        let m = d.path().join("m");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(d.path().join("other.db"), b"x").unwrap();
        assert_eq!(locate(Some(&m), None, &d.path().join("other.db")), None);
        assert_eq!(locate(Some(&m), None, &d.path().join("new.db")), None);
    }

    #[test]
    fn a_symlinked_directory_is_the_mount() {
        let d = dir();
        let m = d.path().join("m");
        std::fs::create_dir(&m).unwrap();
        let alias = d.path().join("alias");
        std::os::unix::fs::symlink(&m, &alias).unwrap();
        let l = locate(Some(&m), None, &alias.join("new.db")).unwrap();
        assert_eq!(l.db, m.join("new.db"));
    }

    #[test]
    fn a_hard_link_outside_is_the_mounts_file() {
        let d = dir();
        let m = d.path().join("m");
        std::fs::create_dir(&m).unwrap();
        std::fs::write(m.join("app.db"), b"x").unwrap();
        let link = d.path().join("elsewhere.db");
        std::fs::hard_link(m.join("app.db"), &link).unwrap();
        let l = locate(Some(&m), None, &link).unwrap();
        assert_eq!(l.db, m.join("app.db"));
    }

    #[test]
    fn a_mount_that_appears_later_counts() {
        let d = dir();
        let m = d.path().join("later");
        let alias = d.path().join("alias");
        assert_eq!(locate(Some(&m), None, &alias.join("app.db")), None);
        std::fs::create_dir(&m).unwrap();
        std::os::unix::fs::symlink(&m, &alias).unwrap();
        assert!(locate(Some(&m), None, &alias.join("app.db")).is_some());
    }

    #[test]
    fn a_mount_path_that_now_resolves_elsewhere_counts() {
        let d = dir();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&b, &link).unwrap();
        // Resolved to `a` when loaded; the link now points at `b`.
        let l = locate(Some(&a), Some(&link), &b.join("app.db")).unwrap();
        assert_eq!(l.db, link.join("app.db"));
        assert!(locate(Some(&a), Some(&link), &a.join("app.db")).is_some());
    }

    #[test]
    fn dotdot_is_judged_by_identity() {
        let d = dir();
        let m = d.path().join("m");
        let out = d.path().join("out");
        std::fs::create_dir(&m).unwrap();
        std::fs::create_dir(&out).unwrap();
        assert_eq!(locate(Some(&m), None, &m.join("../out/x.db")), None);
        let l = locate(Some(&m), None, &out.join("../m/x.db")).unwrap();
        assert_eq!(l.db, m.join("x.db"));
    }

    #[test]
    fn no_mount_configured_means_the_database_directory() {
        let l = locate(None, None, Path::new("/a/b.db")).unwrap();
        assert_eq!(l.mount, PathBuf::from("/a"));
    }

    #[test]
    fn suffixes_are_stripped_as_bytes() {
        let p = PathBuf::from(OsStr::from_bytes(b"/m/\xffapp.db-wal"));
        assert_eq!(
            database_of(&p, "-wal"),
            PathBuf::from(OsStr::from_bytes(b"/m/\xffapp.db"))
        );
    }
}
